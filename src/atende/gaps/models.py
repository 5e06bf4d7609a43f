"""The knowledge-gap tables (migration 0030), kept per company by the periodic refresh.

- ``knowledge_gap_questions``: one row per question that counts as a gap (today: a bot
  turn handed off for weak evidence, ``source = 'handoff'``), with its vector, the channel
  and language it came in, and the human agent's first answer once there is one.
- ``knowledge_gap_topics``: the topics the last refresh formed, each labelled by its most
  central question; each question row points at its topic.
- ``knowledge_gap_runs``: when the company's topics were last computed (shown on the page).

Answers rated "Not helpful" (``atende.feedback.ratings``) add rows with ``source = 'rating'``
for the rated turns: they are embedded and clustered with the handoffs, and the page counts
each source in its own column (``service.SOURCES``).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    REAL,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class GapTopic(IdMixin, CompanyOwned, Base):
    __tablename__ = "knowledge_gap_topics"

    label: Mapped[str] = mapped_column(Text)  # the representative question
    representative_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    terms: Mapped[list[str]] = mapped_column(JSONB, default=list)  # its most frequent words
    size: Mapped[int] = mapped_column(Integer)  # questions in the topic (every date, channel)


class GapQuestion(IdMixin, CompanyOwned, Base):
    __tablename__ = "knowledge_gap_questions"
    __table_args__ = (Index("ix_knowledge_gap_questions_company_asked", "company_id", "asked_at"),)
    company_index_in_table_args = True

    trace_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("traces.id", ondelete="CASCADE"), unique=True
    )
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    message_seq: Mapped[int] = mapped_column(BigInteger)  # the answer is the next agent message
    source: Mapped[str] = mapped_column(String(20), default="handoff")  # handoff | rating
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(5))
    question: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    vector: Mapped[list[float]] = mapped_column(ARRAY(REAL))
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)  # the agent's first reply
    topic_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("knowledge_gap_topics.id", ondelete="SET NULL"), nullable=True
    )


class GapRun(CompanyOwned, Base):
    __tablename__ = "knowledge_gap_runs"
    __table_args__ = (PrimaryKeyConstraint("company_id"),)
    company_index_in_table_args = True

    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # the newest trace looked at: the next refresh reads only traces written since
    seen_up_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    questions: Mapped[int] = mapped_column(Integer, default=0)
    topics: Mapped[int] = mapped_column(Integer, default=0)
