"""The trace every bot turn writes."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class Trace(IdMixin, CompanyOwned, Base):
    __tablename__ = "traces"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    reply_message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    decision: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(500))
    language: Mapped[str] = mapped_column(String(5))
    answerer: Mapped[str] = mapped_column(String(50))
    retriever: Mapped[str] = mapped_column(String(50))
    total_ms: Mapped[float] = mapped_column(Float)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    retrieved: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
