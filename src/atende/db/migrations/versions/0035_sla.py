"""SLA policies and clocks: ``conversations.priority``, ``sla_policies``, ``sla_clocks``,
``sla_records``, and the two triggers that start and stop the clocks

- ``conversations.priority``: low, normal (every conversation before), high or urgent.
- ``sla_policies``: each company's targets (business seconds) and the conditions choosing them.
- ``sla_clocks``: each conversation's running targets. The trigger
  ``atende_sla_follow_state`` (after a conversation's state, team or priority changes) starts
  the first-response and resolution clocks when the conversation comes to people (from the bot,
  a resolved or a new state; at its ``waiting_since``, the handoff's own clock, else now),
  stops the resolution clock on ``resolved`` (dropping the response clocks still running), drops
  every running clock when it goes back to the bot, and marks running clocks to be computed
  again when the team or the priority changes. ``atende_sla_follow_message`` (after an agent's
  or a customer's message, whoever stores it: the intake function stays untouched) stops the
  running response clocks at an agent's message, and starts a next-response clock at a
  customer's message while the conversation is with people, its first response is given and
  no next-response clock runs. The due times are the SLA job's (``atende.sla.service``):
  business time is Python's.
- ``sla_records``: every target's outcome, met or breached.

The downgrade drops them all.

Revision ID: 0035
Revises: 0034
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

FOLLOW_STATE = r"""
CREATE FUNCTION atende_sla_follow_state_v1() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    at timestamptz := clock_timestamp();
BEGIN
    IF NEW.state IS DISTINCT FROM OLD.state THEN
        IF NEW.state IN ('waiting_human', 'human') AND OLD.state NOT IN ('waiting_human', 'human') THEN
            DELETE FROM sla_clocks WHERE conversation_id = NEW.id AND stopped_at IS NULL;
            INSERT INTO sla_clocks (id, company_id, conversation_id, target, started_at, stale)
            VALUES (gen_random_uuid(), NEW.company_id, NEW.id, 'first_response',
                    coalesce(NEW.waiting_since, at), true),
                   (gen_random_uuid(), NEW.company_id, NEW.id, 'resolution',
                    coalesce(NEW.waiting_since, at), true);
            RETURN NULL;
        ELSIF NEW.state = 'resolved' THEN
            UPDATE sla_clocks SET stopped_at = greatest(at, started_at), stale = true, alarm_at = NULL
             WHERE conversation_id = NEW.id AND target = 'resolution' AND stopped_at IS NULL;
            DELETE FROM sla_clocks WHERE conversation_id = NEW.id AND stopped_at IS NULL;
            RETURN NULL;
        ELSIF NEW.state = 'bot' THEN
            DELETE FROM sla_clocks WHERE conversation_id = NEW.id AND stopped_at IS NULL;
            RETURN NULL;
        END IF;
    END IF;
    IF NEW.team_id IS DISTINCT FROM OLD.team_id OR NEW.priority IS DISTINCT FROM OLD.priority THEN
        UPDATE sla_clocks SET stale = true
         WHERE conversation_id = NEW.id AND stopped_at IS NULL AND NOT stale;
    END IF;
    RETURN NULL;
END;
$$;
"""

FOLLOW_STATE_TRIGGER = """
CREATE TRIGGER atende_sla_follow_state AFTER UPDATE OF state, team_id, priority ON conversations
FOR EACH ROW EXECUTE FUNCTION atende_sla_follow_state_v1()
"""

FOLLOW_MESSAGE = r"""
CREATE FUNCTION atende_sla_follow_message_v1() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.author = 'agent' THEN
        UPDATE sla_clocks SET stopped_at = greatest(NEW.created_at, started_at), stale = true, alarm_at = NULL
         WHERE conversation_id = NEW.conversation_id AND stopped_at IS NULL
           AND target IN ('first_response', 'next_response');
    ELSIF EXISTS (SELECT 1 FROM conversations
                   WHERE company_id = NEW.company_id AND id = NEW.conversation_id
                     AND state IN ('waiting_human', 'human'))
      AND EXISTS (SELECT 1 FROM sla_clocks
                   WHERE conversation_id = NEW.conversation_id AND target = 'resolution'
                     AND stopped_at IS NULL)
      AND NOT EXISTS (SELECT 1 FROM sla_clocks
                       WHERE conversation_id = NEW.conversation_id AND stopped_at IS NULL
                         AND target IN ('first_response', 'next_response')) THEN
        INSERT INTO sla_clocks (id, company_id, conversation_id, target, started_at, stale)
        VALUES (gen_random_uuid(), NEW.company_id, NEW.conversation_id, 'next_response',
                NEW.created_at, true);
    END IF;
    RETURN NULL;
