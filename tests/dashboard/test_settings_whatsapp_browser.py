"""Settings → WhatsApp in Chromium: an admin finds the page from the settings index, reads the
steps with this server's webhook URL, connects a number (refused clearly when a field is
wrong; its secrets never shown again), sees whether Meta accepts its token (the readiness
check's verdict, from the fake Graph API), renews a refused token, disables, enables and
removes the number; every state of the page is axe-clean."""

from __future__ import annotations

from playwright.async_api import Page, expect
from sqlalchemy import select

from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import TOKEN, new_number
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fakes.graph_api import FakeGraphApi
from tests.fixtures.dashboard import PASSWORD, Team


async def reload_until(page: Page, text: str, tries: int = 20) -> None:
    for _ in range(tries):
        await page.reload()
        if await page.locator("#whatsapp-numbers").get_by_text(text).count():
            return
    raise AssertionError(f"the page never said {text!r}")


async def test_an_admin_connects_checks_and_removes_a_number(
    open_context: OpenContext,
    live_server: str,
    team: Team,
    runtime: Runtime,
    graph: FakeGraphApi,
    checks_every_view: None,
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.owner.email, PASSWORD)
    await page.goto("/app/settings")
    await page.get_by_role("link", name="WhatsApp", exact=True).click()
    await expect(page).to_have_url(f"{live_server}/app/settings/whatsapp")
    await expect(page.get_by_text("No WhatsApp number is connected yet.")).to_be_visible()
    url = page.get_by_label("Callback URL of this server")
    assert (await url.input_value()).endswith("/webhooks/whatsapp")
    await assert_accessible(page)

    number = new_number()
    form = page.locator("#connect-form")
    await form.get_by_label("Phone number ID").fill("not digits")
    await form.get_by_label("WhatsApp Business Account ID").fill("102290129340398")
    await form.get_by_label("Name", exact=True).fill("SAC WhatsApp")
    await form.get_by_label("Access token").fill(TOKEN)
    await form.get_by_label("App secret").fill("the-app-secret")
    await form.get_by_label("Verify token").fill("the-verify-token")
    await form.get_by_text("Advanced").click()
    await form.get_by_label("Graph API address").fill(graph.origin)
    await form.get_by_role("button", name="Connect number").click()
    await expect(page.get_by_role("alert")).to_contain_text("digits only")
    await assert_accessible(page)
    # what was typed is kept, the secrets are not
    assert await form.get_by_label("Name", exact=True).input_value() == "SAC WhatsApp"
    assert await form.get_by_label("Access token").input_value() == ""
    await form.get_by_label("Phone number ID").fill(number)
    for label, value in (("Access token", TOKEN), ("App secret", "the-app-secret"), ("Verify token", "v-t")):
        await form.get_by_label(label).fill(value)
    await form.get_by_role("button", name="Connect number").click()
    await expect(page.locator("#notice, .notice").first).to_contain_text("WhatsApp number connected")
    html = await page.content()
    assert TOKEN not in html and "the-app-secret" not in html
    async with runtime.db.transaction(team.company_id) as session:
        row = await session.scalar(select(ChannelAccount).where(ChannelAccount.external_id == number))
    assert row is not None and row.kind == "whatsapp" and row.config["waba_id"] == "102290129340398"
    assert sorted(row.secrets) == ["access_token", "app_secret", "verify_token"]
    assert TOKEN not in str(row.secrets)  # encrypted

    # Meta accepts its token
    await reload_until(page, "Accepted by Meta")
    await assert_accessible(page)
    # Meta stops accepting it; a new one is saved from the page
    graph.tokens.discard(TOKEN)
    await reload_until(page, "Refused by Meta")
    graph.tokens.add("renewed-token")
    await page.get_by_label("New access token for SAC WhatsApp").fill("renewed-token")
    await page.get_by_role("button", name="Save token of SAC WhatsApp").click()
    await expect(page.get_by_text("Secrets saved.")).to_be_visible()
    assert page.url.startswith(f"{live_server}/app/settings/whatsapp")
    await reload_until(page, "Accepted by Meta")

    # disable (keyboard), enable, remove
    disable = page.get_by_role("button", name="Disable SAC WhatsApp")
    await disable.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator("#whatsapp-numbers")).to_contain_text("Disabled")
    assert page.url.startswith(f"{live_server}/app/settings/whatsapp")
    await page.get_by_role("button", name="Enable SAC WhatsApp").click()
    await expect(page.locator("#whatsapp-numbers")).to_contain_text("Enabled")
    await page.get_by_role("button", name="Remove SAC WhatsApp").click()
    await expect(page.get_by_text("No WhatsApp number is connected yet.")).to_be_visible()
    async with runtime.db.transaction(team.company_id) as session:
        gone = await session.scalar(select(ChannelAccount).where(ChannelAccount.external_id == number))
    assert gone is None
