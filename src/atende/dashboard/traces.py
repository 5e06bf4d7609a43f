"""The bot's reasoning, turn by turn (``/app/conversations/{id}/traces``): each trace made
readable. A trace keeps what each step found (``engine.turn.timed``) and each retrieved
passage's scores per stage (``Passage.scores``); here they become one ``TurnView`` per turn:
the question as the customer wrote it and as the bot read it, its language, the passages
with a column per retrieval stage, the decision and its reason in plain words, the answerer
and its model, each step's time, errors, and the customer's thumbs on the answer, with their
comment: which passages produced a bad answer. A message that asks several questions
(``engine.questions``) also shows each question: what was looked up for it, each retrieval
stage's time, its passages with their scores before and after re-ranking, and its outcome
(answered citing which passage, or left for a person and why)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from atende.dashboard.i18n import N_
from atende.dashboard.wording import rule_applied, stage_fallback, turn_reason
from atende.engine.models import Trace
from atende.feedback.ratings_models import AnswerRating

# the retrieval stages a passage may carry a score of, in the order they run: full-text
# (BM25), dense (vectors), fused, then each re-ranking stage (``knowledge.rerank``)
STAGES: dict[str, str] = {
    "bm25": N_("Full-text"),
    "dense": N_("Dense"),
    "fused": N_("Fused"),
    "reranked": N_("Re-ranked"),
    "llm_reranked": N_("Re-ranked by the LLM"),
    "coverage": N_("Answer coverage"),  # the offline answerer's: share of the question's words
}
STEP_NAMES = {
    "normalise": N_("Normalise"),
    "detect_language": N_("Detect the language"),
    "small_talk": N_("Small talk"),
    "handoff_signal": N_("Handoff signals"),
    "follow_up": N_("Resolve a follow-up"),
    "retrieve": N_("Retrieve"),
    "rerank": N_("Re-rank"),
    "answer": N_("Answer"),
    "decide": N_("Decide"),
    "failed": N_("Failed"),
}
# a retrieval stage by its name in the trace's stage times (``Stage.name``)
STAGE_TIME_NAMES = {
    "fulltext": STAGES["bm25"],
    **{key: STAGES[key] for key in ("dense", "fused", "reranked", "llm_reranked")},
}
ANSWERER_NAMES = {
    "extractive": N_("Offline answerer (extractive)"),
    "llm": N_("LLM"),
    "smalltalk": N_("Small talk phrases"),
    "none": N_("None"),
}
RETRIEVER_NAMES = {
    "fulltext": N_("Full-text"),
    "dense": N_("Dense"),
    "hybrid": N_("Hybrid (full-text and dense)"),
    "none": N_("None"),
}


@dataclass(frozen=True)
class Score:
    value: float | None  # None: this stage did not find the passage
    rank: int | None


@dataclass(frozen=True)
class Chunk:
    title: str
    section: str
    language: str
    text: str
    scores: dict[str, Score]  # by stage key, for the stages this turn ran
    # fusion ranked it among the passages kept, re-ranking moved it out (its scores before and after)
    displaced: bool = False


@dataclass(frozen=True)
class StageTime:
    """One retrieval stage as a turn (or one of its questions) ran it."""

    name: str  # translated
    ms: float | None
    found: int | None  # candidates it returned
    kept: int | None  # how many went on to the next stage or the answerer (None: all)
    fallback: str | None = None  # why it kept the order before it, or returned nothing, in words


@dataclass(frozen=True)
class Cited:
    title: str
    section: str


@dataclass(frozen=True)
class QuestionView:
    """One question of a message that asks several, looked up and answered on its own."""

    question: str  # as found in the message
    query: str  # what was looked up for it (with the subject line, a context sentence)
    answered: bool | None  # None: the trace did not get to its answer
    reason: str  # why, in plain words, translated
    reason_recorded: str
    citations: list[Cited]
    ms: float | None  # its lookup's time
    stage_times: list[StageTime]
    stages: list[tuple[str, str]]  # (key, translated name) of the columns its chunks show
    chunks: list[Chunk]


@dataclass(frozen=True)
class Step:
    name: str  # translated
    ms: float | None


@dataclass(frozen=True)
class Rating:
    helpful: bool
    comment: str | None
    at: datetime
    channel: str


@dataclass(frozen=True)
class TurnView:
    id: uuid.UUID
    at: datetime
    question: str  # as the customer wrote it
    normalised: str | None  # as the bot read it (None: an older trace that did not keep it)
    query: str | None  # what it looked up (without an opening greeting)
    language: str
    language_confidence: float | None
    decision: str
    reason: str  # in plain words, translated
    reason_recorded: str  # as the engine recorded it (for whom reads the logs)
    answerer: str
    retriever: str
    model: str | None
    total_ms: float
    steps: list[Step]
    stages: list[tuple[str, str]]  # (key, translated name) of the columns the chunks show
    chunks: list[Chunk]
    errors: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # the knowledge rules and filters applied, in words
    # the retrieval stages that fell back (a re-ranker over its budget, failed, timed out), in words
    fallbacks: list[str] = field(default_factory=list)
    # the customer's thumbs on this turn's answer (``atende.feedback.ratings``); None: not rated
    rating: Rating | None = None
    stage_times: list[StageTime] = field(default_factory=list)  # the whole message's lookup
    questions: list[QuestionView] = field(default_factory=list)  # a message that asks several
    # the questions found were near-duplicates of one: the message was looked up whole
    questions_merged: bool = False


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rank(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _columns(entries: Sequence[Mapping[str, Any]], _: Callable[[str], str]) -> list[tuple[str, str]]:
    """The stages (key, translated name) any of the passages ``entries`` has a score of."""
    present = {key for entry in entries for key in (entry.get("scores") or {})}
    return [(key, _(name)) for key, name in STAGES.items() if key in present]


def _chunks(
    entries: Sequence[Mapping[str, Any]],
    stages: list[tuple[str, str]],
    texts: Mapping[str, Mapping[str, Any]],
    *,
    displaced: bool = False,
) -> list[Chunk]:
    """The passages ``entries`` with their scores in ``stages``; what an entry lacks (a
    question's passages keep no text) comes from the trace's retrieved passage of its id."""
    chunks = []
    for entry in entries:
        scores = entry.get("scores") or {}
        full = texts.get(str(entry.get("chunk_id")), {})
        chunks.append(
            Chunk(
                title=str(entry.get("title") or full.get("title") or ""),
                section=str(entry.get("section") or full.get("section") or ""),
                language=str(entry.get("language") or full.get("language") or ""),
                text=str(entry.get("text") or full.get("text") or ""),
                scores={
                    key: Score(_number(scores.get(key)), _rank(scores.get(f"{key}_rank")))
                    for key, _n in stages
                },
                displaced=displaced,
            )
        )
    return chunks


def _displaced(recorded: Any) -> list[Mapping[str, Any]]:
    return [p for p in recorded if isinstance(p, dict)] if isinstance(recorded, list) else []


def _stage_times(recorded: Any, fell: Any, _: Callable[[str], str]) -> list[StageTime]:
    """A step's stage times (``engine.turn.stage_times``), each with why it fell back, if it did."""
    why = {
        str(f.get("stage", "")): stage_fallback(str(f.get("stage", "")), str(f.get("error", "")), _)
        for f in fell or []
        if isinstance(f, dict)
    }
    times = []
    for stage in recorded if isinstance(recorded, list) else []:
        if not isinstance(stage, dict):
            continue
        name = str(stage.get("stage", ""))
        found, kept = _rank(stage.get("found")), _rank(stage.get("kept"))
        times.append(
            StageTime(
                _(STAGE_TIME_NAMES[name]) if name in STAGE_TIME_NAMES else name,
                _number(stage.get("ms")),
                found,
                # a stage passes on at most what it found (it keeps as many as the next takes)
                min(kept, found) if kept is not None and found is not None else kept,
                why.get(name),
            )
        )
    return times


def _questions(
    found: Mapping[str, Mapping[str, Any]], texts: Mapping[str, Mapping[str, Any]], _: Callable[[str], str]
) -> list[QuestionView]:
    """Each question the message asks: its lookup (the retrieve step's ``questions``) beside its
    answer (the answer step's, in the same order); older traces show what they kept."""
    looked_up = [q for q in found.get("retrieve", {}).get("questions") or [] if isinstance(q, dict)]
    answers = [q for q in found.get("answer", {}).get("questions") or [] if isinstance(q, dict)]
    views = []
    for index, asked in enumerate(looked_up):
        answered: Mapping[str, Any] = answers[index] if index < len(answers) else {}
        # what the answerer read (re-ranked late, with its coverage), else what was looked up
        entries = [p for p in answered.get("passages") or asked.get("found") or [] if isinstance(p, dict)]
        moved = _displaced(asked.get("displaced"))
        columns = _columns([*entries, *moved], _)
        reason = str(answered.get("reason") or "")
        views.append(
            QuestionView(
                question=str(asked.get("question") or ""),
                query=str(asked.get("query") or ""),
                answered=bool(answered["answered"]) if "answered" in answered else None,
                reason=turn_reason(reason, _) if reason else "",
                reason_recorded=reason,
                citations=[
                    Cited(str(c.get("title") or ""), str(c.get("section") or ""))
                    for c in answered.get("citations") or []
                    if isinstance(c, dict)
                ],
                ms=_number(asked.get("ms")),
                stage_times=_stage_times(asked.get("stages"), asked.get("fallbacks"), _),
                stages=columns,
                chunks=[*_chunks(entries, columns, texts), *_chunks(moved, columns, texts, displaced=True)],
            )
        )
    return views


def turn_view(
    trace: Trace, question: str, _: Callable[[str], str], rating: AnswerRating | None = None
) -> TurnView:
    """One trace, readable; older traces (before steps kept what they found) show what they have."""
    found: dict[str, Mapping[str, Any]] = {}
    steps: list[Step] = []
    errors: list[str] = []
    fallbacks: list[str] = []
    for step in trace.steps or []:
        name = str(step.get("step", ""))
        found[name] = step
        steps.append(Step(_(STEP_NAMES[name]) if name in STEP_NAMES else name, _number(step.get("ms"))))
        if step.get("error"):
            errors.append(str(step["error"]))
        for fell in step.get("fallbacks") or []:
            if isinstance(fell, dict):
                fallbacks.append(stage_fallback(str(fell.get("stage", "")), str(fell.get("error", "")), _))
    retrieved = [chunk for chunk in trace.retrieved or [] if isinstance(chunk, dict)]
    looked_up = found.get("retrieve", {})
    moved = _displaced(looked_up.get("displaced"))
    stages = _columns([*retrieved, *moved], _)
    texts = {str(chunk.get("chunk_id")): chunk for chunk in retrieved}
    late = found.get("rerank", {})
    answered = found.get("answer", {})
    language = found.get("detect_language", {})
    small = found.get("small_talk", {})
    return TurnView(
        id=trace.id,
        at=trace.created_at,
        question=question,
        normalised=found.get("normalise", {}).get("text"),
        # a follow-up looks up what it means in the conversation ("e o frete?" + the topic)
        query=found.get("follow_up", {}).get("query") or small.get("query"),
        language=trace.language,
        language_confidence=_number(language.get("confidence")),
        decision=trace.decision,
        reason=turn_reason(trace.reason, _),
        reason_recorded=trace.reason,
        answerer=_(ANSWERER_NAMES[trace.answerer]) if trace.answerer in ANSWERER_NAMES else trace.answerer,
        retriever=_(RETRIEVER_NAMES[trace.retriever])
        if trace.retriever in RETRIEVER_NAMES
        else trace.retriever,
        model=answered.get("model"),
        total_ms=trace.total_ms,
        steps=steps,
        stages=stages,
        chunks=[*_chunks(retrieved, stages, {}), *_chunks(moved, stages, texts, displaced=True)],
        errors=errors,
        fallbacks=fallbacks,
        rules=[
            rule_applied(str(r.get("kind")), r, _)
            for r in found.get("retrieve", {}).get("rules", [])
            if isinstance(r, dict)
        ],
        rating=Rating(rating.helpful, rating.comment, rating.rated_at, rating.channel) if rating else None,
        stage_times=[
            *_stage_times(looked_up.get("stages"), looked_up.get("fallbacks"), _),
            *_stage_times(late.get("times"), late.get("fallbacks"), _),
        ],
        questions=_questions(found, texts, _),
        questions_merged=bool(looked_up.get("questions_merged")),
    )
