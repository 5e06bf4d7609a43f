"""An agent who takes a conversation over while the bot is still working on a message wins:
the bot, finding the conversation no longer its own when it comes to write, stays silent."""

from __future__ import annotations

import asyncio
import time

import psycopg

from atende.db.url import libpq_url
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
