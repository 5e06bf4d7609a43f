"""Analytics: read-only SQL views in a schema ``analytics`` and a NOLOGIN role
``atende_analytics`` that may read them and nothing else (for Metabase and other BI tools)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

The views run with their owner's rights (the user that migrates), so a role granted only
``atende_analytics`` reads the figures without any right on the tables behind them. They
carry no customer text and no contact details (names, e-mails, phone numbers): message
counts, states, timings, decisions and reasons as categories. A handoff's recorded reason is
not among them: it is free text (an agent's or API client's words, an error's message), so
``handoffs`` names only its category and, for a company rule, the rule's name (which the
company's administrators chose). docs/ANALYTICS.md describes every column.

The role is cluster-wide: it is created if it does not exist (by a user allowed to create
roles; otherwise a warning says what to ask a DBA for) and shared by every atende database
on the server. The downgrade drops the schema, and the role as well when nothing else on the
server uses it (no rights in another database, no member).
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ROLE = "atende_analytics"

# A handoff's reason, as a category. The texts are those the engine writes on the state change
# (``atende.engine.handoff.signal`` and ``hand_off_after_failure``); the weak-evidence reason is
# the answerer's own sentence, hence the ELSE. A move by an agent or the API is ``manual``.
# (Only categories leave the view: the reason itself may hold an agent's words or an error's.)
HANDOFF_REASON = """
    CASE
        WHEN s.actor_type <> 'bot' THEN 'manual'
        WHEN s.reason LIKE 'the customer asked for a person%' THEN 'requested'
        WHEN s.reason LIKE 'handoff rule %' THEN 'rule'
        WHEN s.reason LIKE 'the customer repeated%' THEN 'repeat'
        WHEN s.reason LIKE 'the bot could not answer%' THEN 'failure'
        ELSE 'evidence'
    END
