"""The outbox: every outbound message is delivered by a job queued in the transaction that
stored it, through the conversation's channel (here ``LoopbackChannel``, whose provider is a
loopback HTTP server). Statuses never move back; retryable failures are retried, permanent
ones marked ``failed`` and announced (a live event, the ``message.delivery_failed`` webhook);
a worker killed before it sends leaves the message to the next one, delivered exactly once;
a status update that comes while ``send`` is still in flight is kept and applied."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import select, text

from atende.channels import accounts, intake, registry
from atende.channels.base import Account, StatusUpdate
from atende.channels.delivery import deliver
from atende.conversations import service as conversations
from atende.conversations.models import Message, PendingDeliveryStatus
from atende.conversations.schemas import InboundMessage
from atende.db.url import libpq_url
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.channels.loopback_channel import KIND, FakeProvider, LoopbackChannel
from tests.conftest import ROOT, CompanyCtx
from tests.fakes.loopback import running
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.jobs.test_worker_crash import crash_db, wait_for  # noqa: F401  (a fixture)


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackChannel]:
    channel = LoopbackChannel()
    registry.register(channel)  # in this process: the session's worker delivers through it
    yield channel
    registry.unregister(KIND)


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with running(FakeProvider()) as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


async def open_conversation(
    runtime: Runtime, company_id: uuid.UUID, provider: FakeProvider
) -> tuple[Account, uuid.UUID, str]:
    """An account of the loopback channel and a conversation a customer opened through it."""
    channel = registry.get(KIND)
    async with runtime.db.transaction(company_id) as session:
        row = await accounts.create(
            session,
            runtime.secret_key,
            kind=KIND,
            external_id=uuid.uuid4().hex,
            config={"endpoint": f"{provider.origin}/send"},
            secrets={"access_token": "tok"},
        )
        account = accounts.open_account(channel, row, runtime.secret_key)
    customer = f"55{uuid.uuid4().int % 10**11:011d}"
    inbound = InboundMessage(
        channel=KIND, contact_external_id=customer, text="oi", channel_message_id=customer
    )
    async with runtime.db.autocommit() as connection:
        received = await intake.receive(connection, company_id, channel, inbound, account)
    return account, received.conversation_id, customer


async def message(runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID | str) -> Message:
    async with runtime.db.transaction(company_id) as session:
        found = await session.get(Message, uuid.UUID(str(message_id)))
        assert found is not None
        return found


async def until_status(
    runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID | str, status: str, seconds: float = 30
) -> Message:
    deadline = time.monotonic() + seconds
    while (found := await message(runtime, company_id, message_id)).delivery_status != status:
        assert time.monotonic() < deadline, f"still {found.delivery_status}, not {status}"
        await asyncio.sleep(0.1)
    return found


async def agent_reply(company: CompanyCtx, conversation_id: uuid.UUID, text_: str) -> dict[str, Any]:
    r = await company.client.post(f"/v1/conversations/{conversation_id}/replies", json={"text": text_})
    assert r.status_code == 201, r.text
    reply = r.json()
    assert reply["delivery_status"] == "queued"  # stored with its delivery job, not yet sent
    return dict(reply)


async def test_a_reply_is_delivered_by_its_job_and_its_status_never_moves_back(
    loopback: LoopbackChannel, provider: FakeProvider, company: CompanyCtx, runtime: Runtime
) -> None:
    account, conversation_id, customer = await open_conversation(runtime, company.id, provider)
    reply = await agent_reply(company, conversation_id, "Seu pedido saiu hoje.")
    assert await delivery_jobs(runtime, reply["id"]) == 1  # a push channel's: sent by its job

    sent = await until_status(runtime, company.id, reply["id"], "sent")
    [request] = provider.of(reply["id"])  # the message id is the provider's idempotency key
    assert (request.to, request.text) == (customer, "Seu pedido saiu hoje.")
    assert sent.provider_message_id == provider.delivered[reply["id"]]
    assert "delivery" not in sent.meta and sent.delivery_error is None
    # the job run again (a retry, a stalled job put back) finds it sent and sends nothing
    assert await deliver(runtime, company.id, sent.id, last_attempt=False) == "nothing to deliver"
    assert len(provider.of(reply["id"])) == 1

    update = StatusUpdate(provider_message_id=str(sent.provider_message_id), status="read")
    assert await loopback.apply_status(runtime, account, update)
    late = StatusUpdate(provider_message_id=str(sent.provider_message_id), status="delivered")
    assert await loopback.apply_status(runtime, account, late)  # found, and ignored
    read = await message(runtime, company.id, reply["id"])
    assert read.delivery_status == "read" and read.read_at is not None and read.delivered_at is not None
    items = (await company.client.get(f"/v1/conversations/{conversation_id}/messages")).json()["items"]
    [listed] = [m for m in items if m["id"] == reply["id"]]
    assert (listed["delivery_status"], listed["delivery_error"]) == ("read", None)
    [customer_message] = [m for m in items if m["author"] == "customer"]
    assert customer_message["delivery_status"] is None


async def delivery_jobs(runtime: Runtime, message_id: str) -> int:
    async with runtime.db.transaction() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_jobs"
                    " WHERE task_name = 'channels:deliver_message' AND args->>'message_id' = :m"
                ),
                {"m": message_id},
            )
            or 0
        )


async def test_a_reply_on_a_live_channel_is_sent_when_stored_with_no_delivery_job(
    company: CompanyCtx, runtime: Runtime
) -> None:
    """The web chat and the API deliver through the live stream, which hears a reply when it
    commits: the reply is ``sent`` (under its own id) from the start, and no job is queued."""
    async with runtime.db.transaction(company.id) as session:
        received = await conversations.receive_inbound(
            await session.connection(),
            company.id,
            InboundMessage(channel="api", contact_external_id=uuid.uuid4().hex, text="oi"),
        )
    r = await company.client.post(f"/widget/v1/{company.widget_key}/conversations")
    assert r.status_code == 201, r.text
    chat = r.json()["conversation_id"]
    for conversation_id in (received.conversation_id, chat):
        r = await company.client.post(
            f"/v1/conversations/{conversation_id}/replies", json={"text": "Oi! Sou a Ana."}
        )
        assert r.status_code == 201, r.text
        reply = r.json()
        assert reply["delivery_status"] == "sent"
        stored = await message(runtime, company.id, reply["id"])
        assert (stored.delivery_status, stored.provider_message_id) == ("sent", reply["id"])
        assert await delivery_jobs(runtime, reply["id"]) == 0


async def pending_statuses(runtime: Runtime, company_id: uuid.UUID) -> dict[str, str]:
    async with runtime.db.transaction(company_id) as session:
        rows = await session.execute(
            select(PendingDeliveryStatus.provider_message_id, PendingDeliveryStatus.status)
        )
        return {str(provider_id): str(status) for provider_id, status in rows}


async def test_a_status_reported_while_send_is_in_flight_is_applied_once_the_send_answers(
    loopback: LoopbackChannel, provider: FakeProvider, company: CompanyCtx, runtime: Runtime
) -> None:
    """WhatsApp reports ``delivered`` and ``read`` before its send call has answered with the
    id they name: they are kept, and the message ends ``read``, not ``sent``."""
    account, conversation_id, _ = await open_conversation(runtime, company.id, provider)
    release = provider.hold("[slow]")
    try:
        reply = await agent_reply(company, conversation_id, "Seu pedido chegou? [slow]")
        deadline = time.monotonic() + 20
        while not provider.of(reply["id"]):  # accepted by the provider, its answer held back
            assert time.monotonic() < deadline, "the delivery job never called the provider"
            await asyncio.sleep(0.05)
        provider_id = provider.delivered[reply["id"]]
        for status in ("delivered", "read", "delivered"):  # the late "delivered" does not win
            update = StatusUpdate(provider_message_id=provider_id, status=status)  # type: ignore[arg-type]
            assert not await loopback.apply_status(runtime, account, update)  # no message has the id yet
        assert (await message(runtime, company.id, reply["id"])).delivery_status == "queued"
        assert (await pending_statuses(runtime, company.id))[provider_id] == "read"
    finally:
        release.set()
    read = await until_status(runtime, company.id, reply["id"], "read")
    assert read.provider_message_id == provider_id
    assert read.delivered_at is not None and read.read_at is not None
    assert len(provider.of(reply["id"])) == 1
    assert provider_id not in await pending_statuses(runtime, company.id)  # applied, not kept


async def test_a_status_nobody_sends_for_is_forgotten_after_an_hour(
    loopback: LoopbackChannel, provider: FakeProvider, company: CompanyCtx, runtime: Runtime
) -> None:
    """An update for an id no send of ours records (a message sent with another tool) waits
    an hour at most; the hourly purge forgets it, and leaves the recent ones."""
    account, _conversation_id, _ = await open_conversation(runtime, company.id, provider)
    stale, recent = f"elsewhere-{uuid.uuid4().hex}", f"in-flight-{uuid.uuid4().hex}"
    for provider_id in (stale, recent):
        update = StatusUpdate(provider_message_id=provider_id, status="delivered")
        assert not await loopback.apply_status(runtime, account, update)
    async with runtime.db.transaction(company.id) as session:
        await session.execute(
            text(
                "UPDATE pending_delivery_statuses SET received_at = now() - interval '61 minutes'"
                " WHERE provider_message_id = :p"
            ),
            {"p": stale},
        )
    async with runtime.db.transaction() as session:
        assert await conversations.purge_pending_statuses(session) >= 1
    assert await pending_statuses(runtime, company.id) == {recent: "delivered"}


async def test_a_retryable_failure_is_retried_and_sent_once(
    loopback: LoopbackChannel, provider: FakeProvider, company: CompanyCtx, runtime: Runtime
) -> None:
    _, conversation_id, _ = await open_conversation(runtime, company.id, provider)
    provider.answer("[flaky]", 503, 503)  # the provider is down for two attempts
    reply = await agent_reply(company, conversation_id, "Já verifiquei. [flaky]")

    sent = await until_status(runtime, company.id, reply["id"], "sent", seconds=40)
    assert [r.answered for r in provider.of(reply["id"])] == [503, 503, 200]
    assert sent.provider_message_id == provider.delivered[reply["id"]]
    await asyncio.sleep(1)  # a duplicate, if any, would land now
    assert len(provider.of(reply["id"])) == 3


async def test_a_permanent_failure_is_marked_failed_and_announced(
    loopback: LoopbackChannel,
    provider: FakeProvider,
    receiver: WebhookReceiver,
    company: CompanyCtx,
    runtime: Runtime,
    live_app: FastAPI,
) -> None:
    path = receiver.new_path()
    r = await company.client.post(
        "/v1/webhooks", json={"url": receiver.url(path), "events": ["message.delivery_failed"]}
    )
    assert r.status_code == 201, r.text
    _, conversation_id, _ = await open_conversation(runtime, company.id, provider)
    provider.always_answer("[refused]", 400, "recipient is not on the network")
    listener = live_app.state.runtime.listener
    with listener.subscribe(str(conversation_id)) as events:
        reply = await agent_reply(company, conversation_id, "Olá! [refused]")
        failed = await until_status(runtime, company.id, reply["id"], "failed")
        kinds: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while not any(e.get("kind") == "delivery_failed" for e in kinds):
            assert time.monotonic() < deadline, kinds
            event = await events.next(1.0)
            if event is not None:
                kinds.append(event)
    assert failed.delivery_error == "400 recipient is not on the network"
    assert len(provider.of(reply["id"])) == 1  # permanent: not retried
    [event] = [e for e in kinds if e.get("kind") == "delivery_failed"]
    assert event["message_id"] == reply["id"] and event["reason"] == failed.delivery_error

    [request] = await receiver.wait_for(path, lambda got: len(got) >= 1)
    assert request.event["type"] == "message.delivery_failed"
    assert request.event["data"] == {
        "message_id": reply["id"],
        "conversation_id": str(conversation_id),
        "channel": KIND,
        "provider_message_id": None,
        "reason": "400 recipient is not on the network",
    }
    items = (await company.client.get(f"/v1/conversations/{conversation_id}/messages")).json()["items"]
    [listed] = [m for m in items if m["id"] == reply["id"]]
    assert (listed["delivery_status"], listed["delivery_error"]) == ("failed", failed.delivery_error)


def start_worker(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    """An ``atende worker`` that knows the loopback channel (``tests/channels/outbox_worker.py``)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "ATENDE_DATABASE_URL": url,
        "ATENDE_SECRET_KEY": "crash-test-secret",
        "ATENDE_STALLED_JOB_SECONDS": "3",
        "ATENDE_MIGRATE_ON_START": "false",
    }
    command = [sys.executable, "-m", "tests.channels.outbox_worker", "worker", "--name", name]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=out, cwd=ROOT)


