"""The widget key lives in the web chat's channel account only: ``companies.widget_key`` goes

0015 gave every company a ``webchat`` account keyed by ``companies.widget_key`` and kept the
column, so the key was stored twice. The account is now the only source: the web chat
routes by it, the API shows it (``GET /v1/channel-accounts?kind=webchat``), the CLI and the
demo read it. The trigger on ``companies`` (``atende_company_webchat_account_v2``) now draws a
new company's key itself (``wk_`` and 32 hex digits of ``gen_random_uuid()``: 122 random
bits; a widget key is public, embedded in pages, so it names a company rather than guards it).

Existing keys keep working: they already route through the accounts. A company that had no
``webchat`` account left (one deleted through the API before deleting the last one was
refused) gets it back under its old key, unless another account took that key meanwhile.

The downgrade restores the column from the accounts: each company's oldest ``webchat``
account's key (a new one for a company with none), and the 0015 trigger.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NEW_KEY = "'wk_' || replace(gen_random_uuid()::text, '-', '')"
INSERT_WEBCHAT = """
    INSERT INTO channel_accounts
           (id, created_at, company_id, kind, external_id, display_name, enabled, config, secrets)
"""


def _trigger(function: str, external_id: str) -> None:
    op.execute(
        f"""
    CREATE FUNCTION {function}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
    {INSERT_WEBCHAT}
        VALUES (gen_random_uuid(), now(), NEW.id, 'webchat', {external_id}, 'Web chat', true, '{{}}', '{{}}');
        RETURN NEW;
    END
    $$
    """
    )
    op.execute(
        "CREATE TRIGGER companies_webchat_account AFTER INSERT ON companies"
        f" FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


def upgrade() -> None:
    op.execute(
        INSERT_WEBCHAT
        + """
    SELECT gen_random_uuid(), now(), c.id, 'webchat', c.widget_key, 'Web chat', true, '{}', '{}'
      FROM companies c
     WHERE NOT EXISTS (SELECT 1 FROM channel_accounts a WHERE a.company_id = c.id AND a.kind = 'webchat')
    ON CONFLICT (kind, external_id) DO NOTHING
    """
    )
    op.execute("DROP TRIGGER companies_webchat_account ON companies")
    op.execute("DROP FUNCTION atende_company_webchat_account_v1()")
    _trigger("atende_company_webchat_account_v2", NEW_KEY)
    op.drop_column("companies", "widget_key")


def downgrade() -> None:
    op.add_column("companies", sa.Column("widget_key", sa.String(length=64), nullable=True))
    op.execute(
        """
    UPDATE companies c SET widget_key = (
        SELECT a.external_id FROM channel_accounts a
         WHERE a.company_id = c.id AND a.kind = 'webchat' AND length(a.external_id) <= 64
         ORDER BY a.created_at, a.id LIMIT 1)
    """
    )
    # a company without one gets a new key, and its account (what 0015's trigger gave it)
    op.execute(f"UPDATE companies SET widget_key = {NEW_KEY} WHERE widget_key IS NULL")
    op.execute(
        INSERT_WEBCHAT
        + """
    SELECT gen_random_uuid(), now(), c.id, 'webchat', c.widget_key, 'Web chat', true, '{}', '{}'
      FROM companies c
     WHERE NOT EXISTS (SELECT 1 FROM channel_accounts a
                        WHERE a.kind = 'webchat' AND a.external_id = c.widget_key)
    """
    )
    op.alter_column("companies", "widget_key", nullable=False)
    op.create_unique_constraint(op.f("uq_companies_widget_key"), "companies", ["widget_key"])
    op.execute("DROP TRIGGER companies_webchat_account ON companies")
    op.execute("DROP FUNCTION atende_company_webchat_account_v2()")
    _trigger("atende_company_webchat_account_v1", "NEW.widget_key")
