"""Channel accounts: each company's accounts of its channels; the web chat's widget key moves there

``channel_accounts`` holds, per company, an account of a channel: its kind, the id the channel
routes inbound requests by (``external_id``: the widget key, later a WhatsApp
``phone_number_id`` or a mailbox address; unique per kind across the platform), a display
name, an enabled flag, its configuration (validated by the channel's schema) and its secrets
(name → Fernet token, never returned).

Every company gets its ``webchat`` account with ``external_id = companies.widget_key``: the
widget keys embedded in pages keep working, now resolved through the account. A company
created later gets one the same way, from a trigger (``atende_company_webchat_account_v1``),
whoever creates it (the CLI, the demo, the evaluation, benchmarks): ``companies.widget_key``
stays, the key ``GET /v1/company`` shows, until creating a company provisions its channels.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

INSERT_WEBCHAT = """
    INSERT INTO channel_accounts
           (id, created_at, company_id, kind, external_id, display_name, enabled, config, secrets)
"""


def upgrade() -> None:
    op.create_table(
        "channel_accounts",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("secrets", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_channel_accounts_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_accounts")),
        sa.UniqueConstraint("kind", "external_id", name=op.f("uq_channel_accounts_kind")),
    )
    op.create_index(op.f("ix_channel_accounts_company_id"), "channel_accounts", ["company_id"], unique=False)
    op.execute(
        INSERT_WEBCHAT
        + """
    SELECT gen_random_uuid(), now(), id, 'webchat', widget_key, 'Web chat', true, '{}', '{}'
      FROM companies
    """
    )
    op.execute(
        """
    CREATE FUNCTION atende_company_webchat_account_v1() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
    """
        + INSERT_WEBCHAT
        + """
        VALUES (gen_random_uuid(), now(), NEW.id, 'webchat', NEW.widget_key, 'Web chat', true, '{}', '{}');
        RETURN NEW;
    END
    $$
    """
    )
    op.execute(
        "CREATE TRIGGER companies_webchat_account AFTER INSERT ON companies"
        " FOR EACH ROW EXECUTE FUNCTION atende_company_webchat_account_v1()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER companies_webchat_account ON companies")
    op.execute("DROP FUNCTION atende_company_webchat_account_v1()")
    op.drop_index(op.f("ix_channel_accounts_company_id"), table_name="channel_accounts")
    op.drop_table("channel_accounts")
