"""atende_receive_message_v6: intake's notifications can be sent after its durable commit

PostgreSQL serialises the commits of every transaction that sent a ``NOTIFY``: such a commit
takes one lock for the whole database (``PreCommit_Notify``) and holds it until its commit
record is flushed to disk. Every message intake sent two or three (the live topic, and
procrastinate's trigger for the queued bot turn and any webhook delivery), so at 200 WhatsApp
webhooks a second, intakes queued behind each other's disk flushes, and behind the worker's
notifying commits: ``benchmarks.whatsapp_webhook`` sampled nearly all of the intake
function's time waiting on that lock, and ``synchronous_commit=off`` (as a check only) cut
the waits eightfold.

A notification is a wake-up, not data (listeners re-read the database; procrastinate's
workers also poll), so it need not share the message's durable commit. With
``p_defer_notify`` v6 sends none: every notification it (and the triggers and functions it
calls) would send is collected and returned in ``o_notices`` (``[[channel, payload], ...]``),
and the caller sends them once the message is committed, in a transaction of their own that
does not wait for its flush (``atende.db.pubsub.Notifier``). The durable commit then takes
no lock shared with other transactions. Without it, v6 notifies as v5 did, inside the
caller's transaction.

- ``atende_notify_v1(channel, payload)``: ``pg_notify``, or collect it when the transaction
  set ``atende.defer_notify``; ``atende_take_notices_v1()`` returns what was collected and
  ends the collecting.
- procrastinate's ``procrastinate_notify_queue_job_inserted_v1`` (its trigger on a new job)
  notifies through ``atende_notify_v1``: same channels, same payloads. A later procrastinate
  migration that replaces the function undoes only the deferral, never a wake-up.

v6 is v5 (migration 0023) with those changes, built from its text so the two cannot drift.

Revision ID: 0033
Revises: 0032
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V5 = _migration("0023_unsnooze_inside_intake.py")
SIGNATURE = V5.V4.SIGNATURE

NOTIFY = r"""
CREATE FUNCTION atende_notify_v1(p_channel text, p_payload text) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF current_setting('atende.defer_notify', true) = 'on' THEN
        PERFORM set_config('atende.notices',
            (coalesce(nullif(current_setting('atende.notices', true), ''), '[]')::jsonb
             || jsonb_build_array(jsonb_build_array(p_channel, p_payload)))::text, true);
    ELSE
        PERFORM pg_notify(p_channel, p_payload);
    END IF;
END;
$$;

CREATE FUNCTION atende_take_notices_v1() RETURNS jsonb
LANGUAGE plpgsql
AS $$
DECLARE
    v_notices jsonb := coalesce(nullif(current_setting('atende.notices', true), ''), '[]')::jsonb;
BEGIN
    PERFORM set_config('atende.defer_notify', 'off', true);
    PERFORM set_config('atende.notices', '', true);
    RETURN v_notices;
END;
$$;
"""

# procrastinate 3.10.0's function (procrastinate/sql/schema.sql), then ours: the same
# notifications, through atende_notify_v1
JOB_INSERTED = r"""
CREATE OR REPLACE FUNCTION procrastinate_notify_queue_job_inserted_v1()
    RETURNS trigger
    LANGUAGE plpgsql
AS $$
DECLARE
    payload TEXT;
BEGIN
    SELECT json_build_object('type', 'job_inserted', 'job_id', NEW.id)::text INTO payload;
	PERFORM {notify}('procrastinate_queue_v1#' || NEW.queue_name, payload);
	PERFORM {notify}('procrastinate_any_queue_v1', payload);
	RETURN NEW;
END;
$$;
"""

REPLACEMENTS = (
    ("atende_receive_message_v5", "atende_receive_message_v6", 2),
    (
        "    p_deliver_task text,\n    OUT o_outcome",
        "    p_deliver_task text,\n"
        "    p_defer_notify boolean,          -- collect the notifications into o_notices, send none\n"
        "    OUT o_outcome",
        1,
    ),
    (
        "    OUT o_created_at timestamptz\n)",
        "    OUT o_created_at timestamptz,\n"
        "    OUT o_notices jsonb              -- [[channel, payload], ...] to send once committed\n)",
        1,
    ),
    (
        "    -- the contact, locked until commit",
        "    IF p_defer_notify THEN\n"
        "        PERFORM set_config('atende.defer_notify', 'on', true);\n"
        "    END IF;\n\n"
        "    -- the contact, locked until commit",
        1,
    ),
    (
        "o_reply_to_id, o_meta, o_created_at\n          FROM atende_receive_message_v6",
        "o_reply_to_id, o_meta, o_created_at, o_notices\n          FROM atende_receive_message_v6",
        1,
    ),
    (
        "p_turn_states_helping, p_turn_task, p_deliver_task);\n        RETURN;",
        "p_turn_states_helping, p_turn_task, p_deliver_task,\n"
        "                                         p_defer_notify);\n"
        "        IF p_defer_notify THEN\n"
        "            o_notices := atende_take_notices_v1();\n"
        "        END IF;\n"
        "        RETURN;",
        1,
    ),
    ("PERFORM pg_notify(", "PERFORM atende_notify_v1(", 4),
    (
        "    o_outcome := 'stored';\n",
        "    o_outcome := 'stored';\n    IF p_defer_notify THEN\n        o_notices := atende_take_notices_v1();\n    END IF;\n",
        1,
    ),
)


def v6_function() -> str:
    function = V5.v5_function()
    for old, new, count in REPLACEMENTS:
        assert function.count(old) == count, (old, function.count(old))
        function = function.replace(old, new)
    return function


def upgrade() -> None:
    op.execute(NOTIFY)
    op.execute(JOB_INSERTED.format(notify="atende_notify_v1"))
    op.execute(v6_function())
    op.execute(f"DROP FUNCTION atende_receive_message_v5({SIGNATURE})")


def downgrade() -> None:
    op.execute(V5.v5_function())
    op.execute(f"DROP FUNCTION atende_receive_message_v6({SIGNATURE}, boolean)")
    op.execute(JOB_INSERTED.format(notify="pg_notify"))
    op.execute("DROP FUNCTION atende_take_notices_v1()")
    op.execute("DROP FUNCTION atende_notify_v1(text, text)")
