"""``/v1`` routes of the human side: the company's business hours (and holidays imported from
an iCalendar file or URL), its handoff rules, its teams, its agents' availability, and the
queue of conversations waiting for a person.

Handlers parse, call one function of ``teams.service`` and shape its answer; the dashboard
calls the same functions. The routes, bodies and errors are those they were under
``tenancy`` (``/v1/queue`` keeps its ``conversations`` tag).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from atende.conversations.schemas import ConversationPublic, QueueItem
from atende.errors import InvalidInput
from atende.hours import is_open, next_close, next_open
from atende.netguard import fetch_limited
from atende.teams import actions_api, service
from atende.teams.models import Availability
from atende.teams.schemas import (
    AgentOut,
    AvailabilityIn,
    HandoffIn,
    HoursIn,
    HoursOut,
    IcsImportOut,
    TeamIn,
    TeamOut,
)
from atende.teams.settings import HandoffSettings, schedule_of
from atende.tenancy.deps import AdminTenant, AgentTenant, Tenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["hours and handoff"])
queue_router = APIRouter(prefix="/v1", tags=["conversations"])

ICS_TYPES = {"text/calendar": "ics", "text/plain": "ics", "application/octet-stream": "ics"}


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
    settings = tenant.runtime.settings
    now = tenant.runtime.clock()
    async with tenant.transaction() as session:  # before fetching: no hours, nothing to import into
        first, last = await service.ics_period(session, tenant.principal.company_id, now)
    if url:
        fetched = await fetch_limited(
            url,
            kinds=ICS_TYPES,
            max_bytes=min(settings.max_document_bytes, settings.max_body_bytes),  # as if uploaded
            timeout=settings.ingest_fetch_timeout_seconds,
            allow_private=settings.ingest_allow_private_networks,
            what="calendar",
            setting="ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS",
        )
        data = fetched.data
    else:
        data = await request.body()
    if not data.strip():
        raise InvalidInput("ics: send the calendar as the request body, or a url", field="ics")
    # read outside any transaction (no row locked, no connection held while it runs)
    imported = await service.read_calendar(data, first, last, seconds=settings.ics_import_timeout_seconds)
    async with tenant.transaction() as session:
        stored = await service.store_closures(session, tenant.principal.company_id, imported)
    out = _hours_out(stored, now)
    return IcsImportOut(**out.model_dump(), imported=len(imported.closed), skipped=imported.skipped[:100])


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
        await session.delete(await service.get_team(session, team))


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


routes = APIRouter()  # every route of the human side, as the app includes them
routes.include_router(router)
routes.include_router(queue_router)
routes.include_router(actions_api.routes)  # snoozing and canned responses
