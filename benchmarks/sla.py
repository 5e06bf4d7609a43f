"""The SLA job over many open conversations, and the cost of one due time.

One company with business hours (Monday to Friday 09:00-18:00, America/Sao_Paulo, Brazil's and
São Paulo's holidays) and one policy (first response 4 h, resolution 40 h, warning at 80 %).
``--conversations`` (40,000) conversations are handed to people through the real trigger
(their state set to ``waiting_human``: two clocks each); ``--breaching`` (1,000) of them
started nine days before the job's "now", the others in the 30 minutes before it. Then the
job (``sla.tasks.check_all``, as the worker runs it) is timed three times:

- **every clock new**: each clock's policy chosen and its due and warning times computed, at most
  ``service.RUN_LIMIT`` (20,000) clocks a run, over as many runs as that takes;
- **nothing to do**: the steady state between changes (what almost every run is);
- **breaches**: the job's "now" moved on so the old conversations' clocks breach (each raised
  once: live notifications, webhook lookups, records).

Then ``DueClock.due`` alone, on random starts and targets over a year: with one clock per
schedule reused (the job's case) and with a new clock each time (one conversation's API read).

Run from the project root: ``.venv/bin/python -m benchmarks.sla --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from atende.bootstrap import BLUEPRINTS
from atende.config import Settings
from atende.db import migrate
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.hours import parse_schedule
from atende.jobs.queue import JobQueue
from atende.runtime import Runtime
from atende.sla import service
from atende.sla.clock import DueClock
from atende.sla.schemas import PolicyIn
from atende.sla.tasks import CHECK_EVERY_SECONDS, check_all
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from benchmarks.common import console, machine, result_table, run_on_postgres

SP = ZoneInfo("America/Sao_Paulo")
HOURS = {
    "timezone": "America/Sao_Paulo",
    "weekly": {
        d: [{"start": "09:00", "end": "18:00"}]
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday")
    },
    "holidays": {"country": "BR", "subdiv": "SP"},
}
NOW = datetime(2027, 3, 10, 15, 0, tzinfo=SP)  # a Wednesday afternoon


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.sla", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=40_000, help="open conversations (40000)")
    parser.add_argument("--breaching", type=int, default=1_000, help="of them, started long ago (1000)")
    parser.add_argument("--due-samples", type=int, default=100_000, help="due times timed alone (100000)")
    parser.add_argument("--database-url", help="a PostgreSQL to use (default: a throw-away embedded one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


SEED = text(
    """
    WITH c AS (
        INSERT INTO contacts (id, company_id, channel, external_id, created_at)
        SELECT gen_random_uuid(), :company, 'api', 'bench-' || n, now() FROM generate_series(1, :n) n
        RETURNING id
    )
    INSERT INTO conversations (id, company_id, contact_id, channel, state, created_at, updated_at)
    SELECT gen_random_uuid(), :company, c.id, 'api', 'bot', now(), now() FROM c
    """
)
# the handoff, through the trigger: old conversations nine days before NOW, the others within 30 min
HAND_OFF = text(
    """
    WITH numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM conversations
                       WHERE company_id = :company)
    UPDATE conversations c
       SET state = 'waiting_human',
           waiting_since = CASE WHEN numbered.n <= :old THEN CAST(:now AS timestamptz) - interval '9 days'
                                ELSE CAST(:now AS timestamptz) - random() * interval '30 minutes' END
      FROM numbered WHERE c.id = numbered.id
    """
)


async def _timed(runtime: Runtime) -> tuple[float, service.Checked]:
    started = time.perf_counter()
    done = await check_all(runtime)
    return time.perf_counter() - started, done


def _due_times(samples: int) -> dict[str, float]:
    schedule = parse_schedule(HOURS)
    rng = random.Random(7)
    base = datetime(2027, 1, 1, tzinfo=SP)
    starts = [base + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(samples)]
    targets = [rng.choice((900, 3600, 4 * 3600, 8 * 3600, 40 * 3600)) for _ in range(samples)]
    clock = DueClock(schedule)
    for start, seconds in zip(starts, targets, strict=True):  # laid out once, as in a job's run
        clock.due(start, seconds)
    began = time.perf_counter()
    for start, seconds in zip(starts, targets, strict=True):
        clock.due(start, seconds)
    warm = (time.perf_counter() - began) / samples
    cold_n = max(1, samples // 100)
    began = time.perf_counter()
    for start, seconds in zip(starts[:cold_n], targets[:cold_n], strict=True):
        DueClock(schedule).due(start, seconds)
    cold = (time.perf_counter() - began) / cold_n
    return {"warm_us": warm * 1e6, "cold_us": cold * 1e6}


async def _benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(database_url=url, secret_key="benchmark-secret-key-0123456789")  # type: ignore[arg-type]
    db = Database(url, pool_size=5)
    jobs = JobQueue(db.url, BLUEPRINTS)
    await jobs.open()
    now = NOW - timedelta(days=9)  # the first run: every clock new, none due yet
    runtime = Runtime(settings=settings, db=db, jobs=jobs, listener=Listener(db.url), clock=lambda: now)
    try:
        async with db.transaction() as session:
            company = await tenancy.create_company(session, name="SLA bench", slug=f"sla-{os.getpid()}")
            company_id = company.id
        async with db.transaction(company_id) as session:
            await teams.save_company_hours(session, company_id, HOURS)
            await service.create_policy(
                session, PolicyIn(name="Default", first_response=4 * 3600, resolution=40 * 3600)
            )
        began = time.perf_counter()
        async with db.transaction(company_id) as session:
            await session.execute(SEED, {"company": company_id, "n": args.conversations})
            await session.execute(HAND_OFF, {"company": company_id, "old": args.breaching, "now": NOW})
        seeded = time.perf_counter() - began
        first_runs = []  # every clock new: computed over as many runs as RUN_LIMIT needs
        while True:
            seconds, first_done = await _timed(runtime)
            first_runs.append((seconds, first_done))
            if not first_done.more:
                break
        if len(first_runs) > 1 and not first_runs[-1][1].computed:  # the limit fell on the last clock
            first_runs.pop()
        idle, _ = await _timed(runtime)
        now = NOW
        breaching, breach_done = await _timed(runtime)
        async with db.transaction(company_id) as session:
            clocks = (await session.execute(text("SELECT count(*) FROM sla_clocks"))).scalar_one()
    finally:
        await jobs.close()
        await db.dispose()
    due = _due_times(args.due_samples)
    return {
        "conversations": args.conversations,
        "clocks": clocks,
        "period_seconds": CHECK_EVERY_SECONDS,
        "seed_and_trigger_seconds": round(seeded, 3),
        "runs": [
            *(
                {
                    "run": f"every clock new: run {i + 1} of {len(first_runs)}",
                    "seconds": round(seconds, 3),
                    "computed": done.computed,
                    "warnings": done.warnings,
                    "breaches": done.breaches,
                }
                for i, (seconds, done) in enumerate(first_runs)
            ),
            {"run": "nothing to do", "seconds": round(idle, 4), "computed": 0, "warnings": 0, "breaches": 0},
            {
                "run": "breaches",
                "seconds": round(breaching, 3),
                "computed": breach_done.computed,
                "warnings": breach_done.warnings,
                "breaches": breach_done.breaches,
            },
        ],
        "due_time_us": {k: round(v, 2) for k, v in due.items()},
        "due_samples": args.due_samples,
        "machine": machine(load_at_start),
    }


def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    return asyncio.run(_benchmark(args, url))


def report(result: dict[str, Any]) -> None:
    period = result["period_seconds"]
    rows = [
        [
            r["run"],
            f"{r['seconds']:.3f}",
            f"{r['seconds'] / period:.1%}",
            str(r["computed"]),
            str(r["warnings"]),
            str(r["breaches"]),
        ]
        for r in result["runs"]
    ]
    console.print(
        result_table(
            f"SLA job over {result['conversations']:,} open conversations ({result['clocks']:,} clocks; "
            f"period {period} s)",
            ("run", "seconds", "of the period", "computed", "warnings", "breaches"),
            rows,
        )
    )
    due = result["due_time_us"]
    console.print(
        result_table(
            f"One due time (DueClock.due, {result['due_samples']:,} random starts over 2027)",
            ("clock", "µs per due time"),
            [
                ["one clock per schedule, reused (the job)", f"{due['warm_us']:.2f}"],
                ["a new clock each time (one API read)", f"{due['cold_us']:.2f}"],
            ],
        )
    )
    console.print(
        f"[dim]load average at start {result['machine']['load_average_at_start']}, "
        f"{result['machine']['cpus']} CPUs[/dim]"
    )


def main(argv: list[str] | None = None) -> int:
    run_on_postgres(argv, parse_args, benchmark, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
