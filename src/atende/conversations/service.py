"""Receiving customer messages, agent replies and state changes.

Every change here happens in the caller's transaction and, in that same transaction,
enqueues the work it causes (the bot turn, webhook deliveries) and notifies live
listeners, so that a committed message is always answered and a rolled-back one never is.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations.models import Contact, Conversation, Message, StateTransition
from atende.conversations.schemas import InboundMessage
from atende.conversations.states import (
    InvalidTransition,
    State,
    check_transition,
    state_after_customer_message,
)
from atende.db.pubsub import publish
from atende.db.scope import company_of, get_or_404
from atende.errors import InvalidInput, NotFound
from atende.jobs.queue import JobQueue
from atende.webhooks import service as webhooks

TURN_TASK = "engine:run_turn"


@dataclass(frozen=True)
class Received:
    conversation: Conversation
    message: Message
    duplicate: bool


def clean_text(text: str, max_chars: int) -> str:
    """Strip a message; reject empty or over-long ones with a clear message."""
    text = text.replace("\x00", "").strip()
    if not text:
        raise InvalidInput("text must not be empty or only whitespace")
    if len(text) > max_chars:
        raise InvalidInput(f"text is {len(text)} characters long; the limit is {max_chars}")
    return text


def _message_event(message: Message) -> dict[str, Any]:
    return {
        "id": str(message.id),
        "conversation_id": str(message.conversation_id),
        "author": message.author,
        "text": message.text,
        "channel": message.channel,
        "created_at": message.created_at.isoformat(),
    }


async def _get_or_create_contact(session: AsyncSession, inbound: InboundMessage) -> Contact:
    """The contact, created or updated in one statement.

    The upsert always writes the row, so it also locks it until commit: two first messages
    of one new customer take turns and share one conversation.
    """
    stmt = pg_insert(Contact).values(
        id=uuid.uuid4(),
        company_id=company_of(session),
        channel=inbound.channel,
        external_id=inbound.contact_external_id,
        name=inbound.contact_name,
        email=inbound.contact_email,
        phone=inbound.contact_phone,
    )
    upsert = stmt.on_conflict_do_update(
        index_elements=["company_id", "channel", "external_id"],
        set_={
            attr: func.coalesce(stmt.excluded[attr], getattr(Contact, attr))
            for attr in ("name", "email", "phone")
        },
    ).returning(Contact)
    contact: Contact | None = await session.scalar(
        select(Contact).from_statement(upsert).execution_options(populate_existing=True)
    )
    assert contact is not None
    return contact


async def _record_transition(
    session: AsyncSession,
    conversation: Conversation,
    target: State,
    *,
    actor_type: str,
    actor_id: str | None = None,
    reason: str | None = None,
) -> StateTransition:
    transition = StateTransition(
        conversation_id=conversation.id,
        from_state=conversation.state,
        to_state=target.value,
        actor_type=actor_type,
        actor_id=actor_id,
        reason=reason,
    )
    session.add(transition)
    conversation.state = target.value
    conversation.updated_at = datetime.now(UTC)
    return transition


async def _find_conversation(
    session: AsyncSession, inbound: InboundMessage, contact: Contact
) -> Conversation | None:
    if inbound.conversation_id is not None:
        conversation = await session.get(
            Conversation, inbound.conversation_id, with_for_update=True, populate_existing=True
        )
        if conversation is None or conversation.contact_id != contact.id:
            raise NotFound(f"no conversation {inbound.conversation_id} for this contact")
        return conversation
    return await session.scalar(
        select(Conversation)
        .where(Conversation.contact_id == contact.id, Conversation.channel == inbound.channel)
        .order_by(Conversation.updated_at.desc())
        .limit(1)
        .with_for_update()
    )


async def open_conversation(
    session: AsyncSession, *, contact: Contact, channel: str, visitor_token_hash: str | None = None
) -> Conversation:
    conversation = Conversation(
        id=uuid.uuid4(),
        contact_id=contact.id,
        channel=channel,
        state="new",
        visitor_token_hash=visitor_token_hash,
    )
    session.add(conversation)
    await _record_transition(session, conversation, State.bot, actor_type="customer")
    await session.flush()
    return conversation


async def start_visitor_conversation(
    session: AsyncSession, *, channel: str, visitor_id: str, visitor_token_hash: str
) -> Conversation:
    """A new conversation for an anonymous visitor (web chat)."""
    contact = await _get_or_create_contact(
        session, InboundMessage(channel=channel, contact_external_id=visitor_id, text="")
    )
    return await open_conversation(
        session, contact=contact, channel=channel, visitor_token_hash=visitor_token_hash
    )


async def _stored_message(session: AsyncSession, inbound: InboundMessage) -> Received | None:
    existing = await session.scalar(
        select(Message).where(
            Message.channel == inbound.channel, Message.channel_message_id == inbound.channel_message_id
        )
    )
    if existing is None:
        return None
    return Received(await get_conversation(session, existing.conversation_id), existing, duplicate=True)


async def _insert_customer_message(
    session: AsyncSession, inbound: InboundMessage, conversation: Conversation
) -> Message | None:
    """Insert the message; ``None`` if this channel message id was stored before."""
    stmt = (
        pg_insert(Message)
        .values(
            id=uuid.uuid4(),
            company_id=conversation.company_id,
            conversation_id=conversation.id,
            channel=inbound.channel,
            channel_message_id=inbound.channel_message_id,
            author="customer",
            text=inbound.text,
            meta=dict(inbound.meta),
        )
        .on_conflict_do_nothing(index_elements=["company_id", "channel", "channel_message_id"])
        .returning(Message)
    )
    message: Message | None = await session.scalar(select(Message).from_statement(stmt))
    return message


async def receive_inbound(session: AsyncSession, jobs: JobQueue, inbound: InboundMessage) -> Received:
    """Store a customer message once, reopen or open its conversation, enqueue the bot turn."""
    if inbound.channel_message_id and (stored := await _stored_message(session, inbound)):
        return stored  # a redelivery: change nothing, answer with what was stored the first time
    contact = await _get_or_create_contact(session, inbound)
    conversation = await _find_conversation(session, inbound, contact)
    if conversation is None:
        conversation = await open_conversation(session, contact=contact, channel=inbound.channel)
    message = await _insert_customer_message(session, inbound, conversation)
    if message is None:  # the same redelivery arrived concurrently and won
        stored = await _stored_message(session, inbound)
        assert stored is not None
        return stored

    target = state_after_customer_message(State(conversation.state))
    if target.value != conversation.state:
        await _record_transition(
            session, conversation, target, actor_type="customer", reason="customer wrote again"
        )
        await _emit_state_change(session, jobs, conversation, "resolved")
    conversation.updated_at = datetime.now(UTC)
    if conversation.state == State.bot.value:
        await jobs.enqueue(
            session,
            TURN_TASK,
            lock=f"conversation:{conversation.id}",
            company_id=str(conversation.company_id),
            message_id=str(message.id),
        )
    await _announce_message(session, jobs, message)
    return Received(conversation, message, duplicate=False)


async def _announce_message(session: AsyncSession, jobs: JobQueue, message: Message) -> None:
    await session.flush()
    await publish(session, str(message.conversation_id), "message", seq=message.seq)
    await webhooks.emit(session, jobs, "message.created", _message_event(message))


async def _emit_state_change(
    session: AsyncSession, jobs: JobQueue, conversation: Conversation, previous: str
) -> None:
    data = {"conversation_id": str(conversation.id), "from": previous, "to": conversation.state}
    await publish(session, str(conversation.id), "state", state=conversation.state)
    await webhooks.emit(session, jobs, "conversation.state_changed", data)
    if conversation.state == State.waiting_human.value:
        await webhooks.emit(session, jobs, "conversation.handoff", data)


async def get_conversation(
    session: AsyncSession, conversation_id: uuid.UUID, *, for_update: bool = False
) -> Conversation:
    """A conversation; ``for_update`` locks it until commit and re-reads it, so that every
    writer of one conversation takes its turn (and message ``seq`` follows commit order)."""
    return await get_or_404(session, Conversation, conversation_id, "conversation", for_update=for_update)


async def get_message(session: AsyncSession, message_id: uuid.UUID) -> Message:
    return await get_or_404(session, Message, message_id, "message")


async def change_state(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    target: State,
    *,
    actor_type: str,
    actor_id: str | None = None,
    reason: str | None = None,
) -> Conversation:
    """Move a conversation to ``target`` if the state machine allows it; records who and why."""
    conversation = await get_or_404(session, Conversation, conversation_id, "conversation", for_update=True)
    previous = conversation.state
    try:
        check_transition(State(previous), target)
    except InvalidTransition as exc:
        raise InvalidInput(str(exc)) from exc
    await _record_transition(
        session, conversation, target, actor_type=actor_type, actor_id=actor_id, reason=reason
    )
    await _emit_state_change(session, jobs, conversation, previous)
    return conversation


async def add_reply(
    session: AsyncSession,
    jobs: JobQueue,
    conversation: Conversation,
    *,
    author: str,
    text: str,
    reply_to_id: uuid.UUID | None = None,
    language: str | None = None,
    author_user_id: uuid.UUID | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    """Store an outgoing message (bot, agent or system) and announce it."""
    message = Message(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        channel=conversation.channel,
        author=author,
        author_user_id=author_user_id,
        text=text,
        language=language,
        reply_to_id=reply_to_id,
        meta=meta or {},
    )
    session.add(message)
    conversation.updated_at = datetime.now(UTC)
    await _announce_message(session, jobs, message)
    return message


async def post_agent_reply(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    *,
    text: str,
    agent_id: str | None,
) -> Message:
    """An agent answers; the conversation becomes theirs (state ``human``)."""
    conversation = await get_or_404(session, Conversation, conversation_id, "conversation", for_update=True)
    if conversation.state != State.human.value:
        previous = conversation.state
        await _record_transition(
            session, conversation, State.human, actor_type="agent", actor_id=agent_id, reason="agent replied"
        )
        await _emit_state_change(session, jobs, conversation, previous)
    return await add_reply(
        session,
        jobs,
        conversation,
        author="agent",
        text=text,
        meta={"agent_id": agent_id} if agent_id else {},
    )


async def bot_reply(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    """The bot's reply to a customer message, if it has answered."""
    reply: Message | None = await session.scalar(
        select(Message).where(Message.reply_to_id == message_id, Message.author == "bot")
    )
    return reply


