"""Analytics: the customers' satisfaction surveys and the SLA targets, warnings and breaches,
as views of the schema ``analytics`` for Metabase and other BI tools

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07

Five views, with the rights of their owner like those of migration 0008, granted to
``atende_analytics`` when the role exists, and one table:

- ``csat_surveys``: one row per CSAT survey sent (``csat_surveys`` of migration 0036) with its
  answer's score, whether it is answered and how fast; the comment is the customer's words
  and stays out (only whether there is one);
- ``csat_daily``: per UTC day the surveys were sent, company and channel: sent, answered, the
  response rate, the average score and the share satisfied (4 or 5);
- ``sla_targets``: one row per SLA target of a conversation (migration 0035): the recorded
  ones (``sla_records``: met, or breached as soon as they are) and those still running with a
  due time (``sla_clocks``), with the policy's name, the channel, team and agent, the due,
  warning and breach instants;
- ``sla_daily``: per UTC day of their outcome (the breach's instant, or the stop of a target
  met), company, policy, target, channel and team: targets met and breached, the compliance;
- ``sla_events_daily``: per UTC day, company, policy and target: the warnings and breaches the
  SLA job raised;
- the table ``analytics.sla_warnings``: every warning the SLA job raised. A clock keeps its
  warning's instant only while it runs (the job deletes it once recorded), so a trigger on
  ``sla_clocks`` copies it here the moment the job stores it (``warned_at`` set while the
  clock is not breached: a warning whose moment passed with its breach is not raised, and is
  not copied). Its rows are ids and instants; deleted with their conversation.

docs/ANALYTICS.md describes every column. The downgrade drops them all.
"""

from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

ROLE = "atende_analytics"

WARNINGS_TABLE = """
CREATE TABLE analytics.sla_warnings (
    warning_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    company_id uuid NOT NULL REFERENCES public.companies (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES public.conversations (id) ON DELETE CASCADE,
    policy_id uuid REFERENCES public.sla_policies (id) ON DELETE SET NULL,
    target varchar(20) NOT NULL,
    started_at timestamptz NOT NULL,
    due_at timestamptz,
    warned_at timestamptz NOT NULL,
    CONSTRAINT uq_sla_warnings_target UNIQUE (conversation_id, target, started_at)
)
"""

# SECURITY DEFINER: the table is the migrating user's (the analytics schema's owner), the
# clocks are written by whichever user runs the SLA job
COPY_WARNING = r"""
CREATE FUNCTION public.atende_sla_copy_warning_v1() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
AS $$
BEGIN
    INSERT INTO analytics.sla_warnings
           (company_id, conversation_id, policy_id, target, started_at, due_at, warned_at)
    VALUES (NEW.company_id, NEW.conversation_id, NEW.policy_id, NEW.target, NEW.started_at,
            NEW.due_at, NEW.warned_at)
    ON CONFLICT (conversation_id, target, started_at) DO NOTHING;
    RETURN NULL;
END;
$$;
"""

COPY_WARNING_TRIGGER = """
CREATE TRIGGER atende_sla_copy_warning AFTER UPDATE OF warned_at ON public.sla_clocks
FOR EACH ROW
WHEN (OLD.warned_at IS NULL AND NEW.warned_at IS NOT NULL AND NEW.breached_at IS NULL)
EXECUTE FUNCTION public.atende_sla_copy_warning_v1()
"""

