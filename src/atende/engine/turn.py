"""One bot turn: normalise → detect language → (small talk | handoff signal | retrieve → answer)
→ decide; a handoff is routed by business hours and who is online (``engine.handoff``).

Each step is a small function over a ``Turn`` and the ports (retriever, answerer); the
runner times every step and writes a trace. The reply, the trace and any handoff are
written in one transaction, and the database allows one bot reply per customer message,
so a turn that runs twice (a worker died, a job was retried) answers once.

A message that asks several questions (``engine.questions``) is also looked up and
answered question by question: the reply answers each one it can, citing its own passage,
and hands the conversation off for the rest (lead ``partial``); its trace's retrieve and
answer steps list each question's passages and answer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import service as conversations
from atende.conversations.models import Conversation, Message
from atende.conversations.schemas import FILTERS_META, NOT_FOR_THE_BOT
from atende.conversations.states import State
from atende.db.pubsub import publish, publish_now
from atende.engine import followup, handoff, questions, smalltalk
from atende.engine.messages import asked_about, found_in, handoff_text, phrase
from atende.engine.models import Trace
from atende.errors import NotFound
from atende.hours import is_open
from atende.knowledge import language as languages
from atende.knowledge import rules
from atende.knowledge.embedding import Embedder, EmbeddingUnavailable, query_vectors
from atende.knowledge.filters import NO_FILTERS, Filters
from atende.knowledge.passages import Passage
from atende.knowledge.rerank import RerankStep, own_session, rerank
from atende.knowledge.retrieval import Retriever, Stage, lexemes, question_stems
from atende.knowledge.rules import Applied, Scope
from atende.knowledge.schemas import FiltersIn
from atende.knowledge.text import subject_line
from atende.llm.answerer import Answer, Answerer, Drafts, Lexer, Question
from atende.observability import metrics
from atende.observability.logging import describe
from atende.runtime import Runtime
from atende.teams import service as teams
from atende.teams.settings import HandoffSettings, handoff_settings
from atende.tenancy import service as tenancy
from atende.tenancy.models import Company
from atende.tenancy.settings import Instructions, read_section

log = structlog.get_logger(__name__)
OPENING_TASK = "engine:announce_opening"


@dataclass
class Ports:
    retriever: Retriever
    answerer: Answerer
    top_k: int
    questions: int = 1  # most questions of one message looked up one by one (1: the message whole)
    embedder: Embedder | None = None  # compares a message's questions (near-duplicates, topic)
    rewriter: followup.Rewriter | None = None  # the LLM's rewrite of follow-ups, when configured
    # re-ranking stages that read no database (the LLM's): run after the reading transaction
    # (``rerank_late``), so that no connection is held while the LLM thinks
    rerank_after: Sequence[RerankStep] = ()

    @property
    def fetched(self) -> int:
        """How many passages retrieval keeps for the answerer: ``top_k``, or as many as the
        late re-ranking stages re-order (they keep ``top_k``)."""
        return max([self.top_k, *(step.candidates for step in self.rerank_after)])


@dataclass
class Part:
    """One question of a message that asks several: what was looked up for it, and its answer."""

    asked: questions.Asked
    passages: list[Passage]
    stems: dict[str, frozenset[str]]
    answer: Answer | None = None
    stages: list[Stage] = field(default_factory=list)  # what each stage of its lookup returned


@dataclass
class Turn:
    """What the pipeline knows and finds out about one customer message."""

    company_id: uuid.UUID
    incoming: str  # the customer's message as received
    known_language: str | None = None  # the conversation's language so far, if any
    default_language: str | None = None  # the company's, when the caller has it at hand
    history: tuple[tuple[str, str], ...] = ()  # earlier messages: (author, text), oldest first
    instructions: str = ""  # the company's words to the assistant
    company_name: str = ""
    handoff_settings: HandoffSettings = field(default_factory=HandoffSettings)  # the company's rules
    asked_language: str | None = None  # the question's language when the caller knows it: not detected
    filters: Filters = NO_FILTERS  # which documents may answer
    applied: tuple[Applied, ...] = ()  # the knowledge rules and filters behind ``filters``, for the trace
    text: str = ""
    query: str = ""  # what to look up: the text without an opening greeting, a follow-up resolved
    language: str = "pt"
    small_talk: str | None = None
    signal: handoff.Signal | None = None  # goes to a person before any lookup
    passages: list[Passage] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)  # what each stage of retrieval returned
    answer: Answer | None = None
    # a message that asks several questions: each one's retrieval and answer (else empty)
    parts: list[Part] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # its questions left for a person
    decision: str = "handoff"
    reason: str = ""
    # the follow-up's resolution when found before the reading transaction (the LLM's rewrite)
    resolution: followup.Resolution | None = None
    reranked_late: bool = False  # the late re-ranking stages ran (``rerank_late``)
    steps: list[dict[str, Any]] = field(default_factory=list)
    # what each step found, by step name, for its entry in the trace (``timed`` adds it)
    found: dict[str, dict[str, Any]] = field(default_factory=dict)

    def retrieved(self) -> list[Passage]:
        """Every passage the turn looked at: the whole message's, then each question's."""
        seen = {p.chunk_id for p in self.passages}
        extra = []
        for part in self.parts:
            for p in part.passages:
                if p.chunk_id not in seen:
                    seen.add(p.chunk_id)
                    extra.append(p)
        return [*self.passages, *extra]


Step = Callable[[AsyncSession, Turn, Ports], Awaitable[None]]


def normalised(message: str) -> str:
    """Spaces collapsed and blank lines dropped; line breaks kept (an e-mail's first line
    may be its subject, which retrieval weighs more)."""
    lines = (" ".join(line.split()) for line in message.splitlines())
    return "\n".join(line for line in lines if line)


async def normalise(_s: AsyncSession, turn: Turn, _p: Ports) -> None:
    turn.text = normalised(turn.incoming)
    turn.found["normalise"] = {"text": turn.text[:TRACED_TEXT]}


async def detect_language(session: AsyncSession, turn: Turn, _p: Ports) -> None:
    if turn.asked_language:
        turn.language = turn.asked_language
        return
    fallback = turn.known_language or turn.default_language
    if fallback is None:
        company = await tenancy.get_company(session, str(turn.company_id))
        fallback = company.default_language
    # kept on the turn: the conversation is written only once it is locked (see run_turn)
    turn.language, confidence = languages.detect(turn.text, fallback=fallback)
    turn.found["detect_language"] = {
        "language": turn.language,
        "confidence": round(confidence, 3),
        "fallback": fallback,  # what it would have said unsure (the conversation's, the company's)
    }


async def recognise_small_talk(_s: AsyncSession, turn: Turn, _p: Ports) -> None:
    turn.small_talk = smalltalk.classify(turn.text)
    turn.query = smalltalk.without_greeting(turn.text)
    turn.found["small_talk"] = {"kind": turn.small_talk, "query": turn.query[:TRACED_TEXT]}


async def recognise_handoff(_s: AsyncSession, turn: Turn, _p: Ports) -> None:
    if not turn.small_talk:
        turn.signal = handoff.signal(turn.text, turn.history, turn.handoff_settings)
    if turn.signal is not None:
        turn.found["handoff_signal"] = {"reason": turn.signal.reason, "lead": turn.signal.lead}


async def resolve_follow_up(session: AsyncSession, turn: Turn, ports: Ports) -> None:
    """A follow-up ("e para o Nordeste?") looks up what it means in the conversation: the
    previous question's topic added offline (unless its own words already find a passage
    close in meaning), or the company LLM's standalone rewrite."""
    if turn.small_talk or turn.signal or not turn.history:
        return
    asked = turn.query
    resolution = turn.resolution or await followup.resolve(asked, turn.language, turn.history, ports.rewriter)
    if resolution.how in ("offline", "llm_failed") and resolution.query != asked:
        own = await ports.retriever.retrieve(session, asked, 1, turn.language, filters=turn.filters)
        if followup.stands_alone(asked, own[0].scores.get("dense") if own else None):
            resolution = followup.kept_as_asked(resolution, asked)
    turn.query = resolution.query
    turn.found["follow_up"] = {
        **turn.found.get("follow_up", {}),  # the LLM's time, when it ran before the transaction
        "how": resolution.how,
        "original": asked[:TRACED_TEXT],
        "query": resolution.query[:TRACED_TEXT],
        "error": resolution.error,
    }