async def bot_reply_exists(session: AsyncSession, message_id: uuid.UUID) -> bool:
    return await bot_reply(session, message_id) is not None


async def list_messages(
    session: AsyncSession, conversation_id: uuid.UUID, *, after_seq: int = 0, limit: int = 100
) -> list[Message]:
    await get_conversation(session, conversation_id)
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.seq > after_seq)
        .order_by(Message.seq)
        .limit(limit)
    )
    return list(rows)


async def list_transitions(session: AsyncSession, conversation_id: uuid.UUID) -> list[StateTransition]:
    rows = await session.scalars(
        select(StateTransition)
        .where(StateTransition.conversation_id == conversation_id)
        .order_by(StateTransition.created_at, StateTransition.id)
    )
    return list(rows)


def encode_cursor(conversation: Conversation) -> str:
    raw = json.dumps([conversation.updated_at.isoformat(), str(conversation.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("cursor is not valid: pass the next_cursor of a previous page") from exc


async def list_conversations(
    session: AsyncSession,
    *,
    state: State | None = None,
    channel: str | None = None,
    updated_since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Conversation], str | None]:
    """Conversations, most recently updated first, one page at a time."""
    stmt = select(Conversation)
    if state is not None:
        stmt = stmt.where(Conversation.state == state.value)
    if channel is not None:
        stmt = stmt.where(Conversation.channel == channel)
    if updated_since is not None:
        stmt = stmt.where(Conversation.updated_at >= updated_since)
    if cursor:
        stamp, ident = decode_cursor(cursor)
        stmt = stmt.where(
            or_(
                Conversation.updated_at < stamp,
                and_(Conversation.updated_at == stamp, Conversation.id < ident),
            )
        )
    rows = list(
        await session.scalars(
            stmt.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit + 1)
        )
    )
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def contact_external_id(session: AsyncSession, contact_id: uuid.UUID) -> str:
    return (await get_or_404(session, Contact, contact_id, "contact")).external_id
