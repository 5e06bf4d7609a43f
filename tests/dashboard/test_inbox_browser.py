"""The inbox in a real browser (Debian's Chromium, driven by Playwright), found by what a
person reads in English and Brazilian Portuguese: the views and their counts, the filters,
the search, the "Older" pages; each page passes axe-core with no serious or critical
violation, and writes its screenshot for the docs."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, Page, expect

from atende.runtime import Runtime
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.inbox import Shop, make_shop

INBOX = {
    "en": {"inbox": "Inbox", "mine": "Mine", "all": "All", "label": "Label", "apply": "Apply filters",
           "search": "Search messages", "state": "State", "open": "Open (not resolved)", "nobody": "Nobody"},
    "pt-BR": {"inbox": "Caixa de entrada", "mine": "Minhas", "all": "Todas", "label": "Etiqueta",
              "apply": "Aplicar filtros", "search": "Buscar nas mensagens", "state": "Estado",
              "open": "Abertas (não resolvidas)", "nobody": "Ninguém"},
}  # fmt: skip


@pytest.fixture
async def shop(runtime: Runtime, team: Team) -> Shop:
    return await make_shop(runtime, team)


def rows(page: Page) -> Locator:
    return page.locator("tbody tr")


@pytest.mark.parametrize("language", ["en", "pt-BR"])
async def test_an_agent_finds_conversations_by_view_filter_and_search(
    open_context: OpenContext, live_server: str, shop: Shop, language: str
) -> None:
    words = INBOX[language]
    page = await new_page(open_context, live_server, language)
    await sign_in(page, shop.team.agent.email, PASSWORD, language)
    await (
        page.get_by_role("navigation", name=re.compile("menu", re.I))
        .get_by_role("link", name=words["inbox"])
        .click()
    )
    await expect(page.get_by_role("heading", level=1, name=words["inbox"])).to_be_visible()
    await expect(rows(page)).to_have_count(4)
    await expect(rows(page).first).to_contain_text("Bruno Borges")
    views = page.get_by_role("navigation", name=re.compile("Views|Visões"))
    await expect(views.get_by_role("link", name=f"{words['all']} 4")).to_have_attribute(
        "aria-current", "page"
    )
    await assert_accessible(page)
    if language == "en":
        await screenshot(page, "inbox")
    await views.get_by_role("link", name=f"{words['mine']} 1").click()
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("Bruno Borges")
    await page.get_by_role("link", name=re.compile("^(All|Todas)")).click()
    await page.get_by_label(words["label"]).select_option("urgente")
    await page.get_by_role("button", name=words["apply"]).click()
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("Carla Cliente")
    await expect(page.get_by_label(words["label"])).to_have_value("urgente")
    await page.get_by_label(words["label"]).select_option("")
    await page.get_by_label(words["search"]).fill("prazo de entrega")
    await page.get_by_label(words["search"]).press("Enter")
    await expect(rows(page)).to_have_count(1)
    await expect(rows(page).first).to_contain_text("Dora Dias")
    await assert_accessible(page)


async def test_a_bad_search_is_said_on_the_page_and_older_pages_follow(
    open_context: OpenContext, live_server: str, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atende.dashboard import inbox

    monkeypatch.setattr(inbox, "PAGE_SIZE", 2)
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.team.viewer.email, PASSWORD)
    await page.goto("/app/inbox")
    await expect(rows(page)).to_have_count(2)
    await page.get_by_role("link", name="Older").click()
    await expect(rows(page)).to_have_count(2)
    await expect(rows(page).first).to_contain_text("Dora Dias")
    await expect(page.get_by_role("link", name="Older")).to_have_count(0)
    await page.get_by_role("link", name="Newest").click()
    await expect(rows(page).first).to_contain_text("Bruno Borges")
    await page.get_by_label("Search messages").fill("?!")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "Type up to 200 characters, with at least one letter or digit, to search."
    )
    await expect(page.get_by_label("Search messages")).to_have_value("?!")
    await assert_accessible(page)
