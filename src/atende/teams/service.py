"""The human side: teams and their members, agents' availability, the company's business
hours (with holidays and closed dates imported from a calendar), its handoff rules, and the
queue of conversations waiting for a person.

A domain of its own above ``tenancy`` (companies, users, roles, keys, scoping), which it
reads, and above ``conversations``, whose queue it reads: what later reads conversations per
team or per agent (SLA, assignment by load, CSAT per agent) sits here, and ``tenancy`` stays
the small base every domain stands on. The route handlers (``teams.api``, and the dashboard
next) call these functions and only parse and shape around them.

A team may have hours of its own (``teams.hours``), else the company's apply. The stored
sections of the company's settings are read through ``teams.settings``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import anyio.to_process
from anyio import BrokenWorkerProcess
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.conversations import service as conversations
from atende.conversations.models import Conversation
from atende.db.scope import get_or_404
from atende.errors import Conflict, Forbidden, InvalidInput, NotFound
from atende.hours import DAYS, InvalidSchedule, Schedule, business_seconds, next_day_opening, parse_schedule
from atende.hours.ics import Imported, closures_from_ics
from atende.hours.schedule import check_timezone
from atende.jobs.queue import JobQueue
from atende.teams.models import Availability, Team, TeamMember
from atende.teams.settings import (
    HandoffSettings,
    company_schedule,
    handoff_settings,
    schedule_of,
    stored_hours,
)
from atende.tenancy.models import Company, Membership, Role, User
from atende.tenancy.service import AGENT_ROLES, Principal, get_company, slugify

ICS_YEARS_AHEAD = 2  # closures imported from a calendar: from today to this many years on


def invalid(error: InvalidSchedule, prefix: str = "") -> InvalidInput:
    """The API error for a schedule that cannot be, naming the field."""
    field = f"{prefix}.{error.field}" if prefix else error.field
    return InvalidInput(f"{field}: {error.message}", field=field)


async def save_company_hours(
    session: AsyncSession, company_id: uuid.UUID, hours: dict[str, Any] | None
) -> None:
    """Replace the company's hours (``None``: always open). Validated before anything is
    written, so a rejected schedule leaves the stored one as it was."""
    if hours is not None:
        try:
            parse_schedule(hours)
        except InvalidSchedule as exc:
            raise invalid(exc) from None
    company = await get_company(session, str(company_id), for_update=True)
    _record_hours(session, company_id, stored_hours(company), hours)
    settings = dict(company.settings or {})
    if hours is None:
        settings.pop("hours", None)
    else:
        settings["hours"] = hours
    company.settings = settings


async def company_hours(session: AsyncSession, company_id: uuid.UUID) -> dict[str, Any] | None:
    """The company's business hours as stored; ``None``: always open."""
    return stored_hours(await get_company(session, str(company_id)))


def _stored_hours(company: Company) -> dict[str, Any]:
    current = stored_hours(company)
    if not current:
        raise InvalidInput(
            "hours: set the business hours (PUT /v1/company/hours) before importing", field="hours"
        )
    return current


async def ics_period(session: AsyncSession, company_id: uuid.UUID, now: datetime) -> tuple[date, date]:
    """The dates a calendar import covers: from today (in the company's timezone) to
    ``ICS_YEARS_AHEAD`` years on. ``InvalidInput`` on ``hours`` when no hours are set."""
    current = _stored_hours(await get_company(session, str(company_id)))
    today = now.astimezone(ZoneInfo(current["timezone"])).date()
    return today, today + timedelta(days=366 * ICS_YEARS_AHEAD)


async def read_calendar(data: bytes, first: date, last: date, *, seconds: float) -> Imported:
    """``closures_from_ics`` in a worker process, outside any transaction: it is CPU work a
    hostile file can make long, and one step of it (dateutil searching a rule that never
    matches up to the year 9999) cannot be interrupted, so the process is killed when it has
    not answered within its own budget and a second more. The server's event loop (every
    company's requests, the health probes) never waits for it."""
    read = partial(closures_from_ics, seconds=seconds)
    try:
        with anyio.fail_after(seconds + 1):
            return await anyio.to_process.run_sync(read, data, first, last, cancellable=True)
    except InvalidSchedule as exc:
        raise invalid(exc) from None
    except (TimeoutError, BrokenWorkerProcess):
        raise InvalidInput(
            f"ics: the calendar takes more than {seconds:g} s to read (ATENDE_ICS_IMPORT_TIMEOUT_SECONDS); "
            "export only the holidays (all-day events), without rules that repeat many times a day "
            "or never match",
            field="ics",
        ) from None


