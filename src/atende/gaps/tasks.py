"""The periodic refresh of every company's knowledge gaps (hourly: the page says when)."""

from __future__ import annotations

import procrastinate
import structlog

from atende.gaps import clustering
from atende.gaps.service import Embedder, refresh_company
from atende.knowledge.embedding import E5Embedder
from atende.observability.logging import describe
from atende.runtime import Runtime
from atende.tenancy import service as tenancy

log = structlog.get_logger(__name__)


def embedder(runtime: Runtime) -> Embedder:
    """The offline model the project ships (whatever embedder retrieval uses: topics compare
    questions with questions, and stay comparable when a company changes its endpoint)."""
    return E5Embedder(threads=1, batch_size=runtime.settings.embed_batch_size)


async def refresh_all(runtime: Runtime, model: Embedder | None = None) -> int:
    """Every company's gaps brought up to date; returns how many companies were refreshed. A
    company that fails is logged and skipped (the next run tries again)."""
    async with runtime.db.transaction() as session:
        companies = [c.id for c in await tenancy.list_companies(session)]
    model = model or embedder(runtime)
    done = 0
    for company_id in companies:
        try:
            result = await refresh_company(
                runtime.db, company_id, model, runtime.clock(), threshold=clustering.THRESHOLD
            )
        except Exception as exc:
            log.warning("gaps.failed", company_id=str(company_id), error=describe(exc))
            continue
        done += 1
        if result.added or result.answered:
            log.info(
                "gaps.refreshed",
                company_id=str(company_id),
                added=result.added,
                answered=result.answered,
                topics=result.topics,
            )
    return done


async def refresh_job(context: procrastinate.JobContext, timestamp: int) -> int:
    return await refresh_all(context.additional_context["runtime"])


def blueprint() -> procrastinate.Blueprint:
    """The knowledge-gap refresh (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    name = "refresh_gaps"  # one run at a time (lock), and at most one waiting (queueing_lock)
    task = bp.task(name=name, lock=name, queueing_lock=name, pass_context=True)(refresh_job)
    bp.periodic(cron="53 * * * *")(task)  # hourly
    return bp
