"""Receiving customer messages, agent replies and state changes, and what agents do beside
replying: private notes, snoozing, reopening.

Every change here happens in the caller's transaction and, in that same transaction,
enqueues the work it causes (the bot turn, webhook deliveries) and notifies live
listeners, so that a committed message is always answered and a rolled-back one never is.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import case, delete, exists, func, select, true, update
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from atende.audit import service as audit
from atende.conversations import attachments as attachments_meta
from atende.conversations.models import Contact, Conversation, Message, PendingDeliveryStatus, StateTransition
from atende.conversations.schemas import InboundMessage, SlaDueOut
from atende.conversations.states import (
    OPENS_IN,
    InvalidTransition,
    State,
    bot_turn_follows,
    check_transition,
    state_after_customer_message,
)
from atende.db.base import as_loaded
from atende.db.pubsub import publish
from atende.db.scope import company_of, get_or_404
from atende.db.session import DriverConnection, fetch_one
from atende.errors import InvalidInput, NotFound, OutsideReplyWindow
from atende.jobs.queue import JobQueue
from atende.observability import metrics
from atende.webhooks import service as webhooks

TURN_TASK = "engine:run_turn"
NOTE = "note"  # the author of a private note of the team
MAX_SNOOZE = timedelta(days=366)


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
    assignee_id: uuid.UUID | None = None,
) -> StateTransition:
    """Record a state change and keep the human-side fields in step with the state; ``now``:
    when a conversation joining the queue starts waiting (the caller's clock; else now). A
    person's or an API key's change goes in the audit log too (``assignee_id``: whom it was
    given to); the bot's and the customer's are the conversation's own history."""
    if actor_type in AUDITED_ACTORS:
        _audit_transition(session, conversation, target, assignee_id)
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
    conversation.snoozed_until = None  # acted on: back in the open views (see ``snooze``)
    if target in (State.bot, State.resolved):  # the human side of a handoff is over
        conversation.team_id = conversation.assignee_id = conversation.waiting_since = None
        conversation.ticket = False
    elif target == State.waiting_human:  # (re)joins the queue: its wait starts now
        conversation.assignee_id = None
        conversation.waiting_since = now or conversation.updated_at
    elif target == State.human:
        conversation.waiting_since = None
    return transition


AUDITED_ACTORS = frozenset({"agent", "api"})


def _audit_transition(
    session: AsyncSession, conversation: Conversation, target: State, assignee_id: uuid.UUID | None
) -> None:
    previous = conversation.state
    if target == State.human:
        action = "conversation.reopened" if previous == State.resolved.value else "conversation.assigned"
    else:
        action = {
            State.resolved: "conversation.resolved",
            State.bot: "conversation.handed_back",
            State.waiting_human: "conversation.handed_off",
        }.get(target, "conversation.state_changed")
    details = {"from": previous, "to": target.value, "assignee": assignee_id}
    audit.record(session, action, ("conversation", conversation.id), details)


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
    session: AsyncSession,
    *,
    channel: str,
    visitor_id: str,
    visitor_token_hash: str,
    name: str | None = None,
    email: str | None = None,
) -> Conversation:
    """A new conversation for a visitor (web chat): anonymous, or with the name and e-mail
    they gave (the offline contact form)."""
    contact = await _get_or_create_contact(
        session,
        InboundMessage(
            channel=channel, contact_external_id=visitor_id, text="", contact_name=name, contact_email=email
        ),
    )
    return await open_conversation(
        session, contact=contact, channel=channel, visitor_token_hash=visitor_token_hash
    )


async def set_context(session: AsyncSession, conversation_id: uuid.UUID, given: dict[str, str]) -> None:
    """Keep what the channel says about where the customer is now (the web chat's page and
    product): the keys given replace theirs, an empty value removes one; the others stay.
    One statement (no lock taken here beyond the row's own update)."""
    if not given:
        return
    kept = {k: v for k, v in given.items() if v}
    dropped = [k for k, v in given.items() if not v]
    await session.execute(
        sql(
            "UPDATE conversations SET context = (context - CAST(:dropped AS text[])) || CAST(:kept AS jsonb)"
            " WHERE id = :id AND company_id = :company"
        ),
        {"dropped": dropped, "kept": json.dumps(kept), "id": conversation_id, "company": company_of(session)},
    )


