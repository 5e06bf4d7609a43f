"""Tables of the human side: teams and their members, and the company's canned responses.
(Agents' availability is a column of ``memberships``, a tenancy table; its values are
``Availability``.) The team tables are those they always were; only the code moved out of
``tenancy``."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin, utcnow


class Availability(StrEnum):
    """Whether an agent takes conversations now."""

    online = "online"
    away = "away"
    offline = "offline"


class Team(IdMixin, CompanyOwned, Base):
    """A group of agents with a queue of its own and, optionally, its own hours."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("company_id", "slug"),)
    company_index_in_table_args = True

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80))
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)


class TeamMember(CompanyOwned, Base):
    __tablename__ = "team_members"

    team_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CannedResponse(IdMixin, CompanyOwned, Base):
    """A reply agents insert by its short ``code`` (``/code`` in the composer); its ``text``
    may name variables (``{{contact.name}}``), filled for each conversation
    (``atende.teams.canned``)."""

    __tablename__ = "canned_responses"
    __table_args__ = (UniqueConstraint("company_id", "code"),)
    company_index_in_table_args = True

    code: Mapped[str] = mapped_column(String(40))  # lower case: stored as typed after the /
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, onupdate=utcnow
    )
