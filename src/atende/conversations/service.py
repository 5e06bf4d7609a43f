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

from psycopg.types.json import Jsonb
from sqlalchemy import and_, case, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from atende.conversations.models import Contact, Conversation, Message, StateTransition
from atende.conversations.schemas import InboundMessage
from atende.conversations.states import (
    InvalidTransition,
    State,
    check_transition,
)
from atende.db.pubsub import publish
from atende.db.scope import company_of, get_or_404
from atende.db.session import DriverConnection, fetch_one
from atende.errors import InvalidInput, NotFound
from atende.jobs.queue import JobQueue
from atende.webhooks import service as webhooks

TURN_TASK = "engine:run_turn"


@dataclass(frozen=True)
class Received:
    """What receiving a message did: the message (the stored one, for a redelivery) and its
    conversation's state afterwards."""

    conversation_id: uuid.UUID
    conversation_state: str
    bot_turn: bool  # a bot turn answers it (the bot owns the conversation, or assists a ticket)
    message: Message
    duplicate: bool


def clean_text(text: str, max_chars: int) -> str:
    """Strip a message; reject empty or over-long ones, and NUL bytes, with a clear message.

    A NUL byte is refused rather than silently dropped: no text column can hold it, and a
    caller whose message arrives changed without a word has a bug it never hears of."""
    if "\x00" in text:
        raise InvalidInput("text must not contain NUL bytes (\\u0000)")
    text = text.strip()
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
    now: datetime | None = None,
) -> StateTransition:
    """Record a state change and keep the human-side fields in step with the state; ``now``:
    when a conversation joining the queue starts waiting (the caller's clock; else now)."""
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
    if target in (State.bot, State.resolved):  # the human side of a handoff is over
        conversation.team_id = conversation.assignee_id = conversation.waiting_since = None
        conversation.ticket = False
    elif target == State.waiting_human:  # (re)joins the queue: its wait starts now
        conversation.assignee_id = None
        conversation.waiting_since = now or conversation.updated_at
    elif target == State.human:
        conversation.waiting_since = None
    return transition


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


# the SQL function is migration 0011's; its OUT columns, in order, after outcome, state, bot_turn
_RECEIVE = "SELECT * FROM atende_receive_message_v3(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_MESSAGE_COLUMNS = (
    "id",
    "seq",
    "conversation_id",
    "channel",
    "channel_message_id",
    "author",
    "text",
    "language",
    "reply_to_id",
    "meta",
    "created_at",
)


async def receive_inbound(
    connection: AsyncConnection | DriverConnection, company_id: uuid.UUID, inbound: InboundMessage
) -> Received:
    """Store a customer message once, reopen or open its conversation, enqueue the bot turn.

    One round trip: ``atende_receive_message_v3`` (migrations 0004, 0007, 0011) dedupes by the
    channel's message id, upserts the contact, locks or opens the conversation, stores the
    message, reopens a resolved conversation, queues the bot turn (when the bot owns the
    conversation, or it waits for a person and the company lets the bot help while the team
    is closed: ``bot_may_answer``) and the webhook deliveries, and notifies live listeners. Every statement
    in it is scoped to ``company_id``. On a session's connection (``await
    session.connection()``) it joins that transaction; on ``Database.driver_autocommit()``
    or ``autocommit()`` it is one atomic statement.
    """
    row = await fetch_one(
        connection,
        _RECEIVE,
        (
            company_id,
            inbound.channel,
            inbound.contact_external_id,
            inbound.contact_name,
            inbound.contact_email,
            inbound.contact_phone,
            inbound.channel_message_id,
            inbound.conversation_id,
            inbound.text,
            Jsonb(dict(inbound.meta)),
            TURN_TASK,
            webhooks.DELIVER_TASK,
        ),
    )
    assert row is not None  # the function returns one row
    outcome, state, bot_turn, *columns = row
    if outcome == "no_conversation":
        raise NotFound(f"no conversation {inbound.conversation_id} for this contact")
    message = Message(company_id=company_id, **dict(zip(_MESSAGE_COLUMNS, columns, strict=True)))
    return Received(
        conversation_id=message.conversation_id,
        conversation_state=state,
        bot_turn=bool(bot_turn),
        message=message,
        duplicate=outcome == "duplicate",
    )


async def _announce_message(session: AsyncSession, jobs: JobQueue, message: Message) -> None:
    await session.flush()
    await publish(session, str(message.conversation_id), "message", seq=message.seq)
    await webhooks.emit(session, jobs, "message.created", _message_event(message))


