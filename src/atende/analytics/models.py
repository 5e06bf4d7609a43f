"""The analytics page's own tables (migration 0029): one row of figures per conversation, and
per company when they were last brought up to date."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned


class ConversationFacts(CompanyOwned, Base):
    """What the page counts of one conversation, durations in business seconds (``rollup``)."""

    __tablename__ = "analytics_conversation_facts"
    __table_args__ = (Index("ix_analytics_conversation_facts_company_created", "company_id", "created_at"),)
    company_index_in_table_args = True

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    state: Mapped[str] = mapped_column(String(20))
    ai_resolved: Mapped[bool] = mapped_column(Boolean)
    handoff_reason: Mapped[str | None] = mapped_column(String(20), nullable=True)
    bot_first_response_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    agent_first_response_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    resolution_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refresh(Base):
    """When a company's figures were last brought up to date (``refreshed_at``, what the page
    shows), and the last change they include (``covers_until``: the next run starts there).
    Read and written by ``company_id`` explicitly: its key is the company."""

    __tablename__ = "analytics_refreshes"

    company_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("companies.id", ondelete="CASCADE"), primary_key=True
    )
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    covers_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hours_digest: Mapped[str] = mapped_column(String(64))
