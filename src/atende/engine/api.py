"""``/v1`` routes of the engine: what each bot turn retrieved and why it decided, a
suggested reply for an agent (agent assist), and a search that runs a question through the
bot's turn without a conversation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende.engine import assist, search, service
from atende.engine.messages import phrase
from atende.knowledge.retrieval import Stage
from atende.knowledge.schemas import FiltersIn, SearchContext
from atende.tenancy.deps import AgentTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["traces"])


class TracePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    reply_message_id: uuid.UUID | None
    decision: str
    reason: str
    language: str
    answerer: str
    retriever: str
    total_ms: float
    steps: list[dict[str, Any]]
    retrieved: list[dict[str, Any]]
    created_at: datetime


@router.get("/conversations/{conversation_id}/traces", response_model=list[TracePublic])
async def list_traces(conversation_id: uuid.UUID, tenant: ViewerTenant) -> list[TracePublic]:
    """Each bot turn: retrieved chunks with scores, the decision and its reason, step latencies."""
    async with tenant.transaction() as session:
        return [TracePublic.model_validate(t) for t in await service.list_traces(session, conversation_id)]


class CitationOut(BaseModel):
    title: str
    section: str
    document_id: uuid.UUID
    chunk_id: uuid.UUID
    snippet: str = Field(description="The start of the cited passage.")


class SuggestionOut(BaseModel):
    question_id: uuid.UUID = Field(description="The customer message it answers: their latest.")
    question: str
    text: str | None = Field(description="The draft, to edit and send as a reply; null: no answer found.")
    reason: str = Field(description="Why this draft (or why none).")
    language: str
    answerer: str = Field(description="`extractive` (offline), `llm` (the company's LLM) or `smalltalk`.")
    confidence: float
    citations: list[CitationOut]


@router.post(
    "/conversations/{conversation_id}/suggested-reply",
    response_model=SuggestionOut,
    tags=["conversations"],
    summary="Draft a reply from the knowledge base (agent assist)",
)
async def suggested_reply(conversation_id: uuid.UUID, tenant: AgentTenant) -> SuggestionOut:
    """A draft answer to the customer's latest message, from the knowledge base, with the
    passages it cites, as the bot would answer it; nothing is stored or sent, and the
    conversation does not change. `422` when the customer has not written yet."""
    suggestion = await assist.suggest_reply(tenant.runtime, tenant.principal.company_id, conversation_id)
    return SuggestionOut(
        question_id=suggestion.question_id,
        question=suggestion.question,
        text=suggestion.text,
        reason=suggestion.reason,
        language=suggestion.language,
        answerer=suggestion.answerer,
        confidence=suggestion.confidence,
        citations=[CitationOut.model_validate(c) for c in suggestion.citations],
    )


SearchFilters = FiltersIn  # the name this route's schema had


class SearchIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"question": "Qual o prazo de entrega?", "filters": {"language": "pt"}}]
        },
    )

    question: str = Field(
        min_length=1, max_length=search.MAX_QUESTION_CHARS, description="As a customer writes it."
    )
    language: Literal["pt", "en", "es"] | None = Field(
        default=None, description="The question's language; detected when omitted."
    )
    filters: FiltersIn = Field(default_factory=FiltersIn)
    reader: Literal["customer", "agent"] = Field(
        default="customer",
        description="`customer`: as the bot answers a customer (internal documents left out); "
        "`agent`: as agent assist drafts (with them). The company's other knowledge rules apply to both.",
    )
    context: SearchContext = Field(default_factory=dict)

    limit: int = Field(default=10, ge=1, le=50, description="Candidates shown per stage (best first).")
    answer: bool = Field(default=True, description="Also run the answer step: the answer and the decision.")


class CandidateOut(BaseModel):
    rank: int = Field(description="In this stage, from 1.")
    score: float = Field(description="In this stage: BM25, cosine similarity, fused score.")
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    section: str
    language: str
    snippet: str = Field(description="The start of the passage.")
    scores: dict[str, float] = Field(
        description="Its scores and ranks in every stage so far (`bm25`, `bm25_rank`, `dense`, `dense_rank`, "
        "`fused`; `coverage` once the extractive answerer measured it)."
    )


class StageOut(BaseModel):
    name: str = Field(
        description="`fulltext` (BM25), `dense` (vectors), `fused`, then the re-ranking stages: "
        "`reranked`, `llm_reranked`."
    )
    ms: float
    found: int = Field(
        description="How many candidates the stage returned (`candidates` lists the first `limit`)."
    )
    kept: int | None = Field(
        description="How many go on to the next re-ranking stage or, after the last stage, to the "
        "answerer; null: all go to the next stage."
    )
    error: str | None = Field(
        description="Why the stage returned nothing (e.g. the embedder was unavailable), or why a "
        "re-ranking stage kept the order before it (over its time budget, failed)."
    )
    candidates: list[CandidateOut]


class StepOut(BaseModel):
    step: str
    ms: float


class QuestionOut(BaseModel):
    question: str = Field(description="One of the questions the message asks, as found in it.")
    answered: bool = Field(description="Answered from its own passage; false: left for a person.")
    reason: str = Field(description="Why, as a turn's trace says it.")
    citations: list[CitationOut]


class AskedOut(BaseModel):
    question: str = Field(description="One of the questions the message asks, as found in it.")
    looked_up_as: str = Field(
        description="What was looked up for it: the question with the subject line or a context sentence."
    )
    stages: list[StageOut] = Field(description="What each retrieval stage returned for this question.")


class WouldAnswer(BaseModel):
    decision: str = Field(description="`answer` or `handoff`.")
    why: str = Field(description="One of " + ", ".join(f"`{w}`" for w in search.WHYS) + ".")
    reason: str = Field(description="As a turn's trace says it.")
    text: str | None = Field(description="The reply the bot would send (null: it would hand off).")
    confidence: float | None
    needed: float | None = Field(
        description="The evidence the extractive answerer needs; `confidence` is what it found."
    )
    citations: list[CitationOut]
    questions: list[QuestionOut] = Field(
        default=[],
        description="A message that asks several questions, answered one by one: each question's own "
        "outcome (`why` `partly_answered` when some are left for a person); empty when the message was "
        "answered or handed off whole.",
    )


class RuleApplied(BaseModel):
    kind: str = Field(
        description="`valid_now` (only documents valid now), `windowed_tags` (`tags` only within their "
        "dates), `internal` (internal documents left out), `context` (one of the company's rules: "
        "`rule` its number, `when`/`equals`/`given`, `field`/`value`), `requested` (the `filters` sent)."
    )
    detail: dict[str, Any] = Field(default_factory=dict)


class SearchOut(BaseModel):
    question: str
    language: str
    language_detected: bool
    retriever: str = Field(description="`hybrid` or `fulltext` (no embedder).")
    answerer: str
    reader: str = Field(description="`customer` or `agent`: whose rules applied.")
    rules: list[RuleApplied] = Field(
        description="The knowledge rules and filters retrieval applied, in order."
    )
    stages: list[StageOut]
    questions: list[AskedOut] = Field(
        default=[],
        description="A message that asks several questions: each question found in it and what each "
        "retrieval stage returned for it (its outcome is in `answer.questions`); empty for a message "
        "looked up whole.",
    )
    answer: WouldAnswer | None = Field(description="Null when `answer` was false.")
    steps: list[StepOut] = Field(description="The turn's steps and their time.")
    total_ms: float


def _candidates(stage: Stage, limit: int) -> list[CandidateOut]:
    return [
        CandidateOut(
            rank=rank,
            score=round(p.score, 4),
            chunk_id=p.chunk_id,
            document_id=p.document_id,
            title=p.title,
            section=p.section,
            language=p.language,
            snippet=p.text[: assist.SNIPPET_CHARS],
            scores=p.scores,
        )
        for rank, p in enumerate(stage.passages[:limit], start=1)
    ]


def _stages_out(stages: list[Stage], limit: int) -> list[StageOut]:
    return [
        StageOut(
            name=s.name,
            ms=s.ms,
            found=len(s.passages),
            kept=s.kept,
            error=s.error,
            candidates=_candidates(s, limit),
        )
        for s in stages
    ]


def search_out(found: search.Search, limit: int) -> SearchOut:
    turn = found.turn
    would = None
    if turn.answer is not None or turn.small_talk or turn.signal:
        text = turn.answer.text if turn.answer else None
        if turn.small_talk:
            text = phrase(turn.small_talk, turn.language)
        would = WouldAnswer(
            decision=turn.decision,
            why=found.why,
            reason=turn.reason,
            text=text,
            confidence=turn.answer.confidence if turn.answer else None,
            needed=turn.answer.needed if turn.answer else None,
            citations=[CitationOut.model_validate(c) for c in assist.cited(turn)] if turn.answer else [],
            questions=[
                QuestionOut(
                    question=o.question,
                    answered=o.answered,
                    reason=o.reason,
                    citations=[CitationOut.model_validate(c) for c in o.citations],
                )
                for o in search.outcomes(turn)
            ],
        )
    return SearchOut(
        question=turn.text,
        language=turn.language,
        language_detected=found.language_detected,
        retriever=found.retriever,
        answerer=found.answerer,
        reader=found.reader,
        rules=[RuleApplied(kind=a.kind, detail=a.detail) for a in turn.applied],
        stages=_stages_out(turn.stages, limit),
        questions=[
            AskedOut(
                question=part.asked.text,
                looked_up_as=part.asked.query,
                stages=_stages_out(part.stages, limit),
            )
            for part in turn.parts
        ],
        answer=would,
        steps=[StepOut(step=s["step"], ms=s["ms"]) for s in turn.steps],
        total_ms=found.total_ms,
    )


@router.post(
    "/search",
    response_model=SearchOut,
    tags=["knowledge"],
    summary="What the bot would find and answer for a question (nothing stored)",
)
async def search_knowledge(body: SearchIn, tenant: AgentTenant) -> SearchOut:
    """Runs the question through the company's bot turn without a conversation: what each
    retrieval stage returned with its scores and ranks, and (unless `answer` is false) the
    reply the bot would send, with its citations, and why it would answer or hand off, and
    which knowledge rules and filters narrowed the search (`rules`). As a `customer` (the
    default) the company's rules apply as to a customer's message, under the `context` given;
    as an `agent`, as to agent assist (internal documents too). Nothing is stored. `422` for
    an empty or too long question, an unknown language or filter; `404` for a document
    filter that is not one of the company's documents."""
    found = await search.search(
        tenant.runtime,
        tenant.principal.company_id,
        body.question,
        language=body.language,
        filters=body.filters.filters(),
        answer=body.answer,
        reader=body.reader,
        context=body.context,
    )
    return search_out(found, body.limit)
