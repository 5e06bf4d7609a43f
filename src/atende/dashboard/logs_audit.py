"""The audit log page (owners and admins): who did what in the company, and when, newest
first, filtered by person, action (or area) and dates, fifty at a time; and the same as CSV.

The rows are ``atende.audit``'s, recorded by the services in the transaction of each change;
each is said as a sentence in the reader's language (``audit_wording``). Dates are read in
the company's timezone (its business hours', else UTC), as the times are shown."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.dates import format_datetime
from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.audit.models import AuditEvent
from atende.dashboard import i18n
from atende.dashboard.audit_wording import ACTIONS, API_KEY, AREAS, SOMEONE, SYSTEM, describe
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import company_zone
from atende.dashboard.web import ROLE_NAMES, PageRoute, csv_cell, gettext, render
from atende.teams import service as teams
from atende.tenancy import accounts
from atende.tenancy.models import ApiKey, User

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE = "/app/logs/audit"
CSV_ROWS = 10_000  # an export's most rows: narrow the dates for more
FILTER_PROBLEMS = {
    "user": N_("Choose a person from the list."),
    "action": N_("Choose an action from the list."),
    "since": N_("Type the first day as a date, such as 2026-03-01."),
    "until": N_("Type the last day as a date, such as 2026-03-31."),
}
Text = Annotated[str, Query(max_length=100)]


@dataclass(frozen=True)
class Filters:
    """The page's filters as the address gives them (strings: shown back as typed)."""

    user: str = ""
    action: str = ""
    since: str = ""
    until: str = ""

    def url(self, path: str = PAGE, **changes: str) -> str:
        values = {**self.__dict__, **changes}
        query = urlencode({k: v for k, v in values.items() if v})
        return path + (f"?{query}" if query else "")

    def parsed(self, zone: tzinfo) -> tuple[audit.Filters, list[str]]:
        """The service's filters, and the names of those that could not be read (left out)."""
        wrong: list[str] = []
        user_id = None
        if self.user:
            try:
                user_id = uuid.UUID(self.user)
            except ValueError:
                wrong.append("user")
        action = self.action if self.action in ACTIONS or self.action in AREAS else None
        if self.action and action is None:
            wrong.append("action")
        since = _day(self.since, zone, 0, "since", wrong)
        until = _day(self.until, zone, 1, "until", wrong)  # the last day, whole
        return audit.Filters(user_id=user_id, action=action, since=since, until=until), wrong


def _day(value: str, zone: tzinfo, after: int, name: str, wrong: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value) + timedelta(days=after)
    except (ValueError, OverflowError):
        wrong.append(name)
        return None
    return datetime.combine(day, time(), tzinfo=zone)


@dataclass(frozen=True)
class Row:
    event: AuditEvent
    actor: str
    sentence: str
    ip: str


async def _names(
    session: AsyncSession, events: Sequence[AuditEvent]
) -> tuple[dict[str, str], dict[str, str]]:
    """People's names (or e-mails) and API keys' names, by id, of these events."""
    user_ids = {e.actor_user_id for e in events if e.actor_user_id}
    user_ids |= {uuid.UUID(e.target_id) for e in events if e.target_type == "user" and e.target_id}
    user_ids |= {uuid.UUID(str(e.details["assignee"])) for e in events if (e.details or {}).get("assignee")}
    key_ids = {e.actor_key_id for e in events if e.actor_key_id}
    people: dict[str, str] = {}
    if user_ids:
        for ident, name, email in await session.execute(
            select(User.id, User.name, User.email).where(User.id.in_(user_ids))
        ):
            people[str(ident)] = name or email
    keys: dict[str, str] = {}
    if key_ids:
        for ident, name in await session.execute(
            select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(key_ids))
        ):
            keys[str(ident)] = name
    return people, keys