def queue_topic(company_id: uuid.UUID) -> str:
    """The live topic of a company's queue (handoffs, assignments): what agents' screens follow."""
    return f"queue:{company_id}"


async def _emit_state_change(
    session: AsyncSession,
    jobs: JobQueue,
    conversation: Conversation,
    previous: str,
    extra: dict[str, Any] | None = None,
) -> None:
    data = {"conversation_id": str(conversation.id), "from": previous, "to": conversation.state}
    await publish(session, str(conversation.id), "state", state=conversation.state)
    await webhooks.emit(session, jobs, "conversation.state_changed", data)
    queue_event = {
        **data,
        "team_id": str(conversation.team_id) if conversation.team_id else None,
        "assignee_id": str(conversation.assignee_id) if conversation.assignee_id else None,
        "ticket": conversation.ticket,
    }
    await publish(session, queue_topic(conversation.company_id), "queue", **queue_event, **(extra or {}))
    if conversation.state == State.waiting_human.value:
        await webhooks.emit(session, jobs, "conversation.handoff", {**queue_event, **(extra or {})})


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
    now: datetime | None = None,
) -> Conversation:
    """Move a conversation to ``target`` if the state machine allows it; records who and why."""
    conversation = await get_or_404(session, Conversation, conversation_id, "conversation", for_update=True)
    previous = conversation.state
    try:
        check_transition(State(previous), target)
    except InvalidTransition as exc:
        raise InvalidInput(str(exc)) from exc
    await _record_transition(
        session, conversation, target, actor_type=actor_type, actor_id=actor_id, reason=reason, now=now
    )
    await _emit_state_change(session, jobs, conversation, previous)
    return conversation


async def hand_to_team(
    session: AsyncSession,
    jobs: JobQueue,
    conversation: Conversation,
    *,
    team_id: uuid.UUID | None,
    ticket: bool,
    reason: str,
    now: datetime,
    actor_type: str = "bot",
    extra: dict[str, Any] | None = None,
) -> Conversation:
    """Queue a conversation (locked by the caller) for people: ``team_id``'s queue or the
    company's; ``ticket`` when it waits for the team to open or someone to come online.
    Agents' screens hear of it live, and the ``conversation.handoff`` webhook carries it."""
    previous = conversation.state
    check_transition(State(previous), State.waiting_human)
    await _record_transition(
        session, conversation, State.waiting_human, actor_type=actor_type, reason=reason, now=now
    )
    conversation.team_id, conversation.ticket = team_id, ticket
    await _emit_state_change(session, jobs, conversation, previous, {"reason": reason, **(extra or {})})
    return conversation


async def assign(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    *,
    assignee_id: uuid.UUID,
    actor_type: str,
    actor_id: str | None,
) -> Conversation:
    """An agent takes the conversation (or is given it): it becomes ``human`` and theirs; the
    bot stays silent until it is handed back. Reassigning is recorded like a state change."""
    conversation = await get_conversation(session, conversation_id, for_update=True)
    previous = conversation.state
    if previous == State.human.value and conversation.assignee_id == assignee_id:
        raise InvalidInput(f"the conversation is already assigned to {assignee_id}")
    if previous != State.human.value:
        try:
            check_transition(State(previous), State.human)
        except InvalidTransition as exc:
            raise InvalidInput(str(exc)) from exc
    # a reassignment is recorded like a state change (human -> human)
    await _record_transition(
        session,
        conversation,
        State.human,
        actor_type=actor_type,
        actor_id=actor_id,
        reason=f"assigned to {assignee_id}",
    )
    conversation.assignee_id = assignee_id
    await _emit_state_change(session, jobs, conversation, previous)
    return conversation


async def list_queue(
    session: AsyncSession, *, team_id: uuid.UUID | None = None, limit: int = 100
) -> list[Conversation]:
    """Conversations waiting for a person: tickets (kept while the team was closed or nobody
    was online) first, then by how long they have waited."""
    stmt = select(Conversation).where(Conversation.state == State.waiting_human.value)
    if team_id is not None:
        stmt = stmt.where(Conversation.team_id == team_id)
    stmt = stmt.order_by(Conversation.ticket.desc(), Conversation.waiting_since, Conversation.id)
    return list(await session.scalars(stmt.limit(limit)))


