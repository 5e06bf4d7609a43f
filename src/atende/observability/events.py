"""Application events: what went wrong at warning level and above (a failed delivery, a
failed job, a webhook that did not answer, a refused credential, an LLM circuit that
opened), kept per company in ``app_events`` for its owners and admins (``/app/logs``,
``GET /v1/events``).

``record`` is called where the thing happens, beside its log line. It writes in a
transaction of its own (the caller's may be about to roll back: a failing job's is) and
never raises: an event that cannot be stored is logged instead, and the work goes on. The
message and the details are redacted exactly as the logs are
(``atende.observability.logging.redact``): no e-mail address, phone number or secret is
ever stored.

Each company keeps its events ``EventLog.retention_days`` (30 unless it chose another);
``prune`` (a periodic job) deletes older ones in batches, company by company, each batch a
short transaction of its own. The platform's own events (``company_id`` ``None``: the
deployment's LLM endpoint) keep the default.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

import procrastinate
import structlog
from pydantic import Field
from sqlalchemy import delete, func, literal_column, select, tuple_
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from atende.errors import InvalidInput
from atende.observability.logging import describe, redact, redact_processor
from atende.observability.models import AppEvent
from atende.runtime import Runtime
from atende.tenancy.models import Company
from atende.tenancy.settings import Section, read_section

log = structlog.get_logger(__name__)

LEVELS = ("warning", "error")
# the kinds recorded today (a filter offers these; an unknown kind is refused)
DELIVERY_FAILED = "delivery_failed"
JOB_FAILED = "job_failed"
WEBHOOK_FAILED = "webhook_failed"
CHANNEL_CREDENTIALS_FAILED = "channel_credentials_failed"
LLM_CREDENTIALS_FAILED = "llm_credentials_failed"
LLM_CIRCUIT_CHANGED = "llm_circuit_changed"
KINDS = (
    DELIVERY_FAILED,
    JOB_FAILED,
    WEBHOOK_FAILED,
    CHANNEL_CREDENTIALS_FAILED,
    LLM_CREDENTIALS_FAILED,
    LLM_CIRCUIT_CHANGED,
)
MESSAGE_MAX = 1000
PRUNE_BATCH = 5000
PAGE_MAX = 200
# the text search's configuration, written as the index ``ix_app_events_search`` writes it
_SIMPLE: ColumnElement[Any] = literal_column("'simple'::regconfig")


class EventLog(Section):
    """How long the company keeps its application events (``settings["events"]``)."""

    key: ClassVar[str | None] = "events"
    retention_days: int = Field(default=30, ge=1, le=365)


RETENTION_MIN, RETENTION_MAX = 1, 365


def redacted_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """``details`` as the logs would show them: secret-named keys hidden, every string redacted."""
    return redact_processor(None, "", dict(details or {}))


async def record(
    runtime: Runtime,
    kind: str,
    message: str,
    *,
    level: str = "warning",
    company_id: uuid.UUID | str | None = None,
    conversation_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Store one event (redacted), in its own transaction; never raises."""
    try:
        row = AppEvent(
            company_id=uuid.UUID(str(company_id)) if company_id else None,
            level=level if level in LEVELS else "warning",
            kind=kind[:50],
            message=redact(message)[:MESSAGE_MAX],
            conversation_id=uuid.UUID(str(conversation_id)) if conversation_id else None,
            details=redacted_details(details),
        )
        async with runtime.db.transaction() as session:  # the platform's: any company, or none
            session.add(row)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("app_event.not_recorded", kind=kind, error=describe(exc))


_pending: set[asyncio.Task[None]] = set()


def record_soon(runtime: Runtime, kind: str, message: str, **fields: Any) -> None:
    """``record`` from synchronous code (a circuit breaker's listener): in the background,
    on the running loop; nothing when there is none."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(record(runtime, kind, message, **fields))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def settled() -> None:
    """Wait for the events ``record_soon`` started (tests, and a clean shutdown)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)


# failed jobs


def _last_attempt(context: procrastinate.JobContext, exc: Exception) -> bool:
    """Whether procrastinate will bury the job instead of retrying it after ``exc``."""
    task = context.app.tasks.get(context.job.task_name) if context.app else None
    return task is None or task.get_retry_exception(exception=exc, job=context.job) is None


