"""The company's settings pages in a real browser (Debian's Chromium, driven by Playwright):
the weekly grid of business hours edited by keyboard alone and saved, a refused grid with
the reason beside its day; every page (profile, hours, holidays and dates, handoff rules)
passes axe-core with no serious or critical violation, in English and in Brazilian
Portuguese, and writes its screenshot for the docs."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect

from atende.runtime import Runtime
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.dashboard.test_settings_company import HOURS, SOON, make_team_named, set_hours, stored_hours
from tests.fixtures.dashboard import PASSWORD, Team


async def type_into(page: Page, text: str) -> None:
    """Replace the focused field's text, as a person does with the keyboard."""
    await page.keyboard.press("Control+A")
    await page.keyboard.type(text)


async def test_the_weekly_grid_is_edited_by_keyboard_and_saved(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    await set_hours(runtime, team.company_id)
    page = await new_page(open_context, live_server)
    await sign_in(page, team.owner.email, PASSWORD)
    await page.get_by_role("navigation").get_by_role("link", name="Settings").click()
    await page.get_by_role("link", name="Business hours").click()
    await expect(page.get_by_role("heading", level=1, name="Business hours")).to_be_visible()
    await assert_accessible(page)

    monday = page.get_by_role("group", name="Monday")
    await monday.get_by_label("Opens").first.focus()
    await type_into(page, "09:00")
    await page.keyboard.press("Tab")
    await expect(monday.get_by_label("Closes", exact=True).first).to_be_focused()
    await type_into(page, "12:30")
    await page.keyboard.press("Tab")  # "Closes the next day", left unchecked
    await expect(monday.get_by_label("Closes the next day").first).to_be_focused()
    for _field in ("opens", "closes"):  # the afternoon emptied: Monday has one interval
        await page.keyboard.press("Tab")
        await page.keyboard.press("Control+A")
        await page.keyboard.press("Backspace")
    # Friday night: 22:00 to 02:00 the next day
    friday = page.get_by_role("group", name="Friday")
    await friday.get_by_label("Opens").first.focus()
    await type_into(page, "22:00")
    await page.keyboard.press("Tab")
    await type_into(page, "02:00")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Space")
    await expect(friday.get_by_label("Closes the next day").first).to_be_checked()
    await friday.get_by_label("Opens").first.focus()
    await page.keyboard.press("Enter")  # submits the grid: "Save hours"

    await expect(page.get_by_role("status")).to_have_text("Business hours saved.")
    await expect(monday.get_by_label("Opens").first).to_have_value("09:00")
    await expect(friday.get_by_label("Closes the next day").first).to_be_checked()
    stored = await stored_hours(runtime, team.company_id)
    assert stored is not None
    assert stored["weekly"]["monday"] == [{"start": "09:00", "end": "12:30"}]
    assert stored["weekly"]["friday"] == [{"start": "22:00", "end": "02:00", "overnight": True}]
    assert stored["weekly"]["tuesday"] == HOURS["weekly"]["tuesday"]
    await assert_accessible(page)
    await screenshot(page, "settings-hours")

    # an end before its start, without "the next day": refused beside Tuesday, nothing stored
    tuesday = page.get_by_role("group", name="Tuesday")
    await tuesday.get_by_label("Opens").first.focus()
    await type_into(page, "18:00")
    await page.keyboard.press("Tab")
    await type_into(page, "09:00")
    await page.keyboard.press("Enter")
    await expect(tuesday.get_by_role("alert")).to_contain_text("09:00 is not after 18:00")
    await expect(tuesday.get_by_label("Opens").first).to_have_value("18:00")  # kept to fix
    await assert_accessible(page)
    assert await stored_hours(runtime, team.company_id) == stored


@pytest.mark.parametrize("language", ["en", "pt-BR"])
async def test_every_company_settings_page_passes_axe(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, language: str
) -> None:
    await make_team_named(runtime, team.company_id, "Financeiro")
    dated = {
        **HOURS,
        "holidays": {"country": "BR", "subdiv": "SP"},
        "closed_dates": [{"date": str(SOON), "name": "Inventário"}],
        "special_hours": [
            {"date": str(SOON + timedelta(days=7)), "intervals": [{"start": "14:00", "end": "18:00"}]}
        ],
    }
    await set_hours(runtime, team.company_id, dated)
    page = await new_page(open_context, live_server, language)
    await sign_in(page, team.admin.email, PASSWORD, language)
    english = language == "en"
    for path, name in (
        ("/app/settings", "settings"),
        ("/app/settings/company", "settings-company"),
        ("/app/settings/holidays", "settings-holidays"),
        ("/app/settings/handoff", "settings-handoff"),
    ):
        await page.goto(path)
        await expect(page.get_by_role("heading", level=1)).to_be_visible()
        await assert_accessible(page)
        if english and name != "settings":
            await screenshot(page, name)
    # refusals on the page pass too: a holiday calendar that does not exist
    await page.goto("/app/settings/holidays")
    await page.get_by_label("Country code" if english else "Código do país").fill("XX")
    await page.get_by_role("button", name="Save public holidays" if english else "Salvar feriados").click()
    await expect(page.get_by_role("alert")).to_contain_text("'XX' is not a supported country code")
    await assert_accessible(page)
    # a handoff rule with a keyword too short
    await page.goto("/app/settings/handoff")
    await page.get_by_label("Rule name" if english else "Nome da regra").first.fill("legal")
    await page.get_by_label("Keywords" if english else "Palavras-chave").first.fill("a")
    await page.get_by_role(
        "button", name="Save handoff rules" if english else "Salvar regras de transferência"
    ).click()
    await expect(page.locator("#rule-0-keywords-error")).to_be_visible()
    await expect(page.get_by_label("Keywords" if english else "Palavras-chave").first).to_have_value("a")
    await assert_accessible(page)
    await expect(page).to_have_url(re.compile(r"/app/settings/handoff$"))
