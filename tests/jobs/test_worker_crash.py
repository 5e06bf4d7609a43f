"""A worker killed with SIGKILL in the middle of a bot turn: the job runs again elsewhere
and the customer gets exactly one reply.

The test runs real ``atende worker`` processes on a database of its own. To catch the
first worker mid-turn, the test holds a row lock on the conversation: the turn has read
the knowledge base and is writing its reply when it blocks, and is killed right there.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest
from sqlalchemy import func, select, text

from atende.bootstrap import BLUEPRINTS
from atende.config import Settings
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import InboundMessage
from atende.db import migrate
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.jobs.queue import JobQueue
from atende.knowledge import service as knowledge
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import DEMO_KB, ROOT, make_database

ATENDE = str(ROOT / ".venv" / "bin" / "atende")


@pytest.fixture
async def crash_db(pg_url: str) -> AsyncIterator[tuple[str, Runtime]]:
    url = make_database(pg_url, f"crash_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    db = Database(url, pool_size=2)
    settings = Settings(database_url=url, secret_key="crash-test-secret")  # type: ignore[arg-type]
    runtime = Runtime(settings=settings, db=db, jobs=JobQueue(db.url, BLUEPRINTS), listener=Listener(db.url))
    await runtime.jobs.open()
    yield url, runtime
    await runtime.jobs.close()
    await db.dispose()


def start_worker(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": url,
        "ATENDE_SECRET_KEY": "crash-test-secret",
        "ATENDE_STALLED_JOB_SECONDS": "3",
        "ATENDE_MIGRATE_ON_START": "false",
    }
    with log.open("ab") as out:
        return subprocess.Popen([ATENDE, "worker", "--name", name], env=env, stdout=out, stderr=out)


async def shop_with_shipping_answers(runtime: Runtime, name: str) -> uuid.UUID:
    """A company whose knowledge base answers "Qual o prazo de entrega?"."""
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=name, slug=f"{name}-{uuid.uuid4().hex[:6]}")
    path = DEMO_KB / "pt" / "entregas.md"
    await knowledge.ingest(
        runtime.db,
        company.id,
        source="entregas.md",
        data=path.read_bytes(),
        max_bytes=10**6,
        chunking=knowledge.Chunking(),
        embedder=None,
        lang="pt",
    )
    return company.id


async def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_a_worker_killed_mid_turn_leaves_the_customer_exactly_one_reply(
    crash_db: tuple[str, Runtime], tmp_path: Path
) -> None:
    url, runtime = crash_db
    company_id = await shop_with_shipping_answers(runtime, "crash")
    async with runtime.db.transaction(company_id) as session:
        received = await conversations.receive_inbound(
            await session.connection(),
            company_id,
            InboundMessage(channel="api", contact_external_id="ze", text="Qual o prazo de entrega?"),
        )
    conversation_id, message_id = received.conversation_id, received.message.id

    async def job_status() -> str | None:
        async with runtime.db.transaction() as session:
            return await session.scalar(
                text(
                    "SELECT status::text FROM procrastinate_jobs"
                    " WHERE task_name = 'engine:run_turn' AND args->>'message_id' = :m"
                ),
                {"m": str(message_id)},
            )

    async def bot_replies() -> int:
        async with runtime.db.transaction(company_id) as session:
            return int(
                await session.scalar(
                    select(func.count()).where(Message.reply_to_id == message_id, Message.author == "bot")
                )
                or 0
            )

    blocker = await psycopg.AsyncConnection.connect(libpq_url(url))
    await blocker.execute("SELECT 1 FROM conversations WHERE id = %s FOR UPDATE", (conversation_id,))
    first = start_worker(url, "doomed", tmp_path / "worker1.log")
    try:

        async def turn_blocked_on_the_lock() -> bool:
            async with runtime.db.transaction() as session:
                waiting = await session.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            return bool(waiting) and await job_status() == "doing"

        await wait_for(turn_blocked_on_the_lock, 60, "the first worker to block mid-turn")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        await blocker.rollback()
        await blocker.close()
    assert await bot_replies() == 0
    assert await job_status() == "doing"  # orphaned: its worker is gone

    second = start_worker(url, "rescuer", tmp_path / "worker2.log")
    try:

        async def answered() -> bool:
            return await bot_replies() >= 1 and await job_status() == "succeeded"

        await wait_for(answered, 60, "the rescued turn to answer")
        await asyncio.sleep(2)  # a duplicate, if any, would land now
        assert await bot_replies() == 1
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
    async with runtime.db.transaction(company_id) as session:
        reply = await session.scalar(select(Message).where(Message.reply_to_id == message_id))
    assert reply is not None and "dias úteis" in reply.text


async def test_a_worker_that_loses_its_database_connections_starts_again_and_answers(
    crash_db: tuple[str, Runtime], pg_url: str, tmp_path: Path
) -> None:
    """As when PostgreSQL restarts: every connection of the worker is terminated, its
    LISTEN connection with them. procrastinate's worker stops by itself then; atende's
    starts it again, so the next customer still gets an answer and the process never exits."""
    url, runtime = crash_db
    company_id = await shop_with_shipping_answers(runtime, "restart")

    async def ask(contact: str) -> uuid.UUID:
        async with runtime.db.transaction(company_id) as session:
            received = await conversations.receive_inbound(
                await session.connection(),
                company_id,
                InboundMessage(channel="api", contact_external_id=contact, text="Qual o prazo de entrega?"),
            )
        return received.message.id

    def answered(message_id: uuid.UUID):  # type: ignore[no-untyped-def]
        async def check() -> bool:
            async with runtime.db.transaction(company_id) as session:
                count = await session.scalar(
                    select(func.count()).where(Message.reply_to_id == message_id, Message.author == "bot")
                )
            return bool(count)

        return check

    log_path = tmp_path / "worker.log"
    worker = start_worker(url, "survivor", log_path)
    try:
        await wait_for(answered(await ask("before")), 60, "the first answer")
        # the database refuses connections for a few seconds and every open one is cut
        database = psycopg.conninfo.conninfo_to_dict(libpq_url(url))["dbname"]
        async with await psycopg.AsyncConnection.connect(libpq_url(pg_url), autocommit=True) as admin:
            await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                cut = await admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                    (database,),
                )
                assert ((await cut.fetchone()) or (0,))[0] >= 1
                await asyncio.sleep(4)
            finally:
                await admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await runtime.db.engine.dispose()  # this test's own pooled connections were cut too

        async def restarted() -> bool:
            return "worker.stopped_unexpectedly" in log_path.read_text(errors="replace")

        await wait_for(restarted, 30, "the worker to notice and start again")
        await wait_for(answered(await ask("after")), 60, "an answer after the connections were cut")
        assert worker.poll() is None, "the worker process exited"
    finally:
        worker.send_signal(signal.SIGINT)
        try:
            assert worker.wait(timeout=20) == 0  # a signal still stops it, cleanly
        finally:
            if worker.poll() is None:
                worker.kill()