async def test_a_worker_killed_before_it_sends_leaves_the_reply_to_the_next_delivered_once(
    crash_db: tuple[str, Runtime],  # noqa: F811
    loopback: LoopbackChannel,  # to create the account here (the workers register their own)
    provider: FakeProvider,
    tmp_path: Path,
) -> None:
    url, runtime = crash_db
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name="outbox", slug=f"outbox-{uuid.uuid4().hex[:6]}")
    _, conversation_id, customer = await open_conversation(runtime, company.id, provider)
    async with runtime.db.transaction(company.id) as session:
        reply = await conversations.post_agent_reply(
            session, runtime.jobs, conversation_id, text="Sou a Ana, já volto.", agent_id="ana"
        )
    assert reply.delivery_status == "queued"

    async def job_status() -> str | None:
        async with runtime.db.transaction() as session:
            return await session.scalar(
                text(
                    "SELECT status::text FROM procrastinate_jobs"
                    " WHERE task_name = 'channels:deliver_message' AND args->>'message_id' = :m"
                ),
                {"m": str(reply.id)},
            )

    assert await job_status() == "todo"  # queued with the message, in its transaction
    # the job blocks where it reads the message to send, and its worker is killed there
    blocker = await psycopg.AsyncConnection.connect(libpq_url(url))
    await blocker.execute("SELECT 1 FROM messages WHERE id = %s FOR UPDATE", (reply.id,))
    first = start_worker(url, "doomed", tmp_path / "worker1.log")
    try:

        async def delivery_blocked() -> bool:
            async with runtime.db.transaction() as session:
                waiting = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            return bool(waiting) and await job_status() == "doing"

        await wait_for(delivery_blocked, 60, "the first worker to block before sending")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        await blocker.rollback()
        await blocker.close()
    assert provider.of(str(reply.id)) == []
    assert (await message(runtime, company.id, reply.id)).delivery_status == "queued"
    assert await job_status() == "doing"  # orphaned: its worker is gone

    second = start_worker(url, "rescuer", tmp_path / "worker2.log")
    try:

        async def delivered() -> bool:
            return await job_status() == "succeeded"

        await wait_for(delivered, 60, "the rescued delivery")
        await asyncio.sleep(2)  # a duplicate, if any, would land now
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
    [request] = provider.of(str(reply.id))
    assert (request.to, request.text, request.answered) == (customer, "Sou a Ana, já volto.", 200)
    sent = await message(runtime, company.id, reply.id)
    assert (sent.delivery_status, sent.provider_message_id) == ("sent", provider.delivered[str(reply.id)])


