"""Answer ratings: ``answer_ratings``, a customer's thumbs up or down on a bot answer

One row per rated bot message (a changed rating replaces it), with an optional comment, the
channel it was rated on, and the trace of the turn that wrote the answer (``atende.feedback.
ratings``). A rating goes with its company, conversation or message; a removed trace leaves
it without one. The downgrade drops the table.

Revision ID: 0037
Revises: 0036
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_ratings",
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("trace_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name="fk_answer_ratings_company_id_companies", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_answer_ratings_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_answer_ratings_message_id_messages", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["trace_id"], ["traces.id"], name="fk_answer_ratings_trace_id_traces", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_answer_ratings"),
        sa.UniqueConstraint("message_id", name="uq_answer_ratings_message_id"),
    )
    op.create_index("ix_answer_ratings_company_rated", "answer_ratings", ["company_id", "rated_at"])
    op.create_index("ix_answer_ratings_conversation_id", "answer_ratings", ["conversation_id"])
    op.create_index("ix_answer_ratings_trace_id", "answer_ratings", ["trace_id"])


def downgrade() -> None:
    op.drop_table("answer_ratings")