def fallbacks(stages: Sequence[Stage]) -> dict[str, list[dict[str, str]]]:
    """For a step's entry in the trace: each retrieval stage that fell back, and why (the
    dense stage without the question's embedding; a re-ranking stage over its budget, failed
    or timed out, whose input order stood), under ``fallbacks``; nothing when none did."""
    fell = [{"stage": stage.name, "error": stage.error[:TRACED_TEXT]} for stage in stages if stage.error]
    return {"fallbacks": fell} if fell else {}


def stage_times(stages: Sequence[Stage]) -> list[dict[str, Any]]:
    """For a step's entry in the trace: each retrieval stage's name, time, how many
    candidates it returned and how many went on (``kept``; ``None``: all)."""
    return [
        {"stage": stage.name, "ms": stage.ms, "found": len(stage.passages), "kept": stage.kept}
        for stage in stages
    ]


def displaced(stages: Sequence[Stage], kept: Sequence[Passage]) -> dict[str, Any]:
    """For a step's entry in the trace: the passages fusion ranked among the first
    ``len(kept)`` that re-ranking moved out of them (``kept``), with their scores before and
    after it, under ``displaced``; nothing when no re-ranking ran or it moved none out."""
    fused = next((stage for stage in stages if stage.name == "fused"), None)
    if fused is None or fused is stages[-1] or not kept:
        return {}
    after = {p.chunk_id: p for p in stages[-1].passages}  # re-ranking scored copies of them
    ids = {p.chunk_id for p in kept}
    out = [after.get(p.chunk_id, p) for p in fused.passages[: len(kept)] if p.chunk_id not in ids]
    return {"displaced": traced_passages(out)} if out else {}


def traced_passages(passages: Sequence[Passage]) -> list[dict[str, Any]]:
    """For a step's entry in the trace: each passage, with its score and rank in every stage."""
    return [
        {"chunk_id": str(p.chunk_id), "title": p.title, "section": p.section, "scores": dict(p.scores)}
        for p in passages
    ]


async def rewrite_follow_up(turn: Turn, ports: Ports) -> None:
    """The LLM's rewrite of a follow-up (``ports.rewriter``), run before the reading
    transaction: its deadline is seconds, and no connection waits for it. The follow-up
    step then takes its resolution (``turn.resolution``)."""
    if ports.rewriter is None or turn.small_talk or turn.signal or not turn.history:
        return
    started = time.perf_counter()
    turn.resolution = await followup.resolve(turn.query, turn.language, turn.history, ports.rewriter)
    turn.found["follow_up"] = {"llm_ms": round((time.perf_counter() - started) * 1000, 3)}


async def retrieve(session: AsyncSession, turn: Turn, ports: Ports) -> None:
    if turn.small_talk or turn.signal:
        return
    started = time.perf_counter()
    asked = questions.split(turn.text, ports.questions)
    split_ms = (time.perf_counter() - started) * 1000
    message, embedding = embed_early(turn, ports, asked)
    try:
        turn.passages = await ports.retriever.retrieve(
            session,
            turn.query,
            ports.fetched,
            turn.language,
            filters=turn.filters,
            stages=turn.stages,
            vector=asyncio.shield(message) if message is not None else None,
        )
    except BaseException:
        _forget(message)
        _forget(embedding)
        raise
    metrics.RETRIEVAL_LATENCY.observe(time.perf_counter() - started)
    turn.found["retrieve"] = {
        "retriever": ports.retriever.name,
        "top_k": ports.top_k,
        "found": len(turn.passages),
        "stages": stage_times(turn.stages),
        **displaced(turn.stages, turn.passages),
        **({"rules": [a.as_dict() for a in turn.applied]} if turn.applied else {}),
        **fallbacks(turn.stages),
    }
    await retrieve_each_question(session, turn, ports, asked, embedding, split_ms)