async def queue_size(session: AsyncSession) -> tuple[int, int]:
    """How many conversations wait for a person, and how many of them as tickets."""
    waiting, tickets = (
        await session.execute(
            select(func.count(), func.count().filter(Conversation.ticket)).where(
                Conversation.state == State.waiting_human.value
            )
        )
    ).one()
    return int(waiting), int(tickets)


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
    """Store an outgoing message (bot, agent or system), announce it and queue its delivery
    through the conversation's channel (the outbox: one job, in this transaction)."""
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
        delivery_status="queued",
    )
    session.add(message)
    conversation.updated_at = datetime.now(UTC)
    await _announce_message(session, jobs, message)
    await queue_delivery(session, jobs, message, conversation.company_id)
    return message


async def post_agent_reply(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    *,
    text: str,
    agent_id: str | None,
    assignee_id: uuid.UUID | None = None,
) -> Message:
    """An agent answers; the conversation becomes theirs (state ``human``; ``assignee_id``:
    the person replying, when known)."""
    conversation = await get_or_404(session, Conversation, conversation_id, "conversation", for_update=True)
    if conversation.state != State.human.value:
        previous = conversation.state
        await _record_transition(
            session, conversation, State.human, actor_type="agent", actor_id=agent_id, reason="agent replied"
        )
        if assignee_id is not None:
            conversation.assignee_id = assignee_id
        await _emit_state_change(session, jobs, conversation, previous)
    elif conversation.assignee_id is None and assignee_id is not None:
        conversation.assignee_id = assignee_id
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


def bot_may_answer(conversation: Conversation, *, answers_while_closed: bool) -> bool:
    """Whether a bot turn runs for a customer message in this conversation: the bot owns it,
    or it waits for a person and the company's ``bot_answers_while_closed`` is on *now* (the
    turn then answers only while the team is closed). Intake, ``atende_receive_message_v3``,
    decides alike."""
    return conversation.state == State.bot.value or (
        conversation.state == State.waiting_human.value and answers_while_closed
    )


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


async def seq_of(session: AsyncSession, conversation_id: uuid.UUID, message_id: uuid.UUID) -> int | None:
    """The ``seq`` of one of the conversation's messages (``None``: not one of its messages),
    for clients that name a position by message id and must not see ``seq``."""
    seq: int | None = await session.scalar(
        select(Message.seq).where(Message.id == message_id, Message.conversation_id == conversation_id)
    )
    return seq