VIEWS = {
    "csat_surveys": (
        """
        SELECT s.id AS survey_id,
               s.company_id,
               s.conversation_id,
               s.channel,
               tm.name AS team,
               c.assignee_id,
               s.language,
               s.resolved_at,
               s.sent_at,
               s.closes_at,
               s.answered_at IS NOT NULL AS answered,
               s.answered_at,
               s.changed_at,
               s.answered_via,
               s.score,
               s.score >= 4 AS satisfied,
               s.comment IS NOT NULL AS commented,
               extract(epoch FROM s.answered_at - s.sent_at) AS response_seconds
          FROM public.csat_surveys s
          JOIN public.conversations c ON c.id = s.conversation_id AND c.company_id = s.company_id
          LEFT JOIN public.teams tm ON tm.id = c.team_id
         WHERE s.status = 'sent'
        """,
        "One row per CSAT survey sent after a resolution, with its answer's score (1 to 5; a "
        "changed answer shows its latest score). The comment's text is not shown.",
    ),
    "csat_daily": (
        """
        SELECT (s.sent_at AT TIME ZONE 'UTC')::date AS day,
               s.company_id,
               s.channel,
               count(*) AS sent,
               count(s.answered_at) AS answered,
               round(count(s.answered_at)::numeric / count(*), 4) AS response_rate,
               round(avg(s.score), 2) AS average_score,
               coalesce(sum(s.score), 0) AS score_total,
               count(*) FILTER (WHERE s.score >= 4) AS satisfied,
               count(*) FILTER (WHERE s.score = 3) AS neutral,
               count(*) FILTER (WHERE s.score <= 2) AS unsatisfied,
               round(count(*) FILTER (WHERE s.score >= 4)::numeric / nullif(count(s.score), 0), 4)
                   AS satisfied_share,
               count(*) FILTER (WHERE s.comment IS NOT NULL) AS commented
          FROM public.csat_surveys s
         WHERE s.status = 'sent'
         GROUP BY 1, 2, 3
        """,
        "CSAT surveys per UTC day they were sent, company and channel: sent, answered, the "
        "response rate, the average score and the share satisfied (a score of 4 or 5).",
    ),
    "sla_targets": (
        """
        WITH targets AS (
            SELECT r.id AS target_id, r.company_id, r.conversation_id, r.policy_id, r.target,
                   r.channel, r.team_id, r.assignee_id, r.started_at, r.due_at, r.stopped_at,
                   CASE WHEN r.breached THEN 'breached' ELSE 'met' END AS status,
                   r.breached
              FROM public.sla_records r
            UNION ALL
            SELECT k.id, k.company_id, k.conversation_id, k.policy_id, k.target,
                   c.channel, c.team_id, c.assignee_id, k.started_at, k.due_at, NULL,
                   'running', false
              FROM public.sla_clocks k
              JOIN public.conversations c ON c.id = k.conversation_id AND c.company_id = k.company_id
             WHERE k.stopped_at IS NULL AND k.due_at IS NOT NULL AND k.breached_at IS NULL
        )
        SELECT t.target_id,
               t.company_id,
               t.conversation_id,
               t.policy_id,
               p.name AS policy,
               t.target,
               t.channel,
               tm.name AS team,
               t.assignee_id,
               t.started_at,
               t.due_at,
               w.warned_at,
               t.stopped_at,
               t.status,
               t.status = 'met' AS met,
               t.breached,
               CASE WHEN t.breached THEN t.due_at END AS breached_at
          FROM targets t
          LEFT JOIN public.sla_policies p ON p.id = t.policy_id AND p.company_id = t.company_id
          LEFT JOIN public.teams tm ON tm.id = t.team_id
          LEFT JOIN analytics.sla_warnings w
                 ON w.conversation_id = t.conversation_id AND w.target = t.target
                AND w.started_at = t.started_at
        """,
        "One row per SLA target of a conversation: met, breached, or still running, with its "
        "policy, channel, team, agent, due instant, warning and breach.",
    ),
    "sla_daily": (
        """
        SELECT (coalesce(t.breached_at, t.stopped_at) AT TIME ZONE 'UTC')::date AS day,
               t.company_id,
               t.policy_id,
               t.policy,
               t.target,
               t.channel,
               t.team,
               count(*) AS targets,
               count(*) FILTER (WHERE t.met) AS met,
               count(*) FILTER (WHERE t.breached) AS breached,
               round(count(*) FILTER (WHERE t.met)::numeric / count(*), 4) AS compliance
          FROM analytics.sla_targets t
         WHERE t.status <> 'running'
         GROUP BY 1, 2, 3, 4, 5, 6, 7
        """,
        "SLA targets per UTC day of their outcome (the breach, or the stop of a target met), "
        "company, policy, target, channel and team: met, breached and the share met.",
    ),
    "sla_events_daily": (
        """
        SELECT (e.at AT TIME ZONE 'UTC')::date AS day,
               e.company_id,
               e.policy_id,
               p.name AS policy,
               e.target,
               count(*) FILTER (WHERE e.kind = 'warning') AS warnings,
               count(*) FILTER (WHERE e.kind = 'breached') AS breaches
          FROM (
                SELECT w.company_id, w.policy_id, w.target, w.warned_at AS at, 'warning' AS kind
                  FROM analytics.sla_warnings w
                UNION ALL
                SELECT r.company_id, r.policy_id, r.target, r.due_at, 'breached'
                  FROM public.sla_records r
                 WHERE r.breached
               ) e
          LEFT JOIN public.sla_policies p ON p.id = e.policy_id AND p.company_id = e.company_id
         GROUP BY 1, 2, 3, 4, 5
        """,
        "The SLA warnings and breaches raised per UTC day (of their instant), company, policy "
        "and target.",
    ),
}

RELATIONS = ("sla_warnings", *VIEWS)


def upgrade() -> None:
    op.execute(WARNINGS_TABLE)
    op.execute("CREATE INDEX ix_sla_warnings_company_warned ON analytics.sla_warnings (company_id, warned_at)")
    op.execute(
        "COMMENT ON TABLE analytics.sla_warnings IS 'Every SLA warning the SLA job raised "
        "(copied from sla_clocks by a trigger: a clock forgets it once recorded).'"
    )
    op.execute(COPY_WARNING)
    op.execute(COPY_WARNING_TRIGGER)
    # the warnings raised before this migration that their clocks still hold
    op.execute(
        """
        INSERT INTO analytics.sla_warnings
               (company_id, conversation_id, policy_id, target, started_at, due_at, warned_at)
        SELECT company_id, conversation_id, policy_id, target, started_at, due_at, warned_at
          FROM public.sla_clocks
         WHERE warned_at IS NOT NULL AND breached_at IS NULL
        ON CONFLICT (conversation_id, target, started_at) DO NOTHING
        """
    )
    for name, (query, comment) in VIEWS.items():
        op.execute(f"CREATE VIEW analytics.{name} AS {query}")
        text = comment.replace("'", "''")
        op.execute(f"COMMENT ON VIEW analytics.{name} IS '{text}'")
    grants = "\n".join(f"GRANT SELECT ON analytics.{name} TO {ROLE};" for name in RELATIONS)
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
    op.execute("DROP TRIGGER IF EXISTS atende_sla_copy_warning ON public.sla_clocks")
    op.execute("DROP FUNCTION IF EXISTS public.atende_sla_copy_warning_v1()")
    op.execute("DROP TABLE IF EXISTS analytics.sla_warnings")
