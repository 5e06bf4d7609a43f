"""The CSAT survey table (migration 0036): one row per resolution surveyed, holding the answer.

``csat_surveys``: the resolution it asks about (its state transition: unique, so a
resolution is surveyed once whichever worker gets there first), the conversation and the
channel it went out on, the survey message, until when it may be answered (``closes_at``:
the first answer and any change must come before), whether it was ``sent`` or ``skipped``
(migration 0041: a resolution that could not be surveyed, with the reason), and the answer
(score 1–5, an optional comment, when it was first given and last changed, through what). ``spent_links``: the
e-mail rating links already used (each works once).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, SmallInteger, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class CsatSurvey(IdMixin, CompanyOwned, Base):
    __tablename__ = "csat_surveys"
    __table_args__ = (
        Index("ix_csat_surveys_company_sent", "company_id", "sent_at"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score"),
        CheckConstraint("status IN ('sent', 'skipped')", name="status"),
        CheckConstraint("(status = 'sent') = (sent_at IS NOT NULL)", name="sent"),
    )
    company_index_in_table_args = True

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    transition_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("state_transitions.id", ondelete="CASCADE"), unique=True
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5))
    resolved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # ``skipped``: never sent (``skip_reason`` says why; ``sent_at`` empty), kept so the job
    # considers its resolution once
    status: Mapped[str] = mapped_column(String(10), server_default=text("'sent'"))
    skip_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    score: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_via: Mapped[str | None] = mapped_column(String(20), nullable=True)
    spent_links: Mapped[list[Any]] = mapped_column(JSONB, default=list)
