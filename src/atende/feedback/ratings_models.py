"""The ``answer_ratings`` table (migration 0037): a customer's thumbs up or down, with an
optional comment, on one bot answer. One row per answer (a changed rating replaces it),
pointing at the answer's conversation, the answer itself and the trace of the turn that wrote
it, so the logs viewer shows which passages produced a bad answer."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin, utcnow


class AnswerRating(IdMixin, CompanyOwned, Base):
    __tablename__ = "answer_ratings"
    # the logs viewer's list: a company's ratings, newest first
    __table_args__ = (Index("ix_answer_ratings_company_rated", "company_id", "rated_at"),)
    company_index_in_table_args = True

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    # the turn that wrote the answer (none for a bot message no turn traced, e.g. a greeting)
    trace_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("traces.id", ondelete="SET NULL"), nullable=True, index=True
    )
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel: Mapped[str] = mapped_column(String(20))  # where it was rated: webchat, api
    rated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
