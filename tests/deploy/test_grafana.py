"""Grafana: the provisioned data source, dashboards and alert rules. Every panel's and alert
rule's PromQL parses and selects only metrics that atende's registry really exports, with
labels they really carry; every atende metric is on some dashboard; each alert rule names its
section of docs/RUNBOOK.md; and the handoffs and answer ratings the bot panels plot are counted
(the deliveries' count: tests/channels/test_outbox.py)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from atende.observability import metrics
from tests.conftest import CompanyCtx, ask
from tests.deploy.conftest import DEPLOY, Exported, selectors
from tests.deploy.test_docs import RUNBOOK, anchors

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ALERTING = sorted((GRAFANA / "provisioning" / "alerting").glob("*.yml"))
# Grafana's own variables, as Prometheus would see them once substituted
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return found


def queries() -> list[tuple[str, str]]:
    """(dashboard / panel, PromQL) of every panel target."""
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in panels(board):
            for target in panel.get("targets", []):
                found.append((f"{path.stem} / {panel['title']}", target["expr"]))
    return found


def promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


def test_there_are_dashboards_for_traffic_the_bot_and_the_jobs() -> None:
    assert {p.stem for p in DASHBOARDS} == {"atende-traffic", "atende-bot", "atende-jobs"}
    titles = [p["title"] for path in DASHBOARDS for p in panels(json.loads(path.read_text()))]
    for wanted in (
        "Requests by route",
        "Error ratio",
        "Turn latency",
        "Turns by decision",
        "Handoffs by reason",
        "Jobs waiting",
        "Oldest waiting job",
        "LLM latency",
        "LLM error ratio",
        "LLM circuit state",
        "Webhook deliveries by outcome",
        "Outbound messages by status",
        "Delivery failures by channel",
        "Delivery failure ratio",
        "Answer ratings",
        "Not-helpful share",
        "CSAT surveys and answers",
        "CSAT response rate",
        "CSAT satisfied share",
        "SLA breaches by target",
        "SLA warnings by target",
    ):
        assert wanted in titles, f"no panel {wanted!r}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_each_dashboard_is_well_formed_and_uses_the_provisioned_data_source(path: Path) -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    [source] = datasources["datasources"]
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    board = json.loads(path.read_text())
    assert board["uid"] == path.stem
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "two panels share an id"
    for panel in panels(board):
        assert panel["title"] and set(panel["gridPos"]) == {"x", "y", "w", "h"}
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']} has no query"
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize(("panel", "expr"), queries(), ids=[p for p, _ in queries()])
def test_each_query_parses_and_selects_only_exported_metrics(
    panel: str, expr: str, exported: Exported
) -> None:
    assert list(selectors(promql(expr))), f"{panel} selects no metric"
    assert exported.check(promql(expr)) == [], panel


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in ALERTING
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_the_alert_rules_are_provisioned_and_each_query_selects_exported_metrics(exported: Exported) -> None:
    titles = [rule["title"] for rule in alert_rules()]
    assert {
        "AtendeMessageDeliveryFailures",
        "AtendeAnswersRatedNotHelpful",
        "AtendeCsatLow",
        "AtendeSlaBreaches",
    } <= set(titles)
    uids = [rule["uid"] for rule in alert_rules()]
    assert len(uids) == len(set(uids)) and len(titles) == len(set(titles)), "two rules share a uid or title"
    headings = anchors(RUNBOOK.read_text())
    for path in ALERTING:
        for group in yaml.safe_load(path.read_text())["groups"]:
            assert group["folder"] == "atende" and group["orgId"] == 1
            assert re.fullmatch(r"\d+[smh]", group["interval"]), group["name"]
    for rule in alert_rules():
        refs = {query["refId"]: query for query in rule["data"]}
        assert rule["condition"] in refs, rule["title"]
        condition = refs[rule["condition"]]
        assert condition["datasourceUid"] == "__expr__"
        assert condition["model"]["expression"] in refs, rule["title"]
        prometheus = [q for q in rule["data"] if q["datasourceUid"] != "__expr__"]
        assert prometheus, f"{rule['title']} queries nothing"
        for query in prometheus:
            assert query["datasourceUid"] == "prometheus"
            expr = query["model"]["expr"]
            assert list(selectors(expr)), rule["title"]
            assert exported.check(expr) == [], rule["title"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        runbook = rule["annotations"]["runbook_url"]
        assert runbook.startswith("docs/RUNBOOK.md#"), rule["title"]
        assert runbook.split("#", 1)[1] in headings, f"docs/RUNBOOK.md has no section for {rule['title']}"


def test_every_atende_metric_is_on_a_dashboard() -> None:
    plotted = " ".join(expr for _panel, expr in queries())
    for metric in vars(metrics).values():
        if hasattr(metric, "_name") and hasattr(metric, "_type"):
            assert metric._name in plotted, f"{metric._name} is on no dashboard"


async def scrape(company: CompanyCtx) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await company.client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def test_the_bot_handing_a_conversation_to_people_is_counted_by_reason(company: CompanyCtx) -> None:
    before = await scrape(company)
    reply = (await ask(company.client, "quero falar com um atendente"))["reply"]
    assert reply["meta"]["decision"] == "handoff"
    routing = "ticket" if reply["meta"]["ticket"] else "queue"
    key = ("atende_handoffs_total", frozenset({("reason", "requested"), ("routing", routing)}))
    # the turn counts itself just after its reply is committed: the reply may be seen first
    deadline = time.monotonic() + 5
    while (counted := (await scrape(company)).get(key, 0) - before.get(key, 0)) == 0:
        assert time.monotonic() < deadline, "the handoff was not counted"
        await asyncio.sleep(0.05)
    assert counted == 1


async def test_each_new_or_changed_rating_of_an_answer_is_counted(company: CompanyCtx) -> None:
    def counted(rating: str) -> float:
        value = REGISTRY.get_sample_value("atende_answer_ratings_total", {"channel": "api", "rating": rating})
        return value or 0.0

    before = {rating: counted(rating) for rating in ("helpful", "not_helpful")}
    body = await ask(company.client, "Oi")
    path = f"/v1/conversations/{body['conversation_id']}/messages/{body['reply']['id']}/rating"
    for helpful in (False, False, True):  # the second is the same rating again: nothing changes
        r = await company.client.put(path, json={"helpful": helpful})
        assert r.status_code == 200, r.text
    after = {rating: counted(rating) - before[rating] for rating in before}
    assert after == {"helpful": 1, "not_helpful": 1}
    # and /metrics exports them
    scraped = await scrape(company)
    assert (
        scraped[("atende_answer_ratings_total", frozenset({("channel", "api"), ("rating", "helpful")}))] >= 1
    )
