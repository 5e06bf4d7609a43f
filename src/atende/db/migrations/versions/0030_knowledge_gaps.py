"""Knowledge gaps: ``knowledge_gap_questions``, ``knowledge_gap_topics``, ``knowledge_gap_runs``

The questions the bot handed to people because the knowledge base did not cover them (one
row per such turn's trace, with the question's vector and the agent's first answer), the
topics the hourly refresh forms from them, and when it last ran, per company
(``atende.gaps``). Every row belongs to one company and goes with it; a question goes with
its trace or conversation; a topic's removal leaves its questions without one.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def _company() -> list[sa.SchemaItem]:
    return [sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False)]


def _company_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["company_id"], ["companies.id"], name=f"fk_{table}_company_id_companies", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "knowledge_gap_topics",
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("representative_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_company(),
        _company_fk("knowledge_gap_topics"),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_gap_topics"),
    )
    op.create_index("ix_knowledge_gap_topics_company_id", "knowledge_gap_topics", ["company_id"])
    op.create_table(
        "knowledge_gap_questions",
        sa.Column("trace_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_seq", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("vector", postgresql.ARRAY(sa.REAL()), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("topic_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_company(),
        _company_fk("knowledge_gap_questions"),
        sa.ForeignKeyConstraint(
            ["trace_id"], ["traces.id"], name="fk_knowledge_gap_questions_trace_id_traces", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_knowledge_gap_questions_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["knowledge_gap_topics.id"],
            name="fk_knowledge_gap_questions_topic_id_knowledge_gap_topics",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_knowledge_gap_questions"),
        sa.UniqueConstraint("trace_id", name="uq_knowledge_gap_questions_trace_id"),
    )
    op.create_index(
        "ix_knowledge_gap_questions_company_asked", "knowledge_gap_questions", ["company_id", "asked_at"]
    )
    op.create_index(
        "ix_knowledge_gap_questions_conversation_id", "knowledge_gap_questions", ["conversation_id"]
    )
    op.create_table(
        "knowledge_gap_runs",
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_up_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("questions", sa.Integer(), nullable=False),
        sa.Column("topics", sa.Integer(), nullable=False),
        *_company(),
        _company_fk("knowledge_gap_runs"),
        sa.PrimaryKeyConstraint("company_id", name="pk_knowledge_gap_runs"),
    )


def downgrade() -> None:
    op.drop_table("knowledge_gap_runs")
    op.drop_index("ix_knowledge_gap_questions_conversation_id", table_name="knowledge_gap_questions")
    op.drop_index("ix_knowledge_gap_questions_company_asked", table_name="knowledge_gap_questions")
    op.drop_table("knowledge_gap_questions")
    op.drop_index("ix_knowledge_gap_topics_company_id", table_name="knowledge_gap_topics")
    op.drop_table("knowledge_gap_topics")