"""

VIEWS = {
    "companies": """
        SELECT c.id AS company_id, c.name, c.slug, c.default_language, c.created_at
          FROM public.companies c
    """,
    "handoffs": f"""
        SELECT s.id AS handoff_id,
               s.company_id,
               s.conversation_id,
               s.created_at AS handed_off_at,
               s.from_state,
               s.actor_type,
               {HANDOFF_REASON} AS reason,
               CASE WHEN s.actor_type = 'bot'
                    THEN substring(s.reason FROM '^handoff rule ''(.*)'' matched') END AS rule,
               coalesce(s.reason LIKE '% (closed)', false) AS outside_hours,
               coalesce(s.reason LIKE '% (nobody online)', false) AS nobody_online,
               n.to_state AS outcome,
               n.created_at AS ended_at,
               CASE WHEN n.to_state = 'human'
                    THEN extract(epoch FROM n.created_at - s.created_at) END AS wait_seconds
          FROM public.state_transitions s
          LEFT JOIN LATERAL (
                SELECT t.to_state, t.created_at
                  FROM public.state_transitions t
                 WHERE t.conversation_id = s.conversation_id
                   AND (t.created_at, t.id) > (s.created_at, s.id)
                 ORDER BY t.created_at, t.id
                 LIMIT 1
          ) n ON true
         WHERE s.to_state = 'waiting_human'
    """,
    "conversations": """
        SELECT c.id AS conversation_id,
               c.company_id,
               c.contact_id,
               c.channel,
               c.state,
               c.language,
               c.ticket,
               tm.name AS team,
               c.created_at,
               c.updated_at,
               m.customer_messages,
               m.bot_messages,
               m.agent_messages,
               m.first_customer_message_at,
               fr.first_response_at,
               extract(epoch FROM fr.first_response_at - m.first_customer_message_at)
                   AS first_response_seconds,
               h.handoffs,
               h.first_handoff_at,
               h.handoff_reason,
               fh.first_agent_message_at,
               extract(epoch FROM fh.first_agent_message_at - h.first_handoff_at)
                   AS first_agent_response_seconds,
               r.resolved_at,
               extract(epoch FROM r.resolved_at - c.created_at) AS resolution_seconds
          FROM public.conversations c
          LEFT JOIN public.teams tm ON tm.id = c.team_id
          LEFT JOIN LATERAL (
                SELECT count(*) FILTER (WHERE x.author = 'customer') AS customer_messages,
                       count(*) FILTER (WHERE x.author = 'bot') AS bot_messages,
                       count(*) FILTER (WHERE x.author = 'agent') AS agent_messages,
                       min(x.created_at) FILTER (WHERE x.author = 'customer') AS first_customer_message_at
                  FROM public.messages x
                 WHERE x.conversation_id = c.id
          ) m ON true
          LEFT JOIN LATERAL (
                SELECT min(x.created_at) AS first_response_at
                  FROM public.messages x
                 WHERE x.conversation_id = c.id
                   AND x.author IN ('bot', 'agent')
                   AND x.created_at >= m.first_customer_message_at
          ) fr ON true
          LEFT JOIN LATERAL (
                SELECT count(*) AS handoffs,
                       min(a.handed_off_at) AS first_handoff_at,
                       (array_agg(a.reason ORDER BY a.handed_off_at, a.handoff_id))[1] AS handoff_reason
                  FROM analytics.handoffs a
                 WHERE a.conversation_id = c.id
          ) h ON true
          LEFT JOIN LATERAL (
                SELECT min(x.created_at) AS first_agent_message_at
                  FROM public.messages x
                 WHERE x.conversation_id = c.id
                   AND x.author = 'agent'
                   AND x.created_at >= h.first_handoff_at
          ) fh ON true
          LEFT JOIN LATERAL (
                SELECT max(t.created_at) AS resolved_at
                  FROM public.state_transitions t
                 WHERE t.conversation_id = c.id AND t.to_state = 'resolved'
                HAVING c.state = 'resolved'
          ) r ON true
    """,
    "messages_daily": """
        SELECT (x.created_at AT TIME ZONE 'UTC')::date AS day,
               x.company_id,
               x.channel,
               x.author,
               count(*) AS messages,
               count(DISTINCT x.conversation_id) AS conversations
          FROM public.messages x
         GROUP BY 1, 2, 3, 4
    """,
    "bot_decisions": """
        SELECT t.id AS trace_id,
               t.company_id,
               t.conversation_id,
               t.message_id,
               t.created_at,
               t.decision,
               t.reason,
               t.language,
               t.answerer,
               t.retriever,
               t.total_ms,
               jsonb_array_length(t.retrieved) AS passages,
               (t.retrieved -> 0 ->> 'document_id')::uuid AS top_document_id,
               t.retrieved -> 0 ->> 'title' AS top_document_title
          FROM public.traces t
    """,
    "documents": """
        SELECT d.id AS document_id,
               d.company_id,
               d.title,
               d.source,
               d.content_type,
               d.language,
               d.status,
               d.error,
               d.chunk_count,
               d.created_at,
               d.updated_at
          FROM public.documents d
    """,
}

COMMENTS = {
    "companies": "One row per company (tenant).",
    "handoffs": "One row per time a conversation joined the queue for people: why (reason, and "
    "the company rule that matched), whether the team was closed or nobody online, and how the "
    "wait ended (outcome, wait_seconds).",
    "conversations": "One row per conversation: channel, state, language, message counts, first "
    "response and resolution times, handoffs and the first handoff's reason.",
    "messages_daily": "Messages per UTC day, company, channel and author.",
    "bot_decisions": "One row per bot turn (its trace): decision, reason, language, answerer, latency "
    "and the best passage retrieved.",
    "documents": "One row per knowledge-base document: status, language, chunks.",
}


def upgrade() -> None:
    op.execute("CREATE SCHEMA analytics")
    op.execute("COMMENT ON SCHEMA analytics IS 'Read-only views for BI tools (docs/ANALYTICS.md)'")
    for name, body in VIEWS.items():  # in order: conversations reads handoffs
        op.execute(f"CREATE VIEW analytics.{name} AS {body}")
        comment = COMMENTS[name].replace("'", "''")
        op.execute(f"COMMENT ON VIEW analytics.{name} IS '{comment}'")
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
                    BEGIN
                        CREATE ROLE {ROLE} NOLOGIN;
                    EXCEPTION WHEN duplicate_object THEN
                        NULL;  -- another database's migration created it meanwhile
                    END;
                ELSE
                    RAISE WARNING '% may not create roles: ask a DBA for "CREATE ROLE {ROLE} NOLOGIN", '
                        'then run "atende db upgrade" again or grant it USAGE and SELECT on schema '
                        'analytics (docs/ANALYTICS.md)', current_user;
                END IF;
            END IF;
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                GRANT USAGE ON SCHEMA analytics TO {ROLE};
                GRANT SELECT ON ALL TABLES IN SCHEMA analytics TO {ROLE};
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS analytics CASCADE")
    op.execute(
        f"""
        DO $$
        DECLARE
            v_role oid := (SELECT oid FROM pg_roles WHERE rolname = '{ROLE}');
        BEGIN
            IF v_role IS NOT NULL
               AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user)
               AND NOT EXISTS (SELECT FROM pg_shdepend
                                WHERE refclassid = 'pg_authid'::regclass AND refobjid = v_role)
               AND NOT EXISTS (SELECT FROM pg_auth_members WHERE roleid = v_role) THEN
                DROP ROLE {ROLE};
            END IF;
        END
        $$
        """
    )
