"""E-mail fetching state: ``email_mailbox_states`` (IMAP) and ``email_pop3_uidls`` (POP3)

Where each mailbox's fetching stands, so that every message is taken exactly once across
restarts and workers: per IMAP account and folder the ``UIDVALIDITY``, the last UID taken and
its ``INTERNALDATE``; per POP3 account the ``UIDL`` of each message taken and still on the
server. Rows belong to one company (``company_id``) and go with their channel account.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def _owned(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=f"fk_{table}_company_id_companies", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name=f"fk_{table}_account_id_channel_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def upgrade() -> None:
    op.create_table(
        "email_mailbox_states",
        *_owned("email_mailbox_states"),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uid_validity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("last_internal_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id", "folder", name="uq_email_mailbox_states_account_id"),
    )
    op.create_index("ix_email_mailbox_states_company_id", "email_mailbox_states", ["company_id"])
    op.create_table(
        "email_pop3_uidls",
        *_owned("email_pop3_uidls"),
        sa.Column("uidl", sa.String(length=70), nullable=False),
        sa.UniqueConstraint("account_id", "uidl", name="uq_email_pop3_uidls_account_id"),
    )
    op.create_index("ix_email_pop3_uidls_company_id", "email_pop3_uidls", ["company_id"])


def downgrade() -> None:
    op.drop_index("ix_email_pop3_uidls_company_id", table_name="email_pop3_uidls")
    op.drop_table("email_pop3_uidls")
    op.drop_index("ix_email_mailbox_states_company_id", table_name="email_mailbox_states")
    op.drop_table("email_mailbox_states")
