"""The inbox's reads: a company's conversations filtered, most recent activity first, one
keyset page at a time, each with what its row shows; and how many match, up to a cap.

Views (mine, unassigned, my teams) are the human side's (``teams.inbox``): it turns the
caller and the view into an ``InboxFilter`` of plain values, which this module turns into
one statement. Every filter is a condition an index of migration 0021 serves in activity
order, company first, so a page costs about the rows it returns, not the company's size:

- a page is ``(updated_at, id) < cursor ORDER BY updated_at DESC, id DESC LIMIT n``: a new
  message moves its conversation to the top, above every cursor, so a walk never sees a
  conversation twice, and every conversation that was not written to meanwhile exactly once;
- text search reads the GIN index of the messages' words (with the company's own lexeme,
  so the index answers for this company alone) for words in few messages, and walks the
  conversations for common ones (see ``_plan_search``);
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
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    any_,
    cast,
    false,
    func,
    literal,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

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
    ``snoozed``: ``False`` those not snoozed (a snoozed conversation is out of the lists
    until it wakes), ``True`` only the snoozed, ``None`` both; ``matches_nothing``: filters
    that contradict each other (mine, and someone else's)."""

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
    snoozed: bool | None = False
    matches_nothing: bool = False


@dataclass(frozen=True)
class LastMessage:
    author: str
    preview: str  # the first ``PREVIEW_CHARS`` characters
    at: datetime


@dataclass(frozen=True)
class LabelRef:
    id: uuid.UUID
    name: str
    color: str | None


@dataclass(frozen=True)
class InboxRow:
    """A conversation as an inbox row shows it."""

    conversation: Conversation
    contact_name: str | None
    last_message: LastMessage | None
    unanswered: int  # customer messages since the last reply (bot or agent)
    labels: list[LabelRef]


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


# Text search. The GIN index (``ix_messages_search``) finds a search's messages in time
# proportional to how many there are; listing conversations most recent first then reads
# each of their conversations. That is the way for words in few messages. For a common
# word it would read hundreds of thousands: walking the conversations most recent first
# and checking each one's messages finds a page after a few hundred. PostgreSQL's own
# estimate of the words' messages (the index's statistics) picks the way; each message
# walked is first checked with a regular expression of the words (a few µs), and only one
# that passes with the index's function (twenty times that: it parses the text).
SEARCH_INDEX_MAX = 5000  # estimated matching messages up to which a list takes the index
COUNT_SEARCH_MAX = 10_000  # matching messages a count reads at most (then it is a lower bound)
# what ``atende_message_search_v1`` folds (migration 0021): a plain letter in a word stands
# for itself and these
ACCENTS = {"a": "áàâã", "e": "éê", "i": "í", "o": "óôõ", "u": "úü", "c": "ç", "n": "ñ"}


def _words_pattern(word: str) -> str:
    """A regular expression (PostgreSQL's) that lower-cased text matches wherever the
    folded text holds ``word``: a necessary condition of the index's match, cheap to test."""
    parts = []
    for ch in word:
        if ch in ACCENTS:
            parts.append(f"[{ch}{ACCENTS[ch]}]")
        elif ch.isalnum():
            parts.append(ch)
        else:
            parts.append("\\" + ch)
    return "".join(parts)


def _match(message: type[Message], query: ColumnElement[Any]) -> ColumnElement[bool]:
    return func.atende_message_search_v1(message.company_id, message.text).op("@@")(query)


