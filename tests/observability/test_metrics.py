"""Prometheus ``/metrics`` of the live server: HTTP requests by route template, bot turns by
decision, the job queue and retrieval latency."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CompanyCtx, ask

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(live_server: str) -> Samples:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def until_increased(live_server: str, before: float, name: str, **labels: str) -> float:
    """The sample's value once above ``before``: a turn counts itself just after its reply
    is committed, so the reply can be seen a moment earlier."""
    deadline = time.monotonic() + 5
    while True:
        now = value(await scrape(live_server), name, **labels)
        if now > before or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


async def test_requests_are_counted_by_route_template_not_by_raw_path(
    company: CompanyCtx, live_server: str
) -> None:
    conversation = (
        await company.client.post("/v1/messages", json={"contact": {"external_id": "m"}, "text": "Oi"})
    ).json()["conversation_id"]
    route = "/v1/conversations/{conversation_id}"
    before = await scrape(live_server)
    for _ in range(3):
        assert (await company.client.get(f"/v1/conversations/{conversation}")).status_code == 200
    assert (await company.client.get(f"/v1/conversations/{uuid.uuid4()}")).status_code == 404
    after = await scrape(live_server)

    counted = "atende_http_requests_total"
    ok = {"method": "GET", "route": route, "status": "200"}
    missing = {"method": "GET", "route": route, "status": "404"}
    assert value(after, counted, **ok) - value(before, counted, **ok) == 3
    assert value(after, counted, **missing) - value(before, counted, **missing) == 1
    latency = "atende_http_request_duration_seconds_count"
    assert (
        value(after, latency, method="GET", route=route) - value(before, latency, method="GET", route=route)
        == 4
    )
    routes = {dict(labels).get("route", "") for (name, labels) in after if name == counted}
    assert not any(conversation in r for r in routes), "a raw id became a label value"


async def test_unknown_paths_share_one_unmatched_label(company: CompanyCtx, live_server: str) -> None:
    before = await scrape(live_server)
    for n in range(3):
        assert (await company.client.get(f"/no/such/page/{n}")).status_code == 404
    after = await scrape(live_server)
    labels = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        value(after, "atende_http_requests_total", **labels)
        - value(before, "atende_http_requests_total", **labels)
        == 3
    )


async def test_a_bot_turn_counts_its_decision_and_its_retrieval(
    kb_company: CompanyCtx, live_server: str
) -> None:
    before = await scrape(live_server)
    body = await ask(kb_company.client, "Qual o prazo de entrega para o interior?")
    decision = body["reply"]["meta"]["decision"]
    assert decision == "answer"
    turns = await until_increased(
        live_server,
        value(before, "atende_turns_total", decision=decision),
        "atende_turns_total",
        decision=decision,
    )
    after = await scrape(live_server)
    assert turns >= value(before, "atende_turns_total", decision=decision) + 1
    retrievals = "atende_retrieval_duration_seconds_count"
    assert value(after, retrievals) > value(before, retrievals)
    assert value(after, "atende_retrieval_duration_seconds_sum") > 0
    received = "atende_messages_received_total"
    assert value(after, received, channel="api") > value(before, received, channel="api")
    assert value(after, "atende_turn_duration_seconds_count") > value(
        before, "atende_turn_duration_seconds_count"
    )


async def test_a_handoff_is_counted_under_its_own_decision(company: CompanyCtx, live_server: str) -> None:
    before = value(await scrape(live_server), "atende_turns_total", decision="handoff")
    body = await ask(company.client, "Qual o status do meu contrato de seguro marítimo?")
    assert body["reply"]["meta"]["decision"] == "handoff"
    assert await until_increased(live_server, before, "atende_turns_total", decision="handoff") > before


async def test_the_job_queue_gauges_are_exported(live_server: str) -> None:
    samples = await scrape(live_server)
    depth = ("atende_job_queue_depth", frozenset())
    age = ("atende_job_queue_oldest_age_seconds", frozenset())
    assert depth in samples and age in samples, sorted(name for name, _ in samples)
    assert samples[depth] >= 0
    assert samples[age] >= 0
