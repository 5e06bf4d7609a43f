"""Recording actions and reading them back, a page at a time.

``record`` adds a row to the caller's transaction (no flush, no round trip): it commits with
the change, or not at all. Who acted comes from ``session.info`` (``bind``), set where the
caller is known: ``Tenant.transaction`` for pages and API keys, the sign-in page for sign-ins.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit.models import AuditEvent
from atende.db.session import COMPANY_KEY
from atende.errors import InvalidInput

ACTOR_KEY = "audit_actor"
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# a detail named like one of these is a programming error: secrets never reach the log
SECRET_NAMES = re.compile(r"(password|secret|token|api_key|private|credential|signature|hash)", re.I)
# nor does a message's text, which is the customer's
TEXT_NAMES = frozenset({"text", "body", "html", "content", "message"})
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class Actor:
    """Who acts in a session: a person (``user_id``), an API key (``key_id``; with a person,
    a personal key), or neither: the system. ``ip``: where the request came from."""

    user_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None
    ip: str | None = None

    @property
    def kind(self) -> str:
        if self.key_id is not None:
            return "api_key"
        return "user" if self.user_id is not None else "system"


SYSTEM = Actor()


def bind(session: AsyncSession, actor: Actor) -> None:
    """The actor of what ``session`` records from now on."""
    session.info[ACTOR_KEY] = actor


def actor_of(session: AsyncSession) -> Actor:
    found = session.info.get(ACTOR_KEY)
    return found if isinstance(found, Actor) else SYSTEM


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value[:MAX_DETAIL_CHARS]
    if isinstance(value, list | tuple):
        return [str(v)[:MAX_DETAIL_CHARS] for v in value[:20]]
    if value is not None and not isinstance(value, bool | int | float):
        raise ValueError(f"audit detail {name!r}: {type(value).__name__} is not a plain value")
    return value


def _clean(details: Mapping[str, Any]) -> dict[str, Any]:
    for name in details:
        if SECRET_NAMES.search(name) or name in TEXT_NAMES:
            raise ValueError(f"audit detail {name!r} may hold a secret or a message's text")
    return {name: _plain(name, value) for name, value in details.items()}


def record(
    session: AsyncSession,
    action: str,
    target: tuple[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
    *,
    company_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> AuditEvent:
    """Add ``action`` (``area.verb``: ``member.role_changed``) on ``target`` (a type and an
    id) to the session's transaction. ``details``: plain values that say it in words (names,
    roles, fields changed), never a secret nor a message's text (``ValueError``).
    ``company_id``: for a platform session (a company session records its own company);
    ``user_id``: the person acting when the session was bound to nobody yet (signing in)."""
    actor = actor_of(session)
    if user_id is not None and actor.user_id is None:
        actor = Actor(user_id=user_id, ip=actor.ip)
    event = AuditEvent(
        company_id=company_id or session.info.get(COMPANY_KEY),
        actor_type=actor.kind,
        actor_user_id=actor.user_id,
        actor_key_id=actor.key_id,
        action=action,
        target_type=target[0] if target else None,
        target_id=str(target[1]) if target and target[1] is not None else None,
        details=_clean(details or {}),
        ip=_address(actor.ip),
    )
    session.add(event)
    return event


def _address(ip: str | None) -> str | None:
    """``ip`` if it is an address (a test client's "testclient" is not)."""
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The names whose values differ (what a settings change records: names, not values)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@dataclass(frozen=True)
class Filters:
    """What the page and ``GET /v1/audit-events`` narrow the log to."""

    user_id: uuid.UUID | None = None
    action: str | None = None  # an action, or an area with a trailing dot ("member.")
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(event: AuditEvent) -> str:
    raw = f"{event.created_at.isoformat()}|{event.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, ident = raw.split("|")
        return datetime.fromisoformat(when), uuid.UUID(ident)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("cursor: not a cursor this list gave", field="cursor") from None


def _aware(instant: datetime | None) -> datetime | None:
    """An instant without a zone is UTC's (the API's ``since=2026-03-01T00:00``)."""
    return instant.replace(tzinfo=UTC) if instant is not None and instant.tzinfo is None else instant


async def list_events(
    session: AsyncSession, filters: Filters, *, cursor: str | None = None, limit: int = PAGE_SIZE
) -> tuple[Sequence[AuditEvent], str | None]:
    """The session company's events, newest first, ``limit`` at a time after ``cursor``;
    returns them and the cursor of the next page (``None``: the last page)."""
    stmt = select(AuditEvent)
    since, until = (_aware(t) for t in (filters.since, filters.until))
    if filters.user_id is not None:
        stmt = stmt.where(AuditEvent.actor_user_id == filters.user_id)
    if filters.action:
        if filters.action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(filters.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == filters.action)
    if since is not None:
        stmt = stmt.where(AuditEvent.created_at >= since)
    if until is not None:
        stmt = stmt.where(AuditEvent.created_at < until)
    if cursor:
        at, ident = decode_cursor(cursor)
        # a row comparison: the index on (company_id, created_at, id) starts right there
        stmt = stmt.where(tuple_(AuditEvent.created_at, AuditEvent.id) < tuple_(at, ident))
    stmt = stmt.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit + 1)
    rows = (await session.scalars(stmt)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)
