"""The job queue: a procrastinate app over the same PostgreSQL as everything else.

Domains define tasks on a ``procrastinate.Blueprint`` in their ``tasks.py``; the wiring
layer hands the blueprints to ``JobQueue``. Code that causes work calls
``JobQueue.enqueue(session, "namespace:task", ...)`` inside its own transaction: the job
row is inserted on the session's connection, so a rollback leaves no job and a commit
leaves exactly one (the outbox pattern, without a separate relay).

The queue is fair between companies: a trigger (migration 0011) gives each job carrying a
``company_id`` the priority minus the number of that company's jobs already waiting, and
workers take the highest priority first, so companies are served in turn and one company's
flood delays another's reply by about one job, not by the whole backlog
(``benchmarks/fairness.py`` measures it). A conversation's jobs keep their order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import procrastinate
import psycopg
from procrastinate import Blueprint
from procrastinate.middleware import WorkerMiddleware
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.session import driver_connection
from atende.errors import Conflict, NotFound

RETRY = procrastinate.RetryStrategy(max_attempts=6, exponential_wait=2)
# New jobs wake workers at once (LISTEN/NOTIFY), but retries and scheduled jobs only come
# due with time: workers poll for them this often, so a 2 s backoff is 2-3 s, not up to 7 s.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class FailedJob:
    id: int
    task: str
    args: dict[str, Any]
    attempts: int
    queued_at: datetime | None


class JobQueue:
    """Owns the procrastinate app: enqueueing, workers and queue statistics."""

    def __init__(self, url: str, blueprints: dict[str, Callable[[], Blueprint]]) -> None:
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=url))
        for namespace, make_blueprint in blueprints.items():
            self.app.add_tasks_from(make_blueprint(), namespace=namespace)
        self._open = False

    async def open(self) -> None:
        if not self._open:
            await self.app.open_async()
            self._open = True

    async def close(self) -> None:
        if self._open:
            await self.app.close_async()
            self._open = False

    async def enqueue(
        self,
        session: AsyncSession,
        task: str,
        *,
        lock: str | None = None,
        queueing_lock: str | None = None,
        schedule_at: datetime | None = None,
        **kwargs: Any,
    ) -> int | None:
        """Insert a job in ``session``'s transaction; returns the job id. ``lock``: jobs with
        the same lock run one at a time; ``queueing_lock``: while one such job waits, another
        is not added (``None`` is returned); ``schedule_at``: not run before then."""
        connection = await driver_connection(session)
        options: dict[str, Any] = {"connection": connection}
        if lock:
            options["lock"] = lock
        if queueing_lock:
            options["queueing_lock"] = queueing_lock
        if schedule_at is not None:
            options["schedule_at"] = schedule_at
        deferrer = self.app.configure_task(task, **options)
        if not queueing_lock:
            return await deferrer.defer_async(**kwargs)
        if connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            # nothing ran yet: open the caller's transaction first, else psycopg's block below
            # would be a transaction of its own, committed whatever the caller then does
            await connection.execute("SELECT 1")
        try:
            # a refused job must not abort the caller's transaction: a savepoint on the driver
            # connection itself (SQLAlchemy's begin_nested emits none for statements it does
            # not run)
            async with connection.transaction():
                return await deferrer.defer_async(**kwargs)
        except procrastinate.exceptions.AlreadyEnqueued:
            return None

    async def run_worker(
        self,
        *,
        concurrency: int,
        context: dict[str, Any],
        name: str = "atende-worker",
        install_signal_handlers: bool = False,
        stalled_seconds: float = 30.0,
        middleware: Sequence[WorkerMiddleware] = (),
    ) -> None:
        """Run a worker until cancelled (or until a signal, when handlers are installed).

        Workers whose heartbeat is older than ``stalled_seconds`` count as dead: their jobs
        are retried (see ``retry_stalled``). ``middleware`` wraps every job (outermost
        first), e.g. to report failures."""
        await self.app.run_worker_async(
            concurrency=concurrency,
            additional_context=context,
            name=name,
            install_signal_handlers=install_signal_handlers,
            fetch_job_polling_interval=POLL_SECONDS,
            # several heartbeats fit in the stall timeout, so a live worker never looks dead
            update_heartbeat_interval=max(0.5, min(5.0, stalled_seconds / 3)),
            stalled_worker_timeout=stalled_seconds,
            worker_middleware=list(middleware),
        )

    async def retry_failed(self, job_id: int, *, company_id: str | None) -> FailedJob:
        """Queue a dead letter again, to run now, with one more attempt (a person asked, on
        ``/app/logs`` or ``POST /v1/jobs/{id}/retry``). ``NotFound`` unless a job of
        ``company_id`` (``None``: any, a superadmin's) has that id; ``Conflict`` when it is
        not failed (retried already, or never failed)."""
        found = list(await self.app.job_manager.list_jobs_async(id=job_id))
        job = found[0] if found else None
        if (
            job is None
            or job.id is None
            or (company_id is not None and str(job.task_kwargs.get("company_id")) != company_id)
        ):
            raise NotFound(f"no job {job_id}")
        if job.status != "failed":
            raise Conflict(f"job {job_id} is {job.status}, not failed: there is nothing to retry")
        try:
            await self.app.job_manager.retry_job_by_id_async(job.id, retry_at=datetime.now(UTC))
        except procrastinate.exceptions.ConnectorException:  # retried meanwhile by someone else
            raise Conflict(f"job {job_id} is not failed any more: there is nothing to retry") from None
        return FailedJob(job.id, job.task_name, dict(job.task_kwargs), job.attempts, None)

    async def retry_stalled(self, seconds_since_heartbeat: float) -> int:
        """Put back in the queue the jobs of workers that died mid-job."""
        stalled = await self.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
        count = 0
        for job in stalled:
            await self.app.job_manager.retry_job(job)
            count += 1
        return count


async def backlog(session: AsyncSession) -> tuple[int, float]:
    """Jobs waiting to run now, and the age in seconds of the oldest of them."""
    row = (
        await session.execute(
            text(
                "SELECT count(*), coalesce(extract(epoch FROM now() - min(scheduled_at_or_queued)), 0)"
                " FROM (SELECT coalesce(j.scheduled_at, "
                "   (SELECT min(at) FROM procrastinate_events e WHERE e.job_id = j.id)) "
                "   AS scheduled_at_or_queued"
                "  FROM procrastinate_jobs j WHERE j.status = 'todo'"
                "   AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())) t"
            )
        )
    ).one()
    return int(row[0]), float(row[1])


async def failed_jobs(
    session: AsyncSession, *, company_id: str | None = None, limit: int = 100
) -> Sequence[FailedJob]:
    """Dead letters: jobs that exhausted their retries, newest first (of one company, if
    given: every job carries its ``company_id`` argument)."""
    rows = (
        await session.execute(
            text(
                "SELECT j.id, j.task_name, j.args, j.attempts,"
                " (SELECT min(at) FROM procrastinate_events e WHERE e.job_id = j.id) AS queued_at"
                " FROM procrastinate_jobs j WHERE j.status = 'failed'"
                " AND (CAST(:company AS text) IS NULL OR j.args->>'company_id' = :company)"
                " ORDER BY j.id DESC LIMIT :limit"
            ),
            {"limit": limit, "company": company_id},
        )
    ).all()
    return [FailedJob(id=r[0], task=r[1], args=r[2], attempts=r[3], queued_at=r[4]) for r in rows]
