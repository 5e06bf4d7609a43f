"""Keeping a company's knowledge gaps up to date, and reading them for the dashboard.

Which handoffs count (``is_gap``): a bot turn whose trace says ``decision = 'handoff'``
because the knowledge base gave no answer:

- ``weak evidence: best coverage … < threshold …``: the extractive answerer found no passage
  covering the question well enough (also after an LLM failure or a rejected LLM answer,
  whose reasons end with the extractive one: ``the LLM failed (…); extractive: weak
  evidence …``), or found no passage at all (best coverage 0.00);
- ``the LLM found no answer in the passages``: the LLM answered ``NO_ANSWER``;
- ``no answer``: no answerer ran (the turn's fallback reason).

An answer the customer rated "Not helpful" counts too (source ``rating``): its question was
answered, badly, from the knowledge base; a turn counted as a handoff already is not counted
twice, and an answer rated helpful again leaves the gaps at the next refresh.

Not counted: handoffs decided before the knowledge base is searched
(``engine.handoff.signal``): the customer asked for a person, a company rule's keyword
matched, the customer repeated a question the bot had answered. Out of hours is not a reason
of its own: closed hours only change where a handoff goes (a ticket); a weak-evidence question
asked at night is still a gap, while messages the bot never tried to answer (the web chat's
offline form, a message left while the team is away, a turn that failed) have no trace and
never count.

The refresh (``refresh_company``) is incremental where it is cheap: it reads only the traces
written since the last run (with a margin for transactions that committed late), embeds only
those questions (the offline model, ``knowledge.embedding``), fills the agent's answer of
questions still waiting for one, and re-forms the topics (``clustering``) over the latest
``MAX_QUESTIONS`` questions only when a question was added.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import ColumnElement, Row, Select, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations.models import Conversation, Message
from atende.db.session import Database
from atende.engine.models import Trace
from atende.feedback.ratings_models import AnswerRating
from atende.gaps import clustering
from atende.gaps.models import GapQuestion, GapRun, GapTopic
from atende.knowledge.text import fold

log = structlog.get_logger(__name__)

WEAK_EVIDENCE = "weak evidence"
NO_ANSWER_IN_PASSAGES = "the LLM found no answer in the passages"
NO_ANSWER = "no answer"
LATE_COMMIT = timedelta(minutes=10)  # a trace's created_at is its transaction's start
WINDOW = timedelta(days=365)  # older handoffs are neither collected nor clustered
PER_RUN = 5000  # questions embedded per company and run (~5 min): a first run catches up in steps
ANSWER_WAIT = timedelta(days=30)  # how long a question's agent answer is looked for
QUESTION_CHARS = 1000
EXAMPLES = 3
TOPICS_SHOWN = 50
# where each question came from: a handoff for lack of knowledge, or an answer the customer
# rated "Not helpful" (``atende.feedback.ratings``); the page counts each in its own column,
# and ranks by the sum or by either
SOURCES = ("handoff", "rating")
SORTS = ("volume", "handoff", "rating")


class Embedder(Protocol):
    model: str

    async def queries(self, texts: Sequence[str]) -> list[list[float]]: ...


def is_gap(decision: str, reason: str) -> bool:
    """Whether a turn with this trace was handed to people because the knowledge base did not
    cover its question (the module's docstring lists the reasons)."""
    if decision != "handoff":
        return False
    return WEAK_EVIDENCE in reason or reason.startswith(NO_ANSWER_IN_PASSAGES) or reason == NO_ANSWER


@dataclass
class Refreshed:
    added: int = 0
    answered: int = 0
    topics: int | None = None  # None: not re-formed (nothing new)


@dataclass
class Candidate:
    trace_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    message_seq: int
    asked_at: datetime
    channel: str
    language: str
    question: str
    traced_at: datetime
    source: str = "handoff"


def gap_reason() -> ColumnElement[bool]:
    """``is_gap`` as SQL over ``traces`` (the decision checked beside it)."""
    return or_(
        Trace.reason.contains(WEAK_EVIDENCE, autoescape=True),
        Trace.reason.startswith(NO_ANSWER_IN_PASSAGES, autoescape=True),
        Trace.reason == NO_ANSWER,
    )


def _traced_questions() -> Select[*tuple[Any, ...]]:
    """Each trace with its customer's question (the message it took) and the conversation's
    channel: what a gap question is made of, still to filter and order."""
    return (
        select(
            Trace.id,
            Trace.conversation_id,
            Trace.message_id,
            Trace.decision,
            Trace.reason,
            Trace.language,
            Trace.created_at,
            Message.seq,
            Message.text,
            Message.created_at.label("asked_at"),
            Conversation.channel,
        )
        .join(Message, Message.id == Trace.message_id)
        .join(Conversation, Conversation.id == Trace.conversation_id)
        .where(~select(GapQuestion.id).where(GapQuestion.trace_id == Trace.id).exists())
    )


def _candidate(row: Row[Any], source: str) -> Candidate | None:
    """A row of ``_traced_questions`` as a candidate; ``None`` for a question with no text (a
    photo without a caption)."""
    question = " ".join(row.text.split())[:QUESTION_CHARS]
    if not question:
        return None
    return Candidate(
        row.id,
        row.conversation_id,
        row.message_id,
        row.seq,
        row.asked_at,
        row.channel,
        row.language,
        question,
        row.created_at,
        source=source,
    )


async def candidates(
    session: AsyncSession, since: datetime | None, now: datetime, limit: int = PER_RUN
) -> tuple[list[Candidate], datetime | None]:
    """The first ``limit`` gap questions traced since ``since`` (minus the late-commit margin)
    not collected yet, oldest first, and when the newest trace read was written (a question
    with no text, a photo without a caption, is read and skipped). The session is the
    company's: every table here is scoped to it."""
    start = max(since - LATE_COMMIT, now - WINDOW) if since is not None else now - WINDOW
    rows = await session.execute(
        _traced_questions()
        .where(Trace.decision == "handoff", Trace.created_at >= start, gap_reason())
        .order_by(Trace.created_at, Trace.id)
        .limit(limit)
    )
    found = []
    newest = None
    for row in rows:
        newest = row.created_at if newest is None else max(newest, row.created_at)
        if is_gap(row.decision, row.reason) and (candidate := _candidate(row, "handoff")):
            found.append(candidate)
    return found, newest


async def rated_candidates(session: AsyncSession, now: datetime, limit: int = PER_RUN) -> list[Candidate]:
    """The first ``limit`` answers rated "Not helpful" within ``WINDOW`` whose turn is not
    collected yet, oldest rating first, as gap questions of source ``rating`` (the customer's
    question the answer replied to)."""
    if limit <= 0:
        return []
    rows = await session.execute(
        _traced_questions()
        .join(AnswerRating, AnswerRating.trace_id == Trace.id)
        .where(AnswerRating.helpful.is_(False), AnswerRating.rated_at >= now - WINDOW)
        .order_by(AnswerRating.rated_at, AnswerRating.id)
        .limit(limit)
    )
    return [candidate for row in rows if (candidate := _candidate(row, "rating"))]


def no_longer_rated_down() -> ColumnElement[bool]:
    """A ``rating`` question whose answer is no longer rated "Not helpful" (the customer
    changed their mind): it leaves the gaps."""
    still = select(AnswerRating.id).where(
        AnswerRating.trace_id == GapQuestion.trace_id, AnswerRating.helpful.is_(False)
    )
    return (GapQuestion.source == "rating") & ~still.exists()


async def fill_answers(session: AsyncSession, now: datetime) -> int:
    """Give each question still without one its human agent's first answer: the first agent
    message after it in its conversation. Questions older than ``ANSWER_WAIT`` are no longer
    looked at (nobody answered them). Returns how many were filled."""
    waiting = (
        await session.execute(
            select(GapQuestion.id, GapQuestion.conversation_id, GapQuestion.message_seq).where(
                GapQuestion.answer.is_(None), GapQuestion.asked_at >= now - ANSWER_WAIT
            )
        )
    ).all()
    if not waiting:
        return 0
    replies = await session.execute(
        select(Message.conversation_id, Message.seq, Message.text)
        .where(
            Message.conversation_id.in_({w.conversation_id for w in waiting}),
            Message.author == "agent",
        )
        .order_by(Message.seq)
    )
    by_conversation: dict[uuid.UUID, list[tuple[int, str]]] = {}
    for conversation_id, seq, text in replies:
        by_conversation.setdefault(conversation_id, []).append((seq, text))
    filled = 0
    for question_id, conversation_id, seq in waiting:
        answer = next((t for s, t in by_conversation.get(conversation_id, ()) if s > seq and t.strip()), None)
        if answer is not None:
            await session.execute(
                update(GapQuestion).where(GapQuestion.id == question_id).values(answer=answer)
            )
            filled += 1
    return filled


WORD = re.compile(r"[^\W_]+")
STOP = frozenset(
    """
    para como qual quais quando onde porque quero queria gostaria saber voces voce meus minha
    minhas esta estou isso essa esse pode posso podem fazer tenho temos sobre mais muito obrigado
    what when where which does with your have there this that please would could should about
    cual como donde quiero puedo tengo ustedes para sobre esta
    """.split()
)


def top_terms(texts: Sequence[str], limit: int = 4) -> list[str]:
    """The words most of a topic's questions use (each question counts a word once; accents
    and case ignored), each shown as it is most often written."""
    counts: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for text in texts:
        seen = set()
        for word in WORD.findall(text.lower()):
            key = fold(word)
            if len(key) > 3 and key not in STOP and not key.isdigit():
                spellings.setdefault(key, Counter())[word] += 1
                seen.add(key)
        counts.update(seen)
    wanted = max(2, (len(texts) + 1) // 2) if len(texts) > 1 else 1
    return [spellings[k].most_common(1)[0][0] for k, n in counts.most_common(limit) if n >= wanted]


async def form_topics(session: AsyncSession, company_id: uuid.UUID, threshold: float) -> int:
    """Replace the company's topics with those its latest questions form now."""
    rows = (
        await session.execute(
            select(GapQuestion.id, GapQuestion.question, GapQuestion.vector)
            .order_by(GapQuestion.asked_at.desc(), GapQuestion.id)
            .limit(clustering.MAX_QUESTIONS)
        )
    ).all()
    await session.execute(update(GapQuestion).values(topic_id=None))
    await session.execute(delete(GapTopic))
    formed = clustering.groups([r.vector for r in rows], threshold)
    topics = []
    for group in formed:
        members = [rows[i] for i in group.members]
        topics.append(
            GapTopic(
                id=uuid.uuid4(),
                company_id=company_id,
                label=rows[group.representative].question,
                representative_id=rows[group.representative].id,
                terms=top_terms([m.question for m in members]),
                size=len(members),
            )
        )
    session.add_all(topics)
    await session.flush()
    for group, topic in zip(formed, topics, strict=True):
        ids = [rows[i].id for i in group.members]
        await session.execute(update(GapQuestion).where(GapQuestion.id.in_(ids)).values(topic_id=topic.id))
    return len(topics)


async def refresh_company(
    db: Database, company_id: uuid.UUID, embedder: Embedder, now: datetime, *, threshold: float
) -> Refreshed:
    """Bring one company's gaps up to date (the module's docstring says how)."""
    done = Refreshed()
    async with db.transaction(company_id) as session:
        run = await session.get(GapRun, company_id)
        found, newest = await candidates(session, run.seen_up_to if run else None, now)
        handed = {c.trace_id for c in found}  # a handoff rated down counts once, as a handoff
        found += [
            c for c in await rated_candidates(session, now, PER_RUN - len(found)) if c.trace_id not in handed
        ]
        stale = (
            await session.execute(
                select(GapQuestion.id, GapQuestion.question).where(GapQuestion.model != embedder.model)
            )
        ).all()  # embedded by another model (the deployment changed it): not comparable
    # embedding takes CPU time (tens of ms a question): outside any transaction
    vectors = await embedder.queries([c.question for c in found])
    renewed = list(
        zip([r.id for r in stale], await embedder.queries([r.question for r in stale]), strict=True)
    )
    async with db.transaction(company_id) as session:
        # one refresh of a company writes at a time (the job has its own lock; this covers a
        # refresh called directly meanwhile): the second sees the first's questions as known
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(f"gaps:{company_id}", 0)))
        )
        known = set(
            (
                await session.scalars(
                    select(GapQuestion.trace_id).where(GapQuestion.trace_id.in_([c.trace_id for c in found]))
                )
            ).all()
        )  # another refresh may have run meanwhile
        fresh = [(c, v) for c, v in zip(found, vectors, strict=True) if c.trace_id not in known]
        session.add_all(
            GapQuestion(
                company_id=company_id,
                trace_id=c.trace_id,
                conversation_id=c.conversation_id,
                message_id=c.message_id,
                message_seq=c.message_seq,
                source=c.source,
                asked_at=c.asked_at,
                channel=c.channel,
                language=c.language,
                question=c.question,
                model=embedder.model,
                vector=v,
            )
            for c, v in fresh
        )
        await session.flush()
        done.added = len(fresh)
        done.answered = await fill_answers(session, now)
        await session.execute(delete(GapQuestion).where(GapQuestion.asked_at < now - WINDOW))
        withdrawn = (
            await session.scalars(delete(GapQuestion).where(no_longer_rated_down()).returning(GapQuestion.id))
        ).all()
        for question_id, vector in renewed:
            await session.execute(
                update(GapQuestion)
                .where(GapQuestion.id == question_id)
                .values(vector=vector, model=embedder.model)
            )
        if run is None or fresh or renewed or withdrawn:
            done.topics = await form_topics(session, company_id, threshold)
        run = await session.get(GapRun, company_id, with_for_update=True)
        if run is None:
            run = GapRun(company_id=company_id, computed_at=now, seen_up_to=newest)
            session.add(run)
        run.computed_at = now
        if newest is not None and (run.seen_up_to is None or newest > run.seen_up_to):
            run.seen_up_to = newest
        run.questions = int(await session.scalar(select(func.count()).select_from(GapQuestion)) or 0)
        run.topics = int(await session.scalar(select(func.count()).select_from(GapTopic)) or 0)
    return done


