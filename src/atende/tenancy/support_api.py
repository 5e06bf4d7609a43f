"""``/v1`` routes of the human side: the company's business hours (and holidays imported from
an iCalendar file or URL), its handoff rules, its teams, and its agents' availability."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from atende.errors import Forbidden, InvalidInput
from atende.hours import DAYS, is_open, next_close, next_open
from atende.netguard import fetch_limited
from atende.tenancy import hours as service
from atende.tenancy.deps import AdminTenant, AgentTenant, Tenant, ViewerTenant
from atende.tenancy.models import Availability, Membership, Role, Team, TeamMember, User
from atende.tenancy.service import get_company, slugify

router = APIRouter(prefix="/v1", tags=["hours and handoff"])

CLOCK = r"^\d{2}:\d{2}$"
Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ICS_TYPES = {"text/calendar": "ics", "text/plain": "ics", "application/octet-stream": "ics"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntervalIn(_Strict):
    start: str = Field(pattern=CLOCK, examples=["08:00"])
    end: str = Field(pattern=CLOCK, examples=["18:00"], description='"24:00" ends at midnight.')
    overnight: bool = Field(default=False, description="Ends the next day (e.g. 22:00 to 06:00).")


class HolidaysIn(_Strict):
    country: str = Field(min_length=2, max_length=3, examples=["BR"])
    subdiv: str | None = Field(default=None, max_length=10, examples=["SP"])
    categories: list[str] = Field(
        default=["public"],
        max_length=7,
        description='Holiday categories of the `holidays` package; "optional" adds e.g. Carnival in BR.',
    )
    skip: list[Annotated[str, Field(max_length=200)]] = Field(
        default=[], max_length=100, description='Holidays worked anyway, by name (e.g. "Christmas Eve").'
    )


class ClosedDateIn(_Strict):
    date: date
    name: str = Field(default="closed", max_length=200)
    source: Literal["manual", "ics"] = "manual"


class SpecialHoursIn(_Strict):
    date: date
    intervals: list[IntervalIn] = Field(default=[], max_length=12, description="[] closes the day.")


EXAMPLE_HOURS: dict[str, Any] = {
    "timezone": "America/Sao_Paulo",
    "weekly": {d: [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}] for d in DAYS[:5]}
    | {"saturday": [{"start": "09:00", "end": "13:00"}]},
    "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
    "closed_dates": [{"date": "2026-12-24", "name": "Véspera de Natal"}],
    "special_hours": [{"date": "2027-02-10", "intervals": [{"start": "14:00", "end": "18:00"}]}],
}


class HoursIn(_Strict):
    """A weekly schedule in an IANA timezone; days left out are closed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_HOURS]})
    timezone: str = Field(max_length=64, examples=["America/Sao_Paulo"])
    weekly: dict[Day, list[IntervalIn]] = Field(default={})
    holidays: HolidaysIn | None = None
    closed_dates: list[ClosedDateIn] = Field(default=[], max_length=3000)
    special_hours: list[SpecialHoursIn] = Field(default=[], max_length=1000)


class HoursOut(BaseModel):
    hours: dict[str, Any] | None = Field(description="The stored schedule; null: always open.")
    open_now: bool
    next_open: datetime | None
    next_close: datetime | None


def _hours_out(stored: dict[str, Any] | None, now: datetime) -> HoursOut:
    schedule = service.schedule_of(stored)
    return HoursOut(
        hours=stored,
        open_now=is_open(schedule, now),
        next_open=next_open(schedule, now),
        next_close=next_close(schedule, now),
    )


def _stored(hours: HoursIn) -> dict[str, Any]:
    return hours.model_dump(mode="json", exclude_none=True)


async def _company_hours(tenant: Tenant) -> dict[str, Any] | None:
    async with tenant.transaction() as session:
        company = await get_company(session, str(tenant.principal.company_id))
        return (company.settings or {}).get("hours")


@router.get("/company/hours", response_model=HoursOut, summary="Business hours and whether open now")
async def get_hours(tenant: ViewerTenant) -> HoursOut:
    return _hours_out(await _company_hours(tenant), tenant.runtime.clock())


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


class IcsImportOut(HoursOut):
    imported: int = Field(description="Closed dates the calendar added (all-day events).")
    skipped: list[str] = Field(description="Events with a time of day, not imported.")


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


class RuleIn(_Strict):
    name: str = Field(min_length=1, max_length=100, examples=["legal"])
    keywords: list[Annotated[str, Field(min_length=2, max_length=100)]] = Field(
        min_length=1,
        max_length=100,
        examples=[["procon", "advogado", "processo judicial"]],
        description="Words or phrases (any language, accents and case ignored) that always go to a person.",
    )
    team: str | None = Field(default=None, max_length=80, description="The team whose queue it joins.")


