"""A WhatsApp conversation in the dashboard (Chromium): the customer's reply shows the message
it quotes, a reaction shows on the message it reacts to, and the bot's answer its delivery
status as Meta reported it. Meta's real payloads, signed, through the live server."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import select

from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import TOKEN, connect_number, new_number, new_wamid
from tests.conftest import until
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fakes.graph_api import FakeGraphApi
from tests.fixtures.dashboard import PASSWORD, Team


async def test_quoted_replies_reactions_and_statuses_are_shown(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, graph: FakeGraphApi
) -> None:
    wa = await connect_number(runtime, team.company_id, graph, live_server, token=TOKEN)

    wa_id, first = new_number(), new_wamid()
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id, wamid=first))).status_code == 200
    [sent] = await until(lambda: graph.sent_to(wa_id), what="the bot's answer")
    for status in ("delivered", "read"):
        assert (await wa.status(sent.wamid, status, wa_id=wa_id)).status_code == 200
    quoting = wa.payload("message", "reply", wa_id=wa_id)
    quoting["entry"][0]["changes"][0]["value"]["messages"][0]["context"]["id"] = sent.wamid
    assert (await wa.post(quoting)).status_code == 200
    reaction = wa.payload("message", "reaction", wa_id=wa_id)
    reaction["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["message_id"] = sent.wamid
    assert (await wa.post(reaction)).status_code == 200

    async def bot_answer() -> Message | None:
        async with runtime.db.transaction(team.company_id) as session:
            found = await session.scalar(select(Message).where(Message.provider_message_id == sent.wamid))
        return found if found and found.delivery_status == "read" and found.meta.get("reactions") else None

    answer = await until(bot_answer, what="the answer read and reacted to")

    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.goto(f"/app/conversations/{answer.conversation_id}")
    bot = page.locator(f"#message-{answer.id}")
    await expect(bot.get_by_text("Delivery: Read")).to_be_visible()
    await expect(bot.get_by_text("Reactions: 😮")).to_be_visible()
    reply = page.locator("li.message.customer", has_text="replied text")
    await expect(reply.locator("blockquote")).to_contain_text("Replying to:")
    link = reply.locator("blockquote a")
    await expect(link).to_have_attribute("href", f"#message-{answer.id}")
    await expect(link).to_have_text(answer.text[:200])
    await assert_accessible(page)