async def store_closures(session: AsyncSession, company_id: uuid.UUID, imported: Imported) -> dict[str, Any]:
    """Replace the dates imported from a calendar before with ``imported``'s; dates entered
    by hand stay. Returns the stored hours."""
    company = await get_company(session, str(company_id), for_update=True)
    current = _stored_hours(company)
    kept = [d for d in current.get("closed_dates", []) if d.get("source") != "ics"]
    added = [
        {"date": day.isoformat(), "name": name, "source": "ics"}
        for day, name in sorted(imported.closed.items())
    ]
    stored = {**current, "closed_dates": kept + added}
    try:
        parse_schedule(stored)
    except InvalidSchedule as exc:
        raise invalid(exc) from None
    _record_hours(session, company_id, current, stored)
    company.settings = {**(company.settings or {}), "hours": stored}
    return stored


ROUND_THE_CLOCK = [{"start": "00:00", "end": "24:00"}]


async def set_company_timezone(session: AsyncSession, company_id: uuid.UUID, timezone: str) -> dict[str, Any]:
    """Move the company's hours to ``timezone`` (an IANA name), the zone its times are shown
    in. A company without hours (always open) gets hours open round the clock in that zone:
    still always open, and its times shown in its zone. Returns the stored hours."""
    try:
        check_timezone(timezone)
    except InvalidSchedule as exc:
        raise invalid(exc) from None
    company = await get_company(session, str(company_id), for_update=True)
    current = stored_hours(company) or {"weekly": dict.fromkeys(DAYS, ROUND_THE_CLOCK)}
    stored = {**current, "timezone": timezone}
    _record_hours(session, company_id, stored_hours(company), stored)
    company.settings = {**(company.settings or {}), "hours": stored}
    return stored


