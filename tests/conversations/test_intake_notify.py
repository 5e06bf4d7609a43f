"""A message received on the hot path (``Database.driver_autocommit()``) is announced after its
durable commit, not inside it (migration 0033): the live topic and the worker's wake-up for the
queued bot turn still arrive, and nothing is announced twice or left switched off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.db.pubsub import publish
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

CHANNELS = ("atende", "procrastinate_any_queue_v1")


@pytest.fixture
async def heard(runtime: Runtime) -> AsyncIterator[list[tuple[str, dict[str, object]]]]:
    """Every notification on the live channel and procrastinate's, as it arrives."""
    got: list[tuple[str, dict[str, object]]] = []
    async with await psycopg.AsyncConnection.connect(runtime.db.url, autocommit=True) as conn:
        for channel in CHANNELS:
            await conn.execute(f'LISTEN "{channel}"')

        async def listen() -> None:
            async for notify in conn.notifies():
                got.append((notify.channel, json.loads(notify.payload)))

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.05)
        yield got
        task.cancel()


async def settle(got: list[tuple[str, dict[str, object]]], done: Callable[[], bool]) -> None:
    for _ in range(250):
        if done():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not heard in 5 s; heard {got}")


def inbound(text: str, message_id: str) -> InboundMessage:
    return InboundMessage(channel="api", contact_external_id="bia", text=text, channel_message_id=message_id)


async def test_the_hot_path_announces_a_message_after_its_commit(
    company: CompanyCtx, runtime: Runtime, heard: list[tuple[str, dict[str, object]]]
) -> None:
    async with runtime.db.driver_autocommit() as connection:
        received = await conversations.receive_inbound(connection, company.id, inbound("Oi", "n-1"))
        assert received.bot_turn
        # committed, and nothing sent yet: the notifications wait beside the connection
        left = [
            (channel, json.loads(payload)) for channel, payload in connection.notices if channel in CHANNELS
        ]
        assert "procrastinate_queue_v1#default" in {channel for channel, _ in connection.notices}
        await asyncio.sleep(0.3)
        assert not [n for n in left if n in heard]
        # and the statement that deferred them left nothing switched off behind it
        await connection.fetch_one("SELECT pg_notify('atende', %s)", ('{"topic": "probe"}',))
        await settle(heard, lambda: ("atende", {"topic": "probe"}) in heard)
    topic = str(received.conversation_id)
    assert ("atende", {"topic": topic, "kind": "message", "seq": received.message.seq}) in left
    assert any(channel == "procrastinate_any_queue_v1" for channel, _ in left)
    await settle(heard, lambda: all(n in heard for n in left))
    assert [n for n in heard if n in left] == left  # each once, in order

    # a redelivery stores nothing and announces nothing
    async with runtime.db.driver_autocommit() as connection:
        again = await conversations.receive_inbound(connection, company.id, inbound("Oi", "n-1"))
        assert again.duplicate and connection.notices == []


async def test_inside_a_transaction_the_message_is_announced_by_its_commit(
    company: CompanyCtx, runtime: Runtime, heard: list[tuple[str, dict[str, object]]]
) -> None:
    async with runtime.db.transaction(company.id) as session:
        received = await conversations.receive_inbound(
            await session.connection(), company.id, inbound("Olá", "t-1")
        )
        await asyncio.sleep(0.2)
        # not before the commit (other tests' notifications may pass by: the database is shared)
        assert not [n for n in heard if n[1].get("topic") == str(received.conversation_id)]
    announced = (
        "atende",
        {"topic": str(received.conversation_id), "kind": "message", "seq": received.message.seq},
    )
    await settle(heard, lambda: announced in heard)
    await settle(heard, lambda: any(channel == "procrastinate_any_queue_v1" for channel, _ in heard))


async def test_a_transaction_may_send_its_notifications_after_its_commit(
    company: CompanyCtx, runtime: Runtime, heard: list[tuple[str, dict[str, object]]]
) -> None:
    """The bot turn's store (it holds the conversation's row, which the customer's next message
    waits for) notifies after its commit; a rolled-back one notifies nothing."""
    committed = ("atende", {"topic": "after-commit", "kind": "probe"})
    async with runtime.db.transaction(company.id, notify_after_commit=True) as session:
        await publish(session, "after-commit", "probe")
        await asyncio.sleep(0.2)
        assert committed not in heard
    await settle(heard, lambda: committed in heard)

    async def rolled_back() -> None:
        async with runtime.db.transaction(company.id, notify_after_commit=True) as session:
            await publish(session, "rolled-back", "probe")
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError):
        await rolled_back()
    async with runtime.db.transaction(company.id) as session:  # an ordinary one, after it
        await publish(session, "ordinary", "probe")
    await settle(heard, lambda: ("atende", {"topic": "ordinary", "kind": "probe"}) in heard)
    assert not [n for n in heard if n[1].get("topic") == "rolled-back"]
