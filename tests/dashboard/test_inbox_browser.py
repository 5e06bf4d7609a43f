"""The inbox in a real browser (Debian's Chromium, driven by Playwright), found by what a
person reads in English and Brazilian Portuguese: the views and their counts, the filters,
the search, the "Older" pages; each page passes axe-core with no serious or critical
violation, and writes its screenshot for the docs."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Locator, Page, expect

from atende.knowledge import service as knowledge
from atende.knowledge.embedding import embedder_for
from atende.knowledge.tasks import chunking
from atende.runtime import Runtime
from atende.teams import canned
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.inbox import Shop, make_shop

DELIVERY_DOC = """# Entregas

## Prazos

O prazo de entrega para o Nordeste, incluindo Recife, é de 5 a 8 dias úteis após a confirmação do pagamento.
"""
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
    return page.locator("#inbox-results tbody tr")


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
    await views.get_by_role("link", name=re.compile(f"^{words['all']} ")).click()
    await expect(views.get_by_role("link", name=f"{words['all']} 4")).to_have_attribute(
        "aria-current", "page"
    )
    await expect(rows(page)).to_have_count(4)  # the new page, before its form is used
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
    await expect(rows(page).first).to_contain_text("Dora Dias")
    await expect(rows(page)).to_have_count(2)
    await expect(page.get_by_role("link", name="Older")).to_have_count(0)
    await page.get_by_role("link", name="Newest").click()
    await expect(rows(page).first).to_contain_text("Bruno Borges")
    await expect(page.get_by_role("link", name="Newest")).to_have_count(0)  # the first page, loaded
    await page.get_by_label("Search messages").fill("?!")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "Type up to 200 characters, with at least one letter or digit, to search."
    )
    await expect(page.get_by_label("Search messages")).to_have_value("?!")
    await assert_accessible(page)


CONVERSATION = {
    "en": {
        "reply": "Reply to the customer", "send": "Send", "assign_me": "Assign to me", "resolve": "Resolve",
        "reopen": "Reopen", "note": "Note for the team (the customer never sees it)", "add_note": "Add note",
        "sent": "Delivery: Sent", "private": "Private note by Ana Agent", "resolved": "Resolved.",
    },
    "pt-BR": {
        "reply": "Resposta ao cliente", "send": "Enviar", "assign_me": "Atribuir a mim",
        "resolve": "Resolver",
        "reopen": "Reabrir", "note": "Nota para a equipe (o cliente nunca a vê)",
        "add_note": "Adicionar nota", "sent": "Entrega: Enviada", "private": "Nota privada de Ana Agent",
        "resolved": "Resolvida.",
    },
}  # fmt: skip


@pytest.mark.parametrize("language", ["en", "pt-BR"])
async def test_an_agent_reads_the_thread_and_works_the_conversation(
    open_context: OpenContext, live_server: str, shop: Shop, language: str
) -> None:
    words = CONVERSATION[language]
    page = await new_page(open_context, live_server, language)
    await sign_in(page, shop.team.agent.email, PASSWORD, language)
    await page.goto("/app/inbox")
    await page.get_by_role("link", name="Carla Cliente").click()
    await expect(page.get_by_role("heading", level=1, name="Carla Cliente")).to_be_visible()
    thread = page.locator("#thread")
    await expect(thread).to_contain_text("Onde está meu pedido 4521?")
    await assert_accessible(page)
    if language == "en":
        await expect(page.locator(".handoff")).to_contain_text("The customer asked to talk to a person.")
        await screenshot(page, "conversation")
    await page.get_by_role("button", name=words["assign_me"]).click()
    await expect(page.locator("#conversation-status")).to_contain_text("Ana Agent")
    await page.get_by_label(words["reply"]).fill("Olá Carla! Já verifico seu pedido.")
    await page.get_by_role("button", name=words["send"], exact=True).click()
    reply = thread.locator("li.message.agent").last
    await expect(reply).to_contain_text("Olá Carla! Já verifico seu pedido.")
    await expect(reply).to_contain_text(words["sent"])
    await expect(page.get_by_label(words["reply"])).to_have_value("")
    await page.get_by_label(words["note"]).fill("Conferir com a transportadora")
    await page.get_by_role("button", name=words["add_note"]).click()
    await expect(thread.locator("li.message.note").last).to_contain_text(words["private"])
    await page.get_by_role("button", name=words["resolve"], exact=True).click()
    await expect(page.get_by_role("status").first).to_contain_text(words["resolved"])
    await expect(page.get_by_role("button", name=words["reopen"])).to_be_visible()
    await assert_accessible(page)


async def test_the_traces_page_shows_what_the_bot_retrieved_and_why(
    open_context: OpenContext, live_server: str, shop: Shop
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.team.viewer.email, PASSWORD)
    await page.goto(shop.url("answered"))
    await expect(page.locator("#thread")).to_contain_text("Sources: Entregas › Prazos")
    await expect(page.get_by_role("button", name="Send")).to_have_count(0)  # a viewer only reads
    await page.get_by_role("link", name="How the bot decided this answer").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("The bot's reasoning with Dora Dias")
    passages = page.get_by_role("table", name="Passages retrieved, best first")
    await expect(passages.get_by_role("columnheader", name="Full-text score (rank)")).to_be_visible()
    await expect(passages).to_contain_text("7.250")
    await expect(page.locator(".trace")).to_contain_text("The bot answered from “Entregas”, which covers 82%")
    await expect(page.locator(".trace")).to_contain_text("answered from 'Entregas' (coverage 0.82)")
    await assert_accessible(page)
    await screenshot(page, "trace")


async def test_a_canned_response_by_slash_and_a_suggested_reply_fill_the_composer(
    open_context: OpenContext, live_server: str, shop: Shop, runtime: Runtime
) -> None:
    async with runtime.db.transaction(shop.team.company_id) as session:
        await canned.create_canned(
            session,
            code="prazo",
            title="Prazo de entrega",
            text="Olá {{contact.name}}, o prazo é de 5 a 8 dias úteis. {{agent.name}}",
            max_chars=5000,
        )
        await canned.create_canned(
            session, code="pix", title="Pagamento por Pix", text="Aceitamos Pix.", max_chars=5000
        )
    await knowledge.ingest(
        runtime.db,
        shop.team.company_id,
        source="entregas.md",
        data=DELIVERY_DOC.encode(),
        max_bytes=100_000,
        chunking=chunking(runtime),
        embedder=embedder_for(runtime, None),
        lang="pt",
    )
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.team.agent.email, PASSWORD)
    await page.goto(shop.url("answered"))
    box = page.get_by_label("Reply to the customer")
    await box.press_sequentially("/p")
    options = page.get_by_role("listbox", name="Canned responses").get_by_role("option")
    await expect(options).to_have_count(2)
    await expect(box).to_have_attribute("aria-expanded", "true")
    await box.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await box.press("ArrowUp")
    await box.press("Enter")  # the first: /pix, then /prazo by code
    await expect(box).to_have_value("Aceitamos Pix.")
    await box.fill("")
    await box.press_sequentially("/pra")
    await expect(options).to_have_count(1)
    await options.first.click()
    await expect(box).to_have_value("Olá Dora Dias, o prazo é de 5 a 8 dias úteis. Ana Agent")
    await assert_accessible(page)
    await page.get_by_role("button", name="Suggested reply").click()
    await expect(page.locator("#suggestion")).to_contain_text("Its sources:")
    await expect(page.locator("#suggestion")).to_contain_text("Entregas")
    await expect(box).to_have_value(re.compile("8 dias úteis"))
    await expect(box).to_be_focused()
    await box.press("End")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#thread li.message.agent").last).to_contain_text("8 dias úteis")
    await assert_accessible(page)


async def leave_field(page: Page) -> None:
    """As a click on the page's background does: no field has the keyboard."""
    await page.evaluate("document.activeElement && document.activeElement.blur()")


