"""Periodic maintenance of the queue itself."""

from __future__ import annotations

import procrastinate
import structlog

from atende.runtime import Runtime

log = structlog.get_logger(__name__)


async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Retry the jobs of workers that stopped sending heartbeats (killed, crashed)."""
    runtime: Runtime = context.additional_context["runtime"]
    count = await runtime.jobs.retry_stalled(runtime.settings.stalled_job_seconds)
    if count:
        log.warning("jobs.recovered_stalled", count=count)
    return count


async def prune_finished(context: procrastinate.JobContext, timestamp: int) -> None:
    """Delete jobs that succeeded long ago; dead letters stay until someone looks at them."""
    runtime: Runtime = context.additional_context["runtime"]
    await runtime.jobs.app.job_manager.delete_old_jobs(nb_hours=runtime.settings.job_retention_hours)


def blueprint() -> procrastinate.Blueprint:
    """Queue maintenance tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    task = bp.task(name="recover_stalled", queueing_lock="recover_stalled", pass_context=True)(
        recover_stalled
    )
    bp.periodic(cron="* * * * * */5")(task)  # every 5 seconds (croniter's seconds field)
    prune = bp.task(name="prune_finished", queueing_lock="prune_finished", pass_context=True)(prune_finished)
    bp.periodic(cron="17 * * * *")(prune)  # hourly
    return bp
