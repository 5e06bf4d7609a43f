"""Outside WhatsApp's 24-hour window, in the dashboard (Chromium): the conversation page says
the customer has been quiet for more than a day, a free-form reply is refused with that
reason, and the agent picks an approved template by its label, fills its parameters, sees
the text the customer will read and sends it: the fake Graph API receives a ``template``
message. A web chat conversation shows no template picker."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import expect
from sqlalchemy import update

from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import TOKEN, answered_customer, connect_number
from tests.conftest import until
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fakes.graph_api import FakeGraphApi
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.inbox import make_shop


async def test_outside_the_window_the_agent_sends_a_template_from_the_page(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, graph: FakeGraphApi
) -> None:
    wa = await connect_number(
        runtime, team.company_id, graph, live_server, token=TOKEN, waba_id="102290129340398"
    )
    wa_id, conversation_id = await answered_customer(wa, runtime)
    async with runtime.db.transaction(team.company_id) as session:
        await session.execute(  # the customer went quiet 25 hours ago
            update(Message)
            .where(Message.conversation_id == conversation_id)
            .values(created_at=Message.created_at - timedelta(hours=25))
        )

    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.goto(f"/app/conversations/{conversation_id}")
    templates = page.get_by_role("region", name="Send a template")
    await expect(templates.locator("#window-closed")).to_contain_text("more than 24 hours ago")

    # a free-form reply is refused, with the reason, and nothing goes out
    await page.get_by_label("Reply to the customer").fill("Ainda precisa de ajuda?")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#notice")).to_contain_text("WhatsApp accepts only an approved template now")
    assert len(graph.sent_to(wa_id)) == 1

    # choose a template with the keyboard, fill it, preview it, send it
    choice = templates.get_by_label("Template")
    await expect(choice.locator("option", has_text="promo_photo")).to_be_disabled()
    await choice.focus()
    await choice.select_option("order_update|pt_BR")
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # "Choose template"
    await templates.get_by_label("Parameter {{name}}").fill("Ana")
    await templates.get_by_label("Parameter {{order}}").fill("#1234")
    await templates.get_by_role("button", name="Show preview").click()
    preview = page.locator("#template-preview")
    await expect(preview).to_contain_text("Olá Ana, o pedido #1234 saiu para entrega.")
    await assert_accessible(page)
    await page.get_by_role("button", name="Send this template").click()
    await expect(page.locator("#notice")).to_contain_text("Template sent.")
    sent = await until(lambda: graph.sent_to(wa_id)[1:], what="the template")
    assert sent[0].body["type"] == "template" and sent[0].body["template"]["name"] == "order_update"
    await expect(page.locator("li.message", has_text="Olá Ana, o pedido #1234")).to_be_visible()


async def test_a_web_chat_conversation_has_no_template_picker(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    shop = await make_shop(runtime, team)
    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.goto(shop.url("mine"))
    await expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    await expect(page.get_by_role("region", name="Send a template")).to_have_count(0)
