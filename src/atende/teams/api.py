"""``/v1`` routes of the human side: the company's business hours (and holidays imported from
an iCalendar file or URL), its handoff rules, its teams, its agents' availability, the
queue of conversations waiting for a person, and the inbox (``GET /v1/conversations``: its
views, mine and my teams, are the caller's as a person of the company).

Handlers parse, call one function of ``teams.service`` and shape its answer; the dashboard
calls the same functions. The routes, bodies and errors are those they were under
``tenancy`` (``/v1/queue`` and the inbox keep the ``conversations`` tag; the app includes
these routes before ``conversations.api``'s, so ``/v1/conversations/counts`` is not taken
for a conversation's id).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from atende.conversations import service as conversations
from atende.conversations.inbox import Count
from atende.conversations.schemas import ConversationPublic, LabelPublic, Page, QueueItem, SlaDueOut
from atende.hours import is_open, next_close, next_open
from atende.teams import actions_api, calendar, inbox, service
from atende.teams.inbox import InboxQuery
from atende.teams.models import Availability
from atende.teams.schemas import (
    AgentOut,
    AvailabilityIn,
    HandoffIn,
    HoursIn,
    HoursOut,
    IcsImportOut,
    InboxCounts,
    InboxRowOut,
    Language,
    LastMessageOut,
    PersonRef,
    Snoozed,
    StateFilter,
    TeamIn,
    TeamOut,
    TeamRef,
    ViewCount,
)
from atende.teams.settings import HandoffSettings, schedule_of
from atende.tenancy.deps import AdminTenant, AgentTenant, Tenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["hours and handoff"])
queue_router = APIRouter(prefix="/v1", tags=["conversations"])


def _hours_out(stored: dict[str, Any] | None, now: datetime) -> HoursOut:
    schedule = schedule_of(stored)
    return HoursOut(
        hours=stored,
        open_now=is_open(schedule, now),
        next_open=next_open(schedule, now),
        next_close=next_close(schedule, now),
    )


def _stored(hours: HoursIn) -> dict[str, Any]:
    return hours.model_dump(mode="json", exclude_none=True)


@router.get("/company/hours", response_model=HoursOut, summary="Business hours and whether open now")
async def get_hours(tenant: ViewerTenant) -> HoursOut:
    async with tenant.transaction() as session:
        stored = await service.company_hours(session, tenant.principal.company_id)
    return _hours_out(stored, tenant.runtime.clock())


@router.put("/company/hours", response_model=HoursOut, summary="Replace the business hours")
async def put_hours(body: HoursIn, tenant: AdminTenant) -> HoursOut:
    """Validated whole before anything is stored: an invalid schedule (overlapping intervals,
    an end before its start without `overnight`, an unknown timezone, country or
    subdivision) answers 422 naming the field, and the stored schedule stays as it was."""
    stored = _stored(body)
    async with tenant.transaction() as session:
        await service.save_company_hours(session, tenant.principal.company_id, stored)
    return _hours_out(stored, tenant.runtime.clock())


@router.delete("/company/hours", response_model=HoursOut, summary="Remove the hours (always open)")
async def delete_hours(tenant: AdminTenant) -> HoursOut:
    async with tenant.transaction() as session:
        await service.save_company_hours(session, tenant.principal.company_id, None)
    return _hours_out(None, tenant.runtime.clock())


@router.post(
    "/company/hours/ics",
    response_model=IcsImportOut,
    summary="Import closed dates from an iCalendar file or URL",
    openapi_extra={
        "requestBody": {"content": {"text/calendar": {"schema": {"type": "string"}}}, "required": False}
    },
)
async def import_ics(
    request: Request,
    tenant: AdminTenant,
    url: str | None = Query(None, max_length=1000, description="Fetch the calendar here instead."),
) -> IcsImportOut:
    """Send the `.ics` file as the body (`Content-Type: text/calendar`), or a `url` to fetch
    it from (timeouts, the body's size limit, no private addresses unless
    `ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS`). Its all-day events from today to two years on
    replace the dates imported before; dates entered by hand stay. A calendar with more than
    5000 events in that period, or that takes longer than `ATENDE_ICS_IMPORT_TIMEOUT_SECONDS`
    to read, answers 422 and changes nothing."""
    data = None if url else await request.body()
    done = await calendar.import_calendar(tenant, data=data, url=url)
    out = _hours_out(done.hours, tenant.runtime.clock())
    return IcsImportOut(**out.model_dump(), imported=done.imported, skipped=done.skipped)


# handoff rules


def _handoff_out(settings: HandoffSettings) -> HandoffIn:
    return HandoffIn.model_validate(settings.model_dump())


@router.get("/company/handoff", response_model=HandoffIn, summary="Handoff rules")
async def get_handoff(tenant: ViewerTenant) -> HandoffIn:
    async with tenant.transaction() as session:
        return _handoff_out(await service.company_handoff(session, tenant.principal.company_id))


@router.put("/company/handoff", response_model=HandoffIn, summary="Change the handoff settings")
async def put_handoff(body: HandoffIn, tenant: AdminTenant) -> HandoffIn:
    """Change the fields sent; those left out keep their stored values (`{"bot_answers_while_closed":
    true}` keeps the rules). `rules`, when sent, replaces every rule; `"team": null` clears
    the default team. Answers the settings as stored. `PATCH` does the same."""
    async with tenant.transaction() as session:
        stored = await service.update_handoff_settings(
            session, tenant.principal.company_id, body.model_dump(mode="json", exclude_unset=True)
        )
    return _handoff_out(stored)


router.add_api_route(
    "/company/handoff",
    put_handoff,
    methods=["PATCH"],
    response_model=HandoffIn,
    summary="Change the handoff settings (as PUT)",
)


# teams


@router.get("/teams", response_model=list[TeamOut], summary="List teams")
async def list_teams(tenant: ViewerTenant) -> list[TeamOut]:
    async with tenant.transaction() as session:
        return [
            TeamOut(id=t.id, name=t.name, slug=t.slug, hours=t.hours, members=members)
            for t, members in await service.list_teams(session)
        ]


async def _save_team(tenant: Tenant, team_ref: str | None, body: TeamIn) -> TeamOut:
    async with tenant.transaction() as session:
        saved, members = await service.put_team(
            session,
            team_ref,
            name=body.name,
            slug=body.slug,
            hours=_stored(body.hours) if body.hours else None,
            members=body.members,
        )
        return TeamOut(id=saved.id, name=saved.name, slug=saved.slug, hours=saved.hours, members=members)


@router.post("/teams", response_model=TeamOut, status_code=201, summary="Create a team")
async def create_team(body: TeamIn, tenant: AdminTenant) -> TeamOut:
    return await _save_team(tenant, None, body)


@router.put("/teams/{team}", response_model=TeamOut, summary="Replace a team")
async def replace_team(team: str, body: TeamIn, tenant: AdminTenant) -> TeamOut:
    return await _save_team(tenant, team, body)


@router.delete(
    "/teams/{team}", status_code=204, summary="Delete a team (its conversations join the company queue)"
)
async def delete_team(team: str, tenant: AdminTenant) -> None:
    async with tenant.transaction() as session:
        await service.delete_team(session, team)


# agents


def _agent_out(agent: service.Agent) -> AgentOut:
    member = agent.member
    return AgentOut(
        user_id=member.user_id,
        email=agent.user.email,
        name=agent.user.name,
        role=member.role,
        availability=Availability(member.availability),
        availability_changed_at=member.availability_changed_at,
        teams=agent.teams,
    )


@router.get("/agents", response_model=list[AgentOut], summary="Agents and their availability")
async def list_agents(tenant: ViewerTenant) -> list[AgentOut]:
    async with tenant.transaction() as session:
        return [_agent_out(agent) for agent in await service.agents(session)]


@router.put("/agents/{agent}/availability", response_model=AgentOut, summary="Set an agent's availability")
async def set_availability(
    agent: str, body: Annotated[AvailabilityIn, Body()], tenant: AgentTenant
) -> AgentOut:
    """`agent` is a user id, or `me` with a personal key (`atende keys create --user`). Agents
    set their own; admins anyone's."""
    async with tenant.transaction() as session:
        changed = await service.change_availability(
            session, tenant.principal, agent, body.availability, tenant.runtime.clock()
        )
        return _agent_out(changed)


