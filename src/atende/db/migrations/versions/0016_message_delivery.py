"""Message delivery: the outbox's statuses get columns of their own

Every outbound message (a bot's answer or handoff notice, an agent's reply) is delivered by
a job queued in the transaction that stores it (``channels:deliver_message``). Its progress
is on the message: ``delivery_status`` (``queued`` → ``sent`` → ``delivered`` → ``read``, or
``failed``; null for customer messages and for replies stored before the outbox),
``provider_message_id`` (the channel's id of it, what status updates name; indexed with the
company and channel), ``delivery_error`` (the reason of a failure), ``delivered_at`` and
``read_at``. What the direct call of 0015's delivery kept in ``meta.delivery`` moves there.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

STATUSES = "('queued', 'sent', 'delivered', 'read', 'failed')"


def upgrade() -> None:
    op.add_column("messages", sa.Column("delivery_status", sa.String(length=20), nullable=True))
    op.add_column("messages", sa.Column("provider_message_id", sa.String(length=255), nullable=True))
    op.add_column("messages", sa.Column("delivery_error", sa.Text(), nullable=True))
    op.add_column("messages", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("read_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint("delivery_status", "messages", f"delivery_status IN {STATUSES}")
    op.create_index(
        "ix_messages_provider_message_id",
        "messages",
        ["company_id", "channel", "provider_message_id"],
        postgresql_where=sa.text("provider_message_id IS NOT NULL"),
    )
    # what 0015's direct delivery recorded in meta.delivery
    op.execute(
        f"""
        UPDATE messages SET
            provider_message_id = meta->'delivery'->>'provider_message_id',
            delivery_status = CASE WHEN meta->'delivery'->>'status' IN {STATUSES}
                                   THEN meta->'delivery'->>'status' ELSE 'sent' END,
            delivery_error = meta->'delivery'->>'reason',
            meta = meta - 'delivery'
        WHERE meta ? 'delivery'
        """
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE messages SET meta = meta || jsonb_build_object('delivery', jsonb_strip_nulls(jsonb_build_object(
            'provider_message_id', provider_message_id, 'status', delivery_status, 'reason', delivery_error)))
        WHERE provider_message_id IS NOT NULL
        """
    )
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
    op.drop_constraint("delivery_status", "messages", type_="check")
    for column in ("read_at", "delivered_at", "delivery_error", "provider_message_id", "delivery_status"):
        op.drop_column("messages", column)
