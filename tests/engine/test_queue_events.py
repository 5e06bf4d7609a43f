"""Agents hear of a handoff live (the queue topic a dashboard follows), and when the team
opens they hear how many tickets wait."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from atende.conversations.service import queue_topic
from atende.db.pubsub import Listener
from atende.engine.tasks import announce_opening_job
from atende.runtime import Runtime
from tests.conftest import Clock, CompanyCtx, ask

SP = ZoneInfo("America/Sao_Paulo")
HOURS = {
    "timezone": "America/Sao_Paulo",
    "weekly": {d: [{"start": "08:00", "end": "18:00"}] for d in ("monday", "tuesday", "wednesday")},
}


async def _next_of_kind(sub: object, kind: str, seconds: float = 10) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = await sub.next(timeout=deadline - time.monotonic())  # type: ignore[attr-defined]
        if event is not None and event.get("kind") == kind:
            return event
    raise AssertionError(f"no {kind!r} event within {seconds}s")


async def test_a_handoff_is_announced_live_on_the_company_queue_topic(
    company: CompanyCtx, runtime: Runtime, clock: Clock
) -> None:
    clock.at(datetime(2027, 9, 1, 20, 0, tzinfo=SP))  # Wednesday, closed
    r = await company.client.put("/v1/company/hours", json=HOURS)
    assert r.status_code == 200, r.text
    listener = Listener(runtime.db.url)
    listener.start()
    try:
        with listener.subscribe(queue_topic(company.id)) as sub:
            await asyncio.sleep(0.2)  # LISTEN is in place
            body = await ask(company.client, "quero falar com um atendente")
            event = await _next_of_kind(sub, "queue")
    finally:
        await listener.stop()
    assert event["conversation_id"] == body["conversation_id"]
    assert (event["to"], event["ticket"]) == ("waiting_human", True)
    assert datetime.fromisoformat(event["opens"]).astimezone(SP) == datetime(2027, 9, 6, 8, 0, tzinfo=SP)


async def test_when_the_team_opens_agents_hear_how_many_tickets_wait(
    company: CompanyCtx, runtime: Runtime, clock: Clock
) -> None:
    clock.at(datetime(2027, 9, 1, 20, 0, tzinfo=SP))
    r = await company.client.put("/v1/company/hours", json=HOURS)
    assert r.status_code == 200, r.text
    await ask(company.client, "quero falar com um atendente")
    await ask(company.client, "I want to talk to a human")
    listener = Listener(runtime.db.url)
    listener.start()
    try:
        with listener.subscribe(queue_topic(company.id)) as sub:
            await asyncio.sleep(0.2)
            # the job the handoff scheduled for the opening, run as the worker would then
            context = SimpleNamespace(additional_context={"runtime": runtime})
            assert await announce_opening_job(context, str(company.id)) == 2  # type: ignore[arg-type]
            event = await _next_of_kind(sub, "opened")
    finally:
        await listener.stop()
    assert (event["waiting"], event["tickets"]) == (2, 2)