class HandoffIn(_Strict):
    """The handoff settings. A `PUT` changes only the fields it sends: a field left out keeps
    its stored value (the defaults shown are those of a company that never set it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"bot_answers_while_closed": True},
                {
                    "rules": [{"name": "legal", "keywords": ["procon", "advogado"], "team": "juridico"}],
                    "team": "atendimento",
                    "bot_answers_while_closed": True,
                    "hand_off_on_repeat": True,
                },
            ]
        },
    )
    rules: list[RuleIn] = Field(
        default=[], max_length=100, description="Replaces every rule when sent; `[]` removes them all."
    )
    team: str | None = Field(
        default=None, max_length=80, description="The queue handoffs join by default; `null`: the company's."
    )
    bot_answers_while_closed: bool = Field(
        default=False,
        description="While the team is closed, the bot keeps answering what the knowledge base "
        "covers in conversations waiting for a person (those already waiting too).",
    )
    hand_off_on_repeat: bool = Field(
        default=True, description="A customer repeating a question the bot answered goes to a person."
    )


def _handoff_out(stored: dict[str, Any]) -> HandoffIn:
    return HandoffIn.model_validate({k: v for k, v in stored.items() if k in HandoffIn.model_fields})


@router.get("/company/handoff", response_model=HandoffIn, summary="Handoff rules")
async def get_handoff(tenant: ViewerTenant) -> HandoffIn:
    async with tenant.transaction() as session:
        company = await get_company(session, str(tenant.principal.company_id))
        return _handoff_out(service.handoff_settings(company))


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


class TeamIn(_Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Financeiro"])
    slug: str | None = Field(default=None, max_length=60, pattern=r"^[a-z0-9-]+$")
    hours: HoursIn | None = Field(default=None, description="The team's own hours; null: the company's.")
    members: list[uuid.UUID] = Field(default=[], max_length=500, description="User ids of company members.")


class TeamOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    hours: dict[str, Any] | None
    members: list[uuid.UUID]


@router.get("/teams", response_model=list[TeamOut], summary="List teams")
async def list_teams(tenant: ViewerTenant) -> list[TeamOut]:
    async with tenant.transaction() as session:
        return [
            TeamOut(id=t.id, name=t.name, slug=t.slug, hours=t.hours, members=members)
            for t, members in await service.list_teams(session)
        ]


async def _save_team(tenant: Tenant, team_ref: str | None, body: TeamIn) -> TeamOut:
    async with tenant.transaction() as session:
        team = await service.get_team(session, team_ref) if team_ref else None
        slug = body.slug or (
            team.slug if team is not None else slugify(body.name, f"team-{uuid.uuid4().hex[:6]}")
        )
        saved = await service.save_team(
            session,
            team=team,
            name=body.name.strip(),
            slug=slug,
            hours=_stored(body.hours) if body.hours else None,
            members=body.members,
        )
        members = list(dict.fromkeys(body.members))  # as stored
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


class AgentOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    availability: Availability
    availability_changed_at: datetime | None
    teams: list[str]


class AvailabilityIn(_Strict):
    availability: Availability


@router.get("/agents", response_model=list[AgentOut], summary="Agents and their availability")
async def list_agents(tenant: ViewerTenant) -> list[AgentOut]:
    async with tenant.transaction() as session:
        members = await service.list_agents(session)
        users = {
            u.id: u
            for u in await session.scalars(select(User).where(User.id.in_([m.user_id for m in members])))
        }
        teams: dict[uuid.UUID, list[str]] = {}
        for team, team_members in await service.list_teams(session):
            for user_id in team_members:
                teams.setdefault(user_id, []).append(team.slug)
        return [_agent_out(m, users[m.user_id], teams.get(m.user_id, [])) for m in members]


def _agent_out(member: Membership, user: User, teams: list[str]) -> AgentOut:
    return AgentOut(
        user_id=member.user_id,
        email=user.email,
        name=user.name,
        role=member.role,
        availability=Availability(member.availability),
        availability_changed_at=member.availability_changed_at,
        teams=teams,
    )


@router.put("/agents/{agent}/availability", response_model=AgentOut, summary="Set an agent's availability")
async def set_availability(
    agent: str, body: Annotated[AvailabilityIn, Body()], tenant: AgentTenant
) -> AgentOut:
    """`agent` is a user id, or `me` with a personal key (`atende keys create --user`). Agents
    set their own; admins anyone's."""
    principal = tenant.principal
    if agent == "me":
        user_id = tenant.me()
    else:
        try:
            user_id = uuid.UUID(agent)
        except ValueError:
            raise InvalidInput(f"'{agent}' is not a user id or 'me'", field="agent") from None
    if user_id != principal.user_id and not principal.role.allows(Role.admin):
        raise Forbidden("an agent sets their own availability; others' need the admin role")
    async with tenant.transaction() as session:
        member = await service.set_availability(session, user_id, body.availability, tenant.runtime.clock())
        user = await session.get_one(User, user_id)
        teams = await session.scalars(
            select(Team.slug)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(TeamMember.user_id == user_id)
        )
        return _agent_out(member, user, list(teams))
