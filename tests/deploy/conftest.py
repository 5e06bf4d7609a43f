"""What the deployment tests share: the linters of the dev extras, the series atende really
exports (read from the live prometheus_client registry once the app is built) and the metric
selectors of a PromQL expression."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import promql_parser
import psycopg
import pytest
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase
from sqlalchemy.engine import make_url

from atende.app import create_app
from atende.config import Settings
from atende.db.url import libpq_url
from atende.observability import metrics
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
ENV_EXAMPLE = DEPLOY / ".env.example"

# the series names a family of each type is exposed as (the text exposition format)
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}
# labels Prometheus adds to every scraped series
TARGET_LABELS = frozenset({"job", "instance"})


def tool(name: str) -> str:
    """A command-line tool installed in this virtualenv by the dev extras."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is missing: it comes with the dev extras (pip install -e '.[dev]')"
    return str(path)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=ROOT)


@dataclass(frozen=True)
class Exported:
    """Series names atende's /metrics may carry (and Prometheus' ``up``), with the label names
    of atende's own."""

    names: frozenset[str]
    labels: dict[str, frozenset[str]]

    def check(self, expr: str) -> list[str]:
        """What is wrong with the metrics ``expr`` selects (empty: nothing)."""
        problems = []
        for name, matchers in selectors(expr):
            if name not in self.names:
                problems.append(f"{name} is not a metric atende exports")
            elif name in self.labels:
                unknown = set(matchers) - self.labels[name] - TARGET_LABELS
                if unknown:
                    problems.append(f"{name} has no label {sorted(unknown)}")
        return problems


@pytest.fixture(scope="session")
def exported() -> Exported:
    create_app(Settings(database_url="postgresql://unused@localhost/unused"))  # registers everything
    names = {family.name + suffix for family in REGISTRY.collect() for suffix in SUFFIXES[family.type]}
    labels: dict[str, frozenset[str]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in SUFFIXES[metric._type]:
                extra = {"le"} if suffix == "_bucket" else set()
                labels[metric._name + suffix] = frozenset(metric._labelnames) | extra
    assert set(labels) <= names, "a metric of atende.observability.metrics is not in the registry"
    # and the series Prometheus itself records for every target it scrapes
    labels["up"] = TARGET_LABELS
    return Exported(frozenset(names | {"up"}), labels)


def selectors(expr: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(metric name, {label: value}) of every vector selector of a PromQL expression; raises
    ``ValueError`` when the expression does not parse."""
    found: list[tuple[str, dict[str, str]]] = []

    def visit(node: object) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = {m.name: m.value for m in node.matchers.matchers}
            name = node.name or matchers.pop("__name__", "")
            found.append((name, matchers))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return iter(found)


@pytest.fixture
def reader(db_url: str) -> Iterator[str]:
    """A login role that is a member of atende_analytics, as Metabase's would be."""
    name = f"metabase_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE atende_analytics')
    yield make_url(libpq_url(db_url)).set(username=name, password=None).render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        admin.execute(f'DROP ROLE "{name}"')
