"""Liveness and deep readiness: database, pending migrations, the job backlog, LLM circuits,
the media store and the external credentials companies configured.

A check is *critical* when this instance cannot serve without it (database, migrations):
one failing makes the instance unready (503, ``status: fail``, named in ``failing``). The
others only *degrade* it (200, ``status: degraded``, named in ``degraded``): an open LLM
circuit falls back to the extractive answerer, a company's rejected key is that company's
to fix, and a job backlog older than ``ATENDE_JOB_BACKLOG_MAX_AGE_SECONDS`` is the
workers' to drain: taking API instances out of the load balancer for it would stop
intake for every company and drain nothing (the ``JobBacklog`` alert calls a person). The
media store (a folder or a bucket) degrades too: text keeps flowing without it, and every
instance shares the same store, so leaving the load balancer would fix nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.migrate import current_revision, head_revision, is_known
from atende.jobs.queue import backlog
from atende.media.service import media_store
from atende.observability import credentials, metrics
from atende.observability.logging import describe
from atende.runtime import LLM_CIRCUITS, Runtime

TIMEOUT_SECONDS = 5  # the database's checks, together
# the longest /health/ready takes: what calls it (deploy/healthcheck.py, the image's, compose's
# and ECS's checks, the load balancer) waits longer, or a slow database would read as a hang
BUDGET_SECONDS = TIMEOUT_SECONDS + credentials.WAIT_SECONDS


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    critical: bool = True  # False: failing degrades readiness without failing it
    data: dict[str, Any] = field(default_factory=dict)  # more fields for the report


Probe = Callable[[AsyncSession, Runtime], Awaitable[tuple[bool, str]]]


async def _migrations(session: AsyncSession, _runtime: Runtime) -> tuple[bool, str]:
    conn = await session.connection()
    current = await conn.run_sync(current_revision)
    head = head_revision()
    if current == head:
        return True, f"at {current}"
    if not is_known(current):
        # a newer release migrated it (a rolling deploy, or a rollback): its migrations are
        # additive, so this release still serves until it is replaced
        return True, f"at {current}, newer than this release's {head}"
    return False, f"at {current}, pending up to {head}"


async def _job_backlog(session: AsyncSession, runtime: Runtime) -> tuple[bool, str]:
    depth, age = await backlog(session)
    metrics.JOB_QUEUE_DEPTH.set(depth)
    metrics.JOB_QUEUE_AGE.set(age)
    limit = runtime.settings.job_backlog_max_age_seconds
    return age <= limit, f"{depth} waiting, oldest {age:.1f}s (limit {limit:.0f}s)"


# (name, probe, critical)
PROBES: list[tuple[str, Probe, bool]] = [
    ("migrations", _migrations, True),
    ("job_backlog", _job_backlog, False),
]


async def readiness(runtime: Runtime) -> tuple[bool, list[Check]]:
    """Every check, each named: a failure is reported as that check failing, never raised.
    ``True`` when every critical check passes."""
    checks: list[Check] = []
    media = asyncio.create_task(_media(runtime))  # alongside the database's checks, same budget
    running = "database"
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS), runtime.db.transaction() as session:
            await session.execute(text("SELECT 1"))
            checks.append(Check("database", True, "reachable"))
            for running, probe, critical in PROBES:
                try:
                    # a savepoint each: one failing probe (a missing table) spares the next
                    async with session.begin_nested():
                        ok, detail = await probe(session, runtime)
                    checks.append(Check(running, ok, detail, critical=critical))
                except SQLAlchemyError as exc:
                    checks.append(Check(running, False, describe(exc), critical=critical))
    except Exception as exc:  # unreachable or too slow: a failed check, not a 500
        checks = [c for c in checks if c.name != running]
        checks.append(Check(running, False, describe(exc)))
    checks.append(await media)
    checks.append(_llm(runtime))
    try:
        monitor = credentials.monitor_for(runtime)
        checks.append(_credentials(await monitor.snapshot(), monitor.clock()))
    except Exception as exc:  # the monitor's own failure: said, never a 500 (nor critical)
        checks.append(Check("credentials", False, f"the check failed: {describe(exc)}", critical=False))
    return all(c.ok for c in checks if c.critical), checks


async def _media(runtime: Runtime) -> Check:
    """Whether the media store can keep files now (a writable folder, a reachable bucket)."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            detail = await media_store(runtime).check()
    except TimeoutError:
        return Check("media", False, f"no answer within {TIMEOUT_SECONDS}s", critical=False)
    except Exception as exc:  # said, never a 500 (nor critical)
        return Check("media", False, getattr(exc, "message", None) or describe(exc), critical=False)
    return Check("media", True, detail, critical=False)


def _llm(runtime: Runtime) -> Check:
    """The LLM circuits this process has used. Never failing: with a circuit open, turns
    answer with the extractive answerer (or hand off), so the service is still ready."""
    states: dict[str, str] = runtime.extras.get(LLM_CIRCUITS, {})
    if not states:
        return Check("llm", True, "no LLM endpoint used by this process yet", critical=False)
    opened = sorted(name for name, state in states.items() if state != "closed")
    if not opened:
        return Check("llm", True, f"{len(states)} endpoint(s), every circuit closed", critical=False)
    listed = ", ".join(f"{name} {states[name]}" for name in opened)
    return Check(
        "llm", True, f"circuit {listed}: answers fall back to the extractive answerer", critical=False
    )


def _credentials(snapshot: credentials.Snapshot, now: float) -> Check:
    """Companies' external credentials (LLM and embeddings keys...): never critical."""
    if snapshot.error is not None:
        return Check(
            "credentials",
            False,
            f"the last check failed: {snapshot.error}",
            critical=False,
            data=credentials.as_json(snapshot),
        )
    if snapshot.finished_at is None:
        return Check("credentials", True, "the first check is still running", critical=False)
    failing, unlisted = snapshot.failing, snapshot.unlisted
    detail = (
        f"{len(snapshot.states)} checked {now - snapshot.finished_at:.0f}s ago, {len(failing)} failing"
        + (f"; {len(unlisted)} source(s) could not be listed" if unlisted else "")
    )
    ok = not failing and not unlisted
    return Check("credentials", ok, detail, critical=False, data=credentials.as_json(snapshot))


def as_json(ok: bool, checks: list[Check]) -> dict[str, Any]:
    degraded = [c.name for c in checks if not c.ok and not c.critical]
    return {
        "status": "fail" if not ok else "degraded" if degraded else "ok",
        "failing": [c.name for c in checks if not c.ok and c.critical],
        "degraded": degraded,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, **c.data} for c in checks},
    }