END;
$$;
"""

FOLLOW_MESSAGE_TRIGGER = """
CREATE TRIGGER atende_sla_follow_message AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.author IN ('agent', 'customer'))
EXECUTE FUNCTION atende_sla_follow_message_v1()
"""

FOLLOW_LABELS = r"""
CREATE FUNCTION atende_sla_follow_labels_v1() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    conversation uuid;
BEGIN
    IF TG_OP = 'DELETE' THEN
        conversation := OLD.conversation_id;
    ELSE
        conversation := NEW.conversation_id;
    END IF;
    UPDATE sla_clocks SET stale = true
     WHERE conversation_id = conversation AND stopped_at IS NULL AND NOT stale;
    RETURN NULL;
END;
$$;
"""

FOLLOW_LABELS_TRIGGER = """
CREATE TRIGGER atende_sla_follow_labels AFTER INSERT OR DELETE ON conversation_labels
FOR EACH ROW EXECUTE FUNCTION atende_sla_follow_labels_v1()
"""


def _owned() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
    ]


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("priority", sa.String(length=10), server_default=sa.text("'normal'"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_conversations_priority"), "conversations", "priority IN ('low', 'normal', 'high', 'urgent')"
    )
    op.create_table(
        "sla_policies",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "priorities",
            postgresql.ARRAY(sa.String(length=10)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column(
            "channels", postgresql.ARRAY(sa.String(length=20)), server_default=sa.text("'{}'"), nullable=False
        ),
        sa.Column("team_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("label_ids", postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("next_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("warning_percent", sa.Integer(), server_default=sa.text("80"), nullable=False),
        sa.Column("escalation", sa.String(length=20), server_default=sa.text("'none'"), nullable=False),
        sa.Column("escalation_team_id", sa.UUID(), nullable=True),
        sa.Column("email_team", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        *_owned(),
        sa.CheckConstraint(
            "escalation IN ('none', 'reassign', 'notify')", name=op.f("ck_sla_policies_escalation")
        ),
        sa.CheckConstraint("warning_percent BETWEEN 1 AND 100", name=op.f("ck_sla_policies_warning_percent")),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_sla_policies_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["escalation_team_id"],
            ["teams.id"],
            name=op.f("fk_sla_policies_escalation_team_id_teams"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("company_id", "name", name=op.f("uq_sla_policies_company_id")),
    )
    op.create_table(
        "sla_clocks",
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("policy_id", sa.UUID(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("alarm_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stale", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        *_owned(),
        sa.CheckConstraint(
            "target IN ('first_response', 'next_response', 'resolution')", name=op.f("ck_sla_clocks_target")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_sla_clocks_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_clocks_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_sla_clocks_policy_id_sla_policies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_clocks")),
    )
    op.create_index(
        "uq_sla_clocks_running",
        "sla_clocks",
        ["conversation_id", "target"],
        unique=True,
        postgresql_where=sa.text("stopped_at IS NULL"),
    )
    op.create_index("ix_sla_clocks_conversation", "sla_clocks", ["conversation_id"])
    op.create_index("ix_sla_clocks_stale", "sla_clocks", ["company_id"], postgresql_where=sa.text("stale"))
    op.create_index(
        "ix_sla_clocks_alarm", "sla_clocks", ["alarm_at"], postgresql_where=sa.text("alarm_at IS NOT NULL")
    )
    op.create_table(
        "sla_records",
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("policy_id", sa.UUID(), nullable=True),
        sa.Column("target", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("team_id", sa.UUID(), nullable=True),
        sa.Column("assignee_id", sa.UUID(), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_sla_records_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_records_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_sla_records_policy_id_sla_policies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_records")),
        sa.UniqueConstraint(
            "conversation_id", "target", "started_at", name=op.f("uq_sla_records_conversation_id")
        ),
    )
    op.create_index("ix_sla_records_company_started", "sla_records", ["company_id", "started_at"])
    op.execute(FOLLOW_STATE)
    op.execute(FOLLOW_STATE_TRIGGER)
    op.execute(FOLLOW_MESSAGE)
    op.execute(FOLLOW_MESSAGE_TRIGGER)
    op.execute(FOLLOW_LABELS)
    op.execute(FOLLOW_LABELS_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER atende_sla_follow_labels ON conversation_labels")
    op.execute("DROP FUNCTION atende_sla_follow_labels_v1()")
    op.execute("DROP TRIGGER atende_sla_follow_message ON messages")
    op.execute("DROP FUNCTION atende_sla_follow_message_v1()")
    op.execute("DROP TRIGGER atende_sla_follow_state ON conversations")
    op.execute("DROP FUNCTION atende_sla_follow_state_v1()")
    op.drop_table("sla_records")
    op.drop_table("sla_clocks")
    op.drop_table("sla_policies")
    op.drop_constraint(op.f("ck_conversations_priority"), "conversations", type_="check")
    op.drop_column("conversations", "priority")