async def messages_before(
    session: AsyncSession, conversation_id: uuid.UUID, seq: int, *, limit: int
) -> list[Message]:
    """The ``limit`` messages of a conversation just before ``seq``, oldest first."""
    if limit <= 0:
        return []
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.seq < seq)
        .order_by(Message.seq.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


async def recent_customer_texts(
    session: AsyncSession, *, conversations: int, per_conversation: int
) -> list[tuple[uuid.UUID, str]]:
    """``(contact id, text)`` of the latest ``per_conversation`` customer messages of each of
    the company's ``conversations`` most recently active conversations that a customer wrote
    in: a sample of many customers, which one customer writing a lot cannot crowd out."""
    wrote = (
        select(Message.id)
        .where(Message.conversation_id == Conversation.id, Message.author == "customer")
        .exists()
    )
    recent = (
        select(Conversation.id, Conversation.contact_id)
        .where(wrote)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(conversations)
        .subquery()
    )
    latest = (
        select(Message.text)
        .where(Message.conversation_id == recent.c.id, Message.author == "customer")
        .order_by(Message.seq.desc())
        .limit(per_conversation)
        .lateral()
    )
    rows = await session.execute(select(recent.c.contact_id, latest.c.text).join(latest, true()))
    return [(contact, body) for contact, body in rows]


async def newest_customer_seq(session: AsyncSession) -> int | None:
    """The ``seq`` of the company's newest customer message, if any."""
    return await session.scalar(select(func.max(Message.seq)).where(Message.author == "customer"))


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


BAD_CURSOR = "cursor is not valid: pass the next_cursor of a previous page, unchanged"


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a ``next_cursor`` names. A cursor is the client's to keep, so anything
    may come back: every part is checked for its type, and whatever is not what
    ``encode_cursor`` wrote is one clear ``InvalidInput``, never a server error."""
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        parts = json.loads(raw)
    except (ValueError, TypeError) as exc:  # not ASCII, not base64, not UTF-8 JSON
        raise InvalidInput(BAD_CURSOR) from exc
    if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)):
        raise InvalidInput(BAD_CURSOR)
    try:
        stamp, ident = datetime.fromisoformat(parts[0]), uuid.UUID(parts[1])
    except ValueError as exc:
        raise InvalidInput(BAD_CURSOR) from exc
    if stamp.tzinfo is None:  # a naive instant would be read in the database session's zone
        raise InvalidInput(BAD_CURSOR)
    return stamp, ident


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


# The outbox. Every outbound message is stored with ``delivery_status = 'queued'`` and its
# delivery job (``atende.channels.tasks``, named here: conversations imports no channel) queued
# in the same transaction; the job sends it through the conversation's channel and moves the
# status on. A later status never moves it back (a "delivered" that arrives after "read"), and
# "failed" always stands.
DELIVER_TASK = "channels:deliver_message"
DELIVERY_STATUSES = ("queued", "sent", "delivered", "read", "failed")
DELIVERY_RANK = {status: rank for rank, status in enumerate(DELIVERY_STATUSES)}
REASON_MAX = 1000


def delivery_lock(conversation_id: uuid.UUID) -> str:
    """One delivery of a conversation at a time, in the order they were queued."""
    return f"deliver:{conversation_id}"


async def queue_delivery(
    session: AsyncSession, jobs: JobQueue, message: Message, company_id: uuid.UUID
) -> None:
    """Queue the message's delivery job in the caller's transaction (stored ⇔ queued)."""
    await jobs.enqueue(
        session,
        DELIVER_TASK,
        lock=delivery_lock(message.conversation_id),
        company_id=str(company_id),
        message_id=str(message.id),
    )


async def message_to_deliver(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    """The message, locked until commit; ``None`` when there is none (deleted with its
    conversation) or its delivery is past ``queued`` (sent by an earlier run of the job)."""
    message: Message | None = await session.get(Message, message_id, with_for_update=True)
    if message is None or message.delivery_status != "queued":
        return None
    return message


async def advance_delivery(
    session: AsyncSession,
    jobs: JobQueue,
    message_id: uuid.UUID,
    status: str,
    *,
    provider_message_id: str | None = None,
    reason: str | None = None,
) -> bool:
    """Move a message's delivery status forward to ``status`` (never back: one UPDATE with a
    rank comparison, so concurrent updates cannot reorder it); ``True`` when it moved. The
    conversation's live topic hears it; a failure is announced (``delivery_failed`` on the
    topic, the ``message.delivery_failed`` webhook)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {"delivery_status": status}
    if provider_message_id is not None:
        values["provider_message_id"] = func.coalesce(Message.provider_message_id, provider_message_id)
    if status == "failed":
        values["delivery_error"] = (reason or "unknown")[:REASON_MAX]
    if status in ("delivered", "read"):
        values["delivered_at"] = func.coalesce(Message.delivered_at, now)
    if status == "read":
        values["read_at"] = func.coalesce(Message.read_at, now)
    rank = case(DELIVERY_RANK, value=Message.delivery_status, else_=-1)
    row = (
        await session.execute(
            update(Message)
            .where(Message.id == message_id, rank < DELIVERY_RANK[status])
            .values(**values)
            .returning(Message.conversation_id, Message.channel, Message.provider_message_id)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        return False
    conversation_id, channel, provider_id = row
    topic = str(conversation_id)
    await publish(session, topic, "delivery", message_id=str(message_id), status=status)
    if status == "failed":
        error = values["delivery_error"]
        await publish(session, topic, "delivery_failed", message_id=str(message_id), reason=error)
        await webhooks.emit(
            session,
            jobs,
            "message.delivery_failed",
            {
                "message_id": str(message_id),
                "conversation_id": topic,
                "channel": channel,
                "provider_message_id": provider_id,
                "reason": error,
            },
        )
    return True


async def apply_delivery_status(
    session: AsyncSession,
    jobs: JobQueue,
    channel: str,
    provider_message_id: str,
    status: str,
    reason: str | None = None,
) -> uuid.UUID | None:
    """Record what the provider says became of a message it sent (never moving it back); the
    message's id, ``None`` when no message of this company and channel has that provider id."""
    message_id: uuid.UUID | None = await session.scalar(
        select(Message.id).where(
            Message.channel == channel, Message.provider_message_id == provider_message_id
        )
    )
    if message_id is None:
        return None
    await advance_delivery(session, jobs, message_id, status, reason=reason)
    return message_id
