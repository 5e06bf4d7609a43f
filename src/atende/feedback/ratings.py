"""Thumbs up or down, with an optional comment, on the bot's answers (``AnswerRating``).

A customer rates one bot message of their conversation, from the web chat widget or through
the API channel; rating it again replaces the earlier rating (a thumbs-down followed by its
comment is one rating). The rating points at the trace of the turn that wrote the answer, so
the logs viewer shows which passages produced a bad answer, and the knowledge-gaps refresh
counts thumbs-down answers beside handoffs. A change emits the ``message.rated`` webhook in
the same transaction; a rating sent again unchanged changes nothing and emits nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import service as conversations
from atende.db.scope import company_of
from atende.engine import service as engine
from atende.errors import InvalidInput, NotFound
from atende.feedback.ratings_models import AnswerRating
from atende.jobs.queue import JobQueue
from atende.observability import metrics
from atende.webhooks import service as webhooks

COMMENT_MAX = 1000
EVENT = "message.rated"
PAGE_SIZE = 50


def clean_comment(comment: str | None, limit: int = COMMENT_MAX) -> str | None:
    """A comment as stored (an answer's rating, a satisfaction survey's): stripped, ``None``
    when empty; over ``limit`` characters or with a NUL byte it is refused."""
    if comment is None:
        return None
    if "\x00" in comment:
        raise InvalidInput("comment must not contain NUL bytes (\\u0000)", field="comment")
    comment = comment.strip()
    if len(comment) > limit:
        raise InvalidInput(
            f"comment is {len(comment)} characters long; the limit is {limit}", field="comment"
        )
    return comment or None


@dataclass(frozen=True)
class Rated:
    rating: AnswerRating
    changed: bool  # new, or different from the one it replaced


def event_data(rating: AnswerRating) -> dict[str, Any]:
    return {
        "conversation_id": str(rating.conversation_id),
        "message_id": str(rating.message_id),
        "trace_id": str(rating.trace_id) if rating.trace_id else None,
        "helpful": rating.helpful,
        "comment": rating.comment,
        "channel": rating.channel,
        "rated_at": rating.rated_at.isoformat(),
    }


async def rate_answer(
    session: AsyncSession,
    jobs: JobQueue,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    helpful: bool,
    comment: str | None,
    channel: str,
    now: datetime,
) -> Rated:
    """Record the customer's rating of the bot message ``message_id`` of ``conversation_id``
    (replacing an earlier one). ``NotFound`` for a conversation or message that is not the
    company's, or a message of another conversation; ``InvalidInput`` for a message that is
    not the bot's (the customer's own, an agent's, a note)."""
    comment = clean_comment(comment)
    await conversations.get_conversation(session, conversation_id)
    try:
        message = await conversations.get_message(session, message_id)
    except NotFound:
        raise NotFound(f"no message {message_id} in this conversation") from None
    if message.conversation_id != conversation_id:
        raise NotFound(f"no message {message_id} in this conversation")
    if message.author != "bot":
        raise InvalidInput(
            f"only the bot's answers can be rated; message {message_id} is not the bot's",
            field="message_id",
        )
    trace = await engine.trace_of(session, message.reply_to_id) if message.reply_to_id else None
    # the first rating of an answer is inserted; two at once (a double click) make one row,
    # and the second replaces it like any later rating, under the row's lock
    inserted = await session.scalar(
        insert(AnswerRating)
        .values(
            id=uuid.uuid4(),
            company_id=company_of(session),
            conversation_id=conversation_id,
            message_id=message_id,
            trace_id=trace.id if trace else None,
            helpful=helpful,
            comment=comment,
            channel=channel,
            rated_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=[AnswerRating.message_id])
        .returning(AnswerRating.id)
    )
    rating = await session.scalar(
        select(AnswerRating)
        .where(AnswerRating.message_id == message_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert rating is not None  # inserted, or there before
    if inserted is None:
        if (rating.helpful, rating.comment) == (helpful, comment):
            return Rated(rating, changed=False)
        rating.helpful, rating.comment, rating.channel, rating.rated_at = helpful, comment, channel, now
    await session.flush()
    await webhooks.emit(session, jobs, EVENT, event_data(rating))
    metrics.count_on_commit(session, metrics.ANSWER_RATINGS, channel, "helpful" if helpful else "not_helpful")
    return Rated(rating, changed=True)


async def ratings_of(
    session: AsyncSession, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, AnswerRating]:
    """The ratings of these messages (those rated), by message id."""
    if not message_ids:
        return {}
    rows = await session.scalars(select(AnswerRating).where(AnswerRating.message_id.in_(list(message_ids))))
    return {r.message_id: r for r in rows}


async def ratings_of_traces(
    session: AsyncSession, conversation_id: uuid.UUID
) -> dict[uuid.UUID, AnswerRating]:
    """A conversation's ratings, by the trace of the turn each rates (untraced ones left out)."""
    rows = await session.scalars(
        select(AnswerRating).where(
            AnswerRating.conversation_id == conversation_id, AnswerRating.trace_id.is_not(None)
        )
    )
    return {r.trace_id: r for r in rows if r.trace_id is not None}


@dataclass(frozen=True)
class Listed:
    rating: AnswerRating
    question: str  # the customer message the answer replied to ("" if gone)
    answer: str


async def list_ratings(
    session: AsyncSession,
    *,
    helpful: bool | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = PAGE_SIZE,
) -> list[Listed]:
    """The company's ratings, newest first (``helpful``: only those; ``before``: the keyset
    of the last one of the previous page), each with the answer and its question."""
    where: list[ColumnElement[bool]] = []
    if helpful is not None:
        where.append(AnswerRating.helpful.is_(helpful))
    if before is not None:
        at, last = before
        where.append(
            (AnswerRating.rated_at < at) | ((AnswerRating.rated_at == at) & (AnswerRating.id < last))
        )
    rows = list(
        await session.scalars(
            select(AnswerRating)
            .where(*where)
            .order_by(AnswerRating.rated_at.desc(), AnswerRating.id.desc())
            .limit(limit)
        )
    )
    answers = await conversations.messages_by_id(session, [r.message_id for r in rows])
    questions = await conversations.messages_by_id(
        session, [m.reply_to_id for m in answers.values() if m.reply_to_id is not None]
    )
    listed = []
    for row in rows:
        answer = answers.get(row.message_id)
        question = questions.get(answer.reply_to_id) if answer and answer.reply_to_id else None
        listed.append(Listed(row, question.text if question else "", answer.text if answer else ""))
    return listed
