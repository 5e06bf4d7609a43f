"""E-mail webhooks: ``email_webhook_tokens``, the Mailgun tokens each mailbox has taken

Mailgun signs each inbound post with a fresh random ``token`` and a ``timestamp``; a signed
post replayed within the timestamp's tolerance would carry a valid signature, so each account
remembers the tokens it accepted until their timestamp is too old to be accepted anyway
(``expires_at``), and refuses one it has seen. Rows belong to one company, and to one channel
account (deleted with either).

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "email_webhook_tokens",
        sa.Column("account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("token", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name="fk_email_webhook_tokens_account_id_channel_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name="fk_email_webhook_tokens_company_id_companies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "token", name="pk_email_webhook_tokens"),
    )
    op.create_index("ix_email_webhook_tokens_company_id", "email_webhook_tokens", ["company_id"])


def downgrade() -> None:
    op.drop_index("ix_email_webhook_tokens_company_id", table_name="email_webhook_tokens")
    op.drop_table("email_webhook_tokens")
