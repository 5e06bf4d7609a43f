"""The logs viewer's events page (``/app/logs``): the company's application events at
warning level and above, newest first, filtered by level, time, kind, conversation and
words, one keyset page at a time; each failed job has a "Retry job" button; admins set how
long the events are kept. Owners and admins read their company's; a superadmin reads every
company's, or one chosen with the company filter. The same service as ``GET /v1/events``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Response
from sqlalchemy import text as sql

from atende.dashboard.auth import PageForbidden, SignedInDep, Visitor
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import company_zone
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.errors import AtendeError, Conflict, InvalidInput
from atende.observability import events
from atende.runtime import Runtime
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

EVENTS = "/app/logs"
PAGE_SIZE = 50

# each kind, said to a person
KIND_NAMES = {
    events.DELIVERY_FAILED: N_("Message not delivered"),
    events.JOB_FAILED: N_("Background job failed"),
    events.WEBHOOK_FAILED: N_("Webhook not accepted"),
    events.CHANNEL_CREDENTIALS_FAILED: N_("Channel credentials refused"),
    events.LLM_CREDENTIALS_FAILED: N_("LLM credentials refused"),
    events.LLM_CIRCUIT_CHANGED: N_("LLM circuit changed"),
}
LEVEL_NAMES = {"warning": N_("Warning"), "error": N_("Error")}
# the time ranges the filter offers: key, label, how far back (None: any time)
RANGES: dict[str, tuple[str, timedelta | None]] = {
    "": (N_("Any time"), None),
    "1h": (N_("Last hour"), timedelta(hours=1)),
    "24h": (N_("Last 24 hours"), timedelta(hours=24)),
    "7d": (N_("Last 7 days"), timedelta(days=7)),
    "30d": (N_("Last 30 days"), timedelta(days=30)),
}


@dataclass(frozen=True)
class Reader:
    """Who reads the events: an owner or admin of the chosen company (``company_id``), or a
    superadmin (every company, ``company_id`` their chosen one if any)."""

    visitor: Visitor
    company_id: uuid.UUID | None
    superadmin: bool
    admin: bool  # an owner or admin of ``company_id``: may change its retention


async def reader(current: SignedInDep) -> Reader:
    person = current.signed_in
    assert person is not None
    tenant = current.tenant()
    admin = tenant is not None and tenant.principal.role.allows(Role.admin)
    if person.is_superadmin:
        return Reader(current, tenant.principal.company_id if tenant else None, True, admin)
    if tenant is None:
        raise PageForbidden(Role.admin, no_company=True)
    if not admin:
        raise PageForbidden(Role.admin)
    return Reader(current, tenant.principal.company_id, False, True)


ReaderDep = Annotated[Reader, Depends(reader)]


@dataclass(frozen=True)
class Filters:
    """The page's filters as the form sent them (strings: shown back as typed)."""

    level: str = ""
    kind: str = ""
    range: str = ""
    conversation: str = ""
    text: str = ""
    company: str = ""  # a superadmin's: "" every company

    def url(self, **changes: str) -> str:
        values = {**self.__dict__, **changes}
        query = urlencode({k: v for k, v in values.items() if v})
        return f"{EVENTS}?{query}" if query else EVENTS


def _service_filter(reader: Reader, filters: Filters, now: datetime) -> events.EventFilter:
    """The service's filter; ``InvalidInput`` naming the field a person got wrong."""
    conversation_id = _uuid(filters.conversation, "conversation")
    company_id = _uuid(filters.company, "company") if reader.superadmin else None
    if filters.range not in RANGES:
        raise InvalidInput("unknown time range", field="range")
    back = RANGES[filters.range][1]
    return events.EventFilter(
        level=filters.level or None,
        kind=filters.kind or None,
        conversation_id=conversation_id,
        text=filters.text.strip() or None,
        since=now - back if back else None,
        company_id=company_id,
    ).checked()


def _uuid(value: str, field: str) -> uuid.UUID | None:
    if not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidInput(f"{field} is not an id", field=field) from None


# what a refused filter says, by field
FIELD_ERRORS = {
    "level": N_("Choose a level from the list."),
    "kind": N_("Choose a kind from the list."),
    "range": N_("Choose a time range from the list."),
    "conversation": N_("A conversation is named by its id, as in its address (/app/conversations/<id>)."),
    "text": N_("Type at least one word to look for."),
    "company": N_("Choose a company from the list."),
    "after": N_("That page no longer exists. Start again from the newest events."),
}


