"""Snoozing a conversation: out of the queue until a time (or the next business day's opening),
woken at once by a customer message, by a state change or by an agent, and at its time by the
worker's periodic job; each change is announced live on the queue topic and by webhook."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from atende.conversations.models import Conversation
from atende.conversations.service import queue_topic
from atende.conversations.tasks import blueprint, wake_snoozed, wake_snoozed_job
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import Clock, CompanyCtx, ask
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.tenancy.test_support_api import new_key

SP = ZoneInfo("America/Sao_Paulo")
HOURS = {
    "timezone": "America/Sao_Paulo",
    "weekly": {
        d: [{"start": "08:00", "end": "18:00"}] for d in ("monday", "tuesday", "wednesday", "thursday")
    },
}
WEDNESDAY_10H = datetime(2027, 9, 1, 10, 0, tzinfo=SP)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


async def waiting(company: CompanyCtx, contact: str | None = None) -> tuple[str, str]:
    """A conversation in the company's queue (no hours, no agents: a person answers soon):
    (its id, its contact's external id)."""
    contact = contact or f"c-{uuid.uuid4().hex[:8]}"
    body = await ask(company.client, "quero falar com um atendente", contact=contact)
    assert body["reply"]["meta"]["decision"] == "handoff", body["reply"]
    return body["conversation_id"], contact


async def snooze(client: httpx.AsyncClient, cid: str, until: str) -> httpx.Response:
    return await client.post(f"/v1/conversations/{cid}/snooze", json={"until": until})


async def queued(client: httpx.AsyncClient) -> set[str]:
    r = await client.get("/v1/queue")
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()}


