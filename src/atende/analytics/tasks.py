"""The periodic job that keeps every company's analytics figures up to date."""

from __future__ import annotations

import procrastinate
import structlog

from atende.analytics import rollup
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)
REFRESH_EVERY_MINUTES = 5


async def refresh_all(runtime: Runtime) -> int:
    """Measure each company's conversations changed since its last run, one transaction per
    company (a company that fails is logged and tried again next time; the others go on).
    Returns how many conversations were measured."""
    async with runtime.db.transaction() as session:
        companies = await rollup.companies(session)
    measured = 0
    for company_id in companies:
        try:
            async with runtime.db.transaction(company_id) as session:
                count = await rollup.refresh(session, company_id, runtime.clock())
        except Exception as exc:
            log.warning("analytics.refresh_failed", company_id=str(company_id), error=describe(exc))
            continue
        measured += count
        if count:
            log.info("analytics.refreshed", company_id=str(company_id), conversations=count)
    return measured


async def refresh_job(context: procrastinate.JobContext, timestamp: int) -> int:
    return await refresh_all(context.additional_context["runtime"])


def blueprint() -> procrastinate.Blueprint:
    """The analytics tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    name = "refresh"
    task = bp.task(name=name, lock=name, queueing_lock=name, pass_context=True)(refresh_job)
    bp.periodic(cron=f"*/{REFRESH_EVERY_MINUTES} * * * *")(task)
    return bp