QuestionVectors = asyncio.Future[dict[str, list[float]]]


def embed_early(
    turn: Turn, ports: Ports, asked: Sequence[questions.Asked]
) -> tuple[asyncio.Future[list[float]] | None, QuestionVectors | None]:
    """A message that asks several questions (``asked``): its embeddings, started now, while
    PostgreSQL ranks the message whole by BM25. First the message whole's (what the
    retriever would embed of it, handed to its lookup: ``Retriever.retrieve``'s ``vector``),
    then its questions' queries (``Asked.query``, which ``questions.distinct`` compares) in
    one batch, run while the message whole's lookup goes on. Each kept question's lookup then
    finds its query's vector cached: one embedding per question, not one to compare and
    another to look up (the model's calls were most of a long e-mail's turn). ``None``s:
    nothing to embed (one question, no embedder); the message's: its retriever embeds it."""
    if len(asked) < 2 or ports.embedder is None:
        return None, None
    looked_up = getattr(ports.retriever, "embedded_part", None)
    whole = getattr(ports.retriever, "embedder", None)
    message: asyncio.Future[list[float]] | None = None
    if looked_up is not None and whole is not None:
        message = asyncio.ensure_future(whole.query(looked_up(turn.query)))
    unique = list(dict.fromkeys(compared(ports, a) for a in asked))
    embedder = ports.embedder

    async def embed() -> dict[str, list[float]]:
        if message is not None and hasattr(embedder, "query_batch"):
            # the offline model runs one call at a time: the message's first (an endpoint
            # embeds both at once); and were it unavailable for the message, so it is for these
            await asyncio.wait({message})
            failed = message.exception()
            if isinstance(failed, EmbeddingUnavailable) and getattr(whole, "model", None) == embedder.model:
                raise EmbeddingUnavailable(str(failed))
        return dict(zip(unique, await query_vectors(embedder, unique), strict=True))

    return message, asyncio.ensure_future(embed())


def _forget(future: asyncio.Future[Any] | None) -> None:
    """Cancel ``future``, or, finished, take its outcome: nobody waits for it any more."""
    if future is not None and not future.cancel() and not future.cancelled():
        future.exception()


def compared(ports: Ports, one: questions.Asked) -> str:
    """What of ``one`` is embedded to compare it with the message's other questions: its
    query as its lookup embeds it (cut as the retriever cuts it), so that lookup finds the
    vector cached."""
    looked_up = getattr(ports.retriever, "embedded_part", None)
    return str(looked_up(one.query)) if looked_up is not None else one.query


# A message's questions are looked up at once, each in a transaction of its own beside the
# turn's, at most this many at a time (one after the other, they were a third of a long
# e-mail's turn, ``benchmarks/README.md``). Each holds one more connection of the pool
# (ATENDE_DB_POOL_SIZE) while the turn holds its own: at most 1 + 2 a turn (the message
# whole's re-ranking took its extra one before them). A question's lookup is re-ranked on
# the connection it holds (``rerank.IN_TRANSACTION``), waiting for no other; and a lookup
# that finds no connection free within ``SPARE_CONNECTION_WAIT`` runs in the turn's own
# transaction instead, one at a time, as before: turns (or searches) that hold every
# connection of the pool never wait on each other for a second one.
QUESTION_LOOKUPS_AT_ONCE = 2
SPARE_CONNECTION_WAIT = 0.25  # seconds


@asynccontextmanager
async def beside(session: AsyncSession, alone: asyncio.Lock) -> AsyncIterator[AsyncSession]:
    """A transaction of the same company (and caches: the session's ``info``) as
    ``session``, on a connection of its own from the same pool, for one lookup: it only
    reads, and is rolled back (the re-ranker runs in it, ``rerank.IN_TRANSACTION``). When no
    connection comes within ``SPARE_CONNECTION_WAIT``: ``session`` itself, held alone
    (``alone``) for the lookup."""
    async with own_session(session, one_lookup=True) as own:
        try:
            await asyncio.wait_for(own.connection(), SPARE_CONNECTION_WAIT)
        except TimeoutError:
            pass
        else:
            yield own
            return
    async with alone:
        yield session


