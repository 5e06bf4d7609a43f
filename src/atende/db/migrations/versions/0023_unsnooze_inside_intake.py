"""atende_receive_message_v5: a customer's message ends its conversation's snooze inside intake;
the trigger that did it is gone

Migration 0020 ended a snooze with an ``AFTER INSERT`` row trigger on ``messages``: a
PL/pgSQL call, a second ``UPDATE`` of the conversation and an after-trigger event for every
customer message, snoozed or not. ``benchmarks.intake`` measured the cost on a quiet machine:
the intake ratio fell from 0.64 to 0.42–0.48 of a bare insert, and dropping the trigger alone
brought it back above 0.5 (PostgreSQL CPU a message 1.30 → 1.10 ms). Intake already holds the
conversation's row (``FOR UPDATE``) and writes it once, so v5 clears ``snoozed_until`` in that
same ``UPDATE`` and sends the same notifications and ``conversation.unsnoozed`` webhook when
the row it read was snoozed. Customer messages are only ever stored by this function.

v5 is v4 (migration 0017) with that one change, built from v4's text so the two cannot drift.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V4 = _migration("0017_intake_rules_from_python.py")
V4_WRITE = """        UPDATE conversations SET state = v_conversation.state, updated_at = v_now
         WHERE company_id = p_company AND id = v_conversation.id;
"""
V5_WRITE = """        UPDATE conversations SET state = v_conversation.state, updated_at = v_now, snoozed_until = NULL
         WHERE company_id = p_company AND id = v_conversation.id;
        -- a customer's message ends a snooze (it was a row trigger until migration 0023)
        IF v_conversation.snoozed_until IS NOT NULL THEN
            PERFORM pg_notify('atende', json_build_object(
                'topic', 'queue:' || p_company::text, 'kind', 'unsnoozed',
                'conversation_id', v_conversation.id::text, 'reason', 'customer')::text);
            PERFORM pg_notify('atende', json_build_object(
                'topic', v_conversation.id::text, 'kind', 'unsnoozed', 'reason', 'customer')::text);
            PERFORM atende_emit_webhook_v1(p_company, 'conversation.unsnoozed',
                jsonb_build_object('conversation_id', v_conversation.id::text, 'reason', 'customer'),
                p_deliver_task);
        END IF;
"""


def v5_function() -> str:
    assert V4.FUNCTION.count(V4_WRITE) == 1
    return V4.FUNCTION.replace(V4_WRITE, V5_WRITE).replace("atende_receive_message_v4", "atende_receive_message_v5")


def upgrade() -> None:
    op.execute(v5_function())
    op.execute("DROP TRIGGER atende_unsnooze_on_customer_message ON messages")
    op.execute("DROP FUNCTION atende_unsnooze_on_customer_message_v1()")
    op.execute(f"DROP FUNCTION atende_receive_message_v4({V4.SIGNATURE})")


def downgrade() -> None:
    actions = _migration("0020_conversation_actions.py")
    op.execute(V4.FUNCTION)
    op.execute(actions.UNSNOOZE)
    op.execute(actions.TRIGGER)
    op.execute(f"DROP FUNCTION atende_receive_message_v5({V4.SIGNATURE})")
