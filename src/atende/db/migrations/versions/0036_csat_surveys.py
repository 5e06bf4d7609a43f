"""CSAT surveys: ``csat_surveys``, one per resolution surveyed, with its answer

A company's CSAT settings live in ``companies.settings["csat"]`` (no schema change); this
table holds each survey sent after a resolution (unique per state transition: one survey
per resolution), and the customer's score, comment and when they gave or changed it
(``atende.feedback``). Every row goes with its company and its conversation.

Revision ID: 0036
Revises: 0035
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csat_surveys",
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("transition_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_via", sa.String(length=20), nullable=True),
        sa.Column("spent_links", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_csat_surveys_score"),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name="fk_csat_surveys_company_id_companies", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_csat_surveys_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["transition_id"],
            ["state_transitions.id"],
            name="fk_csat_surveys_transition_id_state_transitions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_csat_surveys"),
        sa.UniqueConstraint("transition_id", name="uq_csat_surveys_transition_id"),
    )
    op.create_index("ix_csat_surveys_company_sent", "csat_surveys", ["company_id", "sent_at"])
    op.create_index("ix_csat_surveys_conversation_id", "csat_surveys", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("csat_surveys")
