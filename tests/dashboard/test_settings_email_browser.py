"""Settings → E-mail in Chromium: an admin finds the page from the settings index, chooses the
Gmail preset (the form filled with Gmail's servers; the groups of fields shown follow how mail
arrives), is refused beside the field a wrong value
is in, connects the mailbox (pointed at the tests' Dovecot and SMTP sink, so that its logins
are really checked) and sees it listed, its logins working; every state axe-clean."""

from __future__ import annotations

import uuid

from playwright.async_api import Page, expect
from sqlalchemy import select

from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from tests.channels.email.conftest import dovecot  # noqa: F401 (fixture)
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mail import PASSWORD as SMTP_PASSWORD
from tests.fixtures.mail import USER as SMTP_USER
from tests.fixtures.mail import MailSink


async def reload_until(page: Page, text: str, tries: int = 30) -> None:
    for _ in range(tries):
        await page.reload()
        if await page.locator("#mailboxes").get_by_text(text).count():
            return
    raise AssertionError(f"the page never said {text!r}")


async def test_an_admin_connects_a_gmail_mailbox(
    open_context: OpenContext,
    live_server: str,
    team: Team,
    runtime: Runtime,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: MailSink,
    checks_every_view: None,
) -> None:
    user = f"loja-{uuid.uuid4().hex[:8]}@example.test"
    password = f"app-{uuid.uuid4().hex[:12]}"
    dovecot.add_user(user, password)
    page = await new_page(open_context, live_server)
    await sign_in(page, team.owner.email, PASSWORD)
    await page.goto("/app/settings")
    await page.get_by_role("link", name="E-mail", exact=True).click()
    await expect(page).to_have_url(f"{live_server}/app/settings/email")
    await expect(page.get_by_text("No mailbox is connected yet.")).to_be_visible()
    await assert_accessible(page)

    await page.get_by_role("link", name="Gmail or Google Workspace").click()
    await expect(
        page.get_by_role("heading", name="Connect a mailbox: Gmail or Google Workspace")
    ).to_be_visible()
    form = page.locator("#connect-form")
    assert await form.get_by_label("IMAP server").input_value() == "imap.gmail.com"
    assert await form.get_by_label("IMAP port").input_value() == "993"
    assert await form.get_by_label("SMTP server").input_value() == "smtp.gmail.com"
    assert await form.get_by_label("SMTP port").input_value() == "587"
    assert await form.get_by_label("SMTP security").input_value() == "starttls"
    await assert_accessible(page)

    await form.get_by_label("Address").fill(user)
    await form.get_by_label("Name replies are sent under").fill("Loja Suporte")
    # the form shows the fields of the way mail arrives
    await expect(form.get_by_label("POP3 server")).to_be_hidden()
    await expect(form.get_by_label("Mailgun HTTP webhook signing key")).to_be_hidden()
    await form.get_by_label("How does mail arrive?").select_option("mailgun")
    await expect(form.get_by_label("Mailgun HTTP webhook signing key")).to_be_visible()
    await expect(form.get_by_label("IMAP server")).to_be_hidden()
    await form.get_by_label("How does mail arrive?").select_option("imap")
    await form.get_by_label("IMAP password, app password or token").fill(password)
    # Gmail's own servers cannot take the tests' login; the tests' servers can, on this machine
    await form.get_by_label("IMAP server").fill("127.0.0.1")
    await form.get_by_label("IMAP port").fill(str(dovecot.imap_port))
    await form.get_by_label("SMTP server").fill("smtp.example.test")
    await form.get_by_label("SMTP port").fill(str(smtp_sink.port))
    await form.get_by_label("SMTP security").select_option("none")
    await form.get_by_role("button", name="Connect mailbox").click()
    # plain text to a remote host: refused beside the SMTP security field
    await expect(page.get_by_role("alert")).to_contain_text("The mailbox was not connected")
    await expect(page.locator("#smtp_security-error")).to_contain_text("Choose TLS or STARTTLS")
    await expect(form.get_by_label("SMTP security")).to_have_attribute("aria-invalid", "true")
    await assert_accessible(page)
    assert await form.get_by_label("Address").input_value() == user  # kept as typed
    assert await form.get_by_label("IMAP password, app password or token").input_value() == ""  # not

    await form.get_by_label("IMAP security").select_option("none")
    await form.get_by_label("IMAP password, app password or token").fill(password)
    await form.get_by_label("SMTP server").fill("127.0.0.1")
    await form.get_by_label("SMTP login").fill(SMTP_USER)
    await form.get_by_label("SMTP password, app password or token").fill(SMTP_PASSWORD)
    await form.get_by_label("Signature").fill("Loja da Olga")
    await form.get_by_role("button", name="Connect mailbox").click()
    await expect(page.get_by_text("Mailbox connected.")).to_be_visible()
    table = page.locator("#mailboxes")
    await expect(table).to_contain_text(user)
    await expect(table).to_contain_text("Loja Suporte")
    assert password not in await page.content()
    await reload_until(page, "The logins work")
    await assert_accessible(page)

    async with runtime.db.transaction(team.company_id) as session:
        row = await session.scalar(select(ChannelAccount).where(ChannelAccount.external_id == user))
    assert row is not None and row.kind == "email" and row.config["signature"] == "Loja da Olga"
    await page.get_by_role("button", name=f"Remove {user}").click()
    await expect(page.get_by_text("No mailbox is connected yet.")).to_be_visible()