# the queue


@queue_router.get("/queue", response_model=list[QueueItem], summary="Conversations waiting for a person")
async def list_queue(
    tenant: AgentTenant,
    team: str | None = Query(None, max_length=80, description="Only this team's queue (slug or id)."),
    limit: int = Query(100, ge=1, le=500),
) -> list[QueueItem]:
    """Tickets first (kept while the team was closed or nobody was online: when the team
    opens they are at the top), then by how long they have waited."""
    async with tenant.transaction() as session:
        waiting = await service.waiting_queue(
            session, tenant.principal.company_id, team=team, limit=limit, now=tenant.runtime.clock()
        )
        return [
            QueueItem(**ConversationPublic.model_validate(c).model_dump(), waiting_business_seconds=seconds)
            for c, seconds in waiting
        ]


# the inbox


def inbox_filters(
    state: Annotated[
        list[StateFilter] | None,
        Query(max_length=5, description="Only these states (repeat it); `open`: every state but `resolved`."),
    ] = None,
    channel: str | None = Query(None, max_length=20, description="Only this channel's (`api`, `webchat`)."),
    team: str | None = Query(None, max_length=80, description="Only this team's (slug or id)."),
    assignee: str | None = Query(
        None, max_length=320, description="Only this agent's (user id, e-mail or `me`); `none`: nobody's."
    ),
    label: str | None = Query(None, max_length=200, description="Only those with this label (id or name)."),
    language: Annotated[Language | None, Query(description="Only those in this language.")] = None,
    search: str | None = Query(
        None,
        min_length=1,
        max_length=200,
        description="Only those with a message containing all these words (accents and case ignored; "
        "a word of three letters or more also matches as the start of a longer one).",
    ),
    updated_since: Annotated[
        datetime | None, Query(description="Only those active at or after this instant.")
    ] = None,
    snoozed: Annotated[
        Snoozed,
        Query(
            description="Snoozed conversations are out of the lists until they wake: `only` them, "
            "or `include` them."
        ),
    ] = Snoozed.exclude,
) -> InboxQuery:
    return InboxQuery(
        states=tuple(s.value for s in state or ()),
        channel=channel,
        team=team,
        assignee=assignee,
        label=label,
        language=language.value if language else None,
        search=search,
        updated_since=updated_since,
        snoozed=snoozed.value,
    )


