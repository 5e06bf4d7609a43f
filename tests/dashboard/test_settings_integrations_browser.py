"""The integrations' settings pages in Chromium, as an admin uses them: an API key created by
keyboard, shown once and then never again; a webhook added, its signing secret shown once,
and its delivery log filling as events go out to a real receiver; a team created and
staffed; the bot's endpoint with its key write-only; the channel accounts with their widget
links. Every page passes axe-core with no serious or critical violation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import expect

from atende.runtime import Runtime
from atende.webhooks import service as webhooks
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.fixtures.dashboard import PASSWORD, Team


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


async def test_an_api_key_is_created_by_keyboard_and_shown_only_once(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await page.goto("/app/settings")
    await page.get_by_role("link", name="API keys").click()
    await expect(page.get_by_role("heading", level=1, name="API keys")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("Name").fill("Loja's CRM")
    await page.get_by_label("Role").select_option(label="Agent")
    await page.get_by_label("Name").press("Enter")  # the form is sent by keyboard
    await expect(page.get_by_role("status")).to_have_text("API key created.")
    field = page.get_by_label("API key", exact=True)
    await expect(field).to_have_attribute("readonly", "")
    key = await field.input_value()
    assert re.fullmatch(r"atd_\w{8}_[\w-]+", key), key
    await expect(page.get_by_text("Copy it now: it is shown only this once.")).to_be_visible()
    await field.focus()  # selected whole, ready to copy
    assert await page.evaluate("window.getSelection().toString() || document.activeElement.selectionEnd") in (
        key,
        len(key),
    )
    await assert_accessible(page)
    await screenshot(page, "settings-api-keys")
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {key}"}) as api:
        assert (await api.get("/v1/company")).status_code == 200

    await page.reload()
    await expect(page.get_by_role("cell", name="Loja's CRM", exact=True)).to_be_visible()
    await expect(page.get_by_label("API key", exact=True)).to_have_count(0)
    assert key not in await page.content()
    await page.get_by_role("button", name=re.compile(r"^Revoke key Loja's CRM")).click()
    await expect(page.get_by_role("status")).to_have_text("API key revoked: it stopped working.")
    await assert_accessible(page)


async def test_a_webhook_is_added_and_its_delivery_log_shows_what_was_sent(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, receiver: WebhookReceiver
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.owner.email, PASSWORD)
    await page.goto("/app/settings/webhooks")
    await assert_accessible(page)
    await page.get_by_label("URL").fill(receiver.url("/browser"))
    await page.get_by_label(re.compile(r"^queue\.opened")).check()
    await page.get_by_role("button", name="Add webhook").click()
    await expect(page.get_by_role("status")).to_have_text("Webhook added.")
    secret = await page.get_by_role("textbox", name="Signing secret").input_value()
    assert secret.startswith("whsec_")
    await expect(page.get_by_text("Nothing was sent to this webhook yet.")).to_be_visible()
    await assert_accessible(page)
    endpoint_id = page.url.split("/")[-1].split("?")[0]

    async with runtime.db.transaction(team.company_id) as session:
        for n in range(3):
            await webhooks.emit(session, runtime.jobs, "queue.opened", {"n": n})
    await receiver.wait_for("/browser", lambda requests: len(requests) >= 3, timeout=30)
    await page.goto(f"/app/settings/webhooks/{endpoint_id}")
    log = page.get_by_role("table", name=re.compile("Newest first"))
    await expect(log.get_by_role("row")).to_have_count(4)  # the header and three deliveries
    await expect(log.get_by_role("row").nth(1)).to_contain_text(
        re.compile(r"queue\.opened.*Delivered.*1\s*200", re.DOTALL)
    )
    await expect(page.get_by_role("textbox", name="Signing secret")).to_have_count(0)  # shown once only
    await assert_accessible(page)
    await screenshot(page, "settings-webhook")


async def test_teams_bot_and_channels_pages_work_and_pass_axe(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await page.goto("/app/settings/teams")
    await assert_accessible(page)
    await page.get_by_label("Name").fill("Financeiro")
    await page.get_by_role("button", name="Create team").click()
    await expect(page.get_by_role("status")).to_have_text("Team created. Add its members below.")
    await page.get_by_label("Agent").select_option(label=f"Ana Agent ({team.agent.email})")
    await page.get_by_role("button", name="Add to team").click()
    await expect(page.get_by_role("button", name="Remove Ana Agent from the team")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_role("link", name="Teams").first.click()
    await expect(page.get_by_role("row", name=re.compile("Financeiro.*Ana Agent"))).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "settings-teams")

    await page.goto("/app/settings/bot")
    await page.get_by_label("Persona and instructions").fill("Você é a Bia, da Loja da Olga.")
    llm = page.get_by_role("group", name="LLM endpoint")
    await llm.get_by_label("Address (base URL)").fill("http://127.0.0.1:9/v1")
    await llm.get_by_label("Model").fill("tiny")
    await llm.get_by_label("New key").fill("sk-never-shown")
    await page.get_by_role("button", name="Save bot settings").click()
    await expect(page.get_by_role("status")).to_have_text("Bot settings saved.")
    await expect(llm.get_by_text("A key is stored.")).to_be_visible()
    await expect(llm.get_by_label("New key")).to_have_value("")
    assert "sk-never-shown" not in await page.content()
    await assert_accessible(page)
    await screenshot(page, "settings-bot")

    await page.goto("/app/settings/channels")
    await expect(page.get_by_role("link", name=re.compile("^Widget appearance of"))).to_have_count(1)
    await page.get_by_role("button", name=re.compile("^Delete ")).click()
    await expect(page.get_by_role("alert")).to_contain_text("last web chat account")
    await assert_accessible(page)
    await screenshot(page, "settings-channels")
