"""The analytics page over HTTP, signed in: every chart's table view with the week's figures,
the filters as GET parameters (a bad one is a notice, not an error page), each chart's CSV
with formula-looking names escaped, and who may see it."""

from __future__ import annotations

import csv
import io
import json

import pytest

from atende.dashboard.analytics import script_json
from atende.dashboard.analytics_charts import CHARTS
from atende.dashboard.web import csv_cell
from atende.runtime import Runtime
from tests.analytics.scenario import Scenario, make_scenario
from tests.fixtures.dashboard import browser_client, signed_in

WEEK = "start=2026-11-16&end=2026-11-22"
FORMULA_TEAM = '=HYPERLINK("http://evil.example","click")'
FORMULA_AGENT = "+SUM(1;2)"


@pytest.fixture
async def week(runtime: Runtime, live_server: str) -> Scenario:
    return await make_scenario(runtime, team_name=FORMULA_TEAM, agent_name=FORMULA_AGENT)


def read_csv(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTab", "'\tTab"),
        ("\rReturn", "'\rReturn"),
        ("Ana", "Ana"),
        ("", ""),
        (12, 12),
        (0.25, 0.25),
        (None, None),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(cell: object, written: object) -> None:
    assert csv_cell(cell) == written


def test_a_name_cannot_end_the_charts_script_element() -> None:
    written = script_json({"labels": ["</script><script>alert(1)</script>", "a & b"]})
    assert "<" not in written and ">" not in written and "&" not in written
    assert json.loads(written) == {"labels": ["</script><script>alert(1)</script>", "a & b"]}


async def test_the_page_shows_each_chart_with_its_table_and_the_freshness(
    live_server: str, week: Scenario
) -> None:
    async with signed_in(live_server, week.team.viewer) as client:
        page = await client.get(f"/app/analytics?{WEEK}")
        assert page.status_code == 200, page.text
        html = page.text
        for chart in CHARTS:
            assert f'id="chart-{chart.key}"' in html
            assert f"/app/analytics/{chart.key}.csv?{WEEK}" in html.replace("&amp;", "&")
        assert "Figures as of" in html
        assert 'href="/app/analytics/gaps"' in html and "Knowledge gaps" in html
        # the week's figures, as the table view says them
        assert "37 min 30 s" in html  # the agents' median: of 900 s and 3,600 s
        assert "The customer asked for a person" in html
        assert "Portuguese" in html and "50.0%" in html
        narrowed = await client.get(f"/app/analytics?{WEEK}&language=en")
        assert narrowed.status_code == 200
        assert "Portuguese" not in narrowed.text.split('id="chart-languages"')[1]


@pytest.mark.parametrize(
    ("query", "notice"),
    [
        ("start=2026-11-22&end=2026-11-16", "the first not after the last"),
        ("start=yesterday", "the first not after the last"),
        ("start=2020-01-01&end=2026-11-16", "at most 400 days"),
        ("team=nope", "The company has no such team."),
        ("channel=pigeon", "There is no such channel."),
        ("language=xx", "There is no such language."),
    ],
)
async def test_a_bad_filter_is_a_notice_above_empty_charts(
    live_server: str, week: Scenario, query: str, notice: str
) -> None:
    async with signed_in(live_server, week.team.viewer) as client:
        page = await client.get(f"/app/analytics?{query}")
        assert page.status_code == 422
        assert notice in page.text
        assert "Filter every chart" in page.text  # the form, to fix it
        csv_response = await client.get(f"/app/analytics/languages.csv?{query}")
        assert csv_response.status_code == 422


async def test_each_chart_exports_its_data_as_csv_with_names_escaped(
    live_server: str, week: Scenario
) -> None:
    async with signed_in(live_server, week.team.viewer) as client:
        teams = await client.get(f"/app/analytics/teams.csv?{WEEK}")
        assert teams.status_code == 200
        assert teams.headers["content-type"].startswith("text/csv")
        assert 'filename="atende-teams-2026-11-16-2026-11-22.csv"' in teams.headers["content-disposition"]
        rows = read_csv(teams.text)
        assert rows[0] == [
            "Team",
            "Conversations",
            "Handed off",
            "Median first response after a handoff",
            "90th percentile of first response after a handoff",
        ]
        assert rows[1] == ["'" + FORMULA_TEAM, "2", "2", "2250.0", "3330.0"]
        assert rows[2] == ["Jurídico", "1", "1", "", ""]
        agents = read_csv((await client.get(f"/app/analytics/agents.csv?{WEEK}")).text)
        assert agents[1][:3] == ["'" + FORMULA_AGENT, "2", "1"]
        by_channel = read_csv((await client.get(f"/app/analytics/conversations.csv?{WEEK}")).text)
        assert by_channel[0] == ["Day", "API", "Web chat", "WhatsApp"]
        assert by_channel[1] == ["2026-11-16", "0", "1", "0"]
        assert len(by_channel) == 1 + 7  # every day of the range
        webchat = read_csv(
            (await client.get(f"/app/analytics/conversations.csv?{WEEK}&channel=webchat")).text
        )
        assert webchat[0] == ["Day", "Web chat"]
        hours = read_csv((await client.get(f"/app/analytics/busiest-hours.csv?{WEEK}")).text)
        assert hours[0][:3] == ["Weekday", "00", "01"] and len(hours[0]) == 25
        assert hours[1][0] == "Monday" and hours[1][18] == "1"  # 17:00-18:00
        for chart in CHARTS:
            response = await client.get(f"/app/analytics/{chart.key}.csv?{WEEK}")
            assert response.status_code == 200, chart.key
            assert len(read_csv(response.text)) > 1, chart.key
        assert (await client.get("/app/analytics/nope.csv")).status_code == 404


async def test_signed_out_nobody_reads_the_figures(live_server: str, week: Scenario) -> None:
    async with browser_client(live_server) as client:
        for path in ("/app/analytics", "/app/analytics/teams.csv"):
            response = await client.get(path)
            assert response.status_code in (303, 401, 302), path
            assert "2250" not in response.text
