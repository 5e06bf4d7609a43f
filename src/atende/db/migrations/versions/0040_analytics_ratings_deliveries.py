"""Analytics: the customers' thumbs on the bot's answers and the delivery of outbound messages,
as views of the schema ``analytics`` for Metabase and other BI tools

Revision ID: 0040
Revises: 0037
Create Date: 2026-12-07

Four views, with the rights of their owner like those of migration 0008, granted to
``atende_analytics`` when the role exists:

- ``answer_ratings``: one row per rated bot answer (``answer_ratings`` of migration 0037),
  with its trace (join ``bot_decisions`` on ``trace_id``) and whether a comment was left; the
  comment itself is the customer's words and stays out;
- ``answer_ratings_daily``: per UTC day, company and channel, helpful and not-helpful counts
  and the share helpful;
- ``deliveries``: one row per outbound message with a delivery status (the outbox of
  migration 0016): its channel, author, status and how long delivery and reading took; the
  failure's reason (a provider's or an exception's text) stays out;
- ``deliveries_daily``: per UTC day, company and channel, outbound messages by status and the
  median and 90th percentile of the time to delivery.

docs/ANALYTICS.md describes every column.
"""

from alembic import op

revision = "0040"
down_revision = "0037"
branch_labels = None
depends_on = None

ROLE = "atende_analytics"

VIEWS = {
    "answer_ratings": (
        """
        SELECT r.id AS rating_id,
               r.company_id,
               r.conversation_id,
               r.message_id,
               r.trace_id,
               r.channel,
               r.helpful,
               r.comment IS NOT NULL AS commented,
               r.rated_at,
               m.created_at AS answered_at
          FROM public.answer_ratings r
          JOIN public.messages m ON m.id = r.message_id
        """,
        "One row per bot answer a customer rated (thumbs up or down; a changed rating replaces "
        "it), with the trace of the turn that wrote the answer. The comment's text is not shown.",
    ),
    "answer_ratings_daily": (
        """
        SELECT (r.rated_at AT TIME ZONE 'UTC')::date AS day,
               r.company_id,
               r.channel,
               count(*) AS ratings,
               count(*) FILTER (WHERE r.helpful) AS helpful,
               count(*) FILTER (WHERE NOT r.helpful) AS not_helpful,
               round(count(*) FILTER (WHERE r.helpful)::numeric / count(*), 4) AS helpful_share,
               count(*) FILTER (WHERE r.comment IS NOT NULL) AS commented
          FROM public.answer_ratings r
         GROUP BY 1, 2, 3
        """,
        "Ratings of the bot's answers per UTC day (of the rating), company and channel: helpful, "
        "not helpful, the share helpful.",
    ),
    "deliveries": (
        """
        SELECT m.id AS message_id,
               m.company_id,
               m.conversation_id,
               m.channel,
               m.author,
               m.created_at,
               m.delivery_status,
               m.delivery_status = 'failed' AS failed,
               m.delivered_at,
               m.read_at,
               extract(epoch FROM m.delivered_at - m.created_at) AS delivery_seconds,
               extract(epoch FROM m.read_at - m.created_at) AS read_seconds
          FROM public.messages m
         WHERE m.delivery_status IS NOT NULL
        """,
        "One row per outbound message with a delivery status (queued, sent, delivered, read, "
        "failed) and its times to delivery and reading. The failure's reason is not shown.",
    ),
    "deliveries_daily": (
        """
        SELECT (m.created_at AT TIME ZONE 'UTC')::date AS day,
               m.company_id,
               m.channel,
               count(*) AS messages,
               count(*) FILTER (WHERE m.delivery_status = 'queued') AS queued,
               count(*) FILTER (WHERE m.delivery_status = 'sent') AS sent,
               count(*) FILTER (WHERE m.delivery_status = 'delivered') AS delivered,
               count(*) FILTER (WHERE m.delivery_status = 'read') AS read,
               count(*) FILTER (WHERE m.delivery_status = 'failed') AS failed,
               round(count(*) FILTER (WHERE m.delivery_status = 'failed')::numeric / count(*), 4)
                   AS failed_share,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM m.delivered_at - m.created_at)
               ) AS delivery_median_seconds,
               percentile_cont(0.9) WITHIN GROUP (
                   ORDER BY extract(epoch FROM m.delivered_at - m.created_at)
               ) AS delivery_p90_seconds,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM m.read_at - m.created_at)
               ) AS read_median_seconds
          FROM public.messages m
         WHERE m.delivery_status IS NOT NULL
         GROUP BY 1, 2, 3
        """,
        "Outbound messages per UTC day (of the message), company and channel, by delivery "
        "status, with the median and 90th percentile of the time to delivery.",
    ),
}


def upgrade() -> None:
    for name, (query, comment) in VIEWS.items():
        op.execute(f"CREATE VIEW analytics.{name} AS {query}")
        text = comment.replace("'", "''")
        op.execute(f"COMMENT ON VIEW analytics.{name} IS '{text}'")
    grants = "\n".join(f"GRANT SELECT ON analytics.{name} TO {ROLE};" for name in VIEWS)
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                {grants}
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS analytics.{name}")
