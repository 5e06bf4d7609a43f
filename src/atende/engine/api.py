"""``/v1`` routes of the engine: what each bot turn retrieved and why it decided."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from atende.engine import service
from atende.tenancy.deps import ViewerTenant

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