async def edit_company_hours(
    session: AsyncSession, company_id: uuid.UUID, edit: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """Apply ``edit`` to the stored hours (read under a lock: two people adding closed dates
    at once both keep theirs) and store the result, validated whole: a rejected edit leaves
    the stored hours as they were. ``InvalidInput`` on ``hours`` when none are set."""
    company = await get_company(session, str(company_id), for_update=True)
    current = stored_hours(company)
    if not current:
        raise InvalidInput(
            "hours: set the business hours (PUT /v1/company/hours) before their holidays and dates",
            field="hours",
        )
    stored = edit(dict(current))
    try:
        parse_schedule(stored)
    except InvalidSchedule as exc:
        raise invalid(exc) from None
    _record_hours(session, company_id, current, stored)
    company.settings = {**(company.settings or {}), "hours": stored}
    return stored


HOLIDAY_PARTS = frozenset({"holidays", "closed_dates", "special_hours"})


def _record_hours(
    session: AsyncSession,
    company_id: uuid.UUID,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> None:
    """The audit log's line for changed hours: which parts changed (holidays and dates, or
    the weekly hours and timezone), not the schedule itself."""
    fields = audit.changed_fields(before or {}, after or {})
    if fields:
        action = "settings.holidays_changed" if set(fields) <= HOLIDAY_PARTS else "settings.hours_changed"
        audit.record(session, action, ("company", company_id), {"fields": fields})


def with_closed_date(hours: dict[str, Any], day: date, name: str) -> dict[str, Any]:
    """The hours with ``day`` closed (entered by hand: a calendar import keeps it); a date
    closed already is renamed."""
    others = [d for d in hours.get("closed_dates", []) if d.get("date") != day.isoformat()]
    added = {"date": day.isoformat(), "name": name.strip() or "closed"}
    return {**hours, "closed_dates": sorted([*others, added], key=lambda d: str(d.get("date")))}


def without_closed_date(hours: dict[str, Any], day: date) -> dict[str, Any]:
    kept = [d for d in hours.get("closed_dates", []) if d.get("date") != day.isoformat()]
    if len(kept) == len(hours.get("closed_dates", [])):
        raise NotFound(f"date: {day} is not a closed date")
    return {**hours, "closed_dates": kept}


def with_special_hours(hours: dict[str, Any], day: date, intervals: list[dict[str, Any]]) -> dict[str, Any]:
    """The hours with ``intervals`` on ``day`` instead of its usual ones (``[]``: closed);
    they replace the date's special hours set before."""
    others = [d for d in hours.get("special_hours", []) if d.get("date") != day.isoformat()]
    added = {"date": day.isoformat(), "intervals": intervals}
    return {**hours, "special_hours": sorted([*others, added], key=lambda d: str(d.get("date")))}


def without_special_hours(hours: dict[str, Any], day: date) -> dict[str, Any]:
    kept = [d for d in hours.get("special_hours", []) if d.get("date") != day.isoformat()]
    if len(kept) == len(hours.get("special_hours", [])):
        raise NotFound(f"date: {day} has no special hours")
    return {**hours, "special_hours": kept}


def with_holidays(hours: dict[str, Any], calendar: dict[str, Any] | None) -> dict[str, Any]:
    """The hours closed on ``calendar``'s public holidays (``None``: on none)."""
    if calendar is None:
        return {key: value for key, value in hours.items() if key != "holidays"}
    return {**hours, "holidays": calendar}


def with_weekly(hours: dict[str, Any] | None, timezone: str, weekly: dict[str, Any]) -> dict[str, Any]:
    """The hours with a new weekly pattern in ``timezone``, their holidays and dates kept."""
    return {**(hours or {}), "timezone": timezone, "weekly": weekly}


async def company_handoff(session: AsyncSession, company_id: uuid.UUID) -> HandoffSettings:
    return handoff_settings(await get_company(session, str(company_id)))


async def update_handoff_settings(
    session: AsyncSession, company_id: uuid.UUID, changes: dict[str, Any]
) -> HandoffSettings:
    """Change the handoff settings named in ``changes``; the others keep their stored values
    (a client that sends only the flag it means to turn on must not lose the company's
    rules). ``None`` clears a setting. The teams named by the changes must exist. Returns
    the settings as stored."""
    for i, rule in enumerate(changes.get("rules") or []):
        if rule.get("team"):
            await get_team(session, rule["team"], field=f"rules[{i}].team")
    if changes.get("team"):
        await get_team(session, changes["team"], field="team")
    company = await get_company(session, str(company_id), for_update=True)  # no lost update
    before = dict((company.settings or {}).get("handoff") or {})
    merged = {**before, **changes}
    stored = {key: value for key, value in merged.items() if value is not None}
    if fields := audit.changed_fields(before, stored):
        audit.record(session, "settings.handoff_changed", ("company", company_id), {"fields": fields})
    company.settings = {**(company.settings or {}), "handoff": stored}
    return handoff_settings(company)


# teams

TEAM_SLUG = re.compile(r"[a-z0-9-]{1,60}")


async def list_teams(session: AsyncSession) -> list[tuple[Team, list[uuid.UUID]]]:
    teams = list(await session.scalars(select(Team).order_by(Team.name)))
    members: dict[uuid.UUID, list[uuid.UUID]] = {t.id: [] for t in teams}
    for team_id, user_id in await session.execute(select(TeamMember.team_id, TeamMember.user_id)):
        members.setdefault(team_id, []).append(user_id)
    return [(t, members[t.id]) for t in teams]


async def get_team(session: AsyncSession, ref: str, *, field: str = "team") -> Team:
    """A team of the session's company by slug or id; ``InvalidInput`` naming ``field`` when
    there is none (a setting or request that names a team must name a real one)."""
    stmt = select(Team)
    try:
        stmt = stmt.where(Team.id == uuid.UUID(ref))
    except ValueError:
        stmt = stmt.where(Team.slug == ref)
    team = await session.scalar(stmt)
    if team is None:
        raise InvalidInput(f"{field}: there is no team '{ref}'", field=field)
    return team


async def save_team(
    session: AsyncSession,
    *,
    team: Team | None,
    name: str,
    slug: str,
    hours: dict[str, Any] | None,
    members: list[uuid.UUID],
) -> Team:
    """Create (``team`` None) or replace a team: name, hours and members (company members)."""
    if hours is not None:
        try:
            parse_schedule(hours)
        except InvalidSchedule as exc:
            raise invalid(exc, "hours") from None
    known = set(await session.scalars(select(Membership.user_id).where(Membership.user_id.in_(members))))
    for i, user_id in enumerate(members):
        if user_id not in known:
            raise InvalidInput(
                f"members[{i}]: {user_id} is not a member of this company", field=f"members[{i}]"
            )
    taken = Conflict(f"slug: a team '{slug}' already exists", field="slug")
    clash = await session.scalar(select(Team.id).where(Team.slug == slug))
    if clash is not None and (team is None or clash != team.id):
        raise taken
    action = "team.created" if team is None else "team.changed"
    if team is None:
        team = Team(name=name, slug=slug)
        session.add(team)
    team.name, team.slug, team.hours = name, slug, hours
    try:
        async with session.begin_nested():
            await session.flush()  # a new team gets its id
    except IntegrityError:
        # the slug was taken by a request that committed after the check above (two at once)
        raise taken from None
    await session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    for user_id in dict.fromkeys(members):
        session.add(TeamMember(team_id=team.id, user_id=user_id))
    await session.flush()
    audit.record(session, action, ("team", team.id), {"name": name, "members": len(set(members))})
    return team


async def put_team(
    session: AsyncSession,
    ref: str | None,
    *,
    name: str,
    slug: str | None,
    hours: dict[str, Any] | None,
    members: list[uuid.UUID],
) -> tuple[Team, list[uuid.UUID]]:
    """Create (``ref`` None) or replace the team ``ref`` names (slug or id). Without a slug a
    team keeps its own, and a new one takes its name's. Returns the team and its members as
    stored (each once, in the order sent)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("name: give the team a name of 1 to 200 characters", field="name")
    if slug is not None and not TEAM_SLUG.fullmatch(slug):
        raise InvalidInput("slug: 1 to 60 lowercase letters, digits and hyphens", field="slug")
    team = await get_team(session, ref) if ref else None
    slug = slug or (team.slug if team is not None else slugify(name, f"team-{uuid.uuid4().hex[:6]}"))
    saved = await save_team(session, team=team, name=name, slug=slug, hours=hours, members=members)
    return saved, list(dict.fromkeys(members))


async def team_by_id(session: AsyncSession, team_id: uuid.UUID) -> Team:
    """A team of the session's company by id (a page's address): ``NotFound`` otherwise,
    another company's included."""
    return await get_or_404(session, Team, team_id, "team")


async def rename_team(session: AsyncSession, team_id: uuid.UUID, *, name: str, slug: str | None) -> Team:
    """A new name (and slug; ``None``: kept); its hours and members stay."""
    team = await team_by_id(session, team_id)
    members = list(await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team.id)))
    saved, _members = await put_team(
        session, str(team.id), name=name, slug=slug, hours=team.hours, members=members
    )
    return saved


