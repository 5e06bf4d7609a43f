"""The CSAT and SLA counters the Grafana panels and alerts plot (deploy/grafana, atende-bot):
a survey sent and a customer's first answer counted once, by channel and rating; the SLA
job's warnings and breaches counted by kind and target, only once their transaction commits
(a run rolled back and done again counts once); and /metrics exporting them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from atende.observability.metrics import csat_rating
from atende.runtime import Runtime
from atende.sla import service
from tests.conftest import CompanyCtx, ask
from tests.deploy.test_grafana import scrape
from tests.feedback.conftest import enable, resolve, run_survey_job
from tests.sla.test_job import check_at, handed_off, policy, settled


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_score_is_satisfied_neutral_or_unsatisfied() -> None:
    assert [csat_rating(s) for s in (1, 2, 3, 4, 5)] == [
        "unsatisfied",
        "unsatisfied",
        "neutral",
        "satisfied",
        "satisfied",
    ]


async def test_surveys_sent_and_first_answers_are_counted_by_channel_and_rating(
    company: CompanyCtx, runtime: Runtime
) -> None:
    ratings = ("satisfied", "neutral", "unsatisfied")
    sent_before = value("atende_csat_surveys_sent_total", channel="api")
    before = {r: value("atende_csat_responses_total", channel="api", rating=r) for r in ratings}
    await enable(company.client)
    for n in range(3):
        cid = (await ask(company.client, "Olá, preciso de ajuda", contact=f"m-{n}"))["conversation_id"]
        await resolve(company.client, cid)
    first, second, _silent = await run_survey_job(runtime, company.id)
    assert await run_survey_job(runtime, company.id) == []  # nothing more to send: nothing counted
    for survey_id, score in ((first.survey_id, 5), (first.survey_id, 1), (second.survey_id, 3)):
        r = await company.client.post(f"/v1/csat/{survey_id}/answer", json={"score": score})
        assert r.status_code == 200, r.text
    r = await company.client.post(f"/v1/csat/{second.survey_id}/answer", json={"score": 9})
    assert r.status_code == 422  # refused: nothing counted

    assert value("atende_csat_surveys_sent_total", channel="api") - sent_before == 3
    counted = {r: value("atende_csat_responses_total", channel="api", rating=r) - before[r] for r in ratings}
    # the first survey's change from 5 to 1 is not a new answer
    assert counted == {"satisfied": 1, "neutral": 1, "unsatisfied": 0}
    scraped = await scrape(company)
    key = ("atende_csat_responses_total", frozenset({("channel", "api"), ("rating", "neutral")}))
    assert scraped[key] >= 1


async def test_sla_warnings_and_breaches_are_counted_once_they_commit(
    company: CompanyCtx, runtime: Runtime
) -> None:
    def counted(kind: str) -> float:
        return value("atende_sla_events_total", kind=kind, target="first_response")

    before = {kind: counted(kind) for kind in ("warning", "breached")}
    await policy(company, first_response="1h")
    start = datetime(2027, 4, 5, 10, tzinfo=UTC)  # ahead of the session's worker, on the real clock
    cid = await handed_off(company, runtime, start)
    await settled(runtime, company, start)
    clocks = (await company.client.get(f"/v1/conversations/{cid}/sla")).json()["clocks"]
    [clock] = [c for c in clocks if c["target"] == "first_response"]
    warn_at, due_at = (datetime.fromisoformat(clock[k]) for k in ("warn_at", "due_at"))

    assert (await check_at(runtime, company, warn_at)).warnings == 1
    assert counted("warning") - before["warning"] == 1

    class Failed(Exception):
        pass

    async def rolled_back() -> None:
        """The run raises the breach, then its transaction fails before committing."""
        async with runtime.db.transaction(company.id) as session:
            assert (await service.check(session, runtime, company.id, due_at)).breaches == 1
            raise Failed

    with pytest.raises(Failed):
        await rolled_back()
    assert counted("breached") - before["breached"] == 0
    assert (await check_at(runtime, company, due_at)).breaches == 1  # raised again, committed
    assert (await check_at(runtime, company, due_at)).breaches == 0
    assert {kind: counted(kind) - before[kind] for kind in before} == {"warning": 1, "breached": 1}
    scraped = await scrape(company)
    key = ("atende_sla_events_total", frozenset({("kind", "breached"), ("target", "first_response")}))
    assert scraped[key] >= 1
