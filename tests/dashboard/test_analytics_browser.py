"""The analytics page in a real browser (Debian's Chromium): the charts drawn by the vendored
Chart.js, the filter form changing them, each table view a keyboard press away, each chart's
CSV downloaded and read, axe-core clean, and its screenshot for docs/DASHBOARD.md."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from atende.dashboard.analytics_charts import CHARTS
from atende.runtime import Runtime
from tests.analytics.scenario import Scenario, add_service_levels, make_scenario, turn_on_csat
from tests.dashboard.browser import SCREENSHOTS, OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD

DRAWN = [chart.key for chart in CHARTS if chart.draw != "heatmap"]


@pytest.fixture
async def week(runtime: Runtime, live_server: str) -> Scenario:
    scenario = await make_scenario(runtime)
    await add_service_levels(runtime, scenario)
    await turn_on_csat(runtime, scenario.team.company_id)
    return scenario


async def download(page: Page, name: str, tmp_path: Path) -> list[list[str]]:
    async with page.expect_download() as info:
        await page.get_by_role("link", name=name, exact=True).click()
    saved = tmp_path / (await info.value).suggested_filename
    await (await info.value).save_as(saved)
    with saved.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


async def test_a_viewer_reads_filters_and_exports_the_charts(
    open_context: OpenContext, live_server: str, week: Scenario, tmp_path: Path
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, week.team.viewer.email, PASSWORD)
    await (
        page.get_by_role("navigation", name=re.compile("menu", re.I))
        .get_by_role("link", name="Analytics")
        .click()
    )
    await expect(page.get_by_role("heading", level=1, name="Analytics")).to_be_visible()
    await expect(page.get_by_text(re.compile("Figures as of"))).to_be_visible()
    await page.get_by_label("From", exact=True).fill("2026-11-16")
    await page.get_by_label("To", exact=True).fill("2026-11-22")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile(r"start=2026-11-16&end=2026-11-22"))
    for key in DRAWN:  # every chart drawn, its table folded away
        section = page.locator(f"#chart-{key}")
        await expect(section).to_have_attribute("data-drawn", re.compile(r"\d"))
        await expect(section.locator("canvas")).to_be_visible()
        await expect(section.locator("details")).not_to_have_attribute("open", "")
    await expect(page.locator("#chart-conversations")).to_have_attribute(
        "data-drawn", "3"
    )  # API, web chat, WhatsApp
    heat = page.locator("#chart-busiest-hours table")
    await expect(heat).to_be_visible()  # the heat map is a table: shades and numbers
    await expect(heat.locator("tbody tr").first.locator("th")).to_have_text("Monday")
    await expect(heat.locator("td.heat-5")).to_have_count(4)

    # the table view, with the keyboard
    summary = page.get_by_text("Table: Languages")
    await summary.focus()
    await page.keyboard.press("Enter")
    languages = page.locator("#chart-languages table")
    await expect(languages).to_be_visible()
    await expect(languages.locator("tbody tr")).to_have_count(3)
    await expect(languages.locator("tbody tr").first).to_contain_text("Portuguese")
    # the SLA and CSAT sections: headed, drawn, their tables a click away
    await expect(page.get_by_role("heading", level=2, name="Service levels (SLA)")).to_be_visible()
    await expect(page.get_by_role("heading", level=2, name="Customer satisfaction (CSAT)")).to_be_visible()
    await expect(page.locator("#chart-sla-breaches")).to_have_attribute("data-drawn", "2")
    await page.get_by_text("Table: SLA compliance", exact=True).click()
    sla = page.get_by_role("table", name="SLA compliance", exact=True)
    await expect(sla.locator("tbody tr").first).to_contain_text("All targets")
    await expect(sla.locator("tbody tr").first).to_contain_text("40.0%")
    await assert_accessible(page)
    await screenshot(page, "analytics")
    for key in ("sla", "csat"):  # the SLA and CSAT headline charts, for docs/DASHBOARD.md
        await page.locator(f"#chart-{key}").screenshot(path=str(SCREENSHOTS / f"analytics-{key}.png"))

    # a filter changes every chart
    await page.get_by_label("Channel", exact=True).select_option(label="Web chat")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile(r"channel=webchat"))
    await expect(page.locator("#chart-conversations")).to_have_attribute("data-drawn", "1")
    for key in DRAWN:  # every chart drawn again (the page stops moving before a link is clicked)
        await expect(page.locator(f"#chart-{key}")).to_have_attribute("data-drawn", re.compile(r"\d"))
    await page.get_by_text("Table: Languages").click()
    await expect(page.locator("#chart-languages tbody tr")).to_have_count(1)
    await expect(page.locator("#chart-languages tbody tr")).to_contain_text("Portuguese")

    # each chart's CSV, with the page's filters
    rows = await download(page, "Download CSV: Languages", tmp_path)
    assert rows == [["Language", "Conversations", "Share"], ["Portuguese", "2", "1.0"]]
    rows = await download(page, "Download CSV: Conversations over time by channel", tmp_path)
    assert rows[0] == ["Day", "Web chat"] and len(rows) == 8
    # every chart's link, fetched with the page's session (nineteen clicked downloads in a row
    # time out now and then in Chromium: the two above are clicked)
    for chart in CHARTS:
        title = await page.locator(f"#chart-{chart.key} h3").inner_text()
        link = page.get_by_role("link", name=f"Download CSV: {title}", exact=True)
        href = await link.get_attribute("href")
        assert href is not None and "channel=webchat" in href, chart.key
        response = await page.request.get(href)
        assert response.ok and "attachment" in response.headers["content-disposition"], chart.key
        rows = list(csv.reader((await response.text()).splitlines()))
        assert len(rows) > 1 and all(rows[0]), chart.key


async def test_in_portuguese_with_no_figures_yet(
    open_context: OpenContext, live_server: str, week: Scenario
) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, week.team.viewer.email, PASSWORD, "pt-BR")
    await page.goto("/app/analytics?start=2026-11-16&end=2026-11-22&language=en")
    await expect(page.get_by_role("heading", level=1, name="Análises")).to_be_visible()
    await expect(page.get_by_role("link", name="Lacunas de conhecimento")).to_have_attribute(
        "href", "/app/analytics/gaps"
    )
    await page.get_by_text("Tabela: Idiomas").click()
    await expect(page.locator("#chart-languages tbody tr")).to_contain_text("Inglês")
    await page.get_by_text("Tabela: Pontuação de CSAT e taxa de resposta").click()
    await expect(page.locator("#chart-csat tbody tr").first).to_contain_text("Todos os canais")
    await assert_accessible(page)