async def delete_team(session: AsyncSession, ref: str) -> None:
    """Delete a team (slug or id); its conversations join the company queue."""
    team = await get_team(session, ref)
    audit.record(session, "team.deleted", ("team", team.id), {"name": team.name})
    await session.delete(team)
    await session.flush()


async def add_team_member(session: AsyncSession, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Put an agent of the company in the team (already there: nothing changes). Someone
    who does not answer conversations (a viewer) is refused; another company's person is
    ``NotFound``."""
    team = await team_by_id(session, team_id)
    member = await get_member(session, user_id)
    if member.role not in AGENT_ROLES:
        raise InvalidInput(
            f"{user_id} is a {member.role}: only agents, admins and owners join teams", field="user_id"
        )
    known = await session.scalar(
        select(TeamMember.user_id).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)
    )
    if known is None:
        session.add(TeamMember(team_id=team.id, user_id=user_id))
        audit.record(session, "team.member_added", ("user", user_id), {"team": team.name})
        await session.flush()


async def remove_team_member(session: AsyncSession, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Take a person out of the team (not in it: nothing changes; not of the company:
    ``NotFound``)."""
    team = await team_by_id(session, team_id)
    await get_member(session, user_id)
    removed = await session.execute(
        delete(TeamMember)
        .where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)
        .returning(TeamMember.user_id)
    )
    if removed.first() is not None:
        audit.record(session, "team.member_removed", ("user", user_id), {"team": team.name})


