"""The intake rules exist once, in ``conversations.states``; the database's intake function
(``atende_receive_message_v6``) is handed them. For every state a conversation can be in
(and none: the message opens one), with the company's ``bot_answers_while_closed`` off and
on, and a message that reopens a resolved conversation or must not, what the function does
on a real database is what the Python rules say: the state afterwards, the transition and
the state webhook when it moved, whether a bot turn is queued (and ``bot_may_answer``, the
engine's check, agrees), and a redelivery's answer.

Each case runs in a transaction that is rolled back: no worker ever sees its jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import service as conversations
from atende.conversations.models import Contact, Conversation, StateTransition
from atende.conversations.schemas import InboundMessage
from atende.conversations.states import (
    OPENS_IN,
    State,
    bot_turn_follows,
    state_after_customer_message,
)
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.webhooks import service as webhooks

CASES = [
    (state, helps, reopens)
    for state in (None, *State)
    for helps in (False, True)
    for reopens in (True, False)
]


def case_id(case: tuple[State | None, bool, bool]) -> str:
    state, helps, reopens = case
    return f"{state or 'new'}-{'helps' if helps else 'alone'}-{'reopens' if reopens else 'stays'}"


@pytest.fixture(scope="module")
async def company_id(runtime: Runtime) -> uuid.UUID:
    async with runtime.db.transaction() as session:
        slug = f"rules-{uuid.uuid4().hex[:8]}"
        return (await tenancy.create_company(session, name=slug, slug=slug)).id


@asynccontextmanager
async def rolled_back(runtime: Runtime, company_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
    async with runtime.db.company_session(company_id) as session:
        await session.begin()
        try:
            yield session
        finally:
            await session.rollback()


async def count(session: AsyncSession, sql: str, **params: object) -> int:
    return int((await session.execute(text(sql), params)).scalar_one())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
async def test_the_database_intake_does_what_the_python_rules_say(
    runtime: Runtime, company_id: uuid.UUID, case: tuple[State | None, bool, bool]
) -> None:
    state, helps, reopens = case
    async with rolled_back(runtime, company_id) as session:
        await session.execute(
            text(
                "UPDATE companies SET settings = jsonb_build_object("
                "'handoff', jsonb_build_object('bot_answers_while_closed', CAST(:helps AS boolean)))"
                " WHERE id = :company"
            ),
            {"helps": helps, "company": company_id},
        )
        await webhooks.create_endpoint(
            session,
            secret_key=runtime.secret_key,
            url="http://127.0.0.1:9/hooks",
            events=["conversation.state_changed"],
            allow_private=True,
        )
        contact = Contact(id=uuid.uuid4(), channel="api", external_id="regras")
        session.add(contact)
        if state is not None:
            session.add(
                Conversation(id=uuid.uuid4(), contact_id=contact.id, channel="api", state=state.value)
            )
        await session.flush()

        inbound = InboundMessage(
            channel="api", contact_external_id="regras", text="Oi de novo", channel_message_id="m-1"
        )
        connection = await session.connection()
        received = await conversations.receive_inbound(
            connection, company_id, inbound, reopens_resolved=reopens
        )

        expected = (
            OPENS_IN if state is None else state_after_customer_message(state, reopens_resolved=reopens)
        )
        turn = bot_turn_follows(expected, answers_while_closed=helps)
        conversation = await session.get(Conversation, received.conversation_id, populate_existing=True)
        assert conversation is not None
        assert (received.conversation_state, conversation.state) == (expected.value, expected.value)
        assert received.bot_turn is turn
        assert conversations.bot_may_answer(conversation, answers_while_closed=helps) is turn
        queued = await count(
            session,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task AND args->>'message_id' = :id",
            task=conversations.TURN_TASK,
            id=str(received.message.id),
        )
        assert queued == int(turn)

        moved = state is not None and expected != state
        transitions = list(
            await session.scalars(
                select(StateTransition.from_state + ">" + StateTransition.to_state).where(
                    StateTransition.conversation_id == conversation.id
                )
            )
        )
        assert transitions == (
            [f"new>{OPENS_IN}"] if state is None else [f"{state}>{expected}"] if moved else []
        )
        state_webhooks = await count(
            session,
            "SELECT count(*) FROM webhook_deliveries WHERE event_type = 'conversation.state_changed'"
            " AND payload->'data'->>'conversation_id' = :id",
            id=str(conversation.id),
        )
        assert state_webhooks == int(moved)

        again = await conversations.receive_inbound(connection, company_id, inbound, reopens_resolved=reopens)
        assert again.duplicate and again.message.id == received.message.id
        assert (again.conversation_state, again.bot_turn) == (expected.value, turn)
        stored = await session.scalar(select(func.count()).select_from(Conversation))
        assert stored == 1
