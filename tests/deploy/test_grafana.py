"""Grafana: the provisioned data source and dashboards. Every panel's PromQL parses and
selects only metrics that atende's registry really exports, with labels they really carry;
every atende metric is on some dashboard; and the handoffs the bot panels plot are counted."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from atende.observability import metrics
from tests.conftest import CompanyCtx, ask
from tests.deploy.conftest import DEPLOY, Exported, selectors

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
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
