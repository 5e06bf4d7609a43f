"""Jobs of conversations: waking snoozed conversations when their time comes."""

from __future__ import annotations

import procrastinate
import structlog

from atende.conversations import service
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)
WAKE_EVERY_SECONDS = 10


async def wake_snoozed(runtime: Runtime) -> int:
    """Wake every company's conversations whose snooze has ended (``runtime.clock()``: the
    same "now" as the API's), one transaction per company; returns how many woke. A company
    that fails is logged and tried again on the next run; the others go on."""
    now = runtime.clock()
    async with runtime.db.transaction() as session:  # the platform's look, on the partial index
        companies = await service.companies_with_due_snoozes(session, now)
    woken = 0
    for company_id in companies:
        try:
            async with runtime.db.transaction(company_id) as session:
                ids = await service.wake_due(session, runtime.jobs, now)
        except Exception as exc:
            log.warning("snooze.wake_failed", company_id=str(company_id), error=describe(exc))
            continue
        woken += len(ids)
        log.info("snooze.woken", company_id=str(company_id), conversations=len(ids))
    return woken


async def wake_snoozed_job(context: procrastinate.JobContext, timestamp: int) -> int:
    return await wake_snoozed(context.additional_context["runtime"])


def blueprint() -> procrastinate.Blueprint:
    """The tasks of conversations (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    # one run at a time (lock), and at most one waiting (queueing_lock)
    name = "wake_snoozed"
    task = bp.task(name=name, lock=name, queueing_lock=name, pass_context=True)(wake_snoozed_job)
    bp.periodic(cron=f"* * * * * */{WAKE_EVERY_SECONDS}")(task)  # croniter's seconds field
    return bp
