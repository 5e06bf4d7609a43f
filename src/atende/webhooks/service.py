"""Registering endpoints, signing and emitting events; delivery itself runs as a job
(``atende.webhooks.tasks``).

Each event is one ``WebhookDelivery`` per subscribed endpoint, created and enqueued in
the transaction of the change that caused it, so an event is sent if and only if the
change was committed.

Deliveries are signed the Standard Webhooks way (https://www.standardwebhooks.com): the
headers ``webhook-id`` (the delivery id: the same on every retry), ``webhook-timestamp`` (Unix
seconds of the attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256(key,
"<id>.<timestamp>." + body)>``, the key being the bytes the ``whsec_<base64>`` secret encodes.
Endpoints registered before this scheme (``signature_scheme = "atende"``) get the legacy
``X-Atende-Signature`` until their secret is rotated. During a rotation's grace period the
old secret signs too: a second ``v1,`` signature, or the legacy header when the old secret
was a legacy one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from atende import netguard
from atende.audit import service as audit
from atende.config import WEBHOOK_MAX_GRACE_SECONDS
from atende.db.scope import company_of, get_or_404
from atende.errors import InvalidInput, NotFound
from atende.jobs.queue import JobQueue
from atende.tenancy.crypto import decrypt_secret, encrypt_secret
from atende.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENTS = (
    "message.created",
    "message.delivery_failed",
    "conversation.state_changed",
    "conversation.handoff",
    "queue.opened",
    "conversation.snoozed",
    "conversation.unsnoozed",
    # the team's private notes: never in message.created, which companies forward to customers
    "note.created",
    # a customer rated a bot answer (thumbs up or down, a comment): ``atende.feedback.ratings``
    "message.rated",
    # CSAT (atende.feedback): a survey went out after a resolution; its answer came (or changed)
    "conversation.csat_requested",
    "conversation.csat_received",
    # SLA policies (atende.sla): a target's warning share reached, a target breached
    "sla.warning",
    "sla.breached",
)
STANDARD = "standard"  # Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature
LEGACY = "atende"  # X-Atende-Timestamp, X-Atende-Signature (endpoints registered before 0014)
SCHEMES = (STANDARD, LEGACY)
ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_HEADER = "X-Atende-Signature"
TIMESTAMP_HEADER = "X-Atende-Timestamp"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix the specification gives secrets)
SECRET_BYTES = 32  # the specification asks for 24 to 64 random bytes
DELIVER_TASK = "webhooks:deliver"
DESTINATION_SETTING = "ATENDE_WEBHOOK_ALLOW_PRIVATE_NETWORKS"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of random bytes (those bytes are the key)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign_standard(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "<webhook_id>.<timestamp>." + body)>``, the key being the
    bytes the ``whsec_`` secret encodes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The legacy ``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``, keyed with the
    secret's text as it is (a legacy secret is not base64 of its key)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """One secret that signs deliveries, and the scheme it signs with."""

    scheme: str
    secret: str = field(repr=False)


def signing_keys(endpoint: WebhookEndpoint, secret_key: str, now: datetime) -> list[SigningKey]:
    """The endpoint's current secret, then the one it replaced while that is in its grace period."""
    keys = [SigningKey(endpoint.signature_scheme, decrypt_secret(secret_key, endpoint.secret_encrypted))]
    previous = endpoint.previous_secret_encrypted
    if previous is not None and grace_until(endpoint, now) is not None:
        scheme = endpoint.previous_signature_scheme or LEGACY
        keys.append(SigningKey(scheme, decrypt_secret(secret_key, previous)))
    return keys


def grace_until(endpoint: WebhookEndpoint, now: datetime) -> datetime | None:
    """Until when the replaced secret still signs; None when none does."""
    until = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_encrypted is None or until is None or until <= now:
        return None
    return until