# the SQL function is migration 0033's; its OUT columns, in order, after outcome, state,
# bot_turn, and before the notices it left to send
_RECEIVE = (
    "SELECT * FROM atende_receive_message_v6"
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s)"
)
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
# at most this many of a message's thread references are looked up (the last ones: a
# References header lists the thread oldest first); longer than a message id column, none
THREAD_REFS_MAX = 100
_REF_MAX = 255


@dataclass(frozen=True)
class IntakeRules:
    """``states``' intake rules as the arguments of ``atende_receive_message_v6``, which
    hard-codes none of them: the state a conversation opens in, ``{state: state}`` a customer
    message moves it to, and the states whose messages get a bot turn with the company's
    ``bot_answers_while_closed`` off and on."""

    opens_in: str
    moves: str  # a JSON object
    turn_states: list[str]
    turn_states_helping: list[str]

    @classmethod
    def of(cls, *, reopens_resolved: bool) -> IntakeRules:
        moves = {
            state.value: after.value
            for state in State
            if (after := state_after_customer_message(state, reopens_resolved=reopens_resolved)) != state
        }
        return cls(
            opens_in=OPENS_IN.value,
            moves=json.dumps(moves),
            turn_states=[s.value for s in State if bot_turn_follows(s, answers_while_closed=False)],
            turn_states_helping=[s.value for s in State if bot_turn_follows(s, answers_while_closed=True)],
        )


_RULES = {reopens: IntakeRules.of(reopens_resolved=reopens) for reopens in (True, False)}


def thread_refs(refs: tuple[str, ...]) -> list[str]:
    """The references worth looking up: the last ``THREAD_REFS_MAX``, none that no message id
    could equal (empty, longer than the column)."""
    return [ref for ref in refs if 0 < len(ref) <= _REF_MAX][-THREAD_REFS_MAX:]


async def receive_inbound(
    connection: AsyncConnection | DriverConnection,
    company_id: uuid.UUID,
    inbound: InboundMessage,
    *,
    by_thread: bool = False,
    reopens_resolved: bool = True,
) -> Received:
    """Store a customer message once, join or open its conversation, enqueue the bot turn.

    Which conversation: the one ``inbound.conversation_id`` names (it must be the contact's);
    else, ``by_thread``, the conversation of the contact's newest message that one of
    ``inbound.thread_refs`` names (its channel message id, or the provider's id of a reply
    we sent), and a new one when none does; else the contact's latest on the channel.
    ``reopens_resolved=False``: the message is stored in a resolved conversation without
    reopening it (no state change, so no bot turn and no state webhook).

    One round trip: ``atende_receive_message_v6`` (migrations 0004, 0007, 0013, 0017, 0023,
    0033) dedupes
    by the channel's message id, upserts the contact, locks or opens the conversation, stores
    the message, moves the conversation's state and queues the bot turn as ``states`` says
    (``IntakeRules``: the function hard-codes none of the rules), queues the webhook
    deliveries and notifies live listeners. Every statement in it is scoped to
    ``company_id``. On a session's connection (``await session.connection()``) it joins that
    transaction; on ``Database.driver_autocommit()`` or ``autocommit()`` it is one atomic
    statement. On ``driver_autocommit()``, the hot path, its notifications are sent after
    its commit rather than in it (``DriverConnection.notices``, migration 0033).
    """
    rules = _RULES[reopens_resolved]
    deferring = isinstance(connection, DriverConnection)
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
            thread_refs(inbound.thread_refs) if by_thread else None,
            inbound.text,
            Jsonb(dict(inbound.meta)),
            rules.opens_in,
            rules.moves,
            rules.turn_states,
            rules.turn_states_helping,
            TURN_TASK,
            webhooks.DELIVER_TASK,
            deferring,
        ),
    )
    assert row is not None  # the function returns one row
    outcome, state, bot_turn, *columns, notices = row
    if isinstance(connection, DriverConnection) and notices:
        connection.notices.extend((channel, payload) for channel, payload in notices)
    if outcome == "no_conversation":
        raise NotFound(f"no conversation {inbound.conversation_id} for this contact")
    values = dict(zip(_MESSAGE_COLUMNS, columns, strict=True))
    message = as_loaded(Message, {"company_id": company_id, **values})
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


