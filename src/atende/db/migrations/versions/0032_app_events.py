"""Application events: ``app_events``, what went wrong at warning level and above

Failed deliveries, failed jobs, webhook failures, refused channel credentials and LLM
circuit changes, each recorded where it happens (``atende.observability.events``) with its
message redacted as the logs are. A row belongs to one company, or to none (the platform's
own: the deployment's LLM endpoint), is deleted with its company, and is pruned after the
company's retention (30 days unless it chose another). The events page lists them newest
first, one keyset page at a time, filtered by level, kind, conversation and words: an index
per filter, company first, and a GIN index over the message's words.

Revision ID: 0032
Revises: 0031
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_events",
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("conversation_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("level IN ('warning', 'error')", name=op.f("ck_app_events_level")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_app_events_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_events")),
    )
    op.create_index("ix_app_events_company_created", "app_events", ["company_id", "created_at", "id"])
    op.create_index(
        "ix_app_events_company_level_created", "app_events", ["company_id", "level", "created_at", "id"]
    )
    op.create_index(
        "ix_app_events_company_kind_created", "app_events", ["company_id", "kind", "created_at", "id"]
    )
    op.create_index(
        "ix_app_events_conversation_created",
        "app_events",
        ["conversation_id", "created_at"],
        postgresql_where=sa.text("conversation_id IS NOT NULL"),
    )
    op.create_index("ix_app_events_created", "app_events", ["created_at", "id"])
    op.create_index(
        "ix_app_events_search",
        "app_events",
        [sa.text("to_tsvector('simple'::regconfig, message)")],
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_table("app_events")