async def _rows(
    member: Member, session: AsyncSession, events: Sequence[AuditEvent], zone: tzinfo
) -> list[Row]:
    _ = gettext(member.visitor)
    locale = i18n.locale(member.visitor.language)
    people, keys = await _names(session, events)

    def when(value: str) -> str:
        try:
            return format_datetime(datetime.fromisoformat(value), "short", tzinfo=zone, locale=locale)
        except ValueError:
            return value

    rows = []
    for event in events:
        person = people.get(str(event.actor_user_id), "-") if event.actor_user_id else None
        if event.actor_key_id:
            key = _(API_KEY) % {"name": keys.get(str(event.actor_key_id), "-")}
            actor = f"{person} ({key})" if person else key
        else:
            actor = person or _(SYSTEM)
        if event.action == "auth.sign_in_failed":  # recorded under the account tried, not by its owner
            actor = _(SOMEONE)
        target = people.get(str(event.target_id), "-") if event.target_type == "user" else "-"
        sentence = describe(
            event.action,
            event.details or {},
            actor=actor,
            target=target,
            names=people,
            gettext=_,
            role_names=ROLE_NAMES,
            when=when,
        )
        rows.append(Row(event, actor, sentence, str(event.ip) if event.ip is not None else ""))
    return rows


def _problems(member: Member, wrong: list[str]) -> str | None:
    if not wrong:
        return None
    _ = gettext(member.visitor)
    return " ".join(_(FILTER_PROBLEMS[name]) for name in wrong)


@router.get("/logs/audit")
async def audit_page(
    member: AdminPage,
    user: Text = "",
    action: Text = "",
    since: Text = "",
    until: Text = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    filters = Filters(user=user, action=action, since=since, until=until)
    principal = member.tenant.principal
    async with member.tenant.transaction() as session:
        zone = company_zone(await teams.company_hours(session, principal.company_id))
        query, wrong = filters.parsed(zone)
        events, next_cursor = await audit.list_events(session, query, cursor=cursor or None)
        rows = await _rows(member, session, events, zone)
        members = await accounts.list_members(session)
    return render(
        member.visitor,
        "logs_audit.html",
        status=422 if wrong else 200,
        rows=rows,
        zone=zone,
        filters=filters,
        members=members,
        areas=AREAS,
        actions=ACTIONS,
        error=_problems(member, wrong),
        first_url=filters.url() if cursor else None,
        next_url=filters.url(cursor=next_cursor) if next_cursor else None,
        csv_url=filters.url(PAGE + ".csv"),
    )


@router.get("/logs/audit.csv")
async def audit_csv(
    member: AdminPage, user: Text = "", action: Text = "", since: Text = "", until: Text = ""
) -> Response:
    """The filtered log as CSV (UTF-8, newest first, at most ``CSV_ROWS`` rows)."""
    filters = Filters(user=user, action=action, since=since, until=until)
    principal = member.tenant.principal
    _ = gettext(member.visitor)
    async with member.tenant.transaction() as session:
        zone = company_zone(await teams.company_hours(session, principal.company_id))
        query, wrong = filters.parsed(zone)
        if wrong:
            return Response(_problems(member, wrong), status_code=422, media_type="text/plain; charset=utf-8")
        events: list[AuditEvent] = []
        cursor = None
        while len(events) < CSV_ROWS:
            page, cursor = await audit.list_events(session, query, cursor=cursor, limit=audit.MAX_PAGE_SIZE)
            events.extend(page)
            if cursor is None:
                break
        rows = await _rows(member, session, events[:CSV_ROWS], zone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [_("When (UTC)"), _("Who"), _("What happened"), _("Action"), _("Target"), _("IP address")]
    )
    for row in rows:
        event = row.event
        target = f"{event.target_type}:{event.target_id}" if event.target_type else ""
        cells: list[Any] = [
            event.created_at.isoformat(),
            row.actor,
            row.sentence,
            event.action,
            target,
            row.ip,
        ]
        writer.writerow([csv_cell(str(c)) for c in cells])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )
