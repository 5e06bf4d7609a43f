"""Conversation actions: snoozing, private notes, canned responses

- ``conversations.snoozed_until``: a snoozed conversation is out of the open views until then
  (indexed where set: the periodic ``conversations:wake_snoozed`` finds the due ones across
  companies).
- A customer message ends a snooze at once: the trigger ``atende_unsnooze_on_customer_message``
  (after a ``messages`` insert whose author is ``customer``, whoever stores it: the intake
  function ``atende_receive_message_v*``, which stays untouched, or anything later) clears
  ``snoozed_until`` and, only when there was a snooze, tells the company's queue topic and the
  ``conversation.unsnoozed`` webhook. On a conversation that is not snoozed it costs one
  primary-key probe of a row the intake has just locked, and writes nothing
  (``benchmarks/unsnooze_trigger.py``: 4 more shared buffers than the intake's 73).
- Private notes are ``messages`` rows with ``author = 'note'`` (no column changes). Code before
  this revision shows every message to the customer's channel, so the downgrade deletes them.
- ``canned_responses``: each company's replies agents insert by a short code.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# the task that delivers webhooks (atende.webhooks.service.DELIVER_TASK)
UNSNOOZE = r"""
CREATE FUNCTION atende_unsnooze_on_customer_message_v1() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE conversations SET snoozed_until = NULL
     WHERE company_id = NEW.company_id AND id = NEW.conversation_id AND snoozed_until IS NOT NULL;
    IF FOUND THEN
        PERFORM pg_notify('atende', json_build_object(
            'topic', 'queue:' || NEW.company_id::text, 'kind', 'unsnoozed',
            'conversation_id', NEW.conversation_id::text, 'reason', 'customer')::text);
        PERFORM pg_notify('atende', json_build_object(
            'topic', NEW.conversation_id::text, 'kind', 'unsnoozed', 'reason', 'customer')::text);
        PERFORM atende_emit_webhook_v1(NEW.company_id, 'conversation.unsnoozed',
            jsonb_build_object('conversation_id', NEW.conversation_id::text, 'reason', 'customer'),
            'webhooks:deliver');
    END IF;
    RETURN NULL;
END;
$$;
"""

TRIGGER = """
CREATE TRIGGER atende_unsnooze_on_customer_message AFTER INSERT ON messages
FOR EACH ROW WHEN (NEW.author = 'customer')
EXECUTE FUNCTION atende_unsnooze_on_customer_message_v1()
"""


def upgrade() -> None:
    op.add_column("conversations", sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_conversations_snoozed_until",
        "conversations",
        ["snoozed_until"],
        postgresql_where=sa.text("snoozed_until IS NOT NULL"),
    )
    op.execute(UNSNOOZE)
    op.execute(TRIGGER)
    op.create_table(
        "canned_responses",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_canned_responses_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        sa.UniqueConstraint("company_id", "code", name=op.f("uq_canned_responses_company_id")),
    )


def downgrade() -> None:
    op.drop_table("canned_responses")
    op.execute("DROP TRIGGER atende_unsnooze_on_customer_message ON messages")
    op.execute("DROP FUNCTION atende_unsnooze_on_customer_message_v1()")
    op.drop_index("ix_conversations_snoozed_until", table_name="conversations")
    op.drop_column("conversations", "snoozed_until")
    # the code before this revision shows every message to the customer: notes must go
    op.execute("DELETE FROM messages WHERE author = 'note'")
