"""Tables of outbound webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class WebhookEndpoint(IdMixin, CompanyOwned, Base):
    """A company's receiver URL and how deliveries to it are signed.

    ``signature_scheme``: ``standard`` (Standard Webhooks: ``webhook-id``, ``-timestamp``,
    ``-signature``) or ``atende`` (the legacy ``X-Atende-Signature``, of endpoints registered
    before 0014). After a rotation the replaced secret, and the scheme it signed with, keep
    signing next to the new one until ``previous_secret_expires_at``.
    """

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2000))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    signature_scheme: Mapped[str] = mapped_column(String(20), default="standard", server_default="standard")
    previous_secret_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous_signature_scheme: Mapped[str | None] = mapped_column(String(20), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    events: Mapped[list[str]] = mapped_column(ARRAY(String(60)))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class WebhookDelivery(IdMixin, CompanyOwned, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # an endpoint's log, newest first, a page at a time (``list_deliveries``; 0025)
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WebhookAttempt(IdMixin, CompanyOwned, Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
