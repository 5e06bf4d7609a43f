"""deploy/prometheus/alerts.yml: well-formed rule groups whose expressions parse as PromQL and
select only metrics atende exports (or Prometheus' ``up`` and the node exporter's
filesystem metrics), each alert pointing at its section of docs/RUNBOOK.md."""

from __future__ import annotations

import ast
import re
from typing import Any

import pytest
import yaml

from atende.observability import metrics
from tests.conftest import ROOT
from tests.deploy.conftest import DEPLOY, Exported, selectors

ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# from other exporters of the deployment
OTHER_EXPORTERS = {
    "node_filesystem_avail_bytes": {"job", "instance", "fstype", "mountpoint", "device"},
    "node_filesystem_size_bytes": {"job", "instance", "fstype", "mountpoint", "device"},
}
# the sections of docs/RUNBOOK.md the alerts name
RUNBOOK_ANCHORS = {
    "api-down",
    "worker-down",
    "not-ready",
    "database-unavailable",
    "high-5xx-rate",
    "bot-turns-failing",
    "turn-latency-high",
    "job-backlog",
    "llm-circuit-open",
    "llm-errors",
    "webhook-delivery-failures",
    "credentials-failing",
    "disk-space-low",
}
DURATION = re.compile(r"^(\d+[smhdwy])+$")
# the module that records the outcome of every LLM request (atende_llm_requests_total), and
# the outcomes in which the LLM answered, well or not: every other one is a failed request
LLM_ANSWERER = ROOT / "src" / "atende" / "llm" / "grounded.py"
LLM_ANSWERED = {"answered", "no_answer", "guard_failed"}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def ids(rule: dict[str, Any]) -> str:
    return str(rule.get("alert") or rule.get("record"))


@pytest.fixture(scope="module")
def known(exported: Exported) -> Exported:
    labels = {**exported.labels, **{name: frozenset(ls) for name, ls in OTHER_EXPORTERS.items()}}
    return Exported(exported.names | set(OTHER_EXPORTERS), labels)


def test_the_rule_groups_are_well_formed() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names)), "two rule groups share a name"
    alerts = [r["alert"] for r in rules()]
    assert len(alerts) == len(set(alerts)), "two alerts share a name"
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, ids(rule)
        assert DURATION.match(rule.get("for", "0s")), ids(rule)
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), ids(rule)
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), ids(rule)


@pytest.mark.parametrize("rule", rules(), ids=ids)
def test_each_expression_parses_and_uses_only_exported_metrics(rule: dict[str, Any], known: Exported) -> None:
    assert known.check(rule["expr"]) == []


@pytest.mark.parametrize("rule", rules(), ids=ids)
def test_each_alert_names_its_runbook_section(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    match = re.fullmatch(r"docs/RUNBOOK\.md#([a-z0-9-]+)", url)
    assert match, f"{url}: expected docs/RUNBOOK.md#<section>"
    assert match.group(1) in RUNBOOK_ANCHORS


def test_every_runbook_section_has_an_alert() -> None:
    named = {r["annotations"]["runbook_url"].split("#")[1] for r in rules()}
    assert named == RUNBOOK_ANCHORS


def test_the_alerts_cover_what_operators_must_hear_about() -> None:
    exprs = " ".join(r["expr"] for r in rules())
    for metric in (
        'up{job="api"}',
        'up{job="worker"}',
        "atende_http_requests_total",
        "atende_turn_duration_seconds_bucket",
        "atende_job_queue_oldest_age_seconds",
        "atende_job_queue_depth",
        "atende_llm_circuit_state",
        "atende_llm_requests_total",
        "atende_webhook_deliveries_total",
        "node_filesystem_avail_bytes",
    ):
        assert metric in exprs, f"no alert on {metric}"


def test_a_broken_expression_or_an_unknown_metric_is_caught(known: Exported) -> None:
    with pytest.raises(ValueError):
        known.check("sum(rate(atende_turns_total[5m])")
    assert known.check("rate(atende_turn_total[5m])") == ["atende_turn_total is not a metric atende exports"]
    assert known.check('atende_turns_total{reason="x"}') == ["atende_turns_total has no label ['reason']"]


def llm_outcomes() -> set[str]:
    """Every outcome the LLM answerer records: the names it passes to ``observe`` and those
    ``_failure_kind`` returns for an exception."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(LLM_ANSWERER.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "observe":
            found |= {arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant)}
        if isinstance(node, ast.FunctionDef) and node.name == "_failure_kind":
            found |= {
                ret.value.value
                for ret in ast.walk(node)
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Constant)
            }
    return found


def test_the_llm_errors_alert_counts_every_failed_llm_request() -> None:
    outcomes = llm_outcomes()
    assert LLM_ANSWERED | {"timeout", "misconfigured", "circuit_open", "error"} <= outcomes, outcomes
    (rule,) = [r for r in rules() if r["alert"] == "AtendeLLMErrors"]
    (counted,) = [m["outcome"] for name, m in selectors(rule["expr"]) if "outcome" in m]
    failed = {outcome for outcome in outcomes if re.fullmatch(counted, outcome)}
    assert failed == outcomes - LLM_ANSWERED
    # and the metric's help names every outcome
    help_text = metrics.LLM_REQUESTS._documentation
    assert {o for o in outcomes if not re.search(rf"\b{o}\b", help_text)} == set()
