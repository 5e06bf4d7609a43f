"""Registering endpoints and emitting events; delivery itself runs as a job
(``atende.webhooks.tasks``).

Each event is one ``WebhookDelivery`` per subscribed endpoint, created and enqueued in
the transaction of the change that caused it, so an event is sent if and only if the
change was committed.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende import netguard
from atende.db.scope import company_of, get_or_404
from atende.errors import InvalidInput
from atende.jobs.queue import JobQueue
from atende.tenancy.crypto import encrypt_secret, new_token
from atende.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENTS = ("message.created", "conversation.state_changed", "conversation.handoff", "queue.opened")
SIGNATURE_HEADER = "X-Atende-Signature"
TIMESTAMP_HEADER = "X-Atende-Timestamp"
DELIVER_TASK = "webhooks:deliver"
DESTINATION_SETTING = "ATENDE_WEBHOOK_ALLOW_PRIVATE_NETWORKS"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("url must be an absolute http(s) URL")
    return url


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL whose host is not a public address (see ``atende.netguard``)."""
    await netguard.check_public(url, allow_private=allow_private, what="webhook", setting=DESTINATION_SETTING)


async def create_endpoint(
    session: AsyncSession, *, secret_key: str, url: str, events: list[str], allow_private: bool = False
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once)."""
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise InvalidInput(
            f"events must be a non-empty subset of {', '.join(EVENTS)}; got {unknown or events}"
        )
    await check_destination(_check_url(url), allow_private=allow_private)
    secret = "whsec_" + new_token(24)
    endpoint = WebhookEndpoint(
        url=_check_url(url),
        secret_encrypted=encrypt_secret(secret_key, secret),
        events=sorted(set(events)),
        enabled=True,
        consecutive_failures=0,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint, secret


async def list_endpoints(session: AsyncSession) -> list[WebhookEndpoint]:
    return list(await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)))


async def get_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    return await get_or_404(session, WebhookEndpoint, endpoint_id, "webhook endpoint")


async def set_endpoint_enabled(
    session: AsyncSession, endpoint_id: uuid.UUID, enabled: bool
) -> WebhookEndpoint:
    endpoint = await get_endpoint(session, endpoint_id)
    endpoint.enabled = enabled
    if enabled:
        endpoint.consecutive_failures = 0
        endpoint.disabled_reason = None
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> None:
    await session.delete(await get_endpoint(session, endpoint_id))


async def list_deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, limit: int = 50
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    await get_endpoint(session, endpoint_id)
    deliveries = list(
        await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.created_at.desc())
            .limit(limit)
        )
    )
    attempts = list(
        await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_([d.id for d in deliveries]))
            .order_by(WebhookAttempt.number)
        )
    )
    by_delivery: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    for attempt in attempts:
        by_delivery[attempt.delivery_id].append(attempt)
    return [(d, by_delivery[d.id]) for d in deliveries]


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