class _Search:
    """A search, and how to find its conversations: from the messages the index finds
    (``by_index``; a count reads at most ``hits_max`` of them), or by walking."""

    def __init__(
        self, query: ColumnElement[Any], words: list[str], *, by_index: bool, hits_max: int | None = None
    ) -> None:
        self.query, self.words, self.by_index, self.hits_max = query, words, by_index, hits_max
        hits = select(Message.conversation_id).where(_match(Message, query))
        if hits_max is not None:
            hits = hits.limit(hits_max + 1)
        # one list of the messages found, however many conditions read it
        self.hits = hits.cte("search_hits").prefix_with("MATERIALIZED")

    def condition(self) -> ColumnElement[bool]:
        if self.by_index:  # each conversation found, by its id (not a scan of them all)
            found = select(func.array_agg(self.hits.c.conversation_id.distinct())).scalar_subquery()
            return Conversation.id == any_(cast(found, ARRAY(UUID(as_uuid=True))))
        m = aliased(Message)
        first = (
            select(m.id)
            .where(
                m.conversation_id == Conversation.id,
                *(func.lower(m.text).op("~")(_words_pattern(word)) for word in self.words),
                _match(m, self.query),
            )
            .limit(1)
            .correlate(Conversation)
            .scalar_subquery()
        )
        return first.is_not(None)  # a scalar subquery: run for each conversation walked

    def truncated(self) -> ColumnElement[bool]:
        """Whether the index found more messages than a count reads."""
        if self.hits_max is None:
            return false()
        return select(func.count()).select_from(self.hits).scalar_subquery() > self.hits_max


async def _plan_search(session: AsyncSession, search: str, *, for_count: bool) -> _Search:
    """The search's words as the index holds them, and how to find its conversations: a
    count reads the index (at most ``COUNT_SEARCH_MAX`` messages); a list reads it when
    PostgreSQL expects at most ``SEARCH_INDEX_MAX`` messages, else walks."""
    company = company_of(session)
    query = func.atende_message_query_v1(company, search)
    words = list(await session.scalar(select(func.atende_search_words_v1(search))) or [])
    if for_count:
        return _Search(query, words, by_index=True, hits_max=COUNT_SEARCH_MAX)
    plan = await session.scalar(
        text(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM messages WHERE company_id = :company"
            " AND atende_message_search_v1(company_id, text) @@ atende_message_query_v1(:company, :search)"
        ),
        {"company": company, "search": search},
    )
    expected = float(plan[0]["Plan"]["Plan Rows"]) if plan else 0.0
    return _Search(query, words, by_index=expected <= SEARCH_INDEX_MAX)


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


def _constant(value: str) -> ColumnElement[str]:
    """A value written into the statement, not sent as a parameter: a partial index's
    predicate must be proven from the statement alone, also by a plan PostgreSQL reuses
    (psycopg prepares a statement run five times)."""
    return literal(value, literal_execute=True)


def _conditions(wanted: InboxFilter, search: _Search | None) -> list[ColumnElement[bool]]:
    c = Conversation
    found: list[ColumnElement[bool]] = []
    if wanted.matches_nothing:
        return [false()]
    if wanted.states is not None:
        if wanted.states == OPEN_STATES:  # the open conversations' partial index's predicate
            found.append(c.state != _constant(State.resolved.value))
        else:
            found.append(c.state.in_(sorted(s.value for s in wanted.states)))
    if wanted.unassigned:  # the unassigned conversations' partial index's predicate
        found.append(and_(c.state == _constant(State.waiting_human.value), c.assignee_id.is_(None)))
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
    if wanted.snoozed is not None:
        found.append(c.snoozed_until.is_not(None) if wanted.snoozed else c.snoozed_until.is_(None))
    if wanted.label_id is not None:
        found.append(
            select(ConversationLabel.conversation_id)
            .where(ConversationLabel.conversation_id == c.id, ConversationLabel.label_id == wanted.label_id)
            .exists()
        )
    if search is not None:
        found.append(search.condition())
    return found


def _matching(wanted: InboxFilter, search: _Search | None) -> Select[uuid.UUID]:
    return select(Conversation.id).where(*_conditions(wanted, search))


