"""The durable queue: enqueue in the caller's transaction, dead letters, stalled jobs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.runtime import Runtime
from tests.conftest import ROOT, CompanyCtx

ATENDE = str(ROOT / ".venv" / "bin" / "atende")


async def _jobs_for(runtime: Runtime, message_id: uuid.UUID) -> list[tuple[str, str]]:
    async with runtime.db.transaction() as session:
        rows = await session.execute(
            text("SELECT task_name, status FROM procrastinate_jobs WHERE args->>'message_id' = :m"),
            {"m": str(message_id)},
        )
        return [(r[0], r[1]) for r in rows]


async def test_a_rolled_back_message_leaves_no_job_and_a_committed_one_leaves_exactly_one(
    runtime: Runtime, company: CompanyCtx
) -> None:
    inbound = InboundMessage(channel="api", contact_external_id="rollback", text="Qual o prazo de entrega?")
    session = runtime.db.company_session(company.id)
    async with session:
        await session.begin()
        received = await conversations.receive_inbound(await session.connection(), company.id, inbound)
        rolled_back_id = received.message.id
        await session.rollback()
    assert await _jobs_for(runtime, rolled_back_id) == []

    async with runtime.db.transaction(company.id) as session:
        received = await conversations.receive_inbound(await session.connection(), company.id, inbound)
    jobs = await _jobs_for(runtime, received.message.id)
    assert [name for name, _ in jobs] == ["engine:run_turn"]


async def test_a_job_that_cannot_run_becomes_a_dead_letter_listed_by_api_and_cli(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx, db_url: str
) -> None:
    async with runtime.db.transaction(company.id) as session:
        job_id = await runtime.jobs.enqueue(session, "engine:no_such_task", company_id=str(company.id))
    for _ in range(100):
        async with runtime.db.transaction() as session:
            status = await session.scalar(
                text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            )
        if status == "failed":
            break
        await asyncio.sleep(0.1)
    assert status == "failed"

    listed = (await company.client.get("/v1/jobs/failed")).json()
    assert [j["id"] for j in listed if j["id"] == job_id] == [job_id]
    assert listed[0]["task"] == "engine:no_such_task"
    others = (await other_company.client.get("/v1/jobs/failed")).json()
    assert job_id not in [j["id"] for j in others]

    out = subprocess.run(
        [ATENDE, "jobs", "failed", "--json"],
        env={**os.environ, "ATENDE_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert job_id in [j["id"] for j in json.loads(out.stdout)]


async def test_a_job_refused_by_its_queueing_lock_leaves_the_callers_transaction_usable(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """The second of two jobs with one queueing lock is not added, and the transaction that
    tried goes on and commits what else it wrote."""
    lock = f"test-lock-{uuid.uuid4().hex}"
    later = datetime.now(UTC) + timedelta(days=1)  # no worker runs it during the test
    async with runtime.db.transaction(company.id) as session:
        first, second = [
            await runtime.jobs.enqueue(
                session,
                "engine:announce_opening",
                queueing_lock=lock,
                schedule_at=later,
                company_id=str(company.id),
            )
            for _ in range(2)
        ]
        still = await session.scalar(text("SELECT 1"))
    assert first is not None
    assert second is None
    assert still == 1
    async with runtime.db.transaction() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :l"), {"l": lock}
        )
    assert count == 1


async def test_a_job_with_a_queueing_lock_deferred_first_in_a_rolled_back_transaction_is_not_kept(
    runtime: Runtime, company: CompanyCtx
) -> None:
    lock = f"test-lock-{uuid.uuid4().hex}"
    later = datetime.now(UTC) + timedelta(days=1)
    session = runtime.db.company_session(company.id)
    async with session:
        await session.begin()
        job = await runtime.jobs.enqueue(
            session,
            "engine:announce_opening",
            queueing_lock=lock,
            schedule_at=later,
            company_id=str(company.id),
        )
        await session.rollback()
    assert job is not None
    async with runtime.db.transaction() as check:
        count = await check.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :l"), {"l": lock}
        )
    assert count == 0
