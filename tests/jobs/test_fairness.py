"""A fair queue (migration 0011): one company's flood of messages does not hold up another
company's replies, and each conversation is still answered in order."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

FLOOD = 30


def message(contact: str, body: str = "Preciso de ajuda com meu pedido") -> InboundMessage:
    return InboundMessage(channel="api", contact_external_id=contact, text=body)


async def replies_in_order(runtime: Runtime, companies: list[uuid.UUID], expected: int) -> list[uuid.UUID]:
    """The companies of the bot's replies, in the order they were written, once ``expected``
    replies are there."""
    async with asyncio.timeout(90):
        while True:
            async with runtime.db.transaction() as session:
                rows = (
                    await session.execute(
                        text(
                            "SELECT company_id FROM messages WHERE author = 'bot'"
                            " AND company_id = ANY(:companies) ORDER BY created_at, seq"
                        ),
                        {"companies": companies},
                    )
                ).all()
            if len(rows) >= expected:
                return [row[0] for row in rows]
            await asyncio.sleep(0.1)


async def test_a_flood_of_one_company_does_not_hold_up_anothers_reply(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    flooding, normal = company.id, other_company.id
    # FLOOD customers of one company write at once (one transaction: the worker sees them all)
    async with runtime.db.transaction(flooding) as session:
        connection = await session.connection()
        for i in range(FLOOD):
            await conversations.receive_inbound(connection, flooding, message(f"flood-{i}"))
    # then one customer of another company
    async with runtime.db.transaction(normal) as session:
        await conversations.receive_inbound(await session.connection(), normal, message("alone"))

    order = await replies_in_order(runtime, [flooding, normal], FLOOD + 1)
    # first in, first out, it would be answered last, after the whole flood; now it waits for
    # at most the flood's turns the worker had already started (4 at a time) and one more
    assert order.index(normal) <= 6, order.index(normal)


async def test_a_conversations_messages_keep_their_order_when_the_backlog_shrinks(
    runtime: Runtime, company: CompanyCtx
) -> None:
    session = runtime.db.company_session(company.id)
    async with session:
        await session.begin()  # rolled back: no worker ever sees these jobs
        connection = await session.connection()
        for i in range(5):
            await conversations.receive_inbound(connection, company.id, message(f"other-{i}"))
        first = await conversations.receive_inbound(connection, company.id, message("same", "Oi"))
        # the other five are answered meanwhile: the backlog shrinks to the first message
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE status = 'todo'"
                " AND args->>'company_id' = :c AND args->>'message_id' <> :m"
            ),
            {"c": str(company.id), "m": str(first.message.id)},
        )
        second = await conversations.receive_inbound(connection, company.id, message("same", "Ainda aí?"))
        assert second.conversation_id == first.conversation_id
        rows = await session.execute(
            text("SELECT args->>'message_id', priority FROM procrastinate_jobs WHERE lock = :lock"),
            {"lock": f"conversation:{first.conversation_id}"},
        )
        priorities = dict(rows.all())
        await session.rollback()
    # the second message's turn must not overtake the first's (same lock: higher priority first)
    assert priorities[str(second.message.id)] <= priorities[str(first.message.id)] == -5
