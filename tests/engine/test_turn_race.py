"""What happens around a bot turn that is still running: an agent who takes the
conversation over wins (the bot, finding it no longer its own when it comes to write,
stays silent), and a turn that fails for good hands the customer to a person, saying why in
one line that quotes none of the failed statement's values (the customer's words)."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from atende.db.url import libpq_url
from atende.engine import tasks
from atende.engine.turn import Ports, hand_off_after_failure
from atende.jobs.queue import RETRY
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask


async def test_an_agent_taking_over_mid_turn_leaves_the_bot_silent(
    kb_company: CompanyCtx, db_url: str
) -> None:
    first = await ask(kb_company.client, "Qual o prazo de entrega?", contact="race")
    cid = first["conversation_id"]

    # hold the bot's next turn inside its pipeline: retrieval cannot read the chunks
    async with await psycopg.AsyncConnection.connect(libpq_url(db_url)) as blocker:
        await blocker.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
        r = await kb_company.client.post(
            "/v1/messages", json={"contact": {"external_id": "race"}, "text": "E o frete é grátis?"}
        )
        assert r.status_code == 201
        question_id = r.json()["message"]["id"]
        deadline = time.monotonic() + 15
        async with await psycopg.AsyncConnection.connect(libpq_url(db_url), autocommit=True) as probe:
            while time.monotonic() < deadline:
                cur = await probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query ILIKE '%chunks%'"
                )
                row = await cur.fetchone()
                if row and row[0]:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the bot turn never reached retrieval")
        taken = await kb_company.client.post(
            f"/v1/conversations/{cid}/replies", json={"text": "Deixa comigo!"}
        )
        assert taken.status_code == 201
        await blocker.rollback()

    await asyncio.sleep(2)  # the turn resumes, re-checks the conversation, and must not write
    messages = (await kb_company.client.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    assert [m["author"] for m in messages] == ["customer", "bot", "customer", "agent"]
    assert not [m for m in messages if m["reply_to_id"] == question_id]
    detail = (await kb_company.client.get(f"/v1/conversations/{cid}")).json()
    assert detail["state"] == "human"


async def test_a_turn_that_fails_for_good_hands_the_customer_to_a_person(
    kb_company: CompanyCtx, db_url: str, runtime: Runtime
) -> None:
    first = await ask(kb_company.client, "Qual o prazo de entrega?", contact="falha")
    cid = first["conversation_id"]
    async with await psycopg.AsyncConnection.connect(libpq_url(db_url)) as blocker:
        # the live turn is held in retrieval while this one "fails for good"
        await blocker.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
        r = await kb_company.client.post(
            "/v1/messages", json={"contact": {"external_id": "falha"}, "text": "E o frete?"}
        )
        question_id = uuid.UUID(r.json()["message"]["id"])
        handed = await hand_off_after_failure(runtime, kb_company.id, question_id, "RuntimeError: boom")
        assert handed is True
        await blocker.rollback()
    assert await hand_off_after_failure(runtime, kb_company.id, question_id, "again") is False

    await asyncio.sleep(2)  # the held turn resumes and must stay silent
    messages = (await kb_company.client.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    replies = [m for m in messages if m["reply_to_id"] == str(question_id)]
    assert len(replies) == 1
    assert replies[0]["text"].startswith("Tive um problema para responder sua mensagem")
    detail = (await kb_company.client.get(f"/v1/conversations/{cid}")).json()
    assert detail["state"] == "waiting_human"
    assert detail["transitions"][-1]["reason"] == "the bot could not answer: RuntimeError: boom"
    # the failure is in the conversation's traces, its error shown (the dashboard's reasoning page)
    traces = (await kb_company.client.get(f"/v1/conversations/{cid}/traces")).json()
    [failed] = [t for t in traces if t["message_id"] == str(question_id)]
    assert (failed["decision"], failed["reply_message_id"]) == ("handoff", replies[0]["id"])
    assert failed["steps"] == [{"step": "failed", "ms": 0.0, "error": "RuntimeError: boom"}]


@asynccontextmanager
async def held_turns(db_url: str) -> Any:
    """While open, live bot turns wait in retrieval (they cannot read the chunks)."""
    async with await psycopg.AsyncConnection.connect(libpq_url(db_url)) as blocker:
        await blocker.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")
        yield
        await blocker.rollback()


async def test_a_turn_failing_on_the_database_hands_off_saying_why_without_the_customers_words(
    kb_company: CompanyCtx, db_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await ask(kb_company.client, "Qual o prazo de entrega?", contact="falha-db")
    cid = first["conversation_id"]
    words = "Quero trocar a camiseta azul tamanho M que a Ana Souza comprou"
    this_call = None
    real_run_turn = tasks.run_turn

    async def failing_turn(rt: Runtime, ports: Ports, company: uuid.UUID, message: uuid.UUID) -> str:
        if asyncio.current_task() is not this_call:  # the live server's own turns run as usual
            return await real_run_turn(rt, ports, company, message)
        async with rt.db.transaction(company) as session:  # fails, the message among its values
            await session.execute(text("SELECT 1 / 0 WHERE CAST(:text AS text) IS NOT NULL"), {"text": words})
        raise AssertionError("the statement should have failed")

    monkeypatch.setattr(tasks, "run_turn", failing_turn)
    async with held_turns(db_url):
        r = await kb_company.client.post(
            "/v1/messages", json={"contact": {"external_id": "falha-db"}, "text": words}
        )
        question_id = r.json()["message"]["id"]
        last_attempt: Any = SimpleNamespace(
            additional_context={"runtime": runtime}, job=SimpleNamespace(attempts=RETRY.max_attempts)
        )
        this_call = asyncio.current_task()
        with pytest.raises(DBAPIError):  # raised again: procrastinate buries the job
            await tasks.run_turn_job(last_attempt, str(kb_company.id), question_id)
        this_call = None

    detail = (await kb_company.client.get(f"/v1/conversations/{cid}")).json()
    assert detail["state"] == "waiting_human"
    assert detail["transitions"][-1]["reason"] == (
        "the bot could not answer: DataError: (psycopg.errors.DivisionByZero) division by zero"
    )
