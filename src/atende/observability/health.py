"""Liveness and deep readiness: database, pending migrations and the job backlog."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from atende.db.migrate import current_revision, head_revision
from atende.jobs.queue import backlog
from atende.observability import metrics
from atende.runtime import Runtime


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


async def readiness(runtime: Runtime) -> tuple[bool, list[Check]]:
    checks: list[Check] = []
    try:
        async with asyncio.timeout(5):
            async with runtime.db.transaction() as session:
                await session.execute(text("SELECT 1"))
                checks.append(Check("database", True, "reachable"))
                conn = await session.connection()
                current = await conn.run_sync(current_revision)
                head = head_revision()
                checks.append(
                    Check(
                        "migrations",
                        current == head,
                        f"at {current}" if current == head else f"at {current}, pending up to {head}",
                    )
                )
                depth, age = await backlog(session)
                metrics.JOB_QUEUE_DEPTH.set(depth)
                metrics.JOB_QUEUE_AGE.set(age)
                limit = runtime.settings.job_backlog_max_age_seconds
                checks.append(
                    Check(
                        "job_backlog",
                        age <= limit,
                        f"{depth} waiting, oldest {age:.1f}s (limit {limit:.0f}s)",
                    )
                )
    except Exception as exc:  # any failure to reach the database is a failed check, not a 500
        checks.append(Check("database", False, f"{type(exc).__name__}: {exc}"[:300]))
    return all(c.ok for c in checks), checks


def as_json(ok: bool, checks: list[Check]) -> dict[str, Any]:
    return {
        "status": "ok" if ok else "fail",
        "failing": [c.name for c in checks if not c.ok],
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