async def messages_by_id(session: AsyncSession, message_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Message]:
    """The company's messages among these ids, by id (those that do not exist left out)."""
    if not message_ids:
        return {}
    rows = await session.scalars(select(Message).where(Message.id.in_(list(message_ids))))
    return {m.id: m for m in rows}


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
    actor_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Conversation:
    """Queue a conversation (locked by the caller) for people: ``team_id``'s queue or the
    company's; ``ticket`` when it waits for the team to open or someone to come online.
    Agents' screens hear of it live, and the ``conversation.handoff`` webhook carries it."""
    previous = conversation.state
    check_transition(State(previous), State.waiting_human)
    await _record_transition(
        session,
        conversation,
        State.waiting_human,
        actor_type=actor_type,
        actor_id=actor_id,
        reason=reason,
        now=now,
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
        assignee_id=assignee_id,
    )
    conversation.assignee_id = assignee_id
    await _emit_state_change(session, jobs, conversation, previous)
    return conversation


async def list_queue(
    session: AsyncSession, *, team_id: uuid.UUID | None = None, limit: int = 100
) -> list[Conversation]:
    """Conversations waiting for a person: tickets (kept while the team was closed or nobody
    was online) first, then by how long they have waited. Snoozed ones wait out of sight."""
    stmt = select(Conversation).where(
        Conversation.state == State.waiting_human.value, Conversation.snoozed_until.is_(None)
    )
    if team_id is not None:
        stmt = stmt.where(Conversation.team_id == team_id)
    stmt = stmt.order_by(Conversation.ticket.desc(), Conversation.waiting_since, Conversation.id)
    return list(await session.scalars(stmt.limit(limit)))


