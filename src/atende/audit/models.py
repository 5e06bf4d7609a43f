"""The ``audit_events`` table: one row per action a person, an API key or the system took."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import INET, JSONB, UUID
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from atende.db.base import Base, CompanyOwned, utcnow


class AuditEvent(CompanyOwned, Base):
    """What happened (``action``, a stable dotted name such as ``member.role_changed``), to
    what (``target_type`` and ``target_id``), by whom (``actor_type``: ``user``, ``api_key``
    or ``system``; a personal key fills both ids) and from where (``ip``). ``details`` is a
    small object of names and values to say it in words (a role before and after, a
    document's title), never a secret nor a message's text (``atende.audit.service.record``
    refuses the names of secrets).

    ``company_id`` is empty for the platform's own actions (a superadmin creating a company);
    company sessions still see only their company's rows. The indexes serve the page's
    filters, newest first, paged by (``created_at``, ``id``)."""

    __tablename__ = "audit_events"
    company_index_in_table_args = True
    __table_args__ = (
        Index("ix_audit_events_company_time", "company_id", "created_at", "id"),
        Index("ix_audit_events_company_actor_time", "company_id", "actor_user_id", "created_at", "id"),
        Index("ix_audit_events_company_action_time", "company_id", "action", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )

    @declared_attr
    def company_id(cls) -> Mapped[uuid.UUID | None]:  # type: ignore[override]  # noqa: N805
        return mapped_column(
            UUID(as_uuid=True), ForeignKey("companies.id", ondelete="CASCADE"), nullable=True
        )

    actor_type: Mapped[str] = mapped_column(String(10))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(30), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    ip: Mapped[str | None] = mapped_column(INET, nullable=True)