async def record_failed_job(
    call_next: Callable[[], Awaitable[Any]], context: procrastinate.JobContext, worker: Any
) -> Any:
    """Worker middleware: a job that failed for good (no retry left) is an error event of
    its company, with its reason, its id (the events page offers to retry it) and its task."""
    try:
        return await call_next()
    except procrastinate.exceptions.JobAborted:
        raise
    except Exception as exc:
        runtime = context.additional_context.get("runtime")
        if isinstance(runtime, Runtime) and _last_attempt(context, exc):
            job = context.job
            await record(
                runtime,
                JOB_FAILED,
                f"{job.task_name} failed: {describe(exc)}",
                level="error",
                company_id=_id_argument(job.task_kwargs.get("company_id")),
                conversation_id=_id_argument(job.task_kwargs.get("conversation_id")),
                details={"job_id": job.id, "task": job.task_name, "attempts": job.attempts + 1},
            )
        raise


def _id_argument(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


# reading


@dataclass(frozen=True)
class EventFilter:
    """What the events page and ``GET /v1/events`` ask for; every field optional."""

    level: str | None = None
    kind: str | None = None
    conversation_id: uuid.UUID | None = None
    text: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    company_id: uuid.UUID | None = None  # a superadmin's company filter (a platform session)

    def checked(self) -> EventFilter:
        """The filter, or ``InvalidInput`` naming the field that is wrong."""
        if self.level is not None and self.level not in LEVELS:
            raise InvalidInput(f"level must be one of {', '.join(LEVELS)}", field="level")
        if self.kind is not None and self.kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
        if self.text is not None and not search_words(self.text):
            raise InvalidInput("text must contain a word to look for", field="text")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise InvalidInput("since must be before until", field="since")
        return self


_WORD = re.compile(r"\w+")


def search_words(text: str) -> list[str]:
    """The words of a search as ``to_tsvector('simple', …)`` holds them (lower case)."""
    return [w.lower() for w in _WORD.findall(text)][:10]


def _tsquery(text: str) -> str:
    """Every word required, each a prefix from three letters on (\\w only: nothing to quote)."""
    return " & ".join(f"{w}:*" if len(w) >= 3 else w for w in search_words(text))


@dataclass(frozen=True)
class Page:
    events: list[AppEvent]
    next_cursor: str | None  # the ``after`` of the next page; ``None``: this was the last


def cursor_of(event: AppEvent) -> str:
    return f"{event.created_at.isoformat()}_{event.id}"


def parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, ident = cursor.rsplit("_", 1)
        return datetime.fromisoformat(at), uuid.UUID(ident)
    except ValueError:
        raise InvalidInput("after is not a cursor this list gave", field="after") from None


async def list_events(
    session: AsyncSession, where: EventFilter, *, after: str | None = None, limit: int = 50
) -> Page:
    """A page of events, newest first, after the ``after`` cursor. A company session sees
    its company's; a platform session (a superadmin) every company's, or ``company_id``'s."""
    where = where.checked()
    limit = max(1, min(limit, PAGE_MAX))
    stmt = select(AppEvent)
    if where.company_id is not None:
        stmt = stmt.where(AppEvent.company_id == where.company_id)
    if where.level is not None:
        stmt = stmt.where(AppEvent.level == where.level)
    if where.kind is not None:
        stmt = stmt.where(AppEvent.kind == where.kind)
    if where.conversation_id is not None:
        stmt = stmt.where(AppEvent.conversation_id == where.conversation_id)
    if where.since is not None:
        stmt = stmt.where(AppEvent.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(AppEvent.created_at < where.until)
    few = False
    if where.text is not None:
        match = func.to_tsvector(_SIMPLE, AppEvent.message).op("@@")(
            func.to_tsquery(_SIMPLE, _tsquery(where.text))
        )
        owner = [AppEvent.company_id == where.company_id] if where.company_id is not None else []
        few = await _few_matches(session, [*owner, match])
        stmt = stmt.where(match)
    if after:
        at, ident = parse_cursor(after)
        stmt = stmt.where(tuple_(AppEvent.created_at, AppEvent.id) < tuple_(at, ident))
    stmt = stmt.order_by(AppEvent.created_at.desc(), AppEvent.id.desc()).limit(limit + 1)
    async with _words_index_only(session, few):
        rows = list((await session.scalars(stmt)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, cursor_of(rows[-1]) if more and rows else None)


# A text search reads the words' index when the words match at most this many events, and
# otherwise walks the events newest first (a common word: the first page is found at once)
TEXT_INDEX_MAX = 5000


async def _few_matches(session: AsyncSession, clauses: list[ColumnElement[bool]]) -> bool:
    """Whether at most ``TEXT_INDEX_MAX`` events match the words (counted in the words'
    index, at most that many read). PostgreSQL cannot estimate a prefix search (``word:*``):
    it guesses 2 % of the rows, and walks newest first reading every event when a rare word
    matches a few hundred (0.9 s over 200,000 events, against 1 ms through the index)."""
    counted = select(AppEvent.id).where(*clauses).limit(TEXT_INDEX_MAX + 1).subquery()
    async with _words_index_only(session, True):
        found = await session.scalar(select(func.count()).select_from(counted))
    return int(found or 0) <= TEXT_INDEX_MAX


@asynccontextmanager
async def _words_index_only(session: AsyncSession, only: bool) -> AsyncIterator[None]:
    """Within the block, plans use bitmap scans only (the words' GIN index), not a walk of
    an ordered index nor a full scan; the transaction's settings are put back after."""
    if not only:
        yield
        return
    await session.execute(sql("SET LOCAL enable_seqscan = off"))
    await session.execute(sql("SET LOCAL enable_indexscan = off"))
    try:
        yield
    finally:
        await session.execute(sql("SET LOCAL enable_seqscan = on"))
        await session.execute(sql("SET LOCAL enable_indexscan = on"))


async def get_event(session: AsyncSession, event_id: uuid.UUID) -> AppEvent | None:
    return await session.get(AppEvent, event_id)


# retention


def retention_days(company: Company | None) -> int:
    return read_section(company, EventLog).retention_days


async def set_retention(session: AsyncSession, company_id: uuid.UUID, days: int) -> None:
    """Keep the company's events ``days`` days (1 to 365); ``InvalidInput`` otherwise."""
    if not RETENTION_MIN <= days <= RETENTION_MAX:
        raise InvalidInput(
            f"retention_days must be between {RETENTION_MIN} and {RETENTION_MAX}", field="retention_days"
        )
    company = await session.get_one(Company, company_id, with_for_update=True, populate_existing=True)
    settings = dict(company.settings or {})
    settings[EventLog.key or "events"] = {**dict(settings.get("events") or {}), "retention_days": days}
    company.settings = settings


async def prune(runtime: Runtime, *, now: datetime | None = None, batch: int = PRUNE_BATCH) -> int:
    """Delete the events older than their company's retention, ``batch`` rows per
    transaction (no long lock, no huge WAL burst); returns how many went."""
    now = now or runtime.clock()
    async with runtime.db.transaction() as session:
        companies = (await session.execute(select(Company.id, Company.settings))).all()
    cutoffs: list[tuple[uuid.UUID | None, datetime]] = [
        (company_id, now - timedelta(days=read_section(settings or {}, EventLog).retention_days))
        for company_id, settings in companies
    ]
    cutoffs.append((None, now - timedelta(days=EventLog().retention_days)))
    deleted = 0
    for company_id, cutoff in cutoffs:
        owner = AppEvent.company_id.is_(None) if company_id is None else AppEvent.company_id == company_id
        while True:
            async with runtime.db.transaction() as session:
                oldest = select(AppEvent.id).where(owner, AppEvent.created_at < cutoff).limit(batch)
                result = await session.execute(delete(AppEvent).where(AppEvent.id.in_(oldest)))
                count = int(getattr(result, "rowcount", 0) or 0)
            deleted += count
            if count < batch:
                break
    if deleted:
        log.info("app_events.pruned", count=deleted)
    return deleted


async def prune_task(context: procrastinate.JobContext, timestamp: int) -> int:
    runtime: Runtime = context.additional_context["runtime"]
    return await prune(runtime)


def blueprint() -> procrastinate.Blueprint:
    """The events' retention job, hourly (a new blueprint each call: procrastinate binds one
    to one app)."""
    bp = procrastinate.Blueprint()
    task = bp.task(name="prune", queueing_lock="prune_app_events", pass_context=True)(prune_task)
    bp.periodic(cron="47 * * * *")(task)  # hourly, apart from the other hourly jobs
    return bp