# --- reading, for the dashboard ----------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    start: datetime  # asked at or after
    end: datetime  # asked before
    channel: str | None = None
    language: str | None = None
    sort: str = "volume"  # one of ``SORTS``: every source, handoffs, or "Not helpful" ratings


@dataclass
class Example:
    question: str
    asked_at: datetime
    conversation_id: uuid.UUID
    answer: str | None


@dataclass
class Topic:
    id: uuid.UUID
    label: str
    terms: list[str]
    counts: dict[str, int]  # questions in the filters, by source (``SOURCES``)
    examples: list[Example] = field(default_factory=list)
    draft: str | None = None  # the agent's answer to the representative question (else another's)

    @property
    def volume(self) -> int:
        return sum(self.counts.values())


async def last_run(session: AsyncSession, company_id: uuid.UUID) -> GapRun | None:
    return await session.get(GapRun, company_id)


async def topics(session: AsyncSession, filters: Filters, limit: int = TOPICS_SHOWN) -> list[Topic]:
    """The topics with questions in ``filters``, most questions first (``filters.sort``: most
    of one source first, then most questions), each with its latest examples (in the filters)
    and a draft answer for an article."""
    where = [
        GapQuestion.topic_id.is_not(None),
        GapQuestion.asked_at >= filters.start,
        GapQuestion.asked_at < filters.end,
    ]
    if filters.channel:
        where.append(GapQuestion.channel == filters.channel)
    if filters.language:
        where.append(GapQuestion.language == filters.language)
    counted = (
        await session.execute(
            select(GapQuestion.topic_id, GapQuestion.source, func.count())
            .where(*where)
            .group_by(GapQuestion.topic_id, GapQuestion.source)
        )
    ).all()
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for topic_id, source, n in counted:
        if topic_id is None:  # not selected (the filters exclude them); for the type checker
            continue
        counts.setdefault(topic_id, dict.fromkeys(SOURCES, 0))[source] = int(n)

    def rank(topic_id: uuid.UUID) -> tuple[int, int, str]:
        by = counts[topic_id]
        total = sum(by.values())
        return (-(by[filters.sort] if filters.sort in SOURCES else total), -total, str(topic_id))

    ranked = sorted(counts, key=rank)[:limit]
    if not ranked:
        return []
    found = {t.id: t for t in (await session.scalars(select(GapTopic).where(GapTopic.id.in_(ranked)))).all()}
    shown = [Topic(t, found[t].label, list(found[t].terms or []), counts[t]) for t in ranked if t in found]
    by_id = {t.id: t for t in shown}
    recent = (
        select(
            GapQuestion.topic_id,
            GapQuestion.question,
            GapQuestion.asked_at,
            GapQuestion.conversation_id,
            GapQuestion.answer,
            func.row_number()
            .over(partition_by=GapQuestion.topic_id, order_by=(GapQuestion.asked_at.desc(), GapQuestion.id))
            .label("n"),
        )
        .where(*where, GapQuestion.topic_id.in_(list(by_id)))
        .subquery()
    )
    for row in await session.execute(select(recent).where(recent.c.n <= EXAMPLES).order_by(recent.c.n)):
        by_id[row.topic_id].examples.append(
            Example(row.question, row.asked_at, row.conversation_id, row.answer)
        )
    representatives = {found[t.id].representative_id: t for t in shown}
    for question_id, answer in await session.execute(
        select(GapQuestion.id, GapQuestion.answer).where(GapQuestion.id.in_(list(representatives)))
    ):
        representatives[question_id].draft = answer
    waiting = [t.id for t in shown if not t.draft]
    if waiting:  # else the latest answer any of its questions had (whatever the filters)
        answered = (
            select(
                GapQuestion.topic_id,
                GapQuestion.answer,
                func.row_number()
                .over(
                    partition_by=GapQuestion.topic_id, order_by=(GapQuestion.asked_at.desc(), GapQuestion.id)
                )
                .label("n"),
            )
            .where(GapQuestion.topic_id.in_(waiting), GapQuestion.answer.is_not(None))
            .subquery()
        )
        for topic_id, answer in await session.execute(
            select(answered.c.topic_id, answered.c.answer).where(answered.c.n == 1)
        ):
            by_id[topic_id].draft = answer
    return shown
