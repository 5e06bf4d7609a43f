"""Conversations: ``context``, what the channel knows about where the customer is

A JSON object per conversation (``{}`` for those before): the web chat's widget stores the
page it sits on and the product that page names; the company's knowledge rules turn it,
with the channel, into retrieval filters (``atende.knowledge.rules``). The downgrade drops it.

Revision ID: 0034
Revises: 0033
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column(
            "context",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("conversations", "context")
