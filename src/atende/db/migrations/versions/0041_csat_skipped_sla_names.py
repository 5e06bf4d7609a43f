"""CSAT surveys may be skipped; SLA policy names unique whatever their case

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07

- ``csat_surveys.status`` (``sent`` or ``skipped``) and ``skip_reason``: a resolution that
  cannot be surveyed (a WhatsApp customer whose 24-hour window has closed, with no approved
  template configured) keeps a ``skipped`` row saying why, so the survey job considers each
  resolution once instead of reading the same ones on every run. A skipped survey was never
  sent: its ``sent_at`` is empty, and it counts in no figure of surveys sent.
- ``uq_sla_policies_company_lower_name``: a company's policy names are unique ignoring case
  (the app checked so, but two creates at once could both pass its check). Names that already
  clash are made unique first: the oldest keeps its name, the others get their id's first
  eight characters appended (``Suporte (1a2b3c4d)``).
"""

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "csat_surveys",
        sa.Column("status", sa.String(length=10), server_default=sa.text("'sent'"), nullable=False),
    )
    op.add_column("csat_surveys", sa.Column("skip_reason", sa.Text(), nullable=True))
    op.alter_column("csat_surveys", "sent_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    op.create_check_constraint("status", "csat_surveys", "status IN ('sent', 'skipped')")
    op.create_check_constraint("sent", "csat_surveys", "(status = 'sent') = (sent_at IS NOT NULL)")
    op.execute(
        """
        UPDATE sla_policies p
           SET name = left(p.name, 189) || ' (' || left(p.id::text, 8) || ')'
          FROM (SELECT id, row_number() OVER (PARTITION BY company_id, lower(name)
                                              ORDER BY created_at, id) AS n
                  FROM sla_policies) ranked
         WHERE ranked.id = p.id AND ranked.n > 1
        """
    )
    op.create_index(
        "uq_sla_policies_company_lower_name",
        "sla_policies",
        ["company_id", sa.text("lower(name)")],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_sla_policies_company_lower_name", table_name="sla_policies")
    op.execute("DELETE FROM csat_surveys WHERE status = 'skipped'")
    op.drop_constraint("sent", "csat_surveys", type_="check")
    op.drop_constraint("status", "csat_surveys", type_="check")
    op.alter_column("csat_surveys", "sent_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.drop_column("csat_surveys", "skip_reason")
    op.drop_column("csat_surveys", "status")