async def test_a_damaged_account_reference_fails_the_delivery_instead_of_leaving_it_queued(
    loopback: LoopbackChannel, provider: FakeProvider, company: CompanyCtx, runtime: Runtime
) -> None:
    """The account a reply goes out through is read from the customer's latest message; a
    reference that is not an id (edited by hand, an old import) ends in ``failed`` with the
    reason at once, not in retries and a message ``queued`` for ever."""
    _account, conversation_id, _customer = await open_conversation(runtime, company.id, provider)
    async with runtime.db.transaction(company.id) as session:
        await session.execute(
            text(
                "UPDATE messages SET meta = jsonb_set(meta, '{channel_account_id}', '\"not-an-id\"')"
                " WHERE conversation_id = :c AND author = 'customer'"
            ),
            {"c": conversation_id},
        )
    reply = await agent_reply(company, conversation_id, "Já verifico.")
    failed = await until_status(runtime, company.id, reply["id"], "failed", seconds=10)
    assert failed.delivery_error is not None and "no enabled" in failed.delivery_error
    assert provider.of(reply["id"]) == []


def deliveries_counted(status: str) -> float:
    """``atende_message_deliveries_total`` of the loopback channel, as /metrics exports it."""
    value = REGISTRY.get_sample_value("atende_message_deliveries_total", {"channel": KIND, "status": status})
    return value or 0.0