async def queue_size(session: AsyncSession) -> tuple[int, int]:
    """How many conversations wait for a person (snoozed ones aside), and how many of them as
    tickets."""
    waiting, tickets = (
        await session.execute(
            select(func.count(), func.count().filter(Conversation.ticket)).where(
                Conversation.state == State.waiting_human.value, Conversation.snoozed_until.is_(None)
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
    through the conversation's channel (the outbox: one job, in this transaction). On a
    ``live`` channel (web chat, API) the announcement is the delivery: its customers read
    the live stream, which hears it when this transaction commits; the message is stored
    ``sent`` (under its own id) and no job is queued."""
    live = conversation.channel in _LIVE_CHANNELS
    message_id = uuid.uuid4()
    message = Message(
        id=message_id,
        conversation_id=conversation.id,
        channel=conversation.channel,
        author=author,
        author_user_id=author_user_id,
        text=text,
        language=language,
        reply_to_id=reply_to_id,
        meta=meta or {},
        delivery_status="sent" if live else "queued",
        provider_message_id=str(message_id) if live else None,
    )
    session.add(message)
    conversation.updated_at = datetime.now(UTC)
    await _announce_message(session, jobs, message)
    if not live:
        await queue_delivery(session, jobs, message, conversation.company_id)
    return message


# Channels whose provider refuses a free-form message once the customer has been silent for a
# while (WhatsApp's 24-hour customer-service window), as ``channels.registry.register`` tells
# (``Channel.reply_window``). Bot answers always answer a customer message, so are inside it;
# an agent's reply is checked before it is stored, so it is refused with a reason instead of
# failing at the provider.
_REPLY_WINDOWS: dict[str, timedelta] = {}


def set_reply_window(kind: str, window: timedelta | None) -> None:
    if window is None:
        _REPLY_WINDOWS.pop(kind, None)
    else:
        _REPLY_WINDOWS[kind] = window


@dataclass(frozen=True)
class ReplyWindow:
    """Whether a free-form reply can go out on the conversation's channel now."""

    limited: bool  # the channel has a window at all
    last_customer_at: datetime | None
    closes_at: datetime | None

    @property
    def open(self) -> bool:
        return not self.limited or (self.closes_at is not None and self.closes_at > datetime.now(UTC))


async def reply_window(session: AsyncSession, conversation: Conversation) -> ReplyWindow:
    """The customer-service window of the conversation: since the contact's last message on
    the channel (any of its conversations: the provider counts per customer and number)."""
    window = _REPLY_WINDOWS.get(conversation.channel)
    if window is None:
        return ReplyWindow(False, None, None)
    last = await session.scalar(
        select(func.max(Message.created_at))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.contact_id == conversation.contact_id,
            Message.channel == conversation.channel,
            Message.author == "customer",
        )
    )
    return ReplyWindow(True, last, last + window if last is not None else None)


async def post_agent_reply(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    *,
    text: str,
    agent_id: str | None,
    assignee_id: uuid.UUID | None = None,
    meta: dict[str, Any] | None = None,
    free_form: bool = True,
    attachments: Sequence[uuid.UUID] = (),
) -> Message:
    """An agent answers; the conversation becomes theirs (state ``human``; ``assignee_id``:
    the person replying, when known). A ``free_form`` reply on a channel with a reply window
    that has closed is refused (``OutsideReplyWindow``), nothing stored; a template
    (``free_form=False``, its parameters in ``meta``) may go out at any time. ``attachments``:
    media ids of the company the reply carries, checked against what the channel sends
    (``conversations.attachments``: 422, nothing stored, when it cannot)."""
    conversation = await get_or_404(session, Conversation, conversation_id, "conversation", for_update=True)
    if free_form:
        window = await reply_window(session, conversation)
        if not window.open:
            hours = int(_REPLY_WINDOWS[conversation.channel].total_seconds() // 3600)
            since = window.last_customer_at.isoformat() if window.last_customer_at else "never"
            raise OutsideReplyWindow(
                f"the customer's last message is more than {hours} hours old (last: {since}): "
                f"the {conversation.channel} channel accepts only an approved template now"
            )
    files = await attachments_meta.describe(session, conversation.channel, attachments)
    if conversation.state != State.human.value:
        previous = conversation.state
        await _record_transition(
            session,
            conversation,
            State.human,
            actor_type="agent",
            actor_id=agent_id,
            reason="agent replied",
            assignee_id=assignee_id,
        )
        if assignee_id is not None:
            conversation.assignee_id = assignee_id
        await _emit_state_change(session, jobs, conversation, previous)
    elif conversation.assignee_id is None and assignee_id is not None:
        conversation.assignee_id = assignee_id
    audited = {"template": not free_form, "attachments": len(files or [])}  # never the reply's text
    audit.record(session, "conversation.replied", ("conversation", conversation.id), audited)
    return await add_reply(
        session,
        jobs,
        conversation,
        author="agent",
        text=text,
        meta={
            **(meta or {}),
            **({"agent_id": agent_id} if agent_id else {}),
            **({attachments_meta.META: files} if files else {}),
        },
    )


# What agents do beside replying: private notes, snoozing, reopening. Each locks the
# conversation first, as every writer of one conversation does.


def _note_event(note: Message) -> dict[str, Any]:
    return {
        "id": str(note.id),
        "conversation_id": str(note.conversation_id),
        "text": note.text,
        "author_user_id": str(note.author_user_id) if note.author_user_id else None,
        "agent_id": note.meta.get("agent_id"),
        "created_at": note.created_at.isoformat(),
    }


async def add_note(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    *,
    text: str,
    agent_id: str | None,
    author_user_id: uuid.UUID | None = None,
) -> Message:
    """A private note of the team on the conversation: a message with ``author = 'note'``, in
    the thread the team reads (``list_messages(include_notes=True)``), and nowhere else.

    It is never delivered (no delivery status, no outbox job), never in what the customer's
    side reads (``list_messages`` by default: the web chat, the API channel's polling), never
    in the bot's history (``messages_before``), and never in ``message.created``, which
    companies forward to customers: the ``note.created`` webhook carries it, for the team's own
    tools. It changes neither the state nor the snooze, and does not move the conversation up
    the list (``updated_at`` follows what the customer sees). Live: ``note`` on the
    conversation's topic, which the web chat's stream never passes on."""
    conversation = await get_conversation(session, conversation_id, for_update=True)  # seq in commit order
    note = Message(
        id=uuid.uuid4(),
        conversation_id=conversation_id,
        channel=conversation.channel,
        author=NOTE,
        author_user_id=author_user_id,
        text=text,
        meta={"agent_id": agent_id} if agent_id else {},
    )
    session.add(note)
    await session.flush()
    await publish(session, str(conversation_id), "note", seq=note.seq)
    await webhooks.emit(session, jobs, "note.created", _note_event(note))
    return note


async def _announce_snooze(
    session: AsyncSession, jobs: JobQueue, conversation: Conversation, kind: str, data: dict[str, Any]
) -> None:
    """``snoozed`` or ``unsnoozed``: on the company's queue topic and the conversation's (the
    web chat's stream passes neither on), and as the ``conversation.<kind>`` webhook."""
    event = {"conversation_id": str(conversation.id), **data}
    await publish(session, queue_topic(conversation.company_id), kind, **event)
    await publish(session, str(conversation.id), kind, **data)
    await webhooks.emit(session, jobs, f"conversation.{kind}", event)


def check_snooze_time(until: datetime, now: datetime) -> None:
    """``InvalidInput`` unless ``until`` is a timezone-aware instant after ``now``, within
    ``MAX_SNOOZE``."""
    if until.tzinfo is None or until.utcoffset() is None:
        raise InvalidInput("until must say its timezone (e.g. 2026-12-01T09:00:00-03:00)", field="until")
    if until <= now:
        raise InvalidInput(f"until must be in the future; it is {until.isoformat()}", field="until")
    if until - now > MAX_SNOOZE:
        raise InvalidInput(f"a conversation is snoozed for at most {MAX_SNOOZE.days} days", field="until")


async def snooze(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    until: datetime,
    *,
    now: datetime,
    actor_type: str,
    actor_id: str | None,
) -> Conversation:
    """Put the conversation out of the open views (the queue, the inbox's lists) until
    ``until``. The snooze ends sooner when the customer writes (a trigger on the message's
    insert, migration 0020: whoever stores it), when its state changes (assigned, handed
    back, resolved: ``_record_transition``) or when someone wakes it (``unsnooze``); at
    ``until``, the periodic ``conversations:wake_snoozed`` wakes it. Snoozing again moves the
    time. A resolved conversation is closed already: it cannot be snoozed."""
    conversation = await get_conversation(session, conversation_id, for_update=True)
    check_snooze_time(until, now)
    if conversation.state == State.resolved.value:
        raise InvalidInput("a resolved conversation cannot be snoozed; reopen it first")
    conversation.snoozed_until = until
    conversation.updated_at = datetime.now(UTC)
    if actor_type in AUDITED_ACTORS:
        audit.record(session, "conversation.snoozed", ("conversation", conversation.id), {"until": until})
    await _announce_snooze(
        session,
        jobs,
        conversation,
        "snoozed",
        {"until": until.isoformat(), "by": actor_id, "by_type": actor_type},
    )
    return conversation


async def unsnooze(
    session: AsyncSession, jobs: JobQueue, conversation_id: uuid.UUID, *, actor_id: str | None
) -> Conversation:
    """Wake a snoozed conversation now: it is back in the open views."""
    conversation = await get_conversation(session, conversation_id, for_update=True)
    if conversation.snoozed_until is None:
        raise InvalidInput("the conversation is not snoozed")
    conversation.snoozed_until = None
    conversation.updated_at = datetime.now(UTC)
    audit.record(session, "conversation.unsnoozed", ("conversation", conversation.id))
    await _announce_snooze(session, jobs, conversation, "unsnoozed", {"reason": "agent", "by": actor_id})
    return conversation


async def wake_due(session: AsyncSession, jobs: JobQueue, now: datetime) -> list[uuid.UUID]:
    """Wake the company's conversations whose snooze ended by ``now`` (moved up the list, as
    new); each is announced (``unsnoozed``, reason ``time``). One statement: a conversation an
    intake holds is woken once it commits, or not at all when the customer's message woke it."""
    rows = await session.scalars(
        update(Conversation)
        .where(Conversation.snoozed_until.is_not(None), Conversation.snoozed_until <= now)
        .values(snoozed_until=None, updated_at=datetime.now(UTC))
        .returning(Conversation)
        .execution_options(synchronize_session=False)
    )
    woken = list(rows)
    for conversation in woken:
        await _announce_snooze(session, jobs, conversation, "unsnoozed", {"reason": "time"})
    return [c.id for c in woken]


async def companies_with_due_snoozes(session: AsyncSession, now: datetime) -> list[uuid.UUID]:
    """The companies with a snooze ended by ``now`` (a platform session: the periodic job's
    first look, on the partial index of snoozes)."""
    rows = await session.scalars(
        select(Conversation.company_id)
        .where(Conversation.snoozed_until.is_not(None), Conversation.snoozed_until <= now)
        .distinct()
    )
    return list(rows)


async def reopen(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    *,
    assignee_id: uuid.UUID | None,
    actor_type: str,
    actor_id: str | None,
    reason: str | None = None,
) -> Conversation:
    """Reopen a resolved conversation for a person to follow it up. The rule: only a
    ``resolved`` conversation reopens (any other is open already: ``InvalidInput``); it
    becomes ``human``, so the bot stays silent, and the person reopening it (``assignee_id``,
    when known) owns it. A customer writing reopens it too, to the bot (intake)."""
    conversation = await get_conversation(session, conversation_id, for_update=True)
    previous = conversation.state
    if previous != State.resolved.value:
        raise InvalidInput(f"only a resolved conversation can be reopened; this one is {previous}")
    await _record_transition(
        session,
        conversation,
        State.human,
        actor_type=actor_type,
        actor_id=actor_id,
        reason=reason or "reopened",
        assignee_id=assignee_id,
    )
    conversation.assignee_id = assignee_id
    await _emit_state_change(session, jobs, conversation, previous)
    return conversation


async def bot_reply(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    """The bot's reply to a customer message, if it has answered."""
    reply: Message | None = await session.scalar(
        select(Message).where(Message.reply_to_id == message_id, Message.author == "bot")
    )
    return reply


def bot_may_answer(conversation: Conversation, *, answers_while_closed: bool) -> bool:
    """Whether a bot turn runs for a customer message in this conversation as it is now:
    ``states.bot_turn_follows``, the rule intake queued the turn by."""
    return bot_turn_follows(State(conversation.state), answers_while_closed=answers_while_closed)


async def bot_reply_exists(session: AsyncSession, message_id: uuid.UUID) -> bool:
    return await bot_reply(session, message_id) is not None


async def list_messages(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    *,
    after_seq: int = 0,
    limit: int = 100,
    include_notes: bool = False,
) -> list[Message]:
    """The conversation's messages after ``after_seq``, in order. The team's private notes only
    with ``include_notes``: the default is what the customer may see, so that every reader
    written for the customer's side (the web chat's history and stream, the API channel's
    polling) stays without them whoever adds one later."""
    await get_conversation(session, conversation_id)
    stmt = select(Message).where(Message.conversation_id == conversation_id, Message.seq > after_seq)
    if not include_notes:
        stmt = stmt.where(Message.author != NOTE)
    rows = await session.scalars(stmt.order_by(Message.seq).limit(limit))
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
    """The ``limit`` messages of the conversation with the customer just before ``seq``, oldest
    first: the bot's history. The team's notes are no part of it (an LLM would read them as
    the customer's words)."""
    if limit <= 0:
        return []
    rows = await session.scalars(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.seq < seq, Message.author != NOTE)
        .order_by(Message.seq.desc())
        .limit(limit)
    )
    return list(reversed(list(rows)))


async def last_customer_message(session: AsyncSession, conversation_id: uuid.UUID) -> Message | None:
    """The customer's latest message in the conversation (``None``: they have not written)."""
    message: Message | None = await session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation_id, Message.author == "customer")
        .order_by(Message.seq.desc())
        .limit(1)
    )
    return message


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


async def get_contact(session: AsyncSession, contact_id: uuid.UUID) -> Contact:
    return await get_or_404(session, Contact, contact_id, "contact")


async def contact_conversations(
    session: AsyncSession, contact_id: uuid.UUID, *, limit: int = 20
) -> list[Conversation]:
    """The contact's conversations, most recent activity first (what an agent reads about a
    customer beside the conversation in front of them)."""
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.contact_id == contact_id)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return list(rows)


