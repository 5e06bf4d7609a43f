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
from tests.analytics.scenario import Scenario, add_service_levels, make_scenario, turn_on_csat
from tests.fixtures.dashboard import browser_client, make_team, signed_in

WEEK = "start=2026-11-16&end=2026-11-22"
FORMULA_TEAM = '=HYPERLINK("http://evil.example","click")'
FORMULA_AGENT = "+SUM(1;2)"


@pytest.fixture
async def week(runtime: Runtime, live_server: str) -> Scenario:
    scenario = await make_scenario(runtime, team_name=FORMULA_TEAM, agent_name=FORMULA_AGENT)
    await add_service_levels(runtime, scenario)
    await turn_on_csat(runtime, scenario.team.company_id)
    return scenario


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
        # the SLA and CSAT sections, headed, with the week's figures and no notice
        assert '<h2 id="group-sla-title">Service levels (SLA)</h2>' in html
        assert '<h2 id="group-csat-title">Customer satisfaction (CSAT)</h2>' in html
        assert "group-sla-off" not in html and "group-csat-off" not in html
        sla = html.split('id="chart-sla"')[1].split("</section>")[0]
        assert "<caption>SLA compliance</caption>" in sla
        assert "All targets" in sla and "40.0%" in sla and "Next response" in sla
        policies = html.split('id="chart-sla-policies"')[1].split("</section>")[0]
        assert "Padrão" in policies and "66.7%" in policies
        scores = html.split('id="chart-csat"')[1].split("</section>")[0]
        assert "All channels" in scores and "3.67" in scores and "75.0%" in scores
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


async def test_the_sla_and_csat_figures_export_as_csv_with_the_filters(
    live_server: str, week: Scenario
) -> None:
    async with signed_in(live_server, week.team.viewer) as client:
        sla = await client.get(f"/app/analytics/sla.csv?{WEEK}")
        assert 'filename="atende-sla-2026-11-16-2026-11-22.csv"' in sla.headers["content-disposition"]
        assert read_csv(sla.text) == [
            ["Target", "Targets", "Met", "Breached", "Share met"],
            ["All targets", "5", "2", "3", "0.4"],
            ["First response", "2", "0", "2", "0.0"],
            ["Next response", "1", "1", "0", "1.0"],
            ["Resolution", "2", "1", "1", "0.5"],
        ]
        whatsapp = read_csv((await client.get(f"/app/analytics/sla.csv?{WEEK}&channel=whatsapp")).text)
        assert whatsapp[1] == ["All targets", "2", "0", "2", "0.0"]
        agents = read_csv((await client.get(f"/app/analytics/sla-agents.csv?{WEEK}")).text)
        assert agents[0] == [
            "Agent",
            "Targets",
            "Met",
            "Breached",
            "Share met",
            "First response: share met",
            "Next response: share met",
            "Resolution: share met",
        ]
        assert agents[1:] == [
            ["'" + FORMULA_AGENT, "3", "2", "1", "0.6667", "0.0", "1.0", "1.0"],
            ["Nobody assigned", "2", "0", "2", "0.0", "0.0", "", "0.0"],
        ]
        teams = read_csv((await client.get(f"/app/analytics/sla-teams.csv?{WEEK}")).text)
        assert [row[0] for row in teams[1:]] == ["'" + FORMULA_TEAM, "Jurídico"]
        breaches = read_csv((await client.get(f"/app/analytics/sla-breaches.csv?{WEEK}")).text)
        assert breaches[0] == ["Day", "First response", "Resolution"]
        assert len(breaches) == 1 + 7 and breaches[2] == ["2026-11-17", "2", "0"]
        assert breaches[4] == ["2026-11-19", "0", "1"]
        csat = read_csv((await client.get(f"/app/analytics/csat.csv?{WEEK}&channel=webchat")).text)
        assert csat == [
            [
                "Channel",
                "Surveys sent",
                "Answered",
                "Response rate",
                "Average score (1 to 5)",
                "Satisfied (4 or 5)",
            ],
            ["All channels", "2", "1", "0.5", "5.0", "1.0"],
            ["Web chat", "2", "1", "0.5", "5.0", "1.0"],
        ]
        english = read_csv((await client.get(f"/app/analytics/csat-agents.csv?{WEEK}&language=en")).text)
        assert english[1:] == [["Nobody assigned", "1", "1", "1.0", "2.0", "0.0"]]
        days = read_csv((await client.get(f"/app/analytics/csat-over-time.csv?{WEEK}")).text)
        assert days[2] == ["2026-11-17", "2", "2", "1.0", "3.5", "0.5"]
        assert days[5] == ["2026-11-20", "1", "0", "0.0", "", ""]


async def test_with_no_sla_policy_and_csat_off_the_sections_say_so_and_where_to_turn_them_on(
    runtime: Runtime, live_server: str
) -> None:
    team = await make_team(runtime, name="Sem SLA")
    async with signed_in(live_server, team.viewer) as client:
        html = (await client.get("/app/analytics")).text
        sla = html.split('id="group-sla"')[1].split('id="group-csat"')[0]
        assert "The company has no SLA policy" in sla
        assert '<a href="/app/settings/sla">Add an SLA policy in Settings</a>' in sla
        assert "chart-sla" not in sla  # a sentence, not empty charts
        csat = html.split('id="group-csat"')[1]
        assert "Customer satisfaction surveys are off" in csat
        assert '<a href="/app/settings/feedback">Turn CSAT surveys on in Settings</a>' in csat
        assert "chart-csat" not in csat
        # the conversations' charts are there as before
        assert 'id="chart-conversations"' in html


async def test_csat_turned_off_still_shows_the_figures_of_when_it_was_on(
    runtime: Runtime, live_server: str
) -> None:
    scenario = await make_scenario(runtime)
    await add_service_levels(runtime, scenario)  # policies and surveys, CSAT not on
    async with signed_in(live_server, scenario.team.viewer) as client:
        html = (await client.get(f"/app/analytics?{WEEK}")).text
        assert "group-sla-off" not in html and 'id="chart-sla"' in html
        assert "Customer satisfaction surveys are off" in html and 'id="chart-csat"' in html
        # a range with no survey: only the sentence
        later = (await client.get("/app/analytics?start=2026-12-01&end=2026-12-07")).text
        assert "Customer satisfaction surveys are off" in later and 'id="chart-csat"' not in later


async def test_signed_out_nobody_reads_the_figures(live_server: str, week: Scenario) -> None:
    async with browser_client(live_server) as client:
        for path in ("/app/analytics", "/app/analytics/teams.csv"):
            response = await client.get(path)
            assert response.status_code in (303, 401, 302), path
            assert "2250" not in response.text


async def test_another_company_reads_none_of_the_sla_and_csat_figures(
    runtime: Runtime, live_server: str, week: Scenario
) -> None:
    other = await make_team(runtime, name="Outra Loja")
    async with signed_in(live_server, other.viewer) as client:
        for key in ("sla", "sla-agents", "sla-breaches", "csat", "csat-scores", "csat-agents"):
            rows = read_csv((await client.get(f"/app/analytics/{key}.csv?{WEEK}")).text)
            assert all(cell in ("", "0") for row in rows[1:] for cell in row[1:]), key
            assert not any(FORMULA_AGENT in cell or "Padrão" in cell for row in rows for cell in row), key
        html = (await client.get(f"/app/analytics?{WEEK}")).text
        assert "The company has no SLA policy" in html and "Padrão" not in html