async def all_or_none(
    coroutines: Sequence[Coroutine[Any, Any, tuple[Part, dict[str, Any]]]],
) -> list[tuple[Part, dict[str, Any]]]:
    """The coroutines' results in their order, run at once; when one fails the others are
    cancelled (and have closed their transactions) before its error goes on, as it was raised."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def retrieve_each_question(
    session: AsyncSession,
    turn: Turn,
    ports: Ports,
    asked: Sequence[questions.Asked],
    embedding: QuestionVectors | None,
    split_ms: float = 0.0,
) -> None:
    """A message that asks several questions (``asked``, the message split by ``retrieve``,
    which started embedding them: ``embed_early``): each one looked up on its own
    (``turn.parts``), beside the whole message, at once (``QUESTION_LOOKUPS_AT_ONCE``). A
    message asking one question is left as it was. The trace's ``split_ms``: the rules' time
    (``split_ms``), then the wait for the questions' vectors after the whole message's lookup
    and their comparison."""
    started = time.perf_counter()
    if len(asked) < 2:
        return
    vectors: list[list[float]] | None = None
    if embedding is not None:
        try:
            embedded = await embedding
            vectors = [embedded[compared(ports, a)] for a in asked]
        except EmbeddingUnavailable as exc:
            log.warning("turn.questions_unembedded", error=str(exc))
    # queries sharing the subject line are closer than the questions alone
    alike = (
        questions.QUERY_DUPLICATE_SIMILARITY
        if any(a.query != a.text for a in asked)
        else questions.DUPLICATE_SIMILARITY
    )
    asked = questions.distinct(list(asked), vectors, ports.questions, duplicate=alike)
    split_ms = round(split_ms + (time.perf_counter() - started) * 1000, 3)
    if len(asked) < 2:
        turn.found["retrieve"]["questions_merged"] = True
        return
    gate, alone = asyncio.Semaphore(QUESTION_LOOKUPS_AT_ONCE), asyncio.Lock()

    async def look_up(one: questions.Asked) -> tuple[Part, dict[str, Any]]:
        async with gate, beside(session, alone) as own:
            t0 = time.perf_counter()
            seen: list[Stage] = []
            # stemmed first: a re-ranking cut short by its budget may leave the transaction
            # unusable, and retrieval's full-text stage finds them in the session's cache
            stems = await question_stems(own, one.query, also=subject_line(one.query))
            passages = await ports.retriever.retrieve(
                own, one.query, ports.fetched, turn.language, filters=turn.filters, stages=seen
            )
        traced = {
            "question": one.text[:TRACED_TEXT],
            "query": one.query[:TRACED_TEXT],
            "ms": round((time.perf_counter() - t0) * 1000, 3),
            "found": traced_passages(passages),
            "stages": stage_times(seen),
            **displaced(seen, passages),
            **fallbacks(seen),
        }
        return Part(one, passages, stems, stages=seen), traced

    looked_up = await all_or_none([look_up(one) for one in asked])
    turn.parts.extend(part for part, _ in looked_up)
    traced = [each for _, each in looked_up]
    turn.found["retrieve"]["split_ms"] = split_ms
    turn.found["retrieve"]["questions"] = traced


async def rerank_late(turn: Turn, ports: Ports) -> None:
    """The late re-ranking stages (``ports.rerank_after``: the LLM's) over the message's
    passages and each of its questions', outside any transaction; each then keeps ``top_k``.
    The message's stages gain one each, with its scores or why the order before it stood."""
    if turn.reranked_late or not ports.rerank_after or turn.small_talk or turn.signal:
        return
    turn.reranked_late = True

    async def one(passages: list[Passage], query: str, stages: list[Stage] | None) -> list[Passage]:
        ranked = passages
        for step in ports.rerank_after:
            if stages:
                stages[-1].kept = max(ports.top_k, step.candidates)
            done = await rerank(None, step, query, turn.language, ranked)
            ranked = done.passages
            if stages is not None:
                stages.append(Stage(step.stage, ranked, done.ms, error=done.error))
        if stages:
            stages[-1].kept = ports.top_k
        return ranked[: ports.top_k]

    async def part(each: Part) -> None:
        each.passages = await one(each.passages, each.asked.query, each.stages)

    turn.passages = await one(turn.passages, turn.query, turn.stages)
    await asyncio.gather(*(part(each) for each in turn.parts))
    late = {step.stage for step in ports.rerank_after}
    turn.found["rerank"] = {
        "stages": sorted(late),
        "times": stage_times([stage for stage in turn.stages if stage.name in late]),
        **fallbacks([stage for stage in turn.stages if stage.name in late]),
    }


async def answer(session: AsyncSession, turn: Turn, ports: Ports) -> None:
    if turn.small_talk or turn.signal:
        return
    await rerank_late(turn, ports)

    async def lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
        return await lexemes(session, texts)

    await answer_with(turn, ports, await question_stems(session, turn.query), lexer)


async def answer_with(
    turn: Turn,
    ports: Ports,
    stems: dict[str, frozenset[str]],
    lexer: Lexer,
    drafts: Drafts | None = None,
    *,
    concurrently: bool = False,
) -> None:
    """The answer step given the question's stems and a lexer (no session of its own: the
    real turn runs it outside any transaction, an LLM may take seconds). A message that asks
    several questions gets each answered (``concurrently`` when the lexer may be called so);
    when none can be, the message is answered whole, as one question."""
    if turn.small_talk or turn.signal:
        return
    if turn.parts and await _answer_each(turn, ports, lexer, concurrently):
        return
    question = Question(
        turn.text,
        turn.language,
        stems,
        history=turn.history,
        instructions=turn.instructions,
        company=turn.company_name,
        drafts=drafts,
    )
    turn.answer = await ports.answerer.answer(question, turn.passages, lexer)
    if turn.answer.text and turn.answer.quoted_language:  # a passage in another language, as it is
        turn.answer.text = f"{found_in(turn.answer.quoted_language, turn.language)}\n{turn.answer.text}"
    turn.found["answer"] = {
        **turn.found.get("answer", {}),  # each question's, when none of them could be answered
        "answerer": ports.answerer.name,
        "model": turn.answer.model,
        "error": turn.answer.error,
        "confidence": round(turn.answer.confidence, 3),
    }


# How much of the message's questions the passage answering one of them must hold: at
# least this fair share (of 1/n for n questions) of all the questions' topic terms (the
# subject line's included). A message's questions share its topic; a passage that covers a
# short question's two or three words and nothing else of the message matched them by
# chance ("Se puder, qual a quantidade?" answered from an article on removing warts). On the
# support e-mails (docs/EVALUATION.md) 0.6 dropped 7 of 46 answers not citing the gold
# passage, all plainly wrong, and none of the 31 citing it. Unrelated questions in one chat
# message give each right passage about 1/n.
QUESTIONS_SHARE = 0.6


def share_of(stems: dict[str, frozenset[str]], answer: Answer, passages: list[Passage]) -> float:
    """The best share of the topic terms ``stems`` (per language) a passage ``answer`` cites holds."""
    cited = {c.get("chunk_id") for c in answer.citations}
    shares = [
        len(terms & p.lexemes) / len(terms)
        for p in passages
        if str(p.chunk_id) in cited and (terms := stems.get(p.language, frozenset()))
    ]
    return max(shares, default=0.0)


async def _answer_each(turn: Turn, ports: Ports, lexer: Lexer, concurrently: bool) -> bool:
    """Answer each of the message's questions from its own passages; the answered ones make
    one reply, each part saying which question it answers and citing its own passage. An
    answer whose passage holds too little of all the questions (``QUESTIONS_SHARE``) is not
    given. The questions left unanswered go to ``turn.unanswered`` (a person answers them).
    ``False`` when none could be answered."""
    asked = {
        language: frozenset().union(*(part.stems.get(language, frozenset()) for part in turn.parts))
        for language in {language for part in turn.parts for language in part.stems}
    }
    needed = QUESTIONS_SHARE / len(turn.parts)

    async def one(part: Part) -> None:
        question = Question(
            part.asked.query,
            turn.language,
            part.stems,
            history=turn.history,
            instructions=turn.instructions,
            company=turn.company_name,
        )
        found = await ports.answerer.answer(question, part.passages, lexer)
        share = share_of(asked, found, part.passages) if found.text else 0.0
        if found.text and share < needed:
            found = replace(
                found,
                text=None,
                citations=[],
                reason=f"off the message's topic: its passage holds {share:.2f} of the questions' "
                f"terms < {needed:.2f} ({found.reason})",
            )
        part.answer = found

    if concurrently:
        await asyncio.gather(*(one(part) for part in turn.parts))
    else:
        for part in turn.parts:
            await one(part)
    turn.found["answer"] = {
        "answerer": ports.answerer.name,
        "questions": [
            {
                "question": part.asked.text[:TRACED_TEXT],
                "answered": bool(part.answer and part.answer.text),
                "reason": part.answer.reason if part.answer else "",
                "confidence": round(part.answer.confidence, 3) if part.answer else 0.0,
                # what the answerer read (after the late re-ranking, with its coverage) and cited
                "passages": traced_passages(part.passages),
                "citations": [
                    {k: c.get(k) for k in ("chunk_id", "title", "section")}
                    for c in (part.answer.citations if part.answer and part.answer.text else [])
                ],
            }
            for part in turn.parts
        ],
    }
    answered = [(p, p.answer) for p in turn.parts if p.answer is not None and p.answer.text]
    if not answered:
        return False
    turn.unanswered = [p.asked.text for p in turn.parts if p.answer is None or not p.answer.text]
    texts: list[str] = []
    citations: list[dict[str, Any]] = []
    for part, answer_ in answered:
        texts.append(f"{asked_about(part.asked.text, turn.language)} {answer_.text}")
        citations.extend({**c, "question": part.asked.text[:200]} for c in answer_.citations)
    first = answered[0][1]
    turn.answer = Answer(
        "\n\n".join(texts),
        reason=f"answered {len(answered)} of {len(turn.parts)} questions: "
        + "; ".join(a.reason for _, a in answered),
        confidence=min(a.confidence for _, a in answered),
        citations=citations,
        needed=first.needed,
        model=first.model,
        error=next((a.error for _, a in answered if a.error), None),
    )
    turn.found["answer"].update(
        {"model": turn.answer.model, "error": turn.answer.error, "confidence": turn.answer.confidence}
    )
    return True


async def conclude(
    runtime: Runtime,
    turn: Turn,
    ports: Ports,
    stems: dict[str, frozenset[str]],
    drafts: Drafts | None = None,
) -> Turn:
    """The turn's second half once ``GATHER`` ran: the answer (outside any transaction: an
    LLM may take seconds; the answerer's stemming takes short ones) and the decision, each
    timed. The real turn, agent assist and "try a question" all end here."""

    async def lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
        async with runtime.db.transaction(turn.company_id) as short:
            return await lexemes(short, texts)

    await finish_retrieval(turn, ports)
    await timed(turn, "answer", answer_with(turn, ports, stems, lexer, drafts, concurrently=True))
    await timed(turn, "decide", decide(None, turn, ports))
    return turn


async def finish_retrieval(turn: Turn, ports: Ports) -> None:
    """Retrieval's late stages (``rerank_late``) once ``GATHER`` ran and its transaction
    ended, as one more step of the trace (``rerank``) when there are any."""
    if ports.rerank_after and not turn.reranked_late and not (turn.small_talk or turn.signal):
        await timed(turn, "rerank", rerank_late(turn, ports))


async def decide(_s: AsyncSession | None, turn: Turn, _p: Ports) -> None:
    if turn.small_talk:
        turn.decision, turn.reason = "answer", f"small talk: {turn.small_talk}"
    elif turn.signal:
        turn.decision, turn.reason = "handoff", turn.signal.reason
    elif turn.answer is not None and turn.answer.text and turn.unanswered:
        # the answered questions are sent, a person answers the rest
        left = next(p.answer.reason for p in turn.parts if p.answer is not None and not p.answer.text)
        turn.decision = "handoff"
        turn.reason = f"partly {turn.answer.reason}; {len(turn.unanswered)} left: {left}"
    elif turn.answer is not None and turn.answer.text:
        turn.decision, turn.reason = "answer", turn.answer.reason
    else:
        turn.decision = "handoff"
        turn.reason = turn.answer.reason if turn.answer else "no answer"


PIPELINE: list[tuple[str, Step]] = [
    ("normalise", normalise),
    ("detect_language", detect_language),
    ("small_talk", recognise_small_talk),
    ("handoff_signal", recognise_handoff),
    ("follow_up", resolve_follow_up),
    ("retrieve", retrieve),
    ("answer", answer),
    ("decide", decide),
]
# what the real turn does inside its reading transaction: everything before the answer. The
# LLM's follow-up rewrite (``rewrite_follow_up``) runs before it when the company has an LLM,
# between the steps before the follow-up and the rest; its re-ranking after it (``conclude``)
GATHER = PIPELINE[: [name for name, _ in PIPELINE].index("answer")]
BEFORE_FOLLOW_UP = GATHER[: [name for name, _ in GATHER].index("follow_up")]
FROM_FOLLOW_UP = GATHER[len(BEFORE_FOLLOW_UP) :]


TRACED_TEXT = 2000  # characters of the question kept in a trace's steps


async def timed(turn: Turn, name: str, work: Awaitable[None]) -> None:
    """Run one step, and add it to the trace: its name, its time, and what it found (the
    normalised text, the language and its confidence, the answerer's model and error...).
    A later stage (re-ranking) is one more step here, and one more score on each passage."""
    t0 = time.perf_counter()
    await work
    ms = round((time.perf_counter() - t0) * 1000, 3)
    turn.steps.append({"step": name, "ms": ms, **turn.found.pop(name, {})})


async def think(
    session: AsyncSession, turn: Turn, ports: Ports, steps: list[tuple[str, Step]] = PIPELINE
) -> Turn:
    """Run the pipeline over ``turn`` (reads only; writes nothing), timing every step."""
    for name, step in steps:
        await timed(turn, name, step(session, turn, ports))
    return turn


def _answer_text(turn: Turn) -> tuple[str, dict[str, Any]]:
    if turn.small_talk:
        return phrase(turn.small_talk, turn.language), {}
    assert turn.answer is not None
    assert turn.answer.text
    return turn.answer.text, {"citations": turn.answer.citations, "confidence": turn.answer.confidence}


async def hand_off(
    session: AsyncSession,
    runtime: Runtime,
    conversation: Conversation,
    company: Company,
    *,
    lead: str,
    reason: str,
    language: str,
    reply_to_id: uuid.UUID,
    team: str | None = None,
    answered: Answer | None = None,
    unanswered: Sequence[str] = (),
) -> Message:
    """Tell the customer what happens next and queue the conversation (locked by the caller)
    for the team: when it is open and someone is online a person answers soon; else it waits
    as a ticket and the customer hears when the team is back, in their language and time.
    A message partly answered (``answered``, lead ``partial``) gets those answers first, with
    their citations, and then which of its questions (``unanswered``) a person will answer."""
    now = runtime.clock()
    routing = await handoff.route(session, company, team, now)
    text = handoff_text(lead, language, routing, now, questions=unanswered)
    meta: dict[str, Any] = {"decision": "handoff", "ticket": routing.ticket}
    if answered is not None and answered.text:
        text = f"{answered.text}\n\n{text}"
        meta |= {"citations": answered.citations, "confidence": answered.confidence}
    reply = await conversations.add_reply(
        session,
        runtime.jobs,
        conversation,
        author="bot",
        text=text,
        reply_to_id=reply_to_id,
        language=language,
        meta=meta,
    )
    await _queue_for_team(session, runtime, conversation, company, routing, reason, now)
    return reply


async def _queue_for_team(
    session: AsyncSession,
    runtime: Runtime,
    conversation: Conversation,
    company: Company,
    routing: handoff.Routing,
    reason: str,
    now: datetime,
) -> None:
    note = "" if not routing.ticket else " (closed)" if not routing.is_open else " (nobody online)"
    await conversations.hand_to_team(
        session,
        runtime.jobs,
        conversation,
        team_id=routing.team_id,
        ticket=routing.ticket,
        reason=f"{reason}{note}"[:500],
        now=now,
        extra={"opens": routing.opens.isoformat() if routing.opens else None},
    )
    if routing.ticket and routing.opens is not None:
        # when the team opens, its screens and webhook hear that tickets are waiting
        await runtime.jobs.enqueue(
            session,
            OPENING_TASK,
            queueing_lock=f"opening:{company.id}:{routing.opens.isoformat()}",
            schedule_at=routing.opens,
            company_id=str(company.id),
        )


LEFT_A_MESSAGE = "the customer left a message for the team"


async def leave_for_team(
    session: AsyncSession,
    runtime: Runtime,
    conversation: Conversation,
    company: Company,
    reason: str = LEFT_A_MESSAGE,
) -> handoff.Routing:
    """Queue a conversation (locked by the caller) whose customer left a message for people
    (the web chat's offline contact form, an e-mail the bot must not answer): routed like any
    handoff, by the company's hours and who is online, with no bot reply. The routing says
    when the team is back."""
    now = runtime.clock()
    routing = await handoff.route(session, company, None, now)
    await _queue_for_team(session, runtime, conversation, company, routing, reason, now)
    return routing


async def _not_for_the_bot(
    session: AsyncSession, runtime: Runtime, message: Message, company_id: uuid.UUID
) -> str | None:
    """A message its channel marked ``NOT_FOR_THE_BOT`` (an auto-reply, a bounce, a contact
    over the reply cap): no answer. A bot conversation it opened (or one its channel says to
    hand off) is queued for the team, unanswered; else it is left as it was. ``None``: an
    ordinary message."""
    marked = (message.meta or {}).get(NOT_FOR_THE_BOT) if message.author == "customer" else None
    if not marked:
        return None
    reason = str(marked.get("reason", "")) if isinstance(marked, dict) else str(marked)
    conversation = await conversations.get_conversation(session, message.conversation_id, for_update=True)
    opened_it = not await conversations.messages_before(session, conversation.id, message.seq, limit=1)
    hand = bool(marked.get("hand_off")) if isinstance(marked, dict) else False
    if conversation.state == State.bot.value and (hand or opened_it):
        company = await tenancy.get_company(session, str(company_id))
        await leave_for_team(
            session, runtime, conversation, company, f"not answered by the bot: {reason}"[:500]
        )
    await _stay_silent(session, conversation, message.id)
    log.info("turn.not_for_the_bot", conversation_id=str(conversation.id), reason=reason[:200])
    return "not_for_the_bot"


def customer_scope(company: Company, conversation: Conversation, message: Message, now: datetime) -> Scope:
    """What a customer's answer may be drawn from: the company's knowledge rules under the
    conversation's context (its channel, the widget's page and product), narrowed by the
    filters the message was sent with (``POST /v1/messages``)."""
    requested = None
    stored = (message.meta or {}).get(FILTERS_META)
    if stored:
        try:
            requested = FiltersIn.model_validate(stored).filters()
        except ValidationError:  # written by this version's API, validated then: never expected
            log.warning("turn.stored_filters_invalid", message_id=str(message.id))
    return rules.scope(
        rules.company_rules(company),
        now=now,
        customer=True,
        context=rules.context_of(conversation.channel, conversation.context),
        requested=requested,
    )


def _routing_label(handoff_reply: Message) -> str:
    """The ``routing`` label of a handoff's metric: ``ticket`` when it waits for the team."""
    return "ticket" if handoff_reply.meta.get("ticket") else "queue"


async def run_turn(runtime: Runtime, ports: Ports, company_id: uuid.UUID, message_id: uuid.UUID) -> str:
    """Answer one customer message; returns the decision (or why nothing was done). A
    message the bot takes (or found answered) is announced to its channel's ``on_taken``
    hook, which runs beside the turn."""
    started = time.perf_counter()
    async with runtime.db.transaction(company_id) as session:
        message = await conversations.get_message(session, message_id)
        if await conversations.bot_reply_exists(session, message_id):
            await _finish_taken(_start_taken(runtime, message))
            return "already_answered"
        if (silenced := await _not_for_the_bot(session, runtime, message, company_id)) is not None:
            return silenced
        conversation = await conversations.get_conversation(session, message.conversation_id)
        company = await tenancy.get_company(session, str(company_id))
        if not conversations.bot_may_answer(conversation, answers_while_closed=_helps_while_closed(company)):
            await _stay_silent(session, conversation, message_id)
            return "not_bot_state"
        if conversation.state == State.waiting_human.value and not await _still_closed(
            session, runtime, conversation, company
        ):
            # waiting for a person while the team is open: people answer it
            await _stay_silent(session, conversation, message_id)
            return "left_for_the_team"
        # the message id lets a client ignore a "typing" that arrives after the reply itself
        await publish(session, str(conversation.id), "typing", message_id=str(message_id))

    taken = _start_taken(runtime, message)
    try:
        return await _answer(runtime, ports, company_id, message, started)
    finally:
        await _finish_taken(taken)


async def _answer(
    runtime: Runtime, ports: Ports, company_id: uuid.UUID, message: Message, started: float
) -> str:
    """The turn once the bot took the message: gather, answer (no transaction held), decide,
    and store the reply, the trace and any handoff in one transaction."""
    message_id = message.id
    handed_off: tuple[str, str] | None = None  # (reason, routing), counted once committed
    try:
        async with runtime.db.transaction(company_id) as session:
            conversation = await conversations.get_conversation(session, message.conversation_id)
            message = await conversations.get_message(session, message_id)
            company = await tenancy.get_company(session, str(company_id))
            earlier = await conversations.messages_before(
                session, conversation.id, message.seq, limit=runtime.settings.llm_history_messages
            )
            scope = customer_scope(company, conversation, message, runtime.clock())
            turn = Turn(
                company_id,
                message.text,
                known_language=conversation.language,
                default_language=company.default_language,
                history=tuple((m.author, m.text) for m in earlier if m.author != "system"),
                instructions=read_section(company, Instructions).instructions,
                company_name=company.name,
                handoff_settings=handoff_settings(company),
                filters=scope.filters,
                applied=scope.applied,
            )
            if ports.rewriter is None:
                await think(session, turn, ports, GATHER)
                stems = {} if turn.small_talk else await question_stems(session, turn.query)
            else:
                await think(session, turn, ports, BEFORE_FOLLOW_UP)
        if ports.rewriter is not None:
            # the LLM's rewrite of a follow-up holds no connection: then a second reading transaction
            await rewrite_follow_up(turn, ports)
            async with runtime.db.transaction(company_id) as session:
                await think(session, turn, ports, FROM_FOLLOW_UP)
                stems = {} if turn.small_talk else await question_stems(session, turn.query)

        async def drafts(text: str) -> None:  # a streaming LLM's answer so far, to live clients
            await publish_now(
                runtime.db, str(conversation.id), "draft", message_id=str(message_id), text=text
            )

        await conclude(runtime, turn, ports, stems, drafts)

        # its notifications follow its commit: a customer's next message waits for this lock
        async with runtime.db.transaction(company_id, notify_after_commit=True) as session:
            # the pipeline ran unlocked and wrote nothing; now hold the conversation and check
            # that nobody (an agent, another run of this turn) changed it meanwhile. Writing the
            # conversation before this lock would deadlock with an intake waiting for it.
            conversation = await conversations.get_conversation(session, conversation.id, for_update=True)
            if not conversations.bot_may_answer(
                conversation, answers_while_closed=_helps_while_closed(company)
            ):
                await _stay_silent(session, conversation, message_id)
                return "not_bot_state"
            if await conversations.bot_reply_exists(session, message_id):
                return "already_answered"
            conversation.language = turn.language
            if conversation.state == State.waiting_human.value and (
                # waiting for the team: the bot only answers what it knows, and only while closed
                turn.decision != "answer" or not await _still_closed(session, runtime, conversation, company)
            ):
                await _stay_silent(session, conversation, message_id)  # kept for the team
                return "left_for_the_team"
            if turn.decision == "handoff":
                lead = turn.signal.lead if turn.signal else "partial" if turn.unanswered else "evidence"
                reply = await hand_off(
                    session,
                    runtime,
                    conversation,
                    company,
                    lead=lead,
                    reason=turn.reason,
                    language=turn.language,
                    reply_to_id=message_id,
                    team=turn.signal.team if turn.signal else None,
                    answered=turn.answer if turn.unanswered else None,
                    unanswered=turn.unanswered,
                )
                handed_off = (lead, _routing_label(reply))
            else:
                text, meta = _answer_text(turn)
                meta["decision"] = turn.decision
                reply = await conversations.add_reply(
                    session,
                    runtime.jobs,
                    conversation,
                    author="bot",
                    text=text,
                    reply_to_id=message_id,
                    language=turn.language,
                    meta=meta,
                )
            total_ms = (time.perf_counter() - started) * 1000
            session.add(
                Trace(
                    conversation_id=conversation.id,
                    message_id=message_id,
                    reply_message_id=reply.id,
                    decision=turn.decision,
                    reason=turn.reason[:500],
                    language=turn.language,
                    answerer="smalltalk" if turn.small_talk else ports.answerer.name,
                    retriever=ports.retriever.name,
                    total_ms=round(total_ms, 3),
                    steps=turn.steps,
                    retrieved=[
                        {
                            "chunk_id": str(p.chunk_id),
                            "document_id": str(p.document_id),
                            "title": p.title,
                            "section": p.section,
                            "language": p.language,
                            "scores": p.scores,
                            "text": p.text[:500],
                        }
                        for p in turn.retrieved()
                    ],
                )
            )
    except IntegrityError:
        # another run of this turn stored its reply first: that one stands
        log.info("turn.duplicate_suppressed", message_id=str(message_id))
        return "already_answered"
    metrics.TURNS.labels(turn.decision).inc()
    metrics.TURN_LATENCY.observe(time.perf_counter() - started)
    if handed_off is not None:
        metrics.HANDOFFS.labels(*handed_off).inc()
    log.info(
        "turn.done",
        conversation_id=str(conversation.id),
        decision=turn.decision,
        reason=turn.reason,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return turn.decision


# What a channel does when the bot takes one of its customers' messages (WhatsApp: the
# customer's blue ticks), by channel kind. Registered by the process's wiring
# (``atende.bootstrap``): the engine imports no channel. Best effort: a hook runs beside the
# turn, bounds its own time, and its failure is logged, never the turn's.
TakenHook = Callable[[Runtime, Message], Coroutine[Any, Any, None]]
_taken_hooks: dict[str, TakenHook] = {}


def on_taken(channel: str, hook: TakenHook) -> None:
    """Call ``hook`` with each message of ``channel`` the bot takes (one hook per channel)."""
    _taken_hooks[channel] = hook


def _start_taken(runtime: Runtime, message: Message) -> asyncio.Task[None] | None:
    hook = _taken_hooks.get(message.channel)
    if hook is None:
        return None
    return asyncio.create_task(hook(runtime, message), name=f"taken-{message.channel}")


async def _finish_taken(task: asyncio.Task[None] | None) -> None:
    """Wait for a taken hook (so no job leaves work behind it); its failure is only logged."""
    if task is None:
        return
    try:
        await task
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("turn.taken_hook_failed", channel=task.get_name(), error=describe(exc))


def _helps_while_closed(company: Company) -> bool:
    """The company's ``bot_answers_while_closed``, read at each turn (not stamped at handoff)."""
    return handoff_settings(company).bot_answers_while_closed


async def _stay_silent(session: AsyncSession, conversation: Conversation, message_id: uuid.UUID) -> None:
    """Tell live clients that the bot will not answer this message (a widget that showed
    "typing" on intake's word stops, and ``wait`` returns): it is left for people."""
    await publish(session, str(conversation.id), "idle", message_id=str(message_id))


async def _still_closed(
    session: AsyncSession, runtime: Runtime, conversation: Conversation, company: Company
) -> bool:
    """Whether the team a ticket waits for is still closed (its hours, else the company's)."""
    schedules = await teams.team_schedules(session, company, [conversation.team_id])
    return not is_open(schedules.get(conversation.team_id, schedules[None]), runtime.clock())


async def hand_off_after_failure(
    runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID, error: str
) -> bool:
    """When a turn has failed for good, tell the customer a person will answer and queue
    the conversation for the team. Returns whether it did (not if answered or not the bot's)."""
    async with runtime.db.transaction(company_id) as session:
        try:
            message = await conversations.get_message(session, message_id)
        except NotFound:
            return False  # deleted meanwhile: nobody to answer
        conversation = await conversations.get_conversation(session, message.conversation_id, for_update=True)
        if conversation.state != State.bot.value or await conversations.bot_reply_exists(session, message_id):
            return False  # a person has it already, or it was answered
        company = await tenancy.get_company(session, str(company_id))
        reply = await hand_off(
            session,
            runtime,
            conversation,
            company,
            lead="failure",
            reason=f"the bot could not answer: {error}",
            language=conversation.language or company.default_language,
            reply_to_id=message.id,
        )
        # the failure in the conversation's traces, where the bot's other turns are explained
        session.add(
            Trace(
                conversation_id=conversation.id,
                message_id=message.id,
                reply_message_id=reply.id,
                decision="handoff",
                reason=f"the bot could not answer: {error}"[:500],
                language=conversation.language or company.default_language,
                answerer="none",
                retriever="none",
                total_ms=0.0,
                steps=[{"step": "failed", "ms": 0.0, "error": error[:TRACED_TEXT]}],
                retrieved=[],
            )
        )
        routing = _routing_label(reply)
    metrics.TURNS.labels("failed").inc()
    metrics.HANDOFFS.labels("failure", routing).inc()
    log.error("turn.failed_handed_off", conversation_id=str(conversation.id), error=error)
    return True