def signature_headers(
    keys: Sequence[SigningKey], webhook_id: str, timestamp: str, body: bytes
) -> dict[str, str]:
    """The headers that sign one attempt: the Standard Webhooks three when a standard key signs
    (one ``v1,`` signature per such key, space-separated, current first), and the legacy
    ``X-Atende-*`` pair when a legacy key does (its format holds one signature)."""
    headers: dict[str, str] = {}
    standard = [k for k in keys if k.scheme == STANDARD]
    if standard:
        headers[ID_HEADER] = webhook_id
        headers[STANDARD_TIMESTAMP_HEADER] = timestamp
        headers[STANDARD_SIGNATURE_HEADER] = " ".join(
            sign_standard(k.secret, webhook_id, timestamp, body) for k in standard
        )
    legacy = next((k for k in keys if k.scheme == LEGACY), None)
    if legacy is not None:
        headers[TIMESTAMP_HEADER] = timestamp
        headers[SIGNATURE_HEADER] = sign(legacy.secret, timestamp, body)
    return headers


def _check_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # "http://[x/": an IPv6 address that is not one
        host = None
    if not host or parts.scheme not in ("http", "https"):
        raise InvalidInput("url must be an absolute http(s) URL", field="url")
    return url


def _check_events(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise InvalidInput(
            f"events must be a non-empty subset of {', '.join(EVENTS)}; got {unknown or list(events)}",
            field="events",
        )
    return sorted(set(events))


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL whose host is not a public address (see ``atende.netguard``)."""
    await netguard.check_public(url, allow_private=allow_private, what="webhook", setting=DESTINATION_SETTING)


def _audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the audit log says of an endpoint: its host (a URL's path or query may carry the
    receiver's token) and its events."""
    return {"host": urlsplit(endpoint.url).hostname or "", "events": list(endpoint.events or [])}


async def create_endpoint(
    session: AsyncSession, *, secret_key: str, url: str, events: list[str], allow_private: bool = False
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once)."""
    events = _check_events(events)
    await check_destination(_check_url(url), allow_private=allow_private)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=_check_url(url),
        secret_encrypted=encrypt_secret(secret_key, secret),
        signature_scheme=STANDARD,
        events=events,
        enabled=True,
        consecutive_failures=0,
    )
    session.add(endpoint)
    await session.flush()
    audit.record(session, "webhook.created", ("webhook", endpoint.id), _audited(endpoint))
    return endpoint, secret


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return await get_or_404(session, WebhookEndpoint, endpoint_id, "webhook endpoint")


async def update_endpoint(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    enabled: bool | None = None,
    allow_private: bool = False,
) -> WebhookEndpoint:
    """Change what is given (``None``: kept): the URL (checked as when registered), the
    events, enabled. Everything is checked before anything changes."""
    endpoint = await get_or_404(session, WebhookEndpoint, endpoint_id, "webhook endpoint", for_update=True)
    checked_events = _check_events(events) if events is not None else None
    if url is not None:
        await check_destination(_check_url(url), allow_private=allow_private)
        endpoint.url = url
    if checked_events is not None:
        endpoint.events = checked_events
    if url is not None or checked_events is not None:
        audit.record(session, "webhook.changed", ("webhook", endpoint.id), _audited(endpoint))
    if enabled is not None:
        await set_endpoint_enabled(session, endpoint_id, enabled)
    return endpoint


async def set_endpoint_enabled(
    session: AsyncSession, endpoint_id: uuid.UUID, enabled: bool
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, endpoint_id)
    if endpoint.enabled != enabled:
        audit.record(
            session,
            "webhook.enabled" if enabled else "webhook.disabled",
            ("webhook", endpoint.id),
            _audited(endpoint),
        )
    endpoint.enabled = enabled
    if enabled:
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = None
    return endpoint


async def rotate_secret(
    session: AsyncSession, endpoint_id: uuid.UUID, *, secret_key: str, grace_seconds: int, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new standard secret; returns it (shown once).

    For ``grace_seconds`` the secret it replaces signs too, with the scheme it signed with (a
    legacy endpoint moves to the standard scheme, and keeps its ``X-Atende-Signature`` until
    then). A secret still in the grace of an earlier rotation stops signing now.
    """
    if not 0 <= grace_seconds <= WEBHOOK_MAX_GRACE_SECONDS:
        raise InvalidInput(
            f"grace_seconds must be between 0 and {WEBHOOK_MAX_GRACE_SECONDS} (30 days); got {grace_seconds}",
            field="grace_seconds",
        )
    endpoint = await get_or_404(session, WebhookEndpoint, endpoint_id, "webhook endpoint", for_update=True)
    secret = new_secret()
    if grace_seconds > 0:
        endpoint.previous_secret_encrypted = endpoint.secret_encrypted
        endpoint.previous_signature_scheme = endpoint.signature_scheme
        endpoint.previous_secret_expires_at = now + timedelta(seconds=grace_seconds)
    else:
        forget_previous_secret(endpoint)
    endpoint.secret_encrypted = encrypt_secret(secret_key, secret)
    endpoint.signature_scheme = STANDARD
    audit.record(
        session,
        "webhook.secret_rotated",
        ("webhook", endpoint.id),
        {**_audited(endpoint), "grace_seconds": grace_seconds},
    )
    return endpoint, secret


def forget_previous_secret(endpoint: WebhookEndpoint) -> None:
    endpoint.previous_secret_encrypted = None
    endpoint.previous_signature_scheme = None
    endpoint.previous_secret_expires_at = None


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    endpoint = await get_endpoint(session, endpoint_id)
    audit.record(session, "webhook.deleted", ("webhook", endpoint.id), _audited(endpoint))
    await session.delete(endpoint)


async def list_deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, limit: int = 50, *, before: uuid.UUID | None = None
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """The endpoint's latest ``limit`` deliveries (newest first), each with its attempts;
    ``before``: a delivery's id, the page after it (keyset: new deliveries never shift a
    page). A ``before`` that is not one of this endpoint's deliveries is ``NotFound``."""
    await get_endpoint(session, endpoint_id)
    latest = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        after = await session.scalar(
            select(WebhookDelivery.created_at).where(
                WebhookDelivery.id == before, WebhookDelivery.endpoint_id == endpoint_id
            )
        )
        if after is None:
            raise NotFound(f"no delivery {before} of webhook endpoint {endpoint_id}")
        latest = latest.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(after, before))
    # one statement, so one snapshot: read in two, a delivery finished between them showed
    # its new attempt beside its old status
    latest = latest.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    rows = await session.execute(
        select(WebhookDelivery, WebhookAttempt)
        .outerjoin(WebhookAttempt, WebhookAttempt.delivery_id == WebhookDelivery.id)
        .where(WebhookDelivery.id.in_(latest))
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc(), WebhookAttempt.number)
    )
    deliveries: list[WebhookDelivery] = []
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {}
    for delivery, attempt in rows.tuples():
        if delivery.id not in by_delivery:
            deliveries.append(delivery)
            by_delivery[delivery.id] = []
        if attempt is not None:
            by_delivery[delivery.id].append(attempt)
    return [(d, by_delivery[d.id]) for d in deliveries]


