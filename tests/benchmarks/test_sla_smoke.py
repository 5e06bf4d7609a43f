"""``benchmarks/sla.py`` on a small scale against the test PostgreSQL: every clock computed,
nothing to do afterwards, each old conversation's two targets breached once, and due times
measured."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from benchmarks.sla import main
from tests.conftest import make_database


def test_the_sla_benchmark_runs_and_reports(pg_url: str, tmp_path: Path) -> None:
    url = make_database(pg_url, f"atende_sla_bench_{uuid.uuid4().hex[:8]}")
    out = tmp_path / "sla.json"
    args = ["--conversations", "300", "--breaching", "20", "--due-samples", "200", "--database-url", url]
    assert main([*args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["clocks"] == 600
    *computing, idle, breaching = report["runs"]
    assert sum(r["computed"] for r in computing) == 600 and idle["computed"] == 0
    assert (breaching["breaches"], breaching["warnings"]) == (40, 0)
    assert 0 < report["due_time_us"]["warm_us"] < report["due_time_us"]["cold_us"]
