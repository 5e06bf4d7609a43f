"""Analytics page: each conversation's figures in business time, kept by a periodic job, and
the view ``analytics.conversation_times`` that shows them to BI tools

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07

``analytics_conversation_facts`` holds one row per conversation: what the dashboard's analytics
page counts (channel, language, team, assignee, whether the bot resolved it alone, the first
handoff's reason) and its three durations in the company's business time (the hours module:
closed nights, weekends and holidays do not count), which SQL cannot compute. The periodic
job ``analytics:refresh`` writes the rows of the conversations that changed since its last
run (``analytics_refreshes`` keeps when that was, per company, which the page shows as "figures
as of", and a digest of the business hours used: when they change, every row is measured
again). ``analytics_daily`` sums the rows per local day, channel, team and language (the
counting charts read it: a 90-day page sums thousands of rows, not every conversation); the
durations' percentiles and the per-agent figures read the conversations' rows. The page
never reads the messages.

The view runs with its owner's rights like the others of migration 0008, and is granted to
``atende_analytics`` when the role exists.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

ROLE = "atende_analytics"

VIEW = """
    SELECT f.conversation_id,
           f.company_id,
           f.created_at,
           f.channel,
           f.language,
           tm.name AS team,
           f.assignee_id,
           f.state,
           f.ai_resolved,
           f.handoff_reason,
           f.bot_first_response_seconds,
           f.agent_first_response_seconds,
           f.resolution_seconds,
           f.computed_at
      FROM public.analytics_conversation_facts f
      LEFT JOIN public.teams tm ON tm.id = f.team_id
"""

COMMENT = (
    "One row per conversation, as the dashboard's analytics page counts it: whether the bot "
    "resolved it alone, the first handoff's reason, and first response (bot, agent) and "
    "resolution times in business seconds (the company's hours; closed time does not count)."
)


def upgrade() -> None:
    uuid = postgresql.UUID(as_uuid=True)
    op.create_table(
        "analytics_conversation_facts",
        sa.Column("conversation_id", uuid, nullable=False),
        sa.Column("company_id", uuid, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("language", sa.String(5), nullable=True),
        sa.Column("team_id", uuid, nullable=True),
        sa.Column("assignee_id", uuid, nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("ai_resolved", sa.Boolean(), nullable=False),
        sa.Column("handoff_reason", sa.String(20), nullable=True),
        sa.Column("bot_first_response_seconds", sa.Float(), nullable=True),
        sa.Column("agent_first_response_seconds", sa.Float(), nullable=True),
        sa.Column("resolution_seconds", sa.Float(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_analytics_conversation_facts_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name="fk_analytics_conversation_facts_company_id_companies",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name="pk_analytics_conversation_facts"),
    )
    # the page's every query: one company's conversations started in a date range
    op.create_index(
        "ix_analytics_conversation_facts_company_created",
        "analytics_conversation_facts",
        ["company_id", "created_at"],
    )
    # the per-agent chart: only the assigned conversations
    op.create_index(
        "ix_analytics_conversation_facts_assigned",
        "analytics_conversation_facts",
        ["company_id", "created_at"],
        postgresql_where=sa.text("assignee_id IS NOT NULL"),
    )
    # per company, local day, channel, team and language: the counting charts' sums (a 90-day
    # page reads thousands of these rather than every conversation)
    op.create_table(
        "analytics_daily",
        sa.Column("company_id", uuid, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("team_id", uuid, nullable=True),
        sa.Column("language", sa.String(5), nullable=True),
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.Column("ai_resolved", sa.Integer(), nullable=False),
        sa.Column("handed_off", sa.Integer(), nullable=False),
        sa.Column("reasons", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("hours", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name="fk_analytics_daily_company_id_companies", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_analytics_daily_company_day", "analytics_daily", ["company_id", "day"])
    op.create_table(
        "analytics_refreshes",
        sa.Column("company_id", uuid, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("covers_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hours_digest", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name="fk_analytics_refreshes_company_id_companies", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("company_id", name="pk_analytics_refreshes"),
    )
    op.execute(f"CREATE VIEW analytics.conversation_times AS {VIEW}")
    comment = COMMENT.replace("'", "''")
    op.execute(f"COMMENT ON VIEW analytics.conversation_times IS '{comment}'")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                GRANT SELECT ON analytics.conversation_times TO {ROLE};
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS analytics.conversation_times")
    op.drop_table("analytics_refreshes")
    op.drop_index("ix_analytics_daily_company_day", table_name="analytics_daily")
    op.drop_table("analytics_daily")
    op.drop_index("ix_analytics_conversation_facts_assigned", table_name="analytics_conversation_facts")
    op.drop_index("ix_analytics_conversation_facts_company_created", table_name="analytics_conversation_facts")
    op.drop_table("analytics_conversation_facts")