async def subscribed(session: AsyncSession, event_types: Sequence[str]) -> set[str]:
    """Which of ``event_types`` an enabled endpoint of the company subscribes to: a caller that
    may raise thousands of events in one run (the SLA job) asks once, and emits only those."""
    rows = await session.scalars(
        select(WebhookEndpoint.events).where(
            WebhookEndpoint.enabled.is_(True), WebhookEndpoint.events.overlap(list(event_types))
        )
    )
    return {event for events in rows for event in events if event in event_types}


async def emit(session: AsyncSession, jobs: JobQueue, event_type: str, data: dict[str, Any]) -> int:
    """Queue ``event_type`` for every enabled endpoint subscribed to it."""
    endpoints = list(
        await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.enabled.is_(True), WebhookEndpoint.events.contains([event_type])
            )
        )
    )
    company_id = company_of(session)
    for endpoint in endpoints:
        delivery = WebhookDelivery(
            id=uuid.uuid4(),
            endpoint_id=endpoint.id,
            event_type=event_type,
            payload={
                "type": event_type,
                "company_id": str(company_id),
                "created_at": datetime.now(UTC).isoformat(),
                "data": data,
            },
            status="pending",
            attempts=0,
        )
        delivery.payload["id"] = str(delivery.id)
        session.add(delivery)
        await session.flush()
        await jobs.enqueue(session, DELIVER_TASK, company_id=str(company_id), delivery_id=str(delivery.id))
    return len(endpoints)
