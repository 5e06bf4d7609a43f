"""The inbox's reads: a company's conversations filtered, most recent activity first, one
keyset page at a time, each with what its row shows; and how many match, up to a cap.

Views (mine, unassigned, my teams) are the human side's (``teams.inbox``): it turns the
caller and the view into an ``InboxFilter`` of plain values, which this module turns into
one statement. Every filter is a condition an index of migration 0020 serves in activity
order, company first, so a page costs about the rows it returns, not the company's size:

- a page is ``(updated_at, id) < cursor ORDER BY updated_at DESC, id DESC LIMIT n``: a new
  message moves its conversation to the top, above every cursor, so a walk never sees a
  conversation twice, and every conversation that was not written to meanwhile exactly once;
- text search ANDs the company's lexeme with the words (``atende_message_query_v1``), so the
  GIN index answers for this company alone;
- counts stop at ``COUNT_CAP``: counting 40,000 open conversations on every refresh of every
  agent's screen is what made Chatwoot's inbox overload its database (chatwoot#8586); a
  capped count reads at most ``COUNT_CAP + 1`` index entries, and "1,000+" is all a tab
  needs to say.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, false, func, select, true, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from atende.conversations.labels import labels_of
from atende.conversations.models import Contact, Conversation, ConversationLabel, Label, Message
from atende.conversations.states import State
from atende.db.scope import company_of
from atende.errors import InvalidInput

COUNT_CAP = 1000
PREVIEW_CHARS = 160
SEARCH_MAX = 200
OPEN_STATES = frozenset({State.bot, State.waiting_human, State.human})
REPLY_AUTHORS = ("bot", "agent")
_WORD = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class InboxFilter:
    """Which conversations: each field narrows (``None``: any). ``team_ids`` ``()`` matches
    none (a caller in no team asking for their teams'); ``unassigned``: waiting for a
    person with nobody assigned; ``assigned_to_nobody``: no assignee, whatever the state;
    ``matches_nothing``: filters that contradict each other (mine, and someone else's)."""

    states: frozenset[State] | None = None
    channel: str | None = None
    team_ids: tuple[uuid.UUID, ...] | None = None
    assignee_id: uuid.UUID | None = None
    assigned_to_nobody: bool = False
    unassigned: bool = False
    label_id: uuid.UUID | None = None
    language: str | None = None
    search: str | None = None
    updated_since: datetime | None = None
    matches_nothing: bool = False


@dataclass(frozen=True)
class LastMessage:
    author: str
    preview: str  # the first ``PREVIEW_CHARS`` characters
    at: datetime


@dataclass(frozen=True)
class InboxRow:
    """A conversation as an inbox row shows it."""

    conversation: Conversation
    contact_name: str | None
    last_message: LastMessage | None
    unanswered: int  # customer messages since the last reply (bot or agent)
    labels: list[Label]


BAD_CURSOR = "cursor is not valid: pass the next_cursor of a previous page, unchanged"


def encode_position(updated_at: datetime, ident: uuid.UUID) -> str:
    """The cursor of the page after the conversation at this position."""
    raw = json.dumps([updated_at.isoformat(), str(ident)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position a ``next_cursor`` names. A cursor is the client's to keep, so anything
    may come back: every part is checked for its type, and whatever is not what
    ``encode_position`` wrote is one clear ``InvalidInput``, never a server error."""
    try:
        raw = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        parts = json.loads(raw)
    except (ValueError, TypeError) as exc:  # not ASCII, not base64, not UTF-8 JSON
        raise InvalidInput(BAD_CURSOR, field="cursor") from exc
    if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)):
        raise InvalidInput(BAD_CURSOR, field="cursor")
    try:
        stamp, ident = datetime.fromisoformat(parts[0]), uuid.UUID(parts[1])
    except ValueError as exc:
        raise InvalidInput(BAD_CURSOR, field="cursor") from exc
    if stamp.tzinfo is None:  # a naive instant would be read in the database session's zone
        raise InvalidInput(BAD_CURSOR, field="cursor")
    return stamp, ident


def clean_search(search: str) -> str:
    """A search as the query takes it; ``InvalidInput`` when it has no word to look for."""
    if "\x00" in search:
        raise InvalidInput("search must not contain NUL bytes (\\u0000)", field="search")
    search = search.strip()
    if len(search) > SEARCH_MAX:
        raise InvalidInput(f"search: at most {SEARCH_MAX} characters", field="search")
    if not _WORD.search(search):
        raise InvalidInput("search: give at least one word (letters or digits) to look for", field="search")
    return search


def _conditions(session: AsyncSession, wanted: InboxFilter) -> list[ColumnElement[bool]]:
    c = Conversation
    found: list[ColumnElement[bool]] = []
    if wanted.matches_nothing:
        return [false()]
    if wanted.states is not None:
        if wanted.states == OPEN_STATES:  # the open conversations' partial index's predicate
            found.append(c.state != State.resolved.value)
        else:
            found.append(c.state.in_(sorted(s.value for s in wanted.states)))
    if wanted.unassigned:  # the unassigned conversations' partial index's predicate
        found.append(and_(c.state == State.waiting_human.value, c.assignee_id.is_(None)))
    if wanted.channel is not None:
        found.append(c.channel == wanted.channel)
    if wanted.team_ids is not None:
        found.append(c.team_id.in_(wanted.team_ids) if wanted.team_ids else false())
    if wanted.assignee_id is not None:
        found.append(c.assignee_id == wanted.assignee_id)
    if wanted.assigned_to_nobody:
        found.append(c.assignee_id.is_(None))
    if wanted.language is not None:
        found.append(c.language == wanted.language)
    if wanted.updated_since is not None:
        found.append(c.updated_at >= wanted.updated_since)
    if wanted.label_id is not None:
        found.append(
            select(ConversationLabel.conversation_id)
            .where(ConversationLabel.conversation_id == c.id, ConversationLabel.label_id == wanted.label_id)
            .exists()
        )
    if wanted.search is not None:
        query = func.atende_message_query_v1(company_of(session), wanted.search)
        found.append(
            select(Message.id)
            .where(
                Message.conversation_id == c.id,
                func.atende_message_search_v1(Message.company_id, Message.text).op("@@")(query),
            )
            .exists()
        )
    return found


def _matching(session: AsyncSession, wanted: InboxFilter) -> Select[uuid.UUID]:
    return select(Conversation.id).where(*_conditions(session, wanted))


async def list_inbox(
    session: AsyncSession, wanted: InboxFilter, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[InboxRow], str | None]:
    """One page of the conversations ``wanted`` names, most recent activity first, each
    with its contact's name, last message, unanswered customer messages and labels; and
    the cursor of the next page (``None`` on the last)."""
    c = Conversation
    page = select(c).where(*_conditions(session, wanted))
    if cursor:
        stamp, ident = decode_cursor(cursor)
        page = page.where(tuple_(c.updated_at, c.id) < tuple_(stamp, ident))
    page = page.order_by(c.updated_at.desc(), c.id.desc()).limit(limit + 1)
    conversations = list(await session.scalars(page))
    next_cursor = None
    if len(conversations) > limit:
        conversations = conversations[:limit]
        last = conversations[-1]
        next_cursor = encode_position(last.updated_at, last.id)
    ids = [conversation.id for conversation in conversations]
    details = await _row_details(session, ids)
    labels = await labels_of(session, ids)
    rows = []
    for conversation in conversations:
        name, last_message, unanswered = details.get(conversation.id, (None, None, 0))
        rows.append(InboxRow(conversation, name, last_message, unanswered, labels.get(conversation.id, [])))
    return rows, next_cursor


async def _row_details(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str | None, LastMessage | None, int]]:
    """Contact name, last message and unanswered count of each conversation: one statement,
    two index probes a conversation (``ix_messages_conversation_seq``)."""
    if not ids:
        return {}
    c, reply, waiting = Conversation, aliased(Message), aliased(Message)
    last = (
        select(
            Message.author,
            func.left(Message.text, PREVIEW_CHARS).label("preview"),
            Message.created_at,
        )
        .where(Message.conversation_id == c.id)
        .order_by(Message.seq.desc())
        .limit(1)
        .lateral("last")
    )
    last_reply = (
        select(func.max(reply.seq))
        .where(reply.conversation_id == c.id, reply.author.in_(REPLY_AUTHORS))
        .correlate(c)
        .scalar_subquery()
    )
    unanswered = (
        select(func.count())
        .select_from(waiting)
        .where(
            waiting.conversation_id == c.id,
            waiting.author == "customer",
            waiting.seq > func.coalesce(last_reply, 0),
        )
        .correlate(c)
        .scalar_subquery()
    )
    rows = await session.execute(
        select(c.id, Contact.name, last.c.author, last.c.preview, last.c.created_at, unanswered)
        .join(Contact, Contact.id == c.contact_id)
        .outerjoin(last, true())
        .where(c.id.in_(ids))
    )
    return {
        ident: (name, LastMessage(author, preview, at) if author is not None else None, int(waiting or 0))
        for ident, name, author, preview, at, waiting in rows
    }


@dataclass(frozen=True)
class Count:
    """How many conversations match, up to ``COUNT_CAP``; ``capped``: at least that many."""

    count: int
    capped: bool


async def count_inbox(session: AsyncSession, filters: Sequence[InboxFilter]) -> list[Count]:
    """How many conversations each filter matches, each counted up to ``COUNT_CAP`` (one
    statement for all of them)."""
    if not filters:
        return []
    counts = [
        select(func.count())
        .select_from(_matching(session, wanted).limit(COUNT_CAP + 1).subquery())
        .scalar_subquery()
        for wanted in filters
    ]
    row = (await session.execute(select(*counts))).one()
    return [Count(min(int(n), COUNT_CAP), int(n) > COUNT_CAP) for n in row]


__all__ = [
    "COUNT_CAP",
    "OPEN_STATES",
    "Count",
    "InboxFilter",
    "InboxRow",
    "LastMessage",
    "clean_search",
    "count_inbox",
    "list_inbox",
]
