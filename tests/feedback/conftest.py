"""What the CSAT tests share: a company with surveys on, a resolved conversation, the job's
look for due surveys run at a chosen time, and a webhook receiver."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from atende.feedback import service
from atende.runtime import Runtime
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver

DELAY = 300  # seconds: the default, longer than any test, so the live worker's job never sends first


@pytest.fixture
async def web(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client, like a visitor's browser: no API key."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


async def enable(client: httpx.AsyncClient, **changes: Any) -> dict[str, Any]:
    r = await client.put("/v1/company/csat", json={"enabled": True, "delay_seconds": DELAY, **changes})
    assert r.status_code == 200, r.text
    return dict(r.json())


async def resolve(client: httpx.AsyncClient, conversation_id: str) -> None:
    r = await client.post(f"/v1/conversations/{conversation_id}/state", json={"state": "resolved"})
    assert r.status_code == 200, r.text


async def run_survey_job(
    runtime: Runtime, company_id: uuid.UUID, *, after: float = DELAY + 1
) -> list[service.Sent]:
    """The periodic job's look, for one company, ``after`` seconds from now (past the delay)."""
    now = datetime.now(UTC) + timedelta(seconds=after)
    async with runtime.db.transaction(company_id) as session:
        return await service.send_due(session, runtime.jobs, now)


async def messages(client: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/conversations/{conversation_id}/messages")
    assert r.status_code == 200, r.text
    body = r.json()
    return list(body["items"] if isinstance(body, dict) else body)


async def state(client: httpx.AsyncClient, conversation_id: str) -> str:
    r = await client.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])
