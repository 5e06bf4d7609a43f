"""The dashboard's access pages in a real browser (Debian's Chromium, driven by Playwright):
signing in and out by the labels people read, in English and Brazilian Portuguese, by
keyboard alone; wrong passwords and too many attempts; changing and resetting a password
through a link e-mailed to a real SMTP server; an invitation followed from its e-mail; a role
denied a page; another company's member; a stale form; a deactivated member signed out.
Every page passes axe-core with no serious or critical violation."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Page, expect

from atende.config import Settings
from atende.runtime import Runtime
from atende.tenancy import accounts
from tests.conftest import Clock
from tests.dashboard.browser import (
    WORDS,
    OpenContext,
    assert_accessible,
    new_page,
    screenshot,
    sign_in,
)
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.mail import MailSink, link_in

NEW_PASSWORD = "a brand new secret 7"


@pytest.mark.parametrize("language", ["en", "pt-BR"])
async def test_a_member_signs_in_and_out_in_their_language(
    open_context: OpenContext, live_server: str, team: Team, language: str
) -> None:
    words = WORDS[language]
    page = await new_page(open_context, live_server, language)
    await page.goto("/app")
    await expect(page).to_have_url(re.compile(r"/app/login\?next=/app$"))
    await expect(page.get_by_role("heading", name=words["sign_in"])).to_be_visible()
    assert await page.get_attribute("html", "lang") == language
    await assert_accessible(page)
    if language == "en":
        await screenshot(page, "login")
    await page.get_by_label(words["email"]).fill(team.owner.email)
    await page.get_by_label(words["password"], exact=True).fill(PASSWORD)
    await page.get_by_role("button", name=words["sign_in"]).click()
    await expect(page).to_have_url(re.compile(r"/app$"))
    menu = page.get_by_role("navigation")
    await expect(menu.get_by_role("link", name=words["home"])).to_have_attribute("aria-current", "page")
    await expect(menu.get_by_role("link", name=words["users"])).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Olga Owner")
    await assert_accessible(page)
    if language == "en":
        await screenshot(page, "home")
    await page.get_by_role("button", name=words["sign_out"]).click()
    await expect(page.get_by_role("status")).to_have_text(words["signed_out"])
    await page.goto("/app")
    await expect(page.get_by_role("heading", name=words["sign_in"])).to_be_visible()


async def test_a_wrong_password_is_said_in_the_readers_language(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await page.goto("/app/login")
    await page.get_by_label("E-mail").fill(team.agent.email)
    await page.get_by_label("Senha", exact=True).fill("not the password")
    await page.get_by_role("button", name="Entrar").click()
    await expect(page.get_by_role("alert")).to_have_text("E-mail ou senha errados.")
    await expect(page.get_by_label("E-mail")).to_have_value(team.agent.email)
    await assert_accessible(page)


async def test_too_many_attempts_are_refused_with_the_time_to_wait(
    open_context: OpenContext, limited_server: str, team: Team
) -> None:
    page = await new_page(open_context, limited_server, "pt-BR")
    await page.goto("/app/login")
    for attempt in range(4):  # LIMITS of tests/dashboard/conftest.py: 3 per account at once
        await page.get_by_label("E-mail").fill(team.viewer.email)
        await page.get_by_label("Senha", exact=True).fill(f"guess {attempt}")
        await page.get_by_role("button", name="Entrar").click()
        await expect(page.get_by_role("alert")).to_be_visible()
    await expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^Tentativas demais\. Espere \d+ segundos e tente de novo\.$")
    )
    await assert_accessible(page)


async def test_the_keyboard_alone_signs_in(open_context: OpenContext, live_server: str, team: Team) -> None:
    page = await new_page(open_context, live_server)
    await page.goto("/app/login")
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    await expect(skip).to_be_focused()
    await expect(skip).to_be_visible()  # shown when focused
    await page.keyboard.press("Enter")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("E-mail")).to_be_focused()
    await page.keyboard.type(team.agent.email)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password", exact=True)).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"/app$"))


async def test_a_member_changes_their_password(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.get_by_role("navigation").get_by_role("link", name="Your account").click()
    await page.get_by_label("Current password").fill("not it at all")
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("The current password is wrong.")).to_be_visible()
    await expect(page.get_by_label("Current password")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)
    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_role("status")).to_contain_text("Your password was changed.")
    await screenshot(page, "account")
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await sign_in(page, team.agent.email, NEW_PASSWORD)


async def request_reset(page: Page, email: str) -> None:
    await page.goto("/app/login")
    await page.get_by_role("link", name="Forgot your password?").click()
    await assert_accessible(page)
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_role("button", name="Send me a link").click()
    await expect(page.get_by_role("status")).to_contain_text("If an account uses that address")


async def test_a_forgotten_password_is_reset_through_the_emailed_link_once(
    open_context: OpenContext, live_server: str, team: Team, mail_sink: MailSink
) -> None:
    page = await new_page(open_context, live_server)
    before = mail_sink.count()
    await request_reset(page, team.admin.email)
    link = link_in(mail_sink.wait_for(team.admin.email, after=before))
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    await assert_accessible(page)
    await page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await page.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Set new password").click()
    await expect(page.get_by_role("status")).to_have_text("Your new password is set. Sign in with it.")
    await sign_in(page, team.admin.email, NEW_PASSWORD)
    await page.goto(link)  # the same link again
    await expect(page.get_by_role("heading", name="This link is no longer valid")).to_be_visible()
    await assert_accessible(page)


async def test_an_expired_reset_link_is_refused_in_the_browser(
    open_context: OpenContext,
    live_server: str,
    team: Team,
    mail_sink: MailSink,
    clock: Clock,
    settings: Settings,
) -> None:
    start = datetime.now(UTC)
    clock.at(start)
    page = await new_page(open_context, live_server, "pt-BR")
    before = mail_sink.count()
    await page.goto("/app/password/forgot")
    await page.get_by_label("E-mail").fill(team.viewer.email)
    await page.get_by_role("button", name="Enviar um link").click()
    link = link_in(mail_sink.wait_for(team.viewer.email, after=before))
    clock.at(start + timedelta(minutes=settings.password_reset_minutes + 1))
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Este link não vale mais")).to_be_visible()
    await page.get_by_role("link", name="Pedir um novo link de senha").click()
    await expect(page.get_by_role("heading", name="Esqueceu a senha?")).to_be_visible()


async def test_an_invitation_is_sent_from_the_users_page_and_accepted_from_its_email(
    open_context: OpenContext, live_server: str, team: Team, mail_sink: MailSink
) -> None:
    owner = await new_page(open_context, live_server)
    await sign_in(owner, team.owner.email, PASSWORD)
    await owner.get_by_role("navigation").get_by_role("link", name="Users").click()
    await assert_accessible(owner)
    email = f"nina-{uuid.uuid4().hex[:8]}@example.com"
    before = mail_sink.count()
    await owner.get_by_label("E-mail").fill(email)
    await owner.get_by_label("Role", exact=True).select_option(label="Agent")
    await owner.get_by_role("button", name="Send invitation").click()
    await expect(owner.get_by_role("status")).to_have_text("Invitation sent.")
    await expect(owner.get_by_role("table", name="Invitations not accepted yet")).to_contain_text(email)
    await screenshot(owner, "users")

    invitee = await new_page(open_context, live_server, "pt-BR")
    await invitee.goto(link_in(mail_sink.wait_for(email, after=before)))
    await expect(invitee.get_by_role("heading", name=f"Entrar em {team.name}")).to_be_visible()
    await assert_accessible(invitee)
    await invitee.get_by_label("Seu nome").fill("Nina Nova")
    await invitee.get_by_label("Senha", exact=True).fill(NEW_PASSWORD)
    await invitee.get_by_label("Repita a senha").fill(NEW_PASSWORD)
    await invitee.get_by_role("button", name="Aceitar convite").click()
    await expect(invitee.get_by_role("status")).to_have_text("Boas-vindas! Você entrou na empresa.")
    await expect(invitee.get_by_text(f"Você está trabalhando em {team.name} como Atendente.")).to_be_visible()

    await owner.reload()
    members = owner.get_by_role("table", name=f"Members of {team.name}")
    await expect(members.get_by_role("row", name=re.compile("Nina Nova"))).to_contain_text("Agent")


async def test_a_page_the_role_cannot_use_is_not_linked_and_says_so(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, team.viewer.email, PASSWORD, "pt-BR")
    await expect(page.get_by_role("navigation").get_by_role("link", name="Usuários")).to_have_count(0)
    response = await page.goto("/app/users")
    assert response is not None and response.status == 403
    await expect(page.get_by_role("heading", name="Você não pode usar esta página")).to_be_visible()
    await expect(page.get_by_text("Esta página exige o papel Administrador; o seu é Leitor.")).to_be_visible()
    await assert_accessible(page)


async def test_another_companys_member_is_not_found(
    open_context: OpenContext, live_server: str, team: Team, rival: Team
) -> None:
    """A tampered form (another company's member id) gets the 404 page, as the API answers."""
    page = await new_page(open_context, live_server)
    await sign_in(page, team.owner.email, PASSWORD)
    await page.goto("/app/users")
    token = await page.get_attribute('meta[name="csrf-token"]', "content")
    response = await page.request.post(
        f"/app/users/{rival.agent.user_id}/deactivate", form={"csrf_token": token or ""}
    )
    assert response.status == 404
    await page.evaluate(
        """([action, token]) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            form.innerHTML = '<input type="hidden" name="csrf_token" value="' + token + '">';
            document.body.append(form);
            form.submit();
        }""",
        [f"/app/users/{rival.agent.user_id}/deactivate", token],
    )
    await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    await assert_accessible(page)
    other = await new_page(open_context, live_server)
    await sign_in(other, rival.owner.email, PASSWORD)
    await other.goto("/app/users")
    await expect(other.get_by_role("row", name=re.compile("Ana Agent"))).to_contain_text("Active")


async def test_a_stale_form_is_refused_and_changes_nothing(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    context = await open_context("en", live_server)
    first = await context.new_page()
    await sign_in(first, team.agent.email, PASSWORD)
    await first.goto("/app/account")
    second = await context.new_page()  # the same browser signs out and in again
    await second.goto("/app")
    await second.get_by_role("button", name="Sign out").click()
    await sign_in(second, team.agent.email, PASSWORD)
    # the first tab's form still carries the old session's token
    await first.get_by_label("Current password").fill(PASSWORD)
    await first.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    await first.get_by_label("Repeat the new password").fill(NEW_PASSWORD)
    await first.get_by_role("button", name="Change password").click()
    await expect(first.get_by_role("heading", name="This form has expired")).to_be_visible()
    await expect(first.get_by_text("Nothing was changed")).to_be_visible()
    await assert_accessible(first)
    await second.get_by_role("button", name="Sign out").click()
    await sign_in(second, team.agent.email, PASSWORD)  # the old password still works


async def test_an_owner_changes_a_role_in_place_and_deactivation_signs_the_member_out(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    agent = await new_page(open_context, live_server)
    await sign_in(agent, team.agent.email, PASSWORD)
    owner = await new_page(open_context, live_server)
    await sign_in(owner, team.owner.email, PASSWORD)
    await owner.goto("/app/users")
    row = owner.get_by_role("row", name=re.compile("Ana Agent"))
    # HTMX: the row is replaced, the page is not reloaded (the CSRF token goes as a header)
    await owner.evaluate("window.notReloaded = true")
    await row.get_by_label("New role of Ana Agent").select_option(label="Viewer")
    await row.get_by_role("button", name="Change role of Ana Agent").click()
    await expect(owner.get_by_role("status")).to_have_text("Role changed.")
    await expect(row.get_by_role("cell", name="Viewer", exact=True)).to_be_visible()
    await expect(row.get_by_role("combobox")).to_be_focused()  # the keyboard stays on the row
    assert await owner.evaluate("window.notReloaded") is True
    await row.get_by_role("button", name="Deactivate Ana Agent").click()
    await expect(owner.get_by_role("status")).to_have_text(
        "Member deactivated: their sessions in this company ended."
    )
    await expect(row).to_contain_text("Deactivated")
    await assert_accessible(owner)
    await agent.reload()
    await expect(agent.get_by_role("status")).to_have_text("Your session ended. Sign in again to continue.")
    await agent.get_by_label("E-mail").fill(team.agent.email)
    await agent.get_by_label("Password", exact=True).fill(PASSWORD)
    await agent.get_by_role("button", name="Sign in").click()
    await expect(agent.get_by_role("alert")).to_contain_text("Your access was deactivated.")


async def test_the_language_switch_is_remembered(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await page.goto("/app/login")
    await page.get_by_label("Idioma").select_option(label="English")
    await page.get_by_role("button", name="Mudar idioma").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, team.agent.email, PASSWORD)
    await page.get_by_label("Language").select_option(label="Português (Brasil)")
    await page.get_by_role("button", name="Change language").click()
    await expect(page.get_by_role("status")).to_have_text("Idioma alterado.")
    # another browser, asking for English: the person's choice wins once they are signed in
    other = await new_page(open_context, live_server, "en")
    await other.goto("/app/login")
    await other.get_by_label("E-mail").fill(team.agent.email)
    await other.get_by_label("Password", exact=True).fill(PASSWORD)
    await other.get_by_role("button", name="Sign in").click()
    await expect(other.get_by_role("navigation").get_by_role("link", name="Início")).to_be_visible()
    await expect(other.get_by_role("button", name="Sair")).to_be_visible()


async def test_a_superadmin_creates_a_company_on_its_page(
    open_context: OpenContext, live_server: str, runtime: Runtime, mail_sink: MailSink
) -> None:
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    async with runtime.db.transaction() as session:
        await accounts.make_superadmin(session, email=email, password=PASSWORD, name="Root")
    page = await new_page(open_context, live_server)
    await sign_in(page, email, PASSWORD)
    await expect(page.get_by_role("heading", name="Companies")).to_be_visible()
    name = f"Mercado {uuid.uuid4().hex[:6]}"
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    before = mail_sink.count()
    await page.get_by_label("Company name").fill(name)
    await page.get_by_label("Default language").select_option(label="English")
    await page.get_by_label("Owner's e-mail").fill(owner)
    await page.get_by_role("button", name="Create company").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Company created. Its owner was sent an invitation."
    )
    await expect(page.get_by_role("table", name="Companies on this platform")).to_contain_text(name)
    await assert_accessible(page)
    await screenshot(page, "companies")
    mail_sink.wait_for(owner, after=before)


async def test_every_page_passes_axe_in_both_languages(
    open_context: OpenContext, live_server: str, team: Team
) -> None:
    for language in ("en", "pt-BR"):
        page = await new_page(open_context, live_server, language)
        for path in (
            "/app/login",
            "/app/password/forgot",
            "/app/join/no-such-token",
            "/app/password/reset/nope",
        ):
            await page.goto(path)
            await assert_accessible(page)
        await sign_in(page, team.admin.email, PASSWORD, language)
        for path in ("/app", "/app/account", "/app/users", "/app/platform/companies", "/app/no/such/page"):
            await page.goto(path)
            await assert_accessible(page)
