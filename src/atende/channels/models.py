"""Tables of the channels: each company's accounts of each channel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class ChannelAccount(IdMixin, CompanyOwned, Base):
    """A company's account of a channel: the web chat's widget key, a WhatsApp number, a mailbox.

    ``external_id`` is what the channel routes an inbound request by (the widget key, a
    ``phone_number_id``, an address): unique per kind across the platform, so that routing
    is unambiguous. ``secrets``: name → Fernet token (``tenancy.crypto``), never returned."""

    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("kind", "external_id"),)

    kind: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    secrets: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
