"""The audit log: ``audit_events``, who did what in a company and when

One row per action (signing in, a role changed, a setting saved, a key created, a document
deleted, a reply sent...), written in the transaction of the change. ``company_id`` is empty
for the platform's own actions. Three indexes serve the log's filters, newest first, paged
by (``created_at``, ``id``): all of a company's rows, one person's, one action's.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("actor_type", sa.String(length=10), nullable=False),
        sa.Column("actor_user_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("actor_key_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("target_type", sa.String(length=30), nullable=True),
        sa.Column("target_id", sa.String(length=100), nullable=True),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name="fk_audit_events_company_id_companies", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_company_time", "audit_events", ["company_id", "created_at", "id"])
    op.create_index(
        "ix_audit_events_company_actor_time",
        "audit_events",
        ["company_id", "actor_user_id", "created_at", "id"],
    )
    op.create_index(
        "ix_audit_events_company_action_time", "audit_events", ["company_id", "action", "created_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_company_action_time", table_name="audit_events")
    op.drop_index("ix_audit_events_company_actor_time", table_name="audit_events")
    op.drop_index("ix_audit_events_company_time", table_name="audit_events")
    op.drop_table("audit_events")
