"""``app_events``: what went wrong at warning level and above, kept per company for its
owners and admins to read (``atende.observability.events``)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class AppEvent(IdMixin, CompanyOwned, Base):
    """One event: a failed delivery, a failed job, a webhook that did not answer, a
    credential refused, an LLM circuit that opened. ``company_id`` is ``None`` for the
    platform's own (the deployment's LLM endpoint): a company session never sees those, a
    superadmin's platform session sees every row. ``message`` and ``details`` are redacted
    before they are stored, as the logs are."""

    __tablename__ = "app_events"
    company_index_in_table_args = True
    __table_args__ = (
        CheckConstraint("level IN ('warning', 'error')", name="level"),
        # each filter of the events page reads one index, newest first (keyset paging)
        Index("ix_app_events_company_created", "company_id", "created_at", "id"),
        Index("ix_app_events_company_level_created", "company_id", "level", "created_at", "id"),
        Index("ix_app_events_company_kind_created", "company_id", "kind", "created_at", "id"),
        Index(
            "ix_app_events_conversation_created",
            "conversation_id",
            "created_at",
            postgresql_where=text("conversation_id IS NOT NULL"),
        ),
        # the superadmin's view of every company, and the retention's prune
        Index("ix_app_events_created", "created_at", "id"),
        # the text search: the message's words (``simple``: no stemming, any language)
        Index(
            "ix_app_events_search",
            text("to_tsvector('simple'::regconfig, message)"),
            postgresql_using="gin",
        ),
    )

    company_id: Mapped[uuid.UUID | None] = mapped_column(  # type: ignore[assignment]
        UUID(as_uuid=True), ForeignKey("companies.id", ondelete="CASCADE"), nullable=True
    )
    level: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(String(1000))
    # no foreign key: an event outlives the conversation it was about (its link then 404s)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