async def team_schedules(
    session: AsyncSession, company: Company, team_ids: Iterable[uuid.UUID | None]
) -> dict[uuid.UUID | None, Schedule]:
    """The schedule each of these teams works to (its own hours, else the company's); the key
    ``None`` is the company's own."""
    schedules: dict[uuid.UUID | None, Schedule] = {None: company_schedule(company)}
    wanted = {t for t in team_ids if t is not None}
    if wanted:
        rows = await session.execute(select(Team.id, Team.hours).where(Team.id.in_(wanted)))
        for team_id, stored in rows:
            schedules[team_id] = schedule_of(stored) if stored else schedules[None]
    return schedules


# agents and their availability


async def list_agents(session: AsyncSession) -> list[Membership]:
    return list(
        await session.scalars(
            select(Membership).where(Membership.role.in_(AGENT_ROLES)).order_by(Membership.created_at)
        )
    )


async def get_member(session: AsyncSession, user_id: uuid.UUID) -> Membership:
    member = await session.scalar(select(Membership).where(Membership.user_id == user_id))
    if member is None:
        raise NotFound(f"no member {user_id} in this company")
    return member


def availability_target(principal: Principal, agent: str) -> uuid.UUID:
    """The member whose availability ``principal`` asks to set: ``agent`` is a user id, or
    ``me`` (the person of a personal key). The rule: agents set their own; admins (and
    owners) anyone's. ``InvalidInput`` for a ref that is neither, ``Forbidden`` for another's
    without the admin role."""
    if agent == "me":
        user_id = principal.me()
    else:
        try:
            user_id = uuid.UUID(agent)
        except ValueError:
            raise InvalidInput(f"'{agent}' is not a user id or 'me'", field="agent") from None
    if user_id != principal.user_id and not principal.role.allows(Role.admin):
        raise Forbidden("an agent sets their own availability; others' need the admin role")
    return user_id


async def set_availability(
    session: AsyncSession, user_id: uuid.UUID, availability: Availability, now: datetime
) -> Membership:
    member = await get_member(session, user_id)
    if not Role(member.role).allows(Role.agent):
        raise InvalidInput(f"{user_id} is a {member.role}, not an agent", field="user_id")
    member.availability = availability.value
    member.availability_changed_at = now
    return member


@dataclass(frozen=True)
class Agent:
    """An agent as the API and the dashboard show one: membership, person and team slugs."""

    member: Membership
    user: User
    teams: list[str]


async def agents(session: AsyncSession) -> list[Agent]:
    """The company's agents (members whose role answers conversations), oldest first, each
    with the teams they belong to."""
    members = await list_agents(session)
    users = {
        u.id: u for u in await session.scalars(select(User).where(User.id.in_([m.user_id for m in members])))
    }
    teams: dict[uuid.UUID, list[str]] = {}
    for team, team_members in await list_teams(session):
        for user_id in team_members:
            teams.setdefault(user_id, []).append(team.slug)
    return [Agent(m, users[m.user_id], teams.get(m.user_id, [])) for m in members]


async def change_availability(
    session: AsyncSession, principal: Principal, agent: str, availability: Availability, now: datetime
) -> Agent:
    """Set an agent's availability as ``principal`` (``availability_target``'s rule) and
    return the agent with their teams."""
    user_id = availability_target(principal, agent)
    member = await set_availability(session, user_id, availability, now)
    user = await session.get_one(User, user_id)
    teams = await session.scalars(
        select(Team.slug).join(TeamMember, TeamMember.team_id == Team.id).where(TeamMember.user_id == user_id)
    )
    return Agent(member, user, list(teams))