async def list_inbox(
    session: AsyncSession, wanted: InboxFilter, *, cursor: str | None = None, limit: int = 50
) -> tuple[list[InboxRow], str | None]:
    """One page of the conversations ``wanted`` names, most recent activity first, each
    with its contact's name, last message, unanswered customer messages and labels; and
    the cursor of the next page (``None`` on the last). One statement: the page, then what
    each of its rows shows (a few index probes a row, ``ix_messages_conversation_seq``)."""
    c = Conversation
    search = await _plan_search(session, wanted.search, for_count=False) if wanted.search else None
    page = select(c).where(*_conditions(wanted, search))
    if cursor:
        stamp, ident = decode_cursor(cursor)
        page = page.where(tuple_(c.updated_at, c.id) < tuple_(stamp, ident))
    ordered = page.with_only_columns(c.id, c.updated_at).order_by(c.updated_at.desc(), c.id.desc())
    found = ordered.limit(limit + 1).subquery("page")
    conv = Conversation  # each row of the page, read by its id
    reply, waiting, m = aliased(Message), aliased(Message), aliased(Message)
    last = (
        select(m.author, func.left(m.text, PREVIEW_CHARS).label("preview"), m.created_at)
        .where(m.conversation_id == conv.id)
        .order_by(m.seq.desc())
        .limit(1)
        .lateral("last")
    )
    last_reply = (
        select(func.max(reply.seq))
        .where(reply.conversation_id == conv.id, reply.author.in_(REPLY_AUTHORS))
        .correlate(conv)
        .scalar_subquery()
    )
    unanswered = (
        select(func.count())
        .select_from(waiting)
        .where(
            waiting.conversation_id == conv.id,
            waiting.author == "customer",
            waiting.seq > func.coalesce(last_reply, 0),
        )
        .correlate(conv)
        .scalar_subquery()
    )
    on_it = (
        select(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_object("id", Label.id, "name", Label.name, "color", Label.color),
                    func.lower(Label.name),
                    Label.id,
                )
            )
        )
        .select_from(ConversationLabel)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id == conv.id)
        .correlate(conv)
        .scalar_subquery()
    )
    result = await session.execute(
        select(conv, Contact.name, last.c.author, last.c.preview, last.c.created_at, unanswered, on_it)
        .select_from(found)
        .join(conv, conv.id == found.c.id)
        .join(Contact, Contact.id == conv.contact_id)
        .outerjoin(last, true())
        .order_by(found.c.updated_at.desc(), found.c.id.desc())
    )
    rows = [
        InboxRow(
            conversation,
            name,
            LastMessage(author, preview, at) if author is not None else None,
            int(waiting_ or 0),
            [LabelRef(uuid.UUID(item["id"]), item["name"], item["color"]) for item in labelled or []],
        )
        for conversation, name, author, preview, at, waiting_, labelled in result
    ]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last_row = rows[-1].conversation
        next_cursor = encode_position(last_row.updated_at, last_row.id)
    return rows, next_cursor


@dataclass(frozen=True)
class Count:
    """How many conversations match, up to ``COUNT_CAP``; ``capped``: there are at least
    that many, maybe more (the cap was reached, or a search's words are in more messages
    than a count reads: ``COUNT_SEARCH_MAX``)."""

    count: int
    capped: bool


async def count_inbox(session: AsyncSession, filters: Sequence[InboxFilter]) -> list[Count]:
    """How many conversations each filter matches, each counted up to ``COUNT_CAP`` (one
    statement for all of them; the filters share one search, if any)."""
    if not filters:
        return []
    searches = {wanted.search for wanted in filters}
    if len(searches) > 1:
        raise ValueError("the filters counted together share one search")
    [words] = searches
    if not words:
        counts = [
            select(func.count())
            .select_from(_matching(wanted, None).limit(COUNT_CAP + 1).subquery())
            .scalar_subquery()
            for wanted in filters
        ]
        numbers = (await session.execute(select(*counts))).one()
        return [Count(min(int(n), COUNT_CAP), int(n) > COUNT_CAP) for n in numbers]
    # a search: its conversations (of at most COUNT_SEARCH_MAX messages), each read once
    search = await _plan_search(session, words, for_count=True)
    each = [func.count().filter(and_(true(), *_conditions(wanted, None))) for wanted in filters]
    partial, *found = (
        await session.execute(select(search.truncated(), *each).where(search.condition()))
    ).one()
    return [Count(min(int(n), COUNT_CAP), int(n) > COUNT_CAP or bool(partial)) for n in found]


async def activity_since(
    session: AsyncSession, since: datetime, *, limit: int = 200
) -> list[tuple[uuid.UUID, datetime]]:
    """``(id, updated_at)`` of the company's conversations active at or after ``since``, most
    recent first (at most ``limit``): what a live inbox screen checks to know that its list
    changed (a customer's message, a reply, a state change), read from the activity index."""
    rows = await session.execute(
        select(Conversation.id, Conversation.updated_at)
        .where(Conversation.updated_at >= since)
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return [(ident, at) for ident, at in rows]
