"""The knowledge gaps page in a real browser (Debian's Chromium): reached from the menu,
axe-core clean in English and Brazilian Portuguese, filtered by keyboard, and its "Write an
article for this" opens the article editor's address with the topic's question as title and
the agent's answer as the draft. Writes the screenshot for docs/DASHBOARD.md."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.async_api import expect

from atende.runtime import Runtime
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.dashboard.test_gaps_page import MANAUS_ANSWER, REFUND_ANSWER, arrange_gaps
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.gaps import MANAUS, REFUNDS


async def test_an_admin_opens_the_editor_with_the_agents_answer_as_draft(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    await arrange_gaps(runtime, team)
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Analytics").click()
    await (
        page.get_by_role("navigation", name="Analytics pages")
        .get_by_role("link", name="Knowledge gaps")
        .click()
    )
    await expect(page.get_by_role("heading", level=1, name="Knowledge gaps")).to_be_visible()
    topics = page.get_by_role("heading", level=2)
    await expect(topics).to_have_count(2)
    assert await topics.nth(0).inner_text() in REFUNDS
    assert await topics.nth(1).inner_text() in MANAUS
    await assert_accessible(page)
    await screenshot(page, "knowledge-gaps")

    # the channel filter, by keyboard: WhatsApp leaves the Manaus topic alone
    await page.get_by_label("Channel").focus()
    await page.keyboard.type("WhatsApp")  # a focused list picks the option typed
    await expect(page.get_by_label("Channel")).to_have_value("whatsapp")
    await page.keyboard.press("Tab")  # the language
    await page.keyboard.press("Tab")  # the order
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Show gaps")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=2)).to_have_count(1)
    assert "channel=whatsapp" in page.url
    title = await page.get_by_role("heading", level=2).inner_text()

    write = page.get_by_role("link", name="Write an article for this")
    await write.focus()
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/app/knowledge/articles/new?**")
    draft = parse_qs(urlsplit(page.url).query)
    assert draft == {"title": [title], "body": [MANAUS_ANSWER]}

    await page.go_back()
    await page.get_by_label("Channel").select_option(label="Any channel")
    await page.get_by_role("button", name="Show gaps").click()
    await page.get_by_role("link", name="Write an article for this").first.click()
    await page.wait_for_url("**/app/knowledge/articles/new?**")
    assert parse_qs(urlsplit(page.url).query)["body"] == [REFUND_ANSWER]


async def test_the_page_reads_in_portuguese_and_a_viewer_has_no_editor_link(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    await arrange_gaps(runtime, team)
    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, team.viewer.email, PASSWORD, "pt-BR")
    await page.get_by_role("navigation", name="Menu principal").get_by_role("link", name="Análises").click()
    menu = page.get_by_role("navigation", name="Páginas de análise")
    await menu.get_by_role("link", name="Lacunas de conhecimento").click()
    await expect(page.get_by_role("heading", level=1, name="Lacunas de conhecimento")).to_be_visible()
    await expect(page.get_by_role("heading", level=2)).to_have_count(2)
    await expect(page.get_by_text("Assuntos calculados em")).to_be_visible()
    await expect(page.get_by_role("link", name="Escrever um artigo sobre isto")).to_have_count(0)
    await assert_accessible(page)
