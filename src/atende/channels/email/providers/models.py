"""The ``email_webhook_tokens`` table: the Mailgun tokens each account has already taken."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned


class WebhookToken(CompanyOwned, Base):
    """A token of a signed Mailgun request that an account accepted. A request is trusted
    only while its timestamp is within the tolerance of now, so a token need be remembered
    only until then (``expires_at``: its timestamp plus the tolerance); after that a replay
    is refused as stale, and the row is deleted (``replay.first_use``)."""

    __tablename__ = "email_webhook_tokens"

    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("channel_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