async def latest_conversation_of(
    session: AsyncSession, channel: str, external_id: str
) -> Conversation | None:
    """The newest conversation of the company's contact ``external_id`` on ``channel`` (the
    one a message of theirs that does not reopen a resolved conversation joins)."""
    found: Conversation | None = await session.scalar(
        select(Conversation)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(
            Contact.channel == channel, Contact.external_id == external_id, Conversation.channel == channel
        )
        .order_by(Conversation.created_at.desc(), Conversation.id.desc())
        .limit(1)
    )
    return found


# each conversation's running SLA targets (``atende.sla``, which sits above conversations,
# plugs its reader in at startup: ``set_sla_reader``)
SlaDue = dict[uuid.UUID, list[SlaDueOut]]
SlaReader = Callable[[AsyncSession, Sequence[uuid.UUID], datetime], Awaitable[SlaDue]]
_SLA_READERS: list[SlaReader] = []


def set_sla_reader(reader: SlaReader) -> None:
    _SLA_READERS[:] = [reader]


async def sla_due(session: AsyncSession, conversation_ids: Sequence[uuid.UUID], now: datetime) -> SlaDue:
    """The running SLA targets of each conversation (its time to breach), none without SLA."""
    if not _SLA_READERS or not conversation_ids:
        return {}
    return await _SLA_READERS[0](session, conversation_ids, now)


