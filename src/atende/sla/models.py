"""Tables of SLAs (migration 0035): the company's policies, each conversation's running
clocks, and the record of every target met or breached.

``sla_clocks`` is written by two triggers (the conversation's state and a message's insert:
whoever makes the change, the intake function included) with the instants a target starts
and stops, and by the SLA job (``atende.sla.service``) with what only Python computes: the
policy, the due and warning instants in business time, when the job must look again. A
stopped clock is recorded in ``sla_records`` by the job and then deleted.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin, utcnow


class SlaPolicy(IdMixin, CompanyOwned, Base):
    """Targets in business seconds, chosen by conditions (empty: any); the first matching
    policy by ``position`` wins (``atende.sla.policy``)."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("company_id", "name"),
        # the names a person tells apart: two creates at once cannot both pass the app's check
        Index("uq_sla_policies_company_lower_name", "company_id", text("lower(name)"), unique=True),
        CheckConstraint("escalation IN ('none', 'reassign', 'notify')", name="escalation"),
        CheckConstraint("warning_percent BETWEEN 1 AND 100", name="warning_percent"),
    )
    company_index_in_table_args = True

    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    priorities: Mapped[list[str]] = mapped_column(ARRAY(String(10)), server_default=text("'{}'"))
    channels: Mapped[list[str]] = mapped_column(ARRAY(String(20)), server_default=text("'{}'"))
    team_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), server_default=text("'{}'"))
    label_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), server_default=text("'{}'"))
    first_response_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_response_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    warning_percent: Mapped[int] = mapped_column(Integer, server_default=text("80"))
    escalation: Mapped[str] = mapped_column(String(20), server_default=text("'none'"))
    escalation_team_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True
    )
    email_team: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, onupdate=utcnow
    )


class SlaClock(IdMixin, CompanyOwned, Base):
    """One target of a conversation, running (``stopped_at`` null) or stopped and not yet
    recorded. ``stale``: the job must (re)compute its policy and instants."""

    __tablename__ = "sla_clocks"
    __table_args__ = (
        CheckConstraint("target IN ('first_response', 'next_response', 'resolution')", name="target"),
        # one running clock per conversation and target
        Index(
            "uq_sla_clocks_running",
            "conversation_id",
            "target",
            unique=True,
            postgresql_where=text("stopped_at IS NULL"),
        ),
        Index("ix_sla_clocks_conversation", "conversation_id"),
        # the job's two looks, across companies
        Index("ix_sla_clocks_stale", "company_id", postgresql_where=text("stale")),
        Index("ix_sla_clocks_alarm", "alarm_at", postgresql_where=text("alarm_at IS NOT NULL")),
    )
    company_index_in_table_args = True

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    target: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    policy_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("sla_policies.id", ondelete="SET NULL"), nullable=True
    )
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    warn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    warned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    breached_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    alarm_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    stale: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class SlaRecord(IdMixin, CompanyOwned, Base):
    """A target's outcome: breached as soon as it is (``stopped_at`` filled in later), met when
    it stops in time."""

    __tablename__ = "sla_records"
    __table_args__ = (
        UniqueConstraint("conversation_id", "target", "started_at"),
        Index("ix_sla_records_company_started", "company_id", "started_at"),
    )
    company_index_in_table_args = True

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    policy_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("sla_policies.id", ondelete="SET NULL"), nullable=True
    )
    target: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    breached: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
