"""Liveness and deep readiness: database, pending migrations and the job backlog."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.migrate import current_revision, head_revision
from atende.jobs.queue import backlog
from atende.observability import metrics
from atende.runtime import LLM_CIRCUITS, Runtime

TIMEOUT_SECONDS = 5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


Probe = Callable[[AsyncSession, Runtime], Awaitable[tuple[bool, str]]]


async def _migrations(session: AsyncSession, _runtime: Runtime) -> tuple[bool, str]:
    conn = await session.connection()
    current = await conn.run_sync(current_revision)
    head = head_revision()
    return current == head, f"at {current}" if current == head else f"at {current}, pending up to {head}"


async def _job_backlog(session: AsyncSession, runtime: Runtime) -> tuple[bool, str]:
    depth, age = await backlog(session)
    metrics.JOB_QUEUE_DEPTH.set(depth)
    metrics.JOB_QUEUE_AGE.set(age)
    limit = runtime.settings.job_backlog_max_age_seconds
    return age <= limit, f"{depth} waiting, oldest {age:.1f}s (limit {limit:.0f}s)"


PROBES: list[tuple[str, Probe]] = [("migrations", _migrations), ("job_backlog", _job_backlog)]


def _describe(exc: BaseException) -> str:
    first_line = next(iter(str(exc).splitlines()), "")
    return f"{type(exc).__name__}: {first_line}"[:300] if first_line else type(exc).__name__


async def readiness(runtime: Runtime) -> tuple[bool, list[Check]]:
    """Every check, each named: a failure is reported as that check failing, never raised."""
    checks: list[Check] = []
    running = "database"
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS), runtime.db.transaction() as session:
            await session.execute(text("SELECT 1"))
            checks.append(Check("database", True, "reachable"))
            for running, probe in PROBES:
                try:
                    # a savepoint each: one failing probe (a missing table) spares the next
                    async with session.begin_nested():
                        checks.append(Check(running, *await probe(session, runtime)))
                except SQLAlchemyError as exc:
                    checks.append(Check(running, False, _describe(exc)))
    except Exception as exc:  # unreachable or too slow: a failed check, not a 500
        checks = [c for c in checks if c.name != running]
        checks.append(Check(running, False, _describe(exc)))
    checks.append(_llm(runtime))
    return all(c.ok for c in checks), checks


def _llm(runtime: Runtime) -> Check:
    """The LLM circuits this process has used. Never failing: with a circuit open, turns
    answer with the extractive answerer (or hand off), so the service is still ready."""
    states: dict[str, str] = runtime.extras.get(LLM_CIRCUITS, {})
    if not states:
        return Check("llm", True, "no LLM endpoint used by this process yet")
    opened = sorted(name for name, state in states.items() if state != "closed")
    if not opened:
        return Check("llm", True, f"{len(states)} endpoint(s), every circuit closed")
    listed = ", ".join(f"{name} {states[name]}" for name in opened)
    return Check("llm", True, f"circuit {listed}: answers fall back to the extractive answerer")


def as_json(ok: bool, checks: list[Check]) -> dict[str, Any]:
    return {
        "status": "ok" if ok else "fail",
        "failing": [c.name for c in checks if not c.ok],
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
