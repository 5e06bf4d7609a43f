"""A short run of ``benchmarks/analytics_figures.py``: a small company filled by PostgreSQL
(conversations, handoffs, SLA targets, CSAT surveys), every analytics chart's query timed over
each range, and the SLA and CSAT ones finding the filled rows."""

from __future__ import annotations

from atende.dashboard.analytics_charts import CHARTS
from benchmarks.analytics_figures import benchmark, parse_args
from benchmarks.common import postgres
from tests.conftest import TEST_DATA


def test_every_chart_is_timed_and_the_sla_and_csat_figures_find_the_filled_rows() -> None:
    with postgres(None) as url:
        result = benchmark(
            parse_args(["--conversations", "600", "--repeat", "1", "--data-dir", str(TEST_DATA)]), url
        )
    figures = {r["chart"]: r for r in result["figures"]}
    assert list(figures) == [chart.key for chart in CHARTS]
    for key, r in figures.items():
        for scope in result["scopes"]:
            assert r[scope] >= 0, (key, scope)
    # every kind of target and the channels' surveys over 90 days: all, then per kind or channel
    assert figures["sla"]["90 days rows"] == 3
    assert figures["sla-policies"]["90 days rows"] == 1
    assert figures["csat"]["90 days rows"] >= 2
    assert figures["csat-scores"]["90 days rows"] == 5