async def test_keyboard_shortcuts_work_the_inbox_and_are_listed_under_a_question_mark(
    open_context: OpenContext, live_server: str, shop: Shop
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.team.agent.email, PASSWORD)
    await page.goto("/app/inbox")
    await page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("Next / previous conversation in the list")
    await expect(dialog.get_by_role("button", name="Close")).to_be_focused()
    await assert_accessible(page)
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await page.keyboard.press("j")
    await expect(page.get_by_role("link", name="Bruno Borges")).to_be_focused()
    await page.keyboard.press("j")
    await expect(page.get_by_role("link", name="Carla Cliente")).to_be_focused()
    await page.keyboard.press("k")
    await page.keyboard.press("j")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1, name="Carla Cliente")).to_be_visible()
    await page.keyboard.press("a")
    await expect(page.locator("#conversation-status")).to_contain_text("Assigned to Ana Agent")
    await leave_field(page)
    await page.keyboard.press("r")
    await expect(page.get_by_label("Reply to the customer")).to_be_focused()
    await page.keyboard.type("r e j k: letters typed in a field are text, not shortcuts")
    await expect(page.get_by_label("Reply to the customer")).to_have_value(
        "r e j k: letters typed in a field are text, not shortcuts"
    )
    await page.keyboard.press("Tab")  # on to the Send button
    await page.keyboard.press("n")
    await expect(page.get_by_label("Note for the team (the customer never sees it)")).to_be_focused()
    await leave_field(page)
    await page.keyboard.press("e")
    await expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    await leave_field(page)
    await page.keyboard.press("u")
    await expect(page.get_by_role("heading", level=1, name="Inbox")).to_be_visible()
