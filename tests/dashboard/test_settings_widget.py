"""The web chat widget's settings page (``/app/settings/widget``) over HTTP and in Chromium:
admins save colours, title, greetings and the two offers through the channel accounts'
service; bad values are said on the page with the form kept and nothing changed; other
roles are refused, other companies' accounts are 404; the preview frame shows the real widget
with the form's unsaved values and follows the form as it changes."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from atende.channels import accounts
from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import Team, csrf_of, signed_in

PAGE = "/app/settings/widget"
GOOD = {
    "primary_color": "#7a1f5c",
    "primary_text_color": "#ffffff",
    "accent_color": "#0f766e",
    "title": "Loja da Olga",
    "greeting_pt_br": "Olá! Como podemos ajudar?",
    "greeting_en": "Hi! How can we help?",
    "greeting_es": "",
    "handoff_button": "true",
}


async def webchat_account(runtime: Runtime, company_id: uuid.UUID) -> ChannelAccount:
    async with runtime.db.transaction(company_id) as session:
        [account] = await accounts.list_accounts(session, "webchat")
    return account


async def save(client: httpx.AsyncClient, account_id: uuid.UUID, form: dict[str, str]) -> httpx.Response:
    page = await client.get(PAGE, params={"account": str(account_id)})
    assert page.status_code == 200, page.text
    return await client.post(f"{PAGE}?account={account_id}", data={**form, "csrf_token": csrf_of(page.text)})


async def test_an_admin_saves_the_widget_settings_and_the_widget_reads_them(
    live_server: str, runtime: Runtime, team: Team
) -> None:
    account = await webchat_account(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        page = await client.get(PAGE)  # no account named: the company's web chat account
        assert page.status_code == 200
        # the embed snippet, to copy
        assert f"/widget.js&#34; data-widget-key=&#34;{account.external_id}&#34; defer&gt;" in page.text
        response = await save(client, account.id, GOOD)
        assert (response.status_code, response.headers["location"]) == (
            303,
            f"{PAGE}?account={account.id}&notice=widget_saved",
        )
        page = await client.get(response.headers["location"])
        assert "Widget settings saved." in page.text and 'value="Loja da Olga"' in page.text
    saved = (await webchat_account(runtime, team.company_id)).config
    assert saved == {
        "primary_color": "#7a1f5c",
        "primary_text_color": "#ffffff",
        "accent_color": "#0f766e",
        "title": "Loja da Olga",
        "greeting": {"pt-BR": "Olá! Como podemos ajudar?", "en": "Hi! How can we help?"},
        "handoff_button": True,
        "offline_form": False,  # left unticked
        "offer_person_on_thumbs_down": False,
    }
    async with httpx.AsyncClient(base_url=live_server) as visitor:
        served = (await visitor.get(f"/widget/v1/{account.external_id}/config?lang=en")).json()
    assert (served["title"], served["greeting"], served["offline_form"]) == (
        "Loja da Olga",
        "Hi! How can we help?",
        False,
    )


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        ({"primary_color": "blue"}, "primary_color", "Choose a colour written as #rrggbb, such as #2454d6."),
        (
            {"primary_color": "#ffff00", "primary_text_color": "#ffffff"},
            "primary_text_color",
            "The text colour is hard to read on the primary colour (contrast 1.07:1).",
        ),
        (
            {"accent_color": "#f5a524"},
            "accent_color",
            "The accent colour is hard to read on the widget&#39;s white panel (contrast 2.04:1).",
        ),
        ({"greeting_en": "x" * 501}, "greeting_en", "A greeting can have at most 500 characters."),
        ({"title": "x" * 61}, "title", "The title can have at most 60 characters."),
    ],
)
async def test_bad_values_are_said_on_the_page_with_the_form_kept_and_nothing_changes(
    live_server: str, runtime: Runtime, team: Team, change: dict[str, str], field: str, said: str
) -> None:
    account = await webchat_account(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        response = await save(client, account.id, {**GOOD, **change})
    assert response.status_code == 422
    assert said in response.text
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true"', response.text), response.text
    assert "Loja da Olga" in response.text  # what was typed stays to fix
    assert (await webchat_account(runtime, team.company_id)).config == {}


async def test_other_roles_are_refused_and_another_company_s_account_is_not_found(
    live_server: str, runtime: Runtime, team: Team, rival: Team
) -> None:
    mine = await webchat_account(runtime, team.company_id)
    theirs = await webchat_account(runtime, rival.company_id)
    async with signed_in(live_server, team.agent) as agent:
        assert (await agent.get(PAGE)).status_code == 403
        assert (await agent.get(f"{PAGE}/preview", params={"account": str(mine.id)})).status_code == 403
        token = csrf_of((await agent.get("/app")).text)
        r = await agent.post(f"{PAGE}?account={mine.id}", data={**GOOD, "csrf_token": token})
        assert r.status_code == 403 and "This page needs the Admin role; you are Agent." in r.text
    async with signed_in(live_server, team.admin) as admin:
        assert (await admin.get(PAGE, params={"account": str(theirs.id)})).status_code == 404
        assert (await admin.get(f"{PAGE}/preview", params={"account": str(theirs.id)})).status_code == 404
        token = csrf_of((await admin.get(PAGE)).text)
        r = await admin.post(f"{PAGE}?account={theirs.id}", data={**GOOD, "csrf_token": token})
        assert r.status_code == 404
        r = await admin.post(f"{PAGE}?account={mine.id}", data=GOOD)  # no CSRF token
        assert r.status_code == 403 and "This form has expired" in r.text
    assert (await webchat_account(runtime, team.company_id)).config == {}
    assert (await webchat_account(runtime, rival.company_id)).config == {}


async def test_the_preview_is_the_real_widget_with_the_form_s_values_framed_by_the_dashboard_only(
    live_server: str, runtime: Runtime, team: Team
) -> None:
    account = await webchat_account(runtime, team.company_id)
    query: dict[str, Any] = {**GOOD, "account": str(account.id), "preview_lang": "en", "title": "Unsaved"}
    async with signed_in(live_server, team.admin) as client:
        preview = await client.get(f"{PAGE}/preview", params=query)
        assert preview.status_code == 200
        assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
        assert preview.headers["x-frame-options"] == "SAMEORIGIN"
        assert 'src="/widget.js"' in preview.text and 'data-preview="true"' in preview.text
        assert "&#34;title&#34;: &#34;Unsaved&#34;" in preview.text
        assert "&#34;greeting&#34;: &#34;Hi! How can we help?&#34;" in preview.text
        # a value the schema refuses: said, and the saved settings shown
        refused = await client.get(f"{PAGE}/preview", params={**query, "accent_color": "#ffffff"})
        assert refused.status_code == 200 and "The preview shows the saved settings" in refused.text
        assert "&#34;accent_color&#34;: &#34;#0f766e&#34;" in refused.text  # the saved (default) one
        # without JavaScript, "Update preview" posts the form (with its CSRF token) into the frame
        token = csrf_of((await client.get(PAGE)).text)
        posted = await client.post(f"{PAGE}/preview", data={**query, "csrf_token": token})
        assert posted.status_code == 200 and "&#34;title&#34;: &#34;Unsaved&#34;" in posted.text
        assert (await client.post(f"{PAGE}/preview", data=query)).status_code == 403  # no token
        # the settings page itself may not be framed
        assert "frame-ancestors 'none'" in (await client.get(PAGE)).headers["content-security-policy"]


# in Chromium


async def test_the_preview_follows_the_form_and_the_page_works_by_keyboard_and_is_accessible(
    open_context: OpenContext, live_server: str, runtime: Runtime, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, team.admin.password)
    await page.goto("/app/settings")
    await page.get_by_role("link", name="Web chat widget").click()
    await expect(page.get_by_role("heading", name="Web chat widget", level=1)).to_be_visible()
    preview = page.frame_locator("iframe[title='Preview of the web chat widget']")
    await expect(
        preview.get_by_role("heading", name="Support")
    ).to_be_visible()  # the default title, in English

    await page.get_by_label("Title").fill("Loja da Olga")
    await page.get_by_label("Greeting in English").fill("Hi! Ask us anything.")
    await expect(preview.get_by_role("heading", name="Loja da Olga")).to_be_visible()
    await expect(preview.get_by_text("Hi! Ask us anything.")).to_be_visible()
    await expect(page.get_by_label("Greeting in English")).to_be_focused()  # the frame took no focus
    await expect(preview.get_by_role("button", name="Talk to a person")).to_be_visible()

    await page.get_by_label("Show it as when the team is away").check()
    await page.get_by_label("An offline contact form", exact=False).check()
    await page.get_by_label("A “Talk to a person” button", exact=False).uncheck()
    # with the team away, the offline form is still offered without the button
    await preview.get_by_role("button", name="Leave a message").click()
    await expect(preview.get_by_label("Your e-mail")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "settings-widget")

    await page.get_by_role("button", name="Save widget settings").click()
    await expect(page.get_by_text("Widget settings saved.")).to_be_visible()
    saved = (await webchat_account(runtime, team.company_id)).config
    assert (saved["title"], saved["handoff_button"], saved["offline_form"]) == ("Loja da Olga", False, True)

    # the widget in the preview, on its own page: axe finds nothing serious
    account = await webchat_account(runtime, team.company_id)
    await page.goto(f"{PAGE}/preview?account={account.id}")
    await expect(page.get_by_role("dialog", name="Loja da Olga")).to_be_visible()
    await assert_accessible(page)


async def test_in_portuguese_a_refused_colour_is_said_under_its_field_and_the_page_stays_accessible(
    open_context: OpenContext, live_server: str, runtime: Runtime, team: Team
) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, team.owner.email, team.owner.password, "pt-BR")
    await page.goto(PAGE)
    await expect(page.get_by_role("heading", name="Widget do chat do site", level=1)).to_be_visible()
    preview = page.frame_locator("iframe[title='Pré-visualização do widget do chat']")
    await expect(preview.get_by_role("heading", name="Atendimento")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_label("Título").fill("Loja da Olga")
    await page.get_by_label("Texto sobre a cor principal").fill("#2454d6")  # the primary colour itself
    await page.get_by_role("button", name="Salvar configurações do widget").click()
    error = page.locator("#primary_text_color-error")
    await expect(error).to_have_text(
        "A cor do texto fica difícil de ler sobre a cor principal (contraste de 1.00:1). "
        "Escolha cores com contraste de pelo menos 4,5:1."
    )
    await expect(page.get_by_label("Texto sobre a cor principal")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Título")).to_have_value("Loja da Olga")
    await assert_accessible(page)
    assert (await webchat_account(runtime, team.company_id)).config == {}