async def queue_for_team(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    team_id: uuid.UUID,
    *,
    actor_type: str,
    actor_id: str | None,
    now: datetime,
) -> Conversation:
    """Give the conversation to a team: it waits in that team's queue, nobody assigned (a
    conversation already waiting moves from one queue to the other, keeping its wait).
    ``InvalidInput`` when it waits in that team's queue already."""
    conversation = await get_conversation(session, conversation_id, for_update=True)
    previous = conversation.state
    if previous == State.waiting_human.value:
        if conversation.team_id == team_id:
            raise InvalidInput("the conversation waits in that team's queue already", field="team")
        conversation.team_id = team_id
        conversation.updated_at = datetime.now(UTC)
        conversation.snoozed_until = None
        session.add(
            StateTransition(
                conversation_id=conversation.id,
                from_state=previous,
                to_state=previous,
                actor_type=actor_type,
                actor_id=actor_id,
                reason=f"moved to team {team_id}",
            )
        )
        await _emit_state_change(session, jobs, conversation, previous)
        return conversation
    return await hand_to_team(
        session,
        jobs,
        conversation,
        team_id=team_id,
        ticket=False,
        reason=f"moved to team {team_id}",
        now=now,
        actor_type=actor_type,
        actor_id=actor_id,
    )


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


