"""A customer's HTML e-mail in real Chromium: the conversation page shows the text first; the
agent opens "Show the e-mail as sent" and reads the e-mail as formatted, its inline photo
from the stored copy, in a sandboxed frame where nothing of the original runs (its script
would rename the frame and the page) and nothing remote loads; the page stays axe-clean."""

from __future__ import annotations

from playwright.async_api import expect

from atende.runtime import Runtime
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.dashboard.test_email_html import HOSTILE, an_email
from tests.fixtures.dashboard import Team


async def test_an_agent_opens_the_email_as_sent_and_nothing_of_it_runs(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    taken = await an_email(runtime, team, html_body=HOSTILE)
    page = await new_page(open_context, live_server)
    remote: list[str] = []
    page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(live_server) else None)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await sign_in(page, team.agent.email, team.agent.password)
    await page.goto(f"/app/conversations/{taken.conversation_id}")
    title = await page.title()
    message = page.locator("li.message.customer")
    await expect(message.locator("p.text")).to_have_text("Olá, o pedido 123 chegou quebrado.")
    frame_element = message.get_by_title("The e-mail “Pedido 123 chegou quebrado” as its sender formatted it")
    await expect(frame_element).to_be_hidden()  # the text view is the default
    await assert_accessible(page)

    await message.get_by_text("Show the e-mail as sent").click()
    await expect(frame_element).to_be_visible()
    frame = message.frame_locator("iframe")
    await expect(frame.locator("b")).to_have_text("123")
    await expect(frame.locator("body")).to_contain_text("Olá, o pedido 123 chegou quebrado.")
    photo = frame.get_by_role("img", name="the photo")
    await expect(photo).to_be_visible()
    await expect(frame.get_by_role("link", name="o pedido")).to_have_attribute(
        "href", "https://loja.example/pedido/123"
    )
    [inside] = [f for f in page.frames if f.url.endswith("/email")]
    assert await inside.evaluate("self.origin") == "null"  # a unique origin: not the dashboard's
    assert await inside.evaluate("document.title") == "Pedido 123 chegou quebrado"
    assert await inside.evaluate("window.name") == ""  # the original's script never ran
    assert await photo.evaluate("img => img.naturalWidth") == 1  # its stored copy, loaded
    assert await page.title() == title and await page.evaluate("window.name") == ""
    assert dialogs == [] and remote == []
    await assert_accessible(page)