async def conversation(client: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    r = await client.get(f"/v1/conversations/{cid}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def hook(client: httpx.AsyncClient, receiver: WebhookReceiver, *events: str) -> str:
    path = receiver.new_path()
    r = await client.post("/v1/webhooks", json={"url": receiver.url(path), "events": list(events)})
    assert r.status_code == 201, r.text
    return path


async def next_of_kind(sub: Any, kind: str, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = await sub.next(timeout=max(0.05, deadline - time.monotonic()))
        if event is not None and event.get("kind") == kind:
            return dict(event)
    raise AssertionError(f"no {kind!r} event within {seconds}s")


async def test_a_snoozed_conversation_leaves_the_queue_and_a_customer_message_brings_it_back_at_once(
    company: CompanyCtx, receiver: WebhookReceiver, live_app: FastAPI
) -> None:
    path = await hook(company.client, receiver, "conversation.snoozed", "conversation.unsnoozed")
    cid, contact = await waiting(company)
    assert cid in await queued(company.client)
    until = datetime.now(UTC) + timedelta(hours=3)
    listener = live_app.state.runtime.listener
    with listener.subscribe(queue_topic(company.id)) as sub:
        r = await snooze(company.client, cid, until.isoformat())
        assert r.status_code == 200, r.text
        assert datetime.fromisoformat(r.json()["snoozed_until"]) == until
        assert r.json()["state"] == "waiting_human"  # snoozing is not a state change
        snoozed = await next_of_kind(sub, "snoozed")
        assert cid not in await queued(company.client)
        assert datetime.fromisoformat((await conversation(company.client, cid))["snoozed_until"]) == until

        # the customer writes: the intake's insert wakes it, in the same transaction
        r = await company.client.post(
            "/v1/messages", json={"contact": {"external_id": contact}, "text": "ainda estou esperando"}
        )
        assert r.status_code == 201, r.text
        assert (await conversation(company.client, cid))["snoozed_until"] is None
        assert cid in await queued(company.client)
        woken = await next_of_kind(sub, "unsnoozed")
    assert (snoozed["conversation_id"], datetime.fromisoformat(snoozed["until"])) == (cid, until)
    assert (woken["conversation_id"], woken["reason"]) == (cid, "customer")

    received = await receiver.wait_for(path, lambda rs: len(rs) >= 2)
    events = sorted((r.event for r in received), key=lambda e: e["type"])
    assert [e["type"] for e in events] == ["conversation.snoozed", "conversation.unsnoozed"]
    assert events[0]["data"]["conversation_id"] == cid
    assert datetime.fromisoformat(events[0]["data"]["until"]) == until
    assert events[1]["data"] == {"conversation_id": cid, "reason": "customer"}


async def test_the_workers_periodic_job_wakes_a_conversation_when_its_time_comes(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    path = await hook(company.client, receiver, "conversation.unsnoozed")
    cid, _contact = await waiting(company)
    r = await snooze(company.client, cid, (datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    assert r.status_code == 200, r.text
    assert cid not in await queued(company.client)
    # the session's worker runs conversations:wake_snoozed every 10 seconds
    [request] = await receiver.wait_for(path, lambda rs: len(rs) >= 1, timeout=25)
    assert request.event["data"] == {"conversation_id": cid, "reason": "time"}
    assert (await conversation(company.client, cid))["snoozed_until"] is None
    assert cid in await queued(company.client)


def test_the_wake_job_runs_every_ten_seconds_one_run_at_a_time() -> None:
    bp = blueprint()
    [periodic] = bp.periodic_registry.periodic_tasks.values()
    assert periodic.cron == "* * * * * */10"
    assert periodic.task.name == "wake_snoozed"
    assert periodic.task.lock == periodic.task.queueing_lock == "wake_snoozed"


async def test_the_job_wakes_each_companys_due_snoozes_and_only_those(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime, live_app: FastAPI
) -> None:
    now = datetime.now(UTC)
    due_a, _ = await waiting(company)
    due_b, _ = await waiting(other_company)
    later, _ = await waiting(company)
    for client, cid, hours in (
        (company.client, due_a, 1),
        (other_company.client, due_b, 2),
        (company.client, later, 5),
    ):
        r = await snooze(client, cid, (now + timedelta(hours=hours)).isoformat())
        assert r.status_code == 200, r.text
    original = runtime.clock
    runtime.clock = lambda: now + timedelta(hours=3)  # this process's "now": A's and B's first are due
    try:
        listener = live_app.state.runtime.listener
        with listener.subscribe(queue_topic(company.id)) as sub:
            context = SimpleNamespace(additional_context={"runtime": runtime})
            assert await wake_snoozed_job(context, 0) >= 2  # type: ignore[arg-type]
            event = await next_of_kind(sub, "unsnoozed")
        assert await wake_snoozed(runtime) == 0  # nothing is woken twice
    finally:
        runtime.clock = original
    assert (event["conversation_id"], event["reason"]) == (due_a, "time")
    assert (await conversation(company.client, due_a))["snoozed_until"] is None
    assert (await conversation(other_company.client, due_b))["snoozed_until"] is None
    assert (await conversation(company.client, later))["snoozed_until"] is not None
    assert {due_a} <= await queued(company.client)
    assert later not in await queued(company.client)


async def test_snoozing_until_the_next_business_day_uses_the_teams_hours_else_the_companys(
    company: CompanyCtx, clock: Clock, runtime: Runtime
) -> None:
    clock.at(WEDNESDAY_10H)
    cid, _ = await waiting(company)
    r = await snooze(company.client, cid, "next_business_day")
    assert r.status_code == 422, r.text  # no hours: always open, there is no next business day
    assert r.json()["field"] == "until" and "no business hours are set" in r.json()["detail"]

    r = await company.client.put("/v1/company/hours", json=HOURS)
    assert r.status_code == 200, r.text
    r = await snooze(company.client, cid, "next_business_day")
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["snoozed_until"]) == datetime(2027, 9, 2, 8, 0, tzinfo=SP)

    # its team works Saturdays only: its hours win
    saturdays = {
        "timezone": "America/Sao_Paulo",
        "weekly": {"saturday": [{"start": "09:00", "end": "13:00"}]},
    }
    r = await company.client.post("/v1/teams", json={"name": "Plantão", "hours": saturdays, "members": []})
    assert r.status_code == 201, r.text
    async with runtime.db.transaction(company.id) as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == uuid.UUID(cid))
            .values(team_id=uuid.UUID(r.json()["id"]))
        )
    r = await snooze(company.client, cid, "next_business_day")
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["snoozed_until"]) == datetime(2027, 9, 4, 9, 0, tzinfo=SP)


async def test_a_state_change_or_an_agent_wakes_it_and_a_note_or_reply_does_not(company: CompanyCtx) -> None:
    cid, _ = await waiting(company)
    r = await company.client.post(f"/v1/conversations/{cid}/state", json={"state": "human"})
    assert r.status_code == 200, r.text
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert (await snooze(company.client, cid, until)).status_code == 200
    # the agent who has it writes a note and a reply: no state change, still snoozed
    r = await company.client.post(f"/v1/conversations/{cid}/notes", json={"text": "ligar amanhã"})
    assert r.status_code == 201, r.text
    r = await company.client.post(f"/v1/conversations/{cid}/replies", json={"text": "Retorno amanhã."})
    assert r.status_code == 201, r.text
    assert (await conversation(company.client, cid))["snoozed_until"] is not None

    r = await company.client.post(f"/v1/conversations/{cid}/unsnooze")
    assert r.status_code == 200, r.text
    assert r.json()["snoozed_until"] is None
    r = await company.client.post(f"/v1/conversations/{cid}/unsnooze")
    assert (r.status_code, r.json()["detail"]) == (422, "the conversation is not snoozed")

    for move in ("/handback", "/resolve"):
        assert (await snooze(company.client, cid, until)).status_code == 200
        r = await company.client.post(f"/v1/conversations/{cid}{move}")
        assert r.status_code == 200, r.text
        assert r.json()["snoozed_until"] is None, move


async def test_bad_snoozes_are_clear_422s_and_change_nothing(company: CompanyCtx, runtime: Runtime) -> None:
    cid, _ = await waiting(company)
    now = datetime.now(UTC)
    for until, says in [
        ((now - timedelta(minutes=1)).isoformat(), "until must be in the future"),
        ((now + timedelta(days=400)).isoformat(), "at most 366 days"),
        ("2027-09-01T10:00:00", "must say its timezone"),
        ("tomorrow", "next_business_day"),
        ("", "next_business_day"),
    ]:
        r = await snooze(company.client, cid, until)
        assert r.status_code == 422, (until, r.text)
        assert says in r.text, (until, r.text)
    r = await company.client.post(f"/v1/conversations/{cid}/snooze", json={})
    assert r.status_code == 422, r.text
    r = await snooze(company.client, str(uuid.uuid4()), (now + timedelta(hours=1)).isoformat())
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    async with company.with_key(await new_key(runtime, company, Role.viewer)) as viewer:
        r = await snooze(viewer, cid, (now + timedelta(hours=1)).isoformat())
        assert r.status_code == 403, r.text
        r = await viewer.post(f"/v1/conversations/{cid}/unsnooze")
        assert r.status_code == 403, r.text
    r = await company.client.post(f"/v1/conversations/{cid}/resolve")
    assert r.status_code == 200, r.text
    r = await snooze(company.client, cid, (now + timedelta(hours=1)).isoformat())
    assert r.status_code == 422 and "reopen it first" in r.json()["detail"], r.text
    assert (await conversation(company.client, cid))["snoozed_until"] is None