# The channels whose customers read the live stream (``Channel.delivery == "live"``: the web
# chat, the API), as ``channels.registry.register`` tells (conversations imports no channel).
# A channel this process has not been told about is pushed by a job: its delivery job marks a
# live one sent all the same, so a process that does not know a channel is slower, not wrong.
_LIVE_CHANNELS: set[str] = set()


def set_live_channel(kind: str, live: bool) -> None:
    """Whether replies on channel ``kind`` are delivered by the live stream (no job)."""
    if live:
        _LIVE_CHANNELS.add(kind)
    else:
        _LIVE_CHANNELS.discard(kind)


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
    at: datetime | None = None,
) -> bool:
    """Move a message's delivery status forward to ``status`` (never back: one UPDATE with a
    rank comparison, so concurrent updates cannot reorder it); ``True`` when it moved. The
    conversation's live topic hears it; a failure is announced (``delivery_failed`` on the
    topic, the ``message.delivery_failed`` webhook). ``at``: when the provider said so (a
    pending update's arrival), for ``delivered_at``/``read_at``; default now."""
    now = at or datetime.now(UTC)
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
    metrics.count_on_commit(session, metrics.MESSAGE_DELIVERIES, channel, status)
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


async def _lock_provider_id(session: AsyncSession, channel: str, provider_message_id: str) -> None:
    """Serialise the two sides that meet on a provider id, until commit: a status update
    looking for its message, and the delivery job recording the id. Whichever comes second
    sees what the first committed, so an update kept as pending is never missed."""
    key = f"delivery:{company_of(session)}:{channel}:{provider_message_id}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def _rank(column: Any) -> Any:
    return case(DELIVERY_RANK, value=column, else_=-1)