async def _page(
    reader: Reader, filters: Filters, after: str | None, *, status: int = 200, retention_error: str = ""
) -> Response:
    _ = gettext(reader.visitor)
    runtime = reader.visitor.runtime
    now = runtime.clock()
    error: tuple[str, str] | None = None
    page = events.Page([], None)
    scope = None if reader.superadmin else reader.company_id
    async with runtime.db.transaction(scope) as session:
        try:
            where = _service_filter(reader, filters, now)
            page = await events.list_events(session, where, after=after, limit=PAGE_SIZE)
        except InvalidInput as exc:
            field = exc.field or "text"
            error = (field, _(FIELD_ERRORS.get(field, N_("Check the filters."))))
            status = 422
        company = await tenancy.get_company(session, str(reader.company_id)) if reader.company_id else None
        companies = await tenancy.list_companies(session) if reader.superadmin else []
        zone = company_zone(await teams.company_hours(session, company.id) if company else None)
    failed_jobs = await _still_failed(runtime, [e for e in page.events if e.kind == events.JOB_FAILED])
    names = {c.id: c.name for c in companies}
    return render(
        reader.visitor,
        "logs.html",
        status=status,
        filters=filters,
        items=page.events,
        next_page=filters.url(after=page.next_cursor) if page.next_cursor else None,
        paged=bool(after),
        error=error,
        kind_names=KIND_NAMES,
        level_names=LEVEL_NAMES,
        ranges=RANGES,
        companies=companies,
        company_names=names,
        superadmin=reader.superadmin,
        retryable=failed_jobs,
        retention=events.retention_days(company) if company else None,
        can_set_retention=reader.admin and company is not None,
        retention_error=retention_error,
        retention_range=(events.RETENTION_MIN, events.RETENTION_MAX),
        zone=zone,
    )


async def _still_failed(runtime: Runtime, items: list[Any]) -> set[uuid.UUID]:
    """The events among ``items`` that offer "Retry job": each job still failed (not
    retried meanwhile), on its newest event only (a job that failed twice has two)."""
    newest: dict[int, uuid.UUID] = {}
    for event in items:  # newest first
        job = event.details.get("job_id")
        if isinstance(job, int) and not isinstance(job, bool):
            newest.setdefault(job, event.id)
    if not newest:
        return set()
    async with runtime.db.transaction() as session:
        rows = await session.execute(
            sql("SELECT id FROM procrastinate_jobs WHERE id = ANY(:ids) AND status = 'failed'"),
            {"ids": list(newest)},
        )
        return {newest[int(r[0])] for r in rows}


Text = Annotated[str, Query(max_length=200)]


@router.get("/logs")
async def events_page(
    reader: ReaderDep,
    level: Annotated[str, Query(max_length=10)] = "",
    kind: Annotated[str, Query(max_length=50)] = "",
    period: Annotated[str, Query(alias="range", max_length=10)] = "",
    conversation: Annotated[str, Query(max_length=100)] = "",
    text: Text = "",
    company: Annotated[str, Query(max_length=100)] = "",
    after: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    filters = Filters(level, kind, period, conversation, text, company if reader.superadmin else "")
    return await _page(reader, filters, after)


@router.post("/logs/retention")
async def save_retention(
    reader: ReaderDep, retention_days: Annotated[str, Form(max_length=10)] = ""
) -> Response:
    if not reader.admin or reader.company_id is None:
        raise PageForbidden(Role.admin)
    try:
        days = int(retention_days.strip())
    except ValueError:
        days = 0
    try:
        async with reader.visitor.runtime.db.transaction(reader.company_id) as session:
            await events.set_retention(session, reader.company_id, days)
    except AtendeError:
        _ = gettext(reader.visitor)
        said = _("Keep events between %(min)s and %(max)s days.") % {
            "min": events.RETENTION_MIN,
            "max": events.RETENTION_MAX,
        }
        return await _page(reader, Filters(), None, status=422, retention_error=said)
    return redirect(EVENTS, notice="retention_saved")


@router.post("/logs/jobs/{job_id}/retry")
async def retry_job(reader: ReaderDep, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)]) -> Response:
    """Queue a failed job again (a superadmin: any company's; else the member's company's)."""
    company = None if reader.superadmin else str(reader.company_id)
    try:
        await reader.visitor.runtime.jobs.retry_failed(job_id, company_id=company)
    except Conflict:  # retried already (another click, another admin): said, not an error page
        return redirect(EVENTS, notice="job_not_failed")
    return redirect(EVENTS, notice="job_retried")
