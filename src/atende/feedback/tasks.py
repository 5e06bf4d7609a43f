"""Jobs of feedback: the periodic look for resolutions whose CSAT survey is due."""

from __future__ import annotations

import procrastinate
import structlog

from atende.feedback import service
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)
SURVEY_EVERY_SECONDS = 15


async def send_due_surveys(runtime: Runtime) -> int:
    """Send every surveying company's due surveys, one transaction per company; how many went
    out. A company that fails is logged and tried again on the next run; the others go on."""
    now = runtime.clock()
    async with runtime.db.transaction() as session:
        companies = await service.companies_surveying(session)
    sent = 0
    for company_id in companies:
        try:
            async with runtime.db.transaction(company_id) as session:
                done = await service.send_due(session, runtime.jobs, now)
        except Exception as exc:
            log.warning("csat.survey_failed", company_id=str(company_id), error=describe(exc))
            continue
        if done:
            sent += len(done)
            log.info("csat.surveys_sent", company_id=str(company_id), surveys=len(done))
    return sent


async def send_due_surveys_job(context: procrastinate.JobContext, timestamp: int) -> int:
    return await send_due_surveys(context.additional_context["runtime"])


def blueprint() -> procrastinate.Blueprint:
    """The tasks of feedback (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    name = "send_due_surveys"
    task = bp.task(name=name, lock=name, queueing_lock=name, pass_context=True)(send_due_surveys_job)
    bp.periodic(cron=f"* * * * * */{SURVEY_EVERY_SECONDS}")(task)
    return bp
