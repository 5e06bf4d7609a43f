"""The bot's reasoning, turn by turn (``/app/conversations/{id}/traces``): each trace made
readable. A trace keeps what each step found (``engine.turn.timed``) and each retrieved
passage's scores per stage (``Passage.scores``); here they become one ``TurnView`` per turn:
the question as the customer wrote it and as the bot read it, its language, the passages
with a column per retrieval stage, the decision and its reason in plain words, the answerer
and its model, each step's time, errors, and the customer's thumbs on the answer, with their
comment: which passages produced a bad answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
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


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rank(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


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
    present = {key for chunk in trace.retrieved or [] for key in (chunk.get("scores") or {})}
    stages = [(key, _(name)) for key, name in STAGES.items() if key in present]
    chunks = []
    for chunk in trace.retrieved or []:
        scores = chunk.get("scores") or {}
        chunks.append(
            Chunk(
                title=str(chunk.get("title") or ""),
                section=str(chunk.get("section") or ""),
                language=str(chunk.get("language") or ""),
                text=str(chunk.get("text") or ""),
                scores={
                    key: Score(_number(scores.get(key)), _rank(scores.get(f"{key}_rank")))
                    for key, _n in stages
                },
            )
        )
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
        chunks=chunks,
        errors=errors,
        fallbacks=fallbacks,
        rules=[
            rule_applied(str(r.get("kind")), r, _)
            for r in found.get("retrieve", {}).get("rules", [])
            if isinstance(r, dict)
        ],
        rating=Rating(rating.helpful, rating.comment, rating.rated_at, rating.channel) if rating else None,
    )
