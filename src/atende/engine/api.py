"""``/v1`` routes of the engine: what each bot turn retrieved and why it decided, and a
suggested reply for an agent (agent assist)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende.engine import assist, service
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