async def apply_delivery_status(
    session: AsyncSession,
    jobs: JobQueue,
    channel: str,
    provider_message_id: str,
    status: str,
    reason: str | None = None,
) -> uuid.UUID | None:
    """Record what the provider says became of a message it sent (never moving it back); the
    message's id. ``None``: no message of this company and channel has that provider id yet
    (its ``send`` has not answered): the update is kept, the highest one per id, and applied
    when the delivery job records the id (``record_sent``), or purged after
    ``PENDING_STATUS_TTL``."""
    await _lock_provider_id(session, channel, provider_message_id)
    message_id: uuid.UUID | None = await session.scalar(
        select(Message.id).where(
            Message.channel == channel, Message.provider_message_id == provider_message_id
        )
    )
    if message_id is not None:
        await advance_delivery(session, jobs, message_id, status, reason=reason)
        return message_id
    insert = pg_insert(PendingDeliveryStatus).values(
        id=uuid.uuid4(),
        company_id=company_of(session),
        channel=channel,
        provider_message_id=provider_message_id,
        status=status,
        reason=reason[:REASON_MAX] if reason else None,
        received_at=datetime.now(UTC),
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["company_id", "channel", "provider_message_id"],
            set_={
                "status": insert.excluded.status,
                "reason": insert.excluded.reason,
                "received_at": insert.excluded.received_at,
            },
            where=_rank(PendingDeliveryStatus.status) < _rank(insert.excluded.status),
        )
    )
    return None


async def record_sent(
    session: AsyncSession, jobs: JobQueue, message_id: uuid.UUID, channel: str, provider_message_id: str
) -> bool:
    """The delivery job's ``send`` answered: the message is ``sent`` under the provider's id,
    then moved on by the status update that came for that id while ``send`` was in flight,
    if one did (never back: a pending ``delivered`` does not undo a ``failed``)."""
    await _lock_provider_id(session, channel, provider_message_id)
    moved = await advance_delivery(session, jobs, message_id, "sent", provider_message_id=provider_message_id)
    pending = (
        await session.execute(
            delete(PendingDeliveryStatus)
            .where(
                PendingDeliveryStatus.channel == channel,
                PendingDeliveryStatus.provider_message_id == provider_message_id,
            )
            .returning(
                PendingDeliveryStatus.status, PendingDeliveryStatus.reason, PendingDeliveryStatus.received_at
            )
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if pending is not None:
        status, reason, received_at = pending
        await advance_delivery(session, jobs, message_id, status, reason=reason, at=received_at)
    return moved


# A status update waits this long for its message's id; a provider reports within seconds of
# accepting a message, and the delivery job records the id as soon as ``send`` answers (at
# worst after its retries, a few minutes): what waits longer names a message sent elsewhere
# (another tool on the same number) or one whose send failed for good.
PENDING_STATUS_TTL = timedelta(hours=1)


async def purge_pending_statuses(session: AsyncSession, older_than: timedelta = PENDING_STATUS_TTL) -> int:
    """Forget the status updates that waited longer than ``older_than`` (every company's: a
    platform session); how many."""
    purged = await session.execute(
        delete(PendingDeliveryStatus)
        .where(PendingDeliveryStatus.received_at < datetime.now(UTC) - older_than)
        .returning(PendingDeliveryStatus.id)
        .execution_options(synchronize_session=False)
    )
    return len(purged.all())


@dataclass(frozen=True)
class Resolution:
    """A conversation's resolution that is still its latest state change (what a CSAT
    survey asks about)."""

    transition_id: uuid.UUID
    conversation_id: uuid.UUID
    channel: str
    language: str | None
    resolved_at: datetime


async def standing_resolutions(
    session: AsyncSession,
    *,
    after: datetime,
    until: datetime,
    channels: Sequence[str],
    exclude: Sequence[uuid.UUID] = (),
    limit: int = 200,
) -> list[Resolution]:
    """The session's company's resolutions made in ``(after, until]`` on ``channels`` whose
    conversation is still resolved by them (not reopened since), oldest first; ``exclude``:
    resolutions (their transitions' ids) the caller has dealt with already."""
    later = aliased(StateTransition)
    rows = await session.execute(
        select(
            StateTransition.id,
            Conversation.id,
            Conversation.channel,
            Conversation.language,
            StateTransition.created_at,
        )
        .join(Conversation, Conversation.id == StateTransition.conversation_id)
        .where(
            StateTransition.to_state == State.resolved.value,
            StateTransition.created_at > after,
            StateTransition.created_at <= until,
            Conversation.state == State.resolved.value,
            Conversation.channel.in_(list(channels)),
            StateTransition.id.not_in(list(exclude)),
            ~exists().where(
                later.conversation_id == StateTransition.conversation_id,
                later.company_id == StateTransition.company_id,
                later.created_at > StateTransition.created_at,
            ),
        )
        .order_by(StateTransition.created_at)
        .limit(limit)
    )
    return [Resolution(*row) for row in rows]
