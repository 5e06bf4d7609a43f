"""Pending delivery statuses: a provider's update that comes before our send has recorded its id

A provider may report ``delivered``, ``read`` or ``failed`` for a message before the delivery
job's ``send`` call has answered with the provider's id (WhatsApp does): no message has that
id yet. Such an update is kept in ``pending_delivery_statuses`` (per company, channel and
provider id, the highest status only) and applied when the job records the id; one that
waits longer than an hour is purged (``channels:purge_pending_statuses``).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_delivery_statuses",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("provider_message_id", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.CheckConstraint(
            "status IN ('sent', 'delivered', 'read', 'failed')", name=op.f("ck_pending_delivery_statuses_status")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_pending_delivery_statuses_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_delivery_statuses")),
        sa.UniqueConstraint(
            "company_id", "channel", "provider_message_id", name=op.f("uq_pending_delivery_statuses_company_id")
        ),
    )
    op.create_index(
        op.f("ix_pending_delivery_statuses_received_at"), "pending_delivery_statuses", ["received_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pending_delivery_statuses_received_at"), table_name="pending_delivery_statuses")
    op.drop_table("pending_delivery_statuses")
