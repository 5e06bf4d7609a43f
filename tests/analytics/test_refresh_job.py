"""The periodic job ``analytics:refresh``: every five minutes, one run at a time, each company's
changed conversations measured (a conversation made through the API is counted after it), and
a company that fails does not stop the others."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from atende.analytics import rollup
from atende.analytics.figures import Scope, languages
from atende.analytics.tasks import blueprint, refresh_all, refresh_job
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask


def test_the_refresh_runs_every_five_minutes_one_run_at_a_time() -> None:
    [periodic] = blueprint().periodic_registry.periodic_tasks.values()
    assert periodic.cron == "*/5 * * * *"
    assert periodic.task.name == "refresh"
    assert periodic.task.lock == periodic.task.queueing_lock == "refresh"


async def test_the_job_counts_a_conversation_made_through_the_api(
    company: CompanyCtx, runtime: Runtime
) -> None:
    answer = await ask(company.client, "Oi, tudo bem?")
    now = datetime.now().astimezone()
    scope = Scope(company.id, now.date() - timedelta(days=1), now.date() + timedelta(days=1))
    context = SimpleNamespace(additional_context={"runtime": runtime})
    await refresh_job(context, 0)  # type: ignore[arg-type]  # (the session's worker may have run it too)
    async with runtime.db.transaction(company.id) as session:
        counted = await languages(session, scope)
        assert sum(r["conversations"] for r in counted) == 1
        assert await rollup.refreshed_at(session, company.id) is not None
    assert answer["conversation_id"]


async def test_a_failing_company_does_not_stop_the_others(company: CompanyCtx, runtime: Runtime) -> None:
    await ask(company.client, "Olá")
    original = rollup.refresh
    failed: list[object] = []

    async def refresh(session, company_id, now):  # type: ignore[no-untyped-def]
        if company_id != company.id:
            failed.append(company_id)
            raise RuntimeError("boom")
        return await original(session, company_id, now)

    rollup.refresh = refresh  # type: ignore[assignment]
    before = runtime.clock()
    try:
        await refresh_all(runtime)
    finally:
        rollup.refresh = original  # type: ignore[assignment]
    async with runtime.db.transaction(company.id) as session:
        refreshed = await rollup.refreshed_at(session, company.id)
    assert refreshed is not None and refreshed >= before
    assert failed  # every other company of the test database failed; this one was measured
