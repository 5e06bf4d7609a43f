"""Application events (``/app/logs``, ``GET /v1/events``): each source records its event where
the failure happens (a delivery to a provider that refuses the connection, a job that fails
for good, a webhook nobody answers, a refused credential, an LLM circuit that opens),
redacted as the logs are; a company's retention prunes; filters and keyset paging; a failed
job retried from the API runs again; a company sees only its own, a platform session all."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from atende.channels import accounts, intake, registry
from atende.channels.delivery import deliver
from atende.conversations.schemas import InboundMessage
from atende.engine.tasks import llm_breakers
from atende.errors import InvalidInput
from atende.observability import credentials, events
from atende.observability.credentials import Credential, CredentialMonitor, Verdict
from atende.observability.models import AppEvent
from atende.runtime import Runtime
from tests.channels.loopback_channel import KIND, LoopbackChannel
from tests.conftest import CompanyCtx, free_port


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackChannel]:
    channel = LoopbackChannel()
    registry.register(channel)
    yield channel
    registry.unregister(KIND)


async def events_of(
    runtime: Runtime, company_id: uuid.UUID | None, kind: str | None = None
) -> list[AppEvent]:
    async with runtime.db.transaction() as session:
        stmt = select(AppEvent).order_by(AppEvent.created_at)
        stmt = stmt.where(
            AppEvent.company_id.is_(None) if company_id is None else AppEvent.company_id == company_id
        )
        if kind is not None:
            stmt = stmt.where(AppEvent.kind == kind)
        return list((await session.scalars(stmt)).all())


async def until_events(
    runtime: Runtime, company_id: uuid.UUID | None, kind: str, count: int = 1, seconds: float = 20
) -> list[AppEvent]:
    deadline = time.monotonic() + seconds
    while len(found := await events_of(runtime, company_id, kind)) < count:
        assert time.monotonic() < deadline, f"{len(found)} {kind} events, not {count}"
        await asyncio.sleep(0.1)
    return found


async def test_a_message_and_its_details_are_stored_redacted_as_the_logs_are(
    runtime: Runtime, company: CompanyCtx
) -> None:
    await events.record(
        runtime,
        events.DELIVERY_FAILED,
        "maria.silva@example.com at +55 11 98765-4321 refused (key sk-abcdefghijklmnop)",
        level="error",
        company_id=company.id,
        details={"to": "maria.silva@example.com", "phone": "+55 11 98765-4321", "api_token": "x"},
    )
    [event] = await events_of(runtime, company.id)
    assert event.message == "[email] at [phone] refused (key sk-[redacted])"
    assert event.details == {"to": "[email]", "phone": "[phone]", "api_token": "[redacted]"}
    async with runtime.db.transaction() as session:
        stored = await session.scalar(
            text("SELECT message || details::text FROM app_events WHERE id = :id"), {"id": event.id}
        )
    assert "maria" not in stored and "98765" not in stored


async def test_a_delivery_to_a_provider_that_refuses_the_connection_records_a_failed_delivery(
    loopback: LoopbackChannel, company: CompanyCtx, runtime: Runtime
) -> None:
    channel = registry.get(KIND)
    async with runtime.db.transaction(company.id) as session:
        row = await accounts.create(
            session,
            runtime.secret_key,
            kind=KIND,
            external_id=uuid.uuid4().hex,
            # nothing listens there: the connection is refused
            config={"endpoint": f"http://127.0.0.1:{free_port()}/send"},
            secrets={"access_token": "tok"},
        )
        account = accounts.open_account(channel, row, runtime.secret_key)
    inbound = InboundMessage(channel=KIND, contact_external_id="5511987654321", text="oi")
    async with runtime.db.autocommit() as connection:
        received = await intake.receive(connection, company.id, channel, inbound, account)
    r = await company.client.post(
        f"/v1/conversations/{received.conversation_id}/replies", json={"text": "Olá!"}
    )
    assert r.status_code == 201, r.text
    reply_id = uuid.UUID(r.json()["id"])

    assert await deliver(runtime, company.id, reply_id, last_attempt=True) == "failed"
    [event] = await until_events(runtime, company.id, events.DELIVERY_FAILED)
    assert event.level == "error"
    assert event.conversation_id == received.conversation_id
    assert event.message.startswith(f"A {KIND} message could not be delivered: ConnectError")
    assert event.details["message_id"] == str(reply_id)

    listed = (await company.client.get("/v1/events", params={"kind": "delivery_failed"})).json()
    assert [e["id"] for e in listed["events"]] == [str(event.id)]
    assert listed["events"][0]["conversation_id"] == str(received.conversation_id)


async def job_status(runtime: Runtime, job_id: int | None) -> str:
    async with runtime.db.transaction() as session:
        return str(
            await session.scalar(text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id})
        )


async def test_a_job_that_fails_for_good_is_an_event_and_retrying_it_runs_it_again(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    # a task called with arguments it does not take fails at once (it has no retries)
    async with runtime.db.transaction(company.id) as session:
        job_id = await runtime.jobs.enqueue(session, "events:prune", company_id=str(company.id))
    [event] = await until_events(runtime, company.id, events.JOB_FAILED)
    assert event.level == "error"
    assert event.details["job_id"] == job_id
    assert event.details["task"] == "events:prune"
    assert event.message.startswith("events:prune failed: TypeError: ")

    # another company cannot retry it, nor can anyone retry a job that does not exist
    assert (await other_company.client.post(f"/v1/jobs/{job_id}/retry")).status_code == 404
    assert (await company.client.post("/v1/jobs/999999999/retry")).status_code == 404

    r = await company.client.post(f"/v1/jobs/{job_id}/retry")
    assert r.status_code == 202, r.text
    assert r.json() == {"id": job_id, "task": "events:prune", "status": "todo"}
    # it ran again (and failed again: its arguments are still wrong)
    await until_events(runtime, company.id, events.JOB_FAILED, count=2)
    deadline = time.monotonic() + 10
    while await job_status(runtime, job_id) != "failed":  # the worker marks it after the middleware
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert (await company.client.post(f"/v1/jobs/{job_id}/retry")).status_code == 202


async def test_a_webhook_nobody_answers_records_each_failed_attempt(
    runtime: Runtime, company: CompanyCtx
) -> None:
    r = await company.client.post(
        "/v1/webhooks",
        json={"url": f"http://127.0.0.1:{free_port()}/hook", "events": ["message.created"]},
    )
    assert r.status_code == 201, r.text
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": "webhook-event"}, "text": "Olá"}
    )
    assert r.status_code in (200, 201, 202), r.text
    [event, *_] = await until_events(runtime, company.id, events.WEBHOOK_FAILED)
    assert event.level == "warning"  # it will be tried again
    assert event.message.startswith("The webhook at 127.0.0.1 did not accept message.created (attempt 1)")
    assert event.details["attempt"] == 1


async def test_a_refused_channel_credential_is_recorded_once_while_it_keeps_failing(
    runtime: Runtime, company: CompanyCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refused() -> Verdict:
        return Verdict(False, "401 the token of +55 11 91234-5678 expired")

    async def source(_runtime: Runtime) -> list[Credential]:
        return [Credential("whatsapp", company.id, "number 12345", "fp-whatsapp-1", refused)]

    monkeypatch.setattr(credentials, "_SOURCES", {"test": source})
    monitor = CredentialMonitor(runtime, interval=0, timeout=2)
    await monitor.snapshot(wait=5)
    await monitor.snapshot(wait=5)  # still failing: no second event
    [event] = await events_of(runtime, company.id, events.CHANNEL_CREDENTIALS_FAILED)
    assert event.level == "error"
    assert event.message == (
        "The whatsapp credentials for number 12345 were refused: 401 the token of [phone] expired"
    )


async def test_an_llm_circuit_that_opens_is_an_event_of_the_company_whose_endpoint_it_is(
    runtime: Runtime, company: CompanyCtx
) -> None:
    breaker = await llm_breakers(runtime).get_breaker(f"company:{company.id}")
    for _ in range(runtime.settings.llm_breaker_failures):
        with pytest.raises(RuntimeError):
            async with breaker:
                raise RuntimeError("the endpoint failed")
    await events.settled()
    [event] = await events_of(runtime, company.id, events.LLM_CIRCUIT_CHANGED)
    assert (event.level, event.details["state"]) == ("error", "opened")


async def _arrange(runtime: Runtime, company_id: uuid.UUID, rows: list[dict[str, object]]) -> None:
    async with runtime.db.transaction() as session:
        for row in rows:
            session.add(AppEvent(company_id=company_id, details={}, **row))


async def test_filters_and_keyset_paging_newest_first(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    now = datetime.now(UTC)
    conversation = uuid.uuid4()
    await _arrange(
        runtime,
        company.id,
        [
            {
                "level": "error" if i % 2 else "warning",
                "kind": events.DELIVERY_FAILED if i % 3 else events.WEBHOOK_FAILED,
                "message": f"event number {i} {'timeout' if i == 4 else 'refused'}",
                "conversation_id": conversation if i in (2, 5) else None,
                "created_at": now - timedelta(minutes=10 - i),
            }
            for i in range(7)
        ],
    )
    await _arrange(
        runtime,
        other_company.id,
        [
            {
                "level": "error",
                "kind": "job_failed",
                "message": "other",
                "created_at": now - timedelta(minutes=9),
            }
        ],
    )

    seen: list[str] = []
    after = None
    while True:
        params = {"limit": 3, **({"after": after} if after else {})}
        page = (await company.client.get("/v1/events", params=params)).json()
        seen += [e["message"] for e in page["events"]]
        after = page["next_cursor"]
        if after is None:
            break
    assert seen == [f"event number {i} {'timeout' if i == 4 else 'refused'}" for i in reversed(range(7))]

    async def messages(**params: object) -> list[str]:
        r = await company.client.get("/v1/events", params=params)
        assert r.status_code == 200, r.text
        return [e["message"].split()[2] for e in r.json()["events"]]

    assert await messages(level="error") == ["5", "3", "1"]
    assert await messages(kind="webhook_failed") == ["6", "3", "0"]
    assert await messages(conversation_id=str(conversation)) == ["5", "2"]
    assert await messages(text="TIMEO") == ["4"]  # a prefix, any case
    assert await messages(text="number refused", level="warning") == ["6", "2", "0"]
    assert await messages(since=(now - timedelta(minutes=5, seconds=30)).isoformat()) == ["6", "5"]
    assert await messages(until=(now - timedelta(minutes=8, seconds=30)).isoformat()) == ["1", "0"]

    for bad, field in (
        ({"level": "info"}, "level"),
        ({"kind": "nothing"}, "kind"),
        ({"text": "!!"}, "text"),
        ({"after": "not-a-cursor"}, "after"),
    ):
        r = await company.client.get("/v1/events", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.text

    # a platform session (a superadmin's) sees every company's, or one company's
    async with runtime.db.transaction() as session:
        # other tests on this database add errors too: the window of this test's own rows
        # keeps theirs from pushing these out of the page
        window = events.EventFilter(
            level="error", since=now - timedelta(minutes=9, seconds=30), until=now - timedelta(minutes=8)
        )
        every = await events.list_events(session, window, limit=200)
        only = await events.list_events(session, events.EventFilter(company_id=other_company.id))
    assert {company.id, other_company.id} <= {e.company_id for e in every.events}
    assert [e.message for e in only.events] == ["other"]
    async with runtime.db.transaction(company.id) as session:
        own = await events.list_events(session, events.EventFilter(), limit=200)
    assert {e.company_id for e in own.events} == {company.id}


async def test_the_retention_prunes_each_company_after_its_own_days_in_batches(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    now = datetime.now(UTC)
    async with runtime.db.transaction() as session:
        await events.set_retention(session, company.id, 7)
    ages = [1, 6, 8, 9, 10, 29, 31]
    for company_id in (company.id, other_company.id):
        await _arrange(
            runtime,
            company_id,
            [
                {
                    "level": "warning",
                    "kind": "job_failed",
                    "message": f"{days} days",
                    "created_at": now - timedelta(days=days),
                }
                for days in ages
            ],
        )
    await events.prune(runtime, now=now, batch=2)
    assert [e.message for e in await events_of(runtime, company.id)] == ["6 days", "1 days"]
    assert [e.message for e in await events_of(runtime, other_company.id)] == [
        "29 days",
        "10 days",
        "9 days",
        "8 days",
        "6 days",
        "1 days",
    ]
    with pytest.raises(InvalidInput):
        async with runtime.db.transaction() as session:
            await events.set_retention(session, company.id, 0)
