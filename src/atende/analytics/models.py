"""The analytics page's own tables (migration 0029): one row of figures per conversation, and
per company when they were last brought up to date."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned


class ConversationFacts(CompanyOwned, Base):
    """What the page counts of one conversation, durations in business seconds (``rollup``)."""

    __tablename__ = "analytics_conversation_facts"
    __table_args__ = (
        Index("ix_analytics_conversation_facts_company_created", "company_id", "created_at"),
        Index(
            "ix_analytics_conversation_facts_assigned",
            "company_id",
            "created_at",
            postgresql_where=text("assignee_id IS NOT NULL"),
        ),
    )
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


class Daily(CompanyOwned, Base):
    """The conversations started on one local day through one channel, in one team's queue,
    in one language: their counts, the first handoffs by reason (in ``rollup.REASONS``'
    order) and how many started in each local hour (0-23). Rewritten by each refresh for the
    days whose conversations changed; no key of its own (the team and language may be empty)."""

    __tablename__ = "analytics_daily"
    __table_args__ = (Index("ix_analytics_daily_company_day", "company_id", "day"),)
    __mapper_args__ = {"primary_key": ["company_id", "day", "channel", "team_id", "language"]}  # noqa: RUF012
    company_index_in_table_args = True

    day: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)
    conversations: Mapped[int] = mapped_column(Integer)
    ai_resolved: Mapped[int] = mapped_column(Integer)
    handed_off: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    hours: Mapped[list[int]] = mapped_column(ARRAY(Integer))


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
