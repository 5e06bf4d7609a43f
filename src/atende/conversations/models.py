"""Tables of the conversations domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin, utcnow


class Contact(IdMixin, CompanyOwned, Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("company_id", "channel", "external_id"),)
    company_index_in_table_args = True

    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)


class Conversation(IdMixin, CompanyOwned, Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_company_updated", "company_id", "updated_at", "id"),
        # the inbox (0020): each view's conversations, most recent activity first, read in
        # index order (``conversations.inbox``)
        Index(
            "ix_conversations_open_updated",
            "company_id",
            "updated_at",
            "id",
            postgresql_where=text("state <> 'resolved'"),
        ),
        Index(
            "ix_conversations_unassigned_updated",
            "company_id",
            "updated_at",
            "id",
            postgresql_where=text("state = 'waiting_human' AND assignee_id IS NULL"),
        ),
        Index(
            "ix_conversations_assignee_updated",
            "company_id",
            "assignee_id",
            "updated_at",
            "id",
            postgresql_where=text("assignee_id IS NOT NULL"),
        ),
        Index(
            "ix_conversations_team_updated",
            "company_id",
            "team_id",
            "updated_at",
            "id",
            postgresql_where=text("team_id IS NOT NULL"),
        ),
        # the queue: a company's conversations waiting for a person, oldest first
        Index(
            "ix_conversations_queue",
            "company_id",
            "waiting_since",
            postgresql_where=text("state = 'waiting_human'"),
        ),
        # the snoozes whose time has come, across companies (``wake_snoozed``, every few seconds)
        Index(
            "ix_conversations_snoozed_until",
            "snoozed_until",
            postgresql_where=text("snoozed_until IS NOT NULL"),
        ),
        CheckConstraint("priority IN ('low', 'normal', 'high', 'urgent')", name="priority"),
    )
    company_index_in_table_args = True

    contact_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20), default="bot")
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)
    visitor_token_hash: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # the human side: which team's queue it waits in, who owns it, since when it waits, whether
    # it waits as a ticket (handed off while closed or with nobody online). Whether the bot
    # answers meanwhile is the company's setting as it is when the customer writes, not a stamp
    team_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("teams.id", ondelete="SET NULL"), nullable=True
    )
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ticket: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # out of the open views until then (0020); a customer message, a state change or an agent
    # wakes it sooner (``conversations.service.snooze``)
    snoozed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # what its channel knows about where the customer is (0034): the web chat's page and
    # product; the company's knowledge rules turn it into retrieval filters
    context: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    # what SLA policies choose by (0035): low, normal, high or urgent
    priority: Mapped[str] = mapped_column(String(10), default="normal", server_default=text("'normal'"))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class Message(IdMixin, CompanyOwned, Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("company_id", "channel", "channel_message_id"),
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
        # a company's latest customer messages (``knowledge.message_terms``)
        Index(
            "ix_messages_company_customer_seq",
            "company_id",
            "seq",
            postgresql_where=text("author = 'customer'"),
        ),
        # the inbox's text search (0020): the words of each message, accents folded, with
        # its company's own lexeme (``conversations.inbox``)
        Index(
            "ix_messages_search",
            text("atende_message_search_v1(company_id, text)"),
            postgresql_using="gin",
        ),
        # exactly one bot reply per customer message, however often the turn runs
        Index(
            "uq_messages_bot_reply",
            "reply_to_id",
            unique=True,
            postgresql_where=text("author = 'bot'"),
        ),
        # the outbox (0016): how far an outbound message's delivery got
        CheckConstraint(
            "delivery_status IN ('queued', 'sent', 'delivered', 'read', 'failed')", name="delivery_status"
        ),
        # a provider's status update names the message by the provider's id
        Index(
            "ix_messages_provider_message_id",
            "company_id",
            "channel",
            "provider_message_id",
            postgresql_where=text("provider_message_id IS NOT NULL"),
        ),
    )

    company_index_in_table_args = True
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012  # fetch the seq PostgreSQL assigns

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), unique=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(20))
    channel_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # customer | bot | agent | system, or note: a private note of the team, never delivered
    # nor shown to the customer (``conversations.service.add_note``)
    author: Mapped[str] = mapped_column(String(20))
    author_user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # outbound messages only (null for the customer's): queued, sent, delivered, read, failed
    delivery_status: Mapped[str | None] = mapped_column(String(20), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    delivery_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StateTransition(IdMixin, CompanyOwned, Base):
    __tablename__ = "state_transitions"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor_type: Mapped[str] = mapped_column(String(20))  # customer | bot | agent | api | system
    actor_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)


class PendingDeliveryStatus(IdMixin, CompanyOwned, Base):
    """A provider's status update for a message we have not recorded its id for yet: it came
    while ``send`` was still in flight (WhatsApp reports ``delivered`` before its send call
    has answered). Kept here, the highest one per provider id, until the delivery job records
    the id (and applies it), or purged once older than ``service.PENDING_STATUS_TTL``."""

    __tablename__ = "pending_delivery_statuses"
    __table_args__ = (
        UniqueConstraint("company_id", "channel", "provider_message_id"),
        CheckConstraint("status IN ('sent', 'delivered', 'read', 'failed')", name="status"),
    )
    company_index_in_table_args = True

    channel: Mapped[str] = mapped_column(String(20))
    provider_message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # when it arrived (``created_at`` is when it was first kept): what delivered_at/read_at get
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow, index=True
    )


class Label(IdMixin, CompanyOwned, Base):
    """A label of the company's own ("urgente", "vip") that agents put on conversations."""

    __tablename__ = "labels"
    __table_args__ = (
        # one label per name, whatever its case: "VIP" and "vip" are one label
        Index("uq_labels_company_name", "company_id", text("lower(name)"), unique=True),
    )
    company_index_in_table_args = True

    name: Mapped[str] = mapped_column(String(50))
    color: Mapped[str | None] = mapped_column(String(7), nullable=True)


class ConversationLabel(CompanyOwned, Base):
    """A label on a conversation."""

    __tablename__ = "conversation_labels"
    __table_args__ = (
        # the inbox's label filter: a company's conversations with a label
        Index("ix_conversation_labels_company_label", "company_id", "label_id", "conversation_id"),
    )
    company_index_in_table_args = True

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )
