"""A live notification published in the same transaction as a queued job still reaches the
dashboard's live listener once the transaction commits (the SLA work feared it was lost when
published after the job: procrastinate's trigger notifies through ``atende_notify_v1`` too,
migration 0033). Every way a transaction may queue a job before or after publishing: a plain
job, a job under a queueing lock (its savepoint), one such job refused (its savepoint rolled
back), and the notifications sent after the commit (``notify_after_commit``)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.pubsub import CHANNEL, Listener, Subscription, publish
from atende.db.url import libpq_url
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

TASK = "feedback:send_due_surveys"
LATER = datetime(2099, 1, 1, tzinfo=UTC)  # never run by the suite's worker; removed after


@pytest.fixture
async def listener(runtime: Runtime) -> AsyncIterator[Listener]:
    """A listener as the dashboard's (``runtime.listener``), connected before the test goes on."""
    live = Listener(runtime.db.url)
    probe = live.subscribe("probe")
    live.start()
    try:
        for _ in range(100):  # its LISTEN is in place once a probe comes back
            async with runtime.db.transaction() as session:
                await publish(session, "probe", "probe")
            if await probe.next(0.1) is not None:
                break
        else:
            raise AssertionError("the listener never connected")
        probe.close()
        yield live
    finally:
        await live.stop()
        async with runtime.db.transaction() as session:
            await session.execute(
                text("DELETE FROM procrastinate_jobs WHERE task_name = :task AND scheduled_at = :at"),
                {"task": TASK, "at": LATER},
            )


async def queue(runtime: Runtime, session: AsyncSession, lock: str | None) -> int | None:
    return await runtime.jobs.enqueue(session, TASK, queueing_lock=lock, schedule_at=LATER, timestamp=0)


async def heard(sub: Subscription) -> list[str]:
    kinds: list[str] = []
    while (event := await sub.next(2.0 if not kinds else 0.3)) is not None:
        kinds.append(str(event.get("kind")))
    return kinds


@pytest.mark.parametrize("after_commit", [False, True], ids=["by-commit", "after-commit"])
@pytest.mark.parametrize("queueing", ["plain", "queueing-lock", "refused"])
async def test_a_notification_beside_a_queued_job_reaches_the_live_listener(
    company: CompanyCtx, runtime: Runtime, listener: Listener, after_commit: bool, queueing: str
) -> None:
    topic = str(uuid.uuid4())
    lock = f"probe:{topic}" if queueing != "plain" else None
    if queueing == "refused":  # a job waiting under the same queueing lock: the next is refused
        async with runtime.db.transaction(company.id) as session:
            assert await queue(runtime, session, lock)
    with listener.subscribe(topic) as sub:
        async with runtime.db.transaction(company.id, notify_after_commit=after_commit) as session:
            await publish(session, topic, "before")
            job = await queue(runtime, session, lock)
            assert (job is None) == (queueing == "refused")
            await publish(session, topic, "after")
        assert await heard(sub) == ["before", "after"]


async def test_a_subscription_read_from_another_event_loop_hears_at_once(
    company: CompanyCtx, runtime: Runtime, live_app: FastAPI
) -> None:
    """The live server's listener runs in its own thread and loop; a consumer in another loop
    (this test's, as tests/sla read the dashboard's) is woken when the event arrives, not when
    its own wait times out (an asyncio queue wakes waiters of its own loop only): what made the
    SLA work think notifications were lost."""
    topic = str(uuid.uuid4())
    payload = json.dumps({"topic": topic, "kind": "probe"})

    def notify_later() -> None:  # from a thread of its own: this test's loop stays idle meanwhile
        time.sleep(0.3)  # the consumer waits first
        with psycopg.connect(libpq_url(runtime.db.url), autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    with live_app.state.runtime.listener.subscribe(topic) as sub:
        notifier = threading.Thread(target=notify_later)
        notifier.start()
        started = time.monotonic()
        event = await sub.next(10.0)
        waited = time.monotonic() - started
        notifier.join()
    assert event is not None and event["kind"] == "probe"
    assert waited < 5.0, f"heard only after {waited:.1f} s"
