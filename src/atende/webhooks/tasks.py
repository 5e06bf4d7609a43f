"""Delivering one webhook event: sign (``atende.webhooks.service.signature_headers``), POST
with a timeout, log the attempt, retry with backoff, disable an endpoint that keeps failing."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import procrastinate
import structlog

from atende import __version__, netguard
from atende.errors import InvalidInput
from atende.observability import events, metrics
from atende.runtime import Runtime
from atende.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from atende.webhooks.service import (
    DESTINATION_SETTING,
    forget_previous_secret,
    grace_until,
    signature_headers,
    signing_keys,
)

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 8
RETRY = procrastinate.RetryStrategy(max_attempts=MAX_ATTEMPTS, exponential_wait=2)


class DeliveryFailed(Exception):
    """The endpoint did not acknowledge the event (non-2xx, timeout, refused)."""


async def deliver(context: procrastinate.JobContext, company_id: str, delivery_id: str) -> str:
    runtime: Runtime = context.additional_context["runtime"]
    company = uuid.UUID(company_id)
    async with runtime.db.transaction(company) as session:
        delivery = await session.get(WebhookDelivery, uuid.UUID(delivery_id))
        if delivery is None or delivery.status in ("delivered", "failed"):
            return "nothing to do"
        endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            delivery.status = "cancelled"
            return "endpoint disabled"
        url = endpoint.url
        # the current secret, and the one it replaced during a rotation's grace period
        keys = signing_keys(endpoint, runtime.secret_key, runtime.clock())
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        number = delivery.attempts + 1

    # the attempt's time (a retry gets a new one); the delivery id stays: the idempotency key
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"atende-webhooks/{__version__}",
        "X-Atende-Event": delivery.event_type,
        "X-Atende-Delivery": delivery_id,
        **signature_headers(keys, delivery_id, timestamp, body),
    }
    status_code: int | None = None
    error: str | None = None
    started = time.perf_counter()
    limit = runtime.settings.webhook_timeout_seconds
    # checked again at delivery, by the transport: the name may point elsewhere since
    # registration, and the connection goes to the address checked (no DNS rebinding)
    guard = netguard.Guard(runtime.settings.webhook_allow_private_networks, "webhook", DESTINATION_SETTING)
    try:
        async with (
            asyncio.timeout(limit),  # a whole-delivery deadline, not only per read
            httpx.AsyncClient(
                timeout=httpx.Timeout(limit, connect=5.0),
                follow_redirects=False,
                transport=netguard.GuardedTransport(guard),
            ) as client,
            client.stream("POST", url, content=body, headers=headers) as response,  # body never read
        ):
            status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except TimeoutError:
        error = f"no answer within {limit:g} s"
    except InvalidInput as exc:
        error = exc.message
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    duration_ms = (time.perf_counter() - started) * 1000
    ok = error is None
    last_try = context.job.attempts + 1 >= MAX_ATTEMPTS

    async with runtime.db.transaction(company) as session:
        delivery = await session.get(WebhookDelivery, uuid.UUID(delivery_id), with_for_update=True)
        endpoint = (
            await session.get(WebhookEndpoint, delivery.endpoint_id, with_for_update=True)
            if delivery
            else None
        )
        if delivery is None or endpoint is None:
            return "deleted meanwhile"
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                number=number,
                status_code=status_code,
                error=error,
                duration_ms=round(duration_ms, 2),
            )
        )
        delivery.attempts = number
        if endpoint.previous_secret_encrypted is not None and grace_until(endpoint, runtime.clock()) is None:
            forget_previous_secret(endpoint)  # its grace is over: no need to keep it
        if ok:
            delivery.status = "delivered"
            delivery.delivered_at = datetime.now(UTC)
            endpoint.consecutive_failures = 0
        else:
            delivery.status = "failed" if last_try else "retrying"
            endpoint.consecutive_failures += 1
            if endpoint.consecutive_failures >= runtime.settings.webhook_disable_after_failures:
                endpoint.enabled = False
                endpoint.disabled_reason = (
                    f"disabled after {endpoint.consecutive_failures} consecutive failed deliveries"
                    f" (last: {error})"
                )
                delivery.status = "failed"
                last_try = True
    metrics.WEBHOOK_DELIVERIES.labels("delivered" if ok else "failed").inc()
    if ok:
        return "delivered"
    log.warning("webhook.failed", delivery_id=delivery_id, error=error, attempt=number)
    await events.record(
        runtime,
        events.WEBHOOK_FAILED,
        f"The webhook at {urlsplit(url).hostname} did not accept {delivery.event_type}"
        f" (attempt {number}): {error}" + ("; no more attempts" if last_try else "; it will be tried again"),
        level="error" if last_try else "warning",
        company_id=company,
        details={
            "delivery_id": delivery_id,
            "endpoint_id": str(delivery.endpoint_id),
            "event_type": delivery.event_type,
            "attempt": number,
            "status_code": status_code,
            "disabled": not endpoint.enabled,
        },
    )
    if last_try:
        return "gave up"
    raise DeliveryFailed(error)


def blueprint() -> procrastinate.Blueprint:
    """Webhook tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    bp.task(name="deliver", retry=RETRY, pass_context=True)(deliver)
    return bp
