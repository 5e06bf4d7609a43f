"""The SLA job: every ``CHECK_EVERY_SECONDS``, each company's new and changed clocks computed,
stopped ones recorded, and the warnings and breaches whose moment has come raised."""

from __future__ import annotations

import procrastinate
import structlog

from atende.observability.logging import describe
from atende.runtime import Runtime
from atende.sla import service
from atende.sla.service import Checked

log = structlog.get_logger(__name__)
CHECK_EVERY_SECONDS = 15


async def check_all(runtime: Runtime) -> Checked:
    """One run over every company that has something to do (``runtime.clock()``: the same
    "now" as the API's), one transaction per company; a company that fails is logged and
    tried again on the next run, the others go on. Returns the totals."""
    now = runtime.clock()
    async with runtime.db.transaction() as session:  # the platform's look, on the partial indexes
        companies = await service.companies_to_check(session, now)
    total = Checked()
    for company_id in companies:
        try:
            async with runtime.db.transaction(company_id) as session:
                done = await service.check(session, runtime, company_id, now)
        except Exception as exc:
            log.warning("sla.check_failed", company_id=str(company_id), error=describe(exc))
            continue
        total.computed += done.computed
        total.recorded += done.recorded
        total.warnings += done.warnings
        total.breaches += done.breaches
        total.more = total.more or done.more
        if done.warnings or done.breaches:
            log.info("sla.raised", company_id=str(company_id), warnings=done.warnings, breaches=done.breaches)
    return total


async def check_job(context: procrastinate.JobContext, timestamp: int) -> int:
    done = await check_all(context.additional_context["runtime"])
    return done.warnings + done.breaches


def blueprint() -> procrastinate.Blueprint:
    """The SLA tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    # one run at a time (lock), and at most one waiting (queueing_lock)
    name = "check"
    task = bp.task(name=name, lock=name, queueing_lock=name, pass_context=True)(check_job)
    bp.periodic(cron=f"* * * * * */{CHECK_EVERY_SECONDS}")(task)  # croniter's seconds field
    return bp