async def test_each_delivery_status_a_message_reaches_is_counted_for_prometheus(
    loopback: LoopbackChannel, provider: FakeProvider, company: CompanyCtx, runtime: Runtime
) -> None:
    before = {status: deliveries_counted(status) for status in ("sent", "delivered", "failed")}
    _, conversation_id, _ = await open_conversation(runtime, company.id, provider)
    provider.always_answer("[gone]", 400, "recipient is not on the network")
    refused = await agent_reply(company, conversation_id, "Olá! [gone]")
    accepted = await agent_reply(company, conversation_id, "Seu pedido saiu.")
    await until_status(runtime, company.id, refused["id"], "failed")
    sent = await until_status(runtime, company.id, accepted["id"], "sent")
    async with runtime.db.transaction(company.id) as session:
        assert sent.provider_message_id is not None
        await conversations.apply_delivery_status(
            session, runtime.jobs, KIND, sent.provider_message_id, "delivered"
        )
        # the same report again moves nothing and counts nothing
        await conversations.apply_delivery_status(
            session, runtime.jobs, KIND, sent.provider_message_id, "delivered"
        )
    assert {s: deliveries_counted(s) - before[s] for s in before} == {"sent": 1, "delivered": 1, "failed": 1}

    # a status change rolled back is not counted
    read_before = deliveries_counted("read")

    async def read_then_fail() -> None:
        async with runtime.db.transaction(company.id) as session:
            await conversations.apply_delivery_status(session, runtime.jobs, KIND, provider_id, "read")
            raise RuntimeError("the transaction fails after the change")

    provider_id = sent.provider_message_id
    with pytest.raises(RuntimeError):
        await read_then_fail()
    assert (await message(runtime, company.id, accepted["id"])).delivery_status == "delivered"
    assert deliveries_counted("read") == read_before