InboxFilters = Annotated[InboxQuery, Depends(inbox_filters)]


def _row_out(item: inbox.InboxItem, due: list[SlaDueOut]) -> InboxRowOut:
    row, team, assignee = item.row, item.team, item.assignee
    last = row.last_message
    return InboxRowOut(
        **ConversationPublic.model_validate(row.conversation).model_dump(),
        contact_name=row.contact_name,
        team=TeamRef(id=team.id, slug=team.slug, name=team.name) if team else None,
        assignee=PersonRef(id=assignee.id, name=assignee.name, email=assignee.email) if assignee else None,
        last_message=LastMessageOut(author=last.author, preview=last.preview, at=last.at) if last else None,
        unanswered=row.unanswered,
        labels=[LabelPublic.model_validate(label) for label in row.labels],
        sla=due,
    )


VIEW = (
    "`mine` (assigned to you), `unassigned` (waiting for a person, nobody assigned), `my_teams` "
    "(your teams' queues), `all`. `mine` and `my_teams` need a personal key."
)


@queue_router.get("/conversations", response_model=Page[InboxRowOut], summary="List conversations (inbox)")
async def list_conversations(
    tenant: ViewerTenant,
    filters: InboxFilters,
    view: Annotated[inbox.View, Query(description=VIEW)] = inbox.View.all,
    cursor: str | None = Query(None, max_length=500, description="The previous page's `next_cursor`."),
    limit: int = Query(50, ge=1, le=200),
) -> Page[InboxRowOut]:
    """Most recent activity first (a message or state change moves a conversation to the
    top), one page at a time; each row with its contact's name, team, assignee, last message,
    unanswered customer messages and labels."""
    async with tenant.transaction() as session:
        items, next_cursor = await inbox.list_inbox(
            session, tenant.principal, replace(filters, view=view), cursor=cursor, limit=limit
        )
        ids = [item.row.conversation.id for item in items]
        due = await conversations.sla_due(session, ids, tenant.runtime.clock())
        return Page[InboxRowOut](
            items=[_row_out(item, due.get(item.row.conversation.id, [])) for item in items],
            next_cursor=next_cursor,
        )


@queue_router.get("/conversations/counts", response_model=InboxCounts, summary="How many in each inbox view")
async def count_conversations(tenant: ViewerTenant, filters: InboxFilters) -> InboxCounts:
    """Each view's conversations under the same filters as the list, counted up to `cap`
    (1000): a count that reached it is `capped`, to show as "1,000+"."""
    async with tenant.transaction() as session:
        counts = await inbox.count_views(session, tenant.principal, filters)

    def out(count: Count | None) -> ViewCount | None:
        return ViewCount(count=count.count, capped=count.capped) if count else None

    return InboxCounts.model_validate(
        {"cap": inbox.COUNT_CAP, **{view.value: out(count) for view, count in counts.items()}}
    )


routes = APIRouter()  # every route of the human side, as the app includes them
routes.include_router(router)
routes.include_router(queue_router)
routes.include_router(actions_api.routes)  # snoozing and canned responses