# the queue


async def waiting_queue(
    session: AsyncSession, company_id: uuid.UUID, *, team: str | None, limit: int, now: datetime
) -> list[tuple[Conversation, float]]:
    """Conversations waiting for a person (of ``team``, a slug or id, or all), tickets first,
    each with the business time it has waited so far by its team's hours, else the
    company's."""
    team_id = (await get_team(session, team)).id if team else None
    rows = await conversations.list_queue(session, team_id=team_id, limit=limit)
    company = await get_company(session, str(company_id))
    schedules = await team_schedules(session, company, {c.team_id for c in rows})
    return [
        (
            c,
            # a clock behind the stored instant (another server's) counts no time
            business_seconds(
                schedules.get(c.team_id, schedules[None]), min(c.waiting_since or now, now), now
            ),
        )
        for c in rows
    ]


@dataclass(frozen=True)
class Staffing:
    """Who could answer: the agents (of a team, or of the company) and how many are online.
    A company with no agents at all does not track availability (its people answer through
    the API): it counts as staffed."""

    agents: int
    online: int

    @property
    def staffed(self) -> bool:
        return self.agents == 0 or self.online > 0


async def staffing(session: AsyncSession, team_id: uuid.UUID | None) -> Staffing:
    stmt = select(
        func.count(), func.count().filter(Membership.availability == Availability.online.value)
    ).where(Membership.role.in_(AGENT_ROLES))
    if team_id is not None:
        stmt = stmt.join(TeamMember, TeamMember.user_id == Membership.user_id).where(
            TeamMember.team_id == team_id
        )
    agents, online = (await session.execute(stmt)).one()
    return Staffing(int(agents), int(online))


# snoozing by the team's hours

NEXT_BUSINESS_DAY = "next_business_day"


async def next_business_day(
    session: AsyncSession, company_id: uuid.UUID, team_id: uuid.UUID | None, now: datetime
) -> datetime:
    """When the next business day opens for the team (its hours, else the company's):
    ``atende.hours.next_day_opening``. ``InvalidInput`` when no hours are set (always open: no
    business day to wait for) or they never open again."""
    own = await session.scalar(select(Team.hours).where(Team.id == team_id)) if team_id else None
    stored = own or stored_hours(await get_company(session, str(company_id)))
    if not stored:
        raise InvalidInput(
            "no business hours are set, so there is no next business day: snooze until a time",
            field="until",
        )
    opening = next_day_opening(schedule_of(stored), now)
    if opening is None:
        raise InvalidInput("the business hours never open again: snooze until a time", field="until")
    return opening


async def snooze(
    session: AsyncSession,
    jobs: JobQueue,
    company_id: uuid.UUID,
    conversation_id: uuid.UUID,
    until: datetime | str,
    *,
    now: datetime,
    actor_type: str,
    actor_id: str | None,
) -> Conversation:
    """Snooze the conversation until ``until``: an instant, or ``NEXT_BUSINESS_DAY`` (the
    opening of the next business day of its team, else of the company); the rules are
    ``conversations.service.snooze``'s."""
    if until == NEXT_BUSINESS_DAY:
        conversation = await conversations.get_conversation(session, conversation_id)  # 404 first
        until = await next_business_day(session, company_id, conversation.team_id, now)
    elif isinstance(until, str):
        raise InvalidInput(f"until must be an instant or '{NEXT_BUSINESS_DAY}'", field="until")
    return await conversations.snooze(
        session, jobs, conversation_id, until, now=now, actor_type=actor_type, actor_id=actor_id
    )


async def send_to_team(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    team: str,
    *,
    actor_type: str,
    actor_id: str | None,
    now: datetime,
) -> Conversation:
    """Give the conversation to ``team`` (a slug or id): it waits in that team's queue, nobody
    assigned, for one of its people to take it (``conversations.service.queue_for_team``)."""
    await conversations.get_conversation(session, conversation_id)  # 404 before the team's 422
    found = await get_team(session, team)
    return await conversations.queue_for_team(
        session, jobs, conversation_id, found.id, actor_type=actor_type, actor_id=actor_id, now=now
    )
