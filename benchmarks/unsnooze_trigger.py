"""What migration 0020's unsnooze trigger adds to every customer message's intake.

A customer message ends a snooze at once: ``atende_unsnooze_on_customer_message`` runs after
each ``messages`` insert whose author is ``customer`` and clears the conversation's
``snoozed_until`` (a primary-key probe of the row the intake has just locked; nothing is
written when the conversation is not snoozed, which is nearly always). This measures that
cost inside PostgreSQL, where it is paid, calling ``atende_receive_message_v3`` for customer
messages to existing conversations that are not snoozed, in alternating blocks with the
trigger disabled and enabled:

Always on a throw-away embedded PostgreSQL (the trigger is disabled for half of the run).

- shared buffers each call touches (``EXPLAIN (ANALYZE, BUFFERS)``): deterministic, the
  same on a busy machine as on a quiet one;
- the time PostgreSQL accounts to each PL/pgSQL function (``track_functions = 'pl'``): the
  trigger's own time, and the intake function's in total. Times move with the machine's load.

The job queue is emptied (and vacuumed) every 50 messages, so every block sees the same
backlog: the fair-priority trigger counts a company's waiting jobs.

Run from the project root: ``.venv/bin/python -m benchmarks.unsnooze_trigger --help``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from atende.conversations.service import IntakeRules
from atende.db import migrate
from atende.db.url import libpq_url
from benchmarks.common import console, machine, postgres, result_table, write_json

TRIGGER = "atende_unsnooze_on_customer_message"
_RULES = IntakeRules.of(reopens_resolved=True)  # the API channel's
INTAKE = (
    "atende_receive_message_v4(%s, 'api', %s, NULL, NULL, NULL, %s, NULL, NULL, %s, %s,"
    f" '{_RULES.opens_in}', '{_RULES.moves}'::jsonb, %s, %s, 'engine:run_turn', 'webhooks:deliver')"
)
TURN_STATES = (_RULES.turn_states, _RULES.turn_states_helping)
CONTACTS = 200
EMPTY_QUEUE_EVERY = 50


def _empty_queue(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DELETE FROM procrastinate_jobs")
    conn.execute("VACUUM procrastinate_jobs, procrastinate_events, conversations, messages")


def _function_times(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, float]]:
    conn.execute("SELECT pg_stat_force_next_flush()")
    time.sleep(1.1)  # function statistics are flushed at most once a second
    rows = conn.execute(
        "SELECT funcname, calls, total_time FROM pg_stat_user_functions WHERE funcname LIKE 'atende_%'"
    ).fetchall()
    return {name: (int(calls), float(total)) for name, calls, total in rows}


def _delta(after: dict[str, tuple[int, float]], before: dict[str, tuple[int, float]], name: str) -> float:
    """Microseconds a call of ``name`` took on average between two readings."""
    calls = after.get(name, (0, 0.0))[0] - before.get(name, (0, 0.0))[0]
    total = after.get(name, (0, 0.0))[1] - before.get(name, (0, 0.0))[1]
    return total / calls * 1000 if calls else 0.0


def measure(url: str, blocks: int, messages: int) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("SET track_functions = 'pl'")
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), %s, %s, 'pt', '{}') RETURNING id",
            (slug, slug),
        ).fetchone()[0]  # type: ignore[index]
        for i in range(CONTACTS):  # the conversations exist before measuring
            conn.execute(
                "SELECT * FROM " + INTAKE, (company, f"c{i}", f"{slug}-w{i}", "oi", Jsonb({}), *TURN_STATES)
            )
        buffers: dict[str, list[float]] = {"off": [], "on": []}
        intake_us: dict[str, list[float]] = {"off": [], "on": []}
        trigger_us: list[float] = []
        k = 0
        for block in range(blocks * 2):
            mode = ("off", "on")[block % 2]
            conn.execute(f"ALTER TABLE messages {'ENABLE' if mode == 'on' else 'DISABLE'} TRIGGER {TRIGGER}")
            before = _function_times(conn)
            hits = []
            for i in range(messages):
                if i % EMPTY_QUEUE_EVERY == 0:
                    _empty_queue(conn)
                k += 1
                plan = conn.execute(
                    "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM " + INTAKE,
                    (
                        company,
                        f"c{k % CONTACTS}",
                        f"{slug}-m{k}",
                        "Qual o prazo de entrega?",
                        Jsonb({}),
                        *TURN_STATES,
                    ),
                ).fetchone()[0]  # type: ignore[index]
                node = plan[0]["Plan"]
                hits.append(node["Shared Hit Blocks"] + node["Shared Read Blocks"])
            after = _function_times(conn)
            buffers[mode].append(statistics.mean(hits))
            intake_us[mode].append(_delta(after, before, "atende_receive_message_v3"))
            if mode == "on":
                trigger_us.append(_delta(after, before, f"{TRIGGER}_v1"))
        conn.execute(f"ALTER TABLE messages ENABLE TRIGGER {TRIGGER}")
    return {
        "messages_per_block": messages,
        "blocks_each": blocks,
        "buffers_per_message": {m: round(statistics.median(v), 2) for m, v in buffers.items()},
        "intake_function_us": {m: round(statistics.median(v), 1) for m, v in intake_us.items()},
        "trigger_us": round(statistics.median(trigger_us), 1),
        "machine": machine(load_at_start),
    }


def report(result: dict[str, Any]) -> None:
    b, t = result["buffers_per_message"], result["intake_function_us"]
    rows = [
        ["shared buffers touched", f"{b['off']:.1f}", f"{b['on']:.1f}", f"{b['on'] - b['off']:+.1f}"],
        [
            "intake function, µs (total)",
            f"{t['off']:.0f}",
            f"{t['on']:.0f}",
            f"{result['trigger_us']:.0f} (its own)",
        ],
    ]
    title = (
        f"a customer message's intake, medians of {result['blocks_each']} blocks of "
        f"{result['messages_per_block']} messages each way"
    )
    console.print(result_table(title, ["per message", "trigger off", "trigger on", "the trigger"], rows))
    m = result["machine"]
    load = f"load average {m['load_average_at_start']} at the start, {m['load_average']} at the end"
    console.print(f"[dim]{m['cpus']} CPUs, {load}[/dim]")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.unsnooze_trigger",
        description="What migration 0020's unsnooze trigger adds to each customer message's intake, "
        "inside PostgreSQL. Always on a throw-away embedded PostgreSQL: it disables the trigger "
        "for half of the run, which no database in use should see.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--blocks", type=int, default=3, help="blocks with the trigger off, and as many on")
    parser.add_argument("--messages", type=int, default=600, help="customer messages per block")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with postgres(None) as url:
        result = measure(url, args.blocks, args.messages)
    report(result)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
