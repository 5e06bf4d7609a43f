"""Live updates in real browsers (two profiles, as two people at two desks): agent A resolves
or replies, agent B's list and conversation change without a reload, and B sees A viewing and
typing; a customer writes in the web chat widget (on a shop's own site) and the agent's
conversation page shows it; the agent replies from the dashboard and the widget shows it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from atende.channels import accounts
from atende.runtime import Runtime
from tests.channels.test_widget_browser import PAGE, Site
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.inbox import Shop, make_shop


@pytest.fixture
async def shop(runtime: Runtime, team: Team) -> Shop:
    return await make_shop(runtime, team)


@pytest.fixture(scope="module")
def shop_site() -> Iterator[Site]:
    site = Site()
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    yield site
    site.server.shutdown()
    site.server.server_close()
    thread.join(timeout=5)


async def test_what_one_agent_does_reaches_the_other_without_a_reload(
    open_context: OpenContext, live_server: str, shop: Shop
) -> None:
    a = await new_page(open_context, live_server)
    b = await new_page(open_context, live_server)
    await sign_in(a, shop.team.agent.email, PASSWORD)
    await sign_in(b, shop.team.admin.email, PASSWORD)
    await b.goto("/app/inbox")
    carla = b.locator(f"#row-{shop.ids['handed_off']}")
    await expect(carla).to_contain_text("Waiting for a person")
    await a.goto(shop.url("handed_off"))
    await a.get_by_role("button", name="Resolve", exact=True).click()
    await expect(a.get_by_role("button", name="Reopen")).to_be_visible()
    await expect(carla).to_contain_text("Resolved")  # B's list, live
    # both on one conversation: B sees A there, typing, and A's reply and state change
    await b.goto(shop.url("mine"))
    await a.goto(shop.url("mine"))
    presence = b.locator("#presence")
    await expect(presence).to_have_text("Ana Agent is viewing this conversation.")
    await a.get_by_label("Reply to the customer").press_sequentially("Oi Bruno")
    await expect(presence).to_have_text("Ana Agent is typing…")
    await a.get_by_label("Reply to the customer").press_sequentially(", a troca foi aprovada.")
    await a.get_by_role("button", name="Send", exact=True).click()
    await expect(b.locator("#thread li.message.agent").last).to_contain_text(
        "Oi Bruno, a troca foi aprovada."
    )
    await a.get_by_role("button", name="Resolve", exact=True).click()
    await expect(b.get_by_role("button", name="Reopen")).to_be_visible()
    await assert_accessible(b)
    await a.goto("/app/inbox")
    await expect(presence).to_have_text("")  # A left


async def test_the_widget_and_the_dashboard_talk_live(
    open_context: OpenContext,
    chromium: Browser,
    live_server: str,
    shop: Shop,
    runtime: Runtime,
    shop_site: Site,
) -> None:
    async with runtime.db.transaction() as session:
        widget_key = await accounts.first_external_id(session, shop.team.company_id, "webchat")
    # the customer's browser: no forwarded address (the widget's calls are cross-origin)
    customer_context = await chromium.new_context(locale="pt-BR")
    customer = await customer_context.new_page()
    await customer.goto(shop_site.add(PAGE.format(atende=live_server, key=widget_key, lang="pt")))
    agent = await new_page(open_context, live_server)
    await sign_in(agent, shop.team.agent.email, PASSWORD)
    await agent.goto("/app/inbox")
    box = customer.get_by_role("textbox", name="Sua mensagem")
    await box.fill("Olá, quero falar com uma pessoa sobre meu pedido 777")
    await box.press("Enter")
    log = customer.get_by_role("log")
    await expect(log.locator(".atende-bot")).to_have_count(1)  # handed to the team
    new_row = agent.locator("#inbox-results tbody tr", has_text="Visitor without a name")
    await expect(new_row).to_have_count(1)  # the agent's list, live
    await new_row.get_by_role("link").click()
    thread = agent.locator("#thread")
    await expect(thread).to_contain_text("Olá, quero falar com uma pessoa sobre meu pedido 777")
    await box.fill("Alguém aí?")
    await box.press("Enter")
    await expect(thread.locator("li.message.customer").last).to_contain_text("Alguém aí?")
    await agent.get_by_label("Reply to the customer").fill("Oi! Sou a Ana, vou ver seu pedido 777.")
    await agent.get_by_role("button", name="Send", exact=True).click()
    await expect(thread.locator("li.message.agent").last).to_contain_text("Delivery: Sent")
    await expect(log.locator("li").last).to_contain_text("Oi! Sou a Ana, vou ver seu pedido 777.")
    await customer_context.close()
