"""E-mailed links over HTTP, through a real SMTP server on loopback: password resets and
invitations work once, until they expire; the platform's superadmin creates a company and
invites its first owner; without an SMTP server the e-mail goes to the log."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from atende.config import Settings
from atende.mail import sender, tasks
from atende.runtime import Runtime
from atende.tenancy import accounts
from atende.tenancy.models import Company
from tests.conftest import Clock
from tests.fixtures.dashboard import PASSWORD, Team, browser_client, csrf_of, post_form, sign_in, signed_in
from tests.fixtures.mail import USER, MailSink, body, link_in

NEW_PASSWORD = "a brand new secret 7"


async def ask_for_reset(base_url: str, email: str) -> None:
    async with browser_client(base_url) as client:
        page = await client.get("/app/password/forgot")
        response = await client.post(
            "/app/password/forgot", data={"email": email, "csrf_token": csrf_of(page.text)}
        )
        assert (response.status_code, response.headers["location"]) == (303, "/app/login?notice=reset_sent")


async def test_a_reset_link_is_emailed_works_once_and_ends_the_old_sessions(
    live_server: str, team: Team, mail_sink: MailSink, settings: Settings
) -> None:
    async with signed_in(live_server, team.agent) as old_session:
        before = mail_sink.count()
        await ask_for_reset(live_server, team.agent.email.upper())  # as typed
        message = mail_sink.wait_for(team.agent.email, after=before)
        assert USER in mail_sink.logins  # atende logged in with ATENDE_SMTP_USER
        assert message["From"] == settings.smtp_from
        assert "Choose a new password" in message["Subject"] or "Escolha" in message["Subject"]
        link = link_in(message)
        assert link.startswith(f"{live_server}/app/password/reset/")
        async with browser_client(live_server) as client:
            page = await client.get(link)
            assert page.status_code == 200
            assert f"For {team.agent.email}." in page.text
            token = csrf_of(page.text)
            response = await client.post(
                link,
                data={"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD, "csrf_token": token},
            )
            assert (response.status_code, response.headers["location"]) == (
                303,
                "/app/login?notice=password_set",
            )
            again = await client.post(
                link,
                data={
                    "new_password": "another one 99",
                    "confirm_password": "another one 99",
                    "csrf_token": token,
                },
            )
            assert again.status_code == 410
            assert "This link is no longer valid" in again.text
            assert (await client.get(link)).status_code == 410
        assert (await old_session.get("/app", follow_redirects=False)).status_code == 303  # signed out
    async with browser_client(live_server) as client:
        assert (await sign_in(client, team.agent.email, PASSWORD)).status_code == 401
        assert (await sign_in(client, team.agent.email, NEW_PASSWORD)).status_code == 303


async def test_an_expired_reset_link_is_refused(
    live_server: str, team: Team, mail_sink: MailSink, clock: Clock, settings: Settings
) -> None:
    start = datetime.now(UTC)
    clock.at(start)
    before = mail_sink.count()
    await ask_for_reset(live_server, team.viewer.email)
    link = link_in(mail_sink.wait_for(team.viewer.email, after=before))
    clock.at(start + timedelta(minutes=settings.password_reset_minutes, seconds=1))
    async with browser_client(live_server) as client:
        page = await client.get(link)
        assert page.status_code == 410
        assert "Ask for a new password link" in page.text


async def test_asking_for_a_reset_of_an_unknown_address_says_the_same_and_sends_nothing(
    live_server: str, mail_sink: MailSink
) -> None:
    before = mail_sink.count()
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    await ask_for_reset(live_server, nobody)
    with pytest.raises(AssertionError, match="no e-mail"):
        mail_sink.wait_for(nobody, after=before, timeout=2)


async def test_a_second_reset_request_replaces_the_first_link(
    live_server: str, team: Team, mail_sink: MailSink
) -> None:
    before = mail_sink.count()
    await ask_for_reset(live_server, team.admin.email)
    first = link_in(mail_sink.wait_for(team.admin.email, after=before))
    before = mail_sink.count()
    await ask_for_reset(live_server, team.admin.email)
    second = link_in(mail_sink.wait_for(team.admin.email, after=before))
    async with browser_client(live_server) as client:
        assert (await client.get(first)).status_code == 410
        assert (await client.get(second)).status_code == 200


async def invite(base_url: str, inviter_client_email: str, team: Team, email: str, role: str) -> None:
    async with signed_in(base_url, team.owner) as client:
        response = await post_form(
            client, "/app/users/invite", {"email": email, "role": role}, page="/app/users"
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/app/users?notice=invitation_sent",
        )
        assert email in (await client.get("/app/users")).text  # pending


async def test_an_invitation_is_emailed_and_makes_a_new_member_once(
    live_server: str, team: Team, mail_sink: MailSink
) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    before = mail_sink.count()
    await invite(live_server, team.owner.email, team, email, "viewer")
    message = mail_sink.wait_for(email, after=before)
    assert team.name in message["Subject"]
    assert "Leitor" in body(message)  # the company's language: Portuguese
    link = link_in(message)
    async with browser_client(live_server) as client:
        page = await client.get(link)
        assert f"Join {team.name}" in page.text
        token = csrf_of(page.text)
        mismatch = await client.post(
            link,
            data={
                "name": "Nina",
                "password": NEW_PASSWORD,
                "confirm_password": "other 123456",
                "csrf_token": token,
            },
        )
        assert mismatch.status_code == 422
        assert "The two passwords are different." in mismatch.text
        response = await client.post(
            link,
            data={
                "name": "Nina",
                "password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
                "csrf_token": token,
            },
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/app?notice=invitation_accepted",
        )
        home = (await client.get("/app?notice=invitation_accepted")).text
        assert f"You are working in {team.name} as Viewer." in home
        assert "Welcome! You joined the company." in home
        again = await client.get(link)
        assert again.status_code == 410
        assert "This invitation is no longer valid" in again.text


async def test_someone_with_an_account_accepts_with_their_own_password(
    live_server: str, team: Team, rival: Team, mail_sink: MailSink
) -> None:
    before = mail_sink.count()
    await invite(live_server, team.owner.email, team, rival.agent.email, "agent")
    link = link_in(mail_sink.wait_for(rival.agent.email, after=before))
    async with browser_client(live_server) as client:
        page = await client.get(link)
        assert "You already have an account: type its password to accept." in page.text
        token = csrf_of(page.text)
        wrong = await client.post(link, data={"password": "not theirs 123", "csrf_token": token})
        assert wrong.status_code == 422
        assert "That is not the password of your account." in wrong.text
        response = await client.post(link, data={"password": PASSWORD, "csrf_token": token})
        assert response.status_code == 303
        home = (await client.get("/app")).text
        assert f"You are working in {team.name} as Agent." in home
        assert "Rival Shop" in home  # the switcher offers both


async def test_an_invitation_expires_and_can_be_cancelled(
    live_server: str, team: Team, mail_sink: MailSink, clock: Clock, settings: Settings
) -> None:
    start = datetime.now(UTC)
    clock.at(start)
    late, cancelled = (f"{n}-{uuid.uuid4().hex[:8]}@example.com" for n in ("late", "cancelled"))
    before = mail_sink.count()
    await invite(live_server, team.owner.email, team, late, "agent")
    await invite(live_server, team.owner.email, team, cancelled, "agent")
    late_link = link_in(mail_sink.wait_for(late, after=before))
    cancelled_link = link_in(mail_sink.wait_for(cancelled, after=before))
    async with signed_in(live_server, team.admin) as client:
        users = (await client.get("/app/users")).text
        invitation_id = (
            users.split(f"{cancelled}</td>", 1)[1].split("/app/invitations/", 1)[1].split("/cancel", 1)[0]
        )
        response = await post_form(client, f"/app/invitations/{invitation_id}/cancel", page="/app/users")
        assert response.status_code == 303
        assert cancelled not in (await client.get("/app/users")).text
    clock.at(start + timedelta(days=settings.invitation_days, seconds=1))
    async with browser_client(live_server) as client:
        assert (await client.get(cancelled_link)).status_code == 410
        assert (await client.get(late_link)).status_code == 410


async def test_a_superadmin_creates_a_company_and_invites_its_owner(
    live_server: str, runtime: Runtime, mail_sink: MailSink
) -> None:
    admin_email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    async with runtime.db.transaction() as session:
        await accounts.make_superadmin(session, email=admin_email, password=PASSWORD)
    owner = f"founder-{uuid.uuid4().hex[:8]}@example.com"
    name = f"Padaria {uuid.uuid4().hex[:6]}"
    async with browser_client(live_server) as client:
        assert (await sign_in(client, admin_email)).status_code == 303
        first = await client.get("/app", follow_redirects=False)
        assert first.headers["location"] == "/app/platform/companies"  # no company of their own
        page = await client.get("/app/platform/companies")
        bad = await client.post(
            "/app/platform/companies",
            data={
                "name": name,
                "default_language": "en",
                "owner_email": "nope",
                "csrf_token": csrf_of(page.text),
            },
        )
        assert bad.status_code == 422
        assert "Type a valid e-mail address" in bad.text
        before = mail_sink.count()
        response = await client.post(
            "/app/platform/companies",
            data={
                "name": name,
                "default_language": "en",
                "owner_email": owner,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/app/platform/companies?notice=company_created",
        )
        assert name in (await client.get("/app/platform/companies")).text
    async with runtime.db.transaction() as session:
        assert await session.scalar(select(Company.id).where(Company.name == name)) is not None
    message = mail_sink.wait_for(owner, after=before)
    assert "as Owner" in body(message)  # in the company's language, English
    async with browser_client(live_server) as client:
        page = await client.get(link_in(message))
        response = await client.post(
            link_in(message),
            data={
                "name": "Fiona",
                "password": NEW_PASSWORD,
                "confirm_password": NEW_PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
        )
        assert response.status_code == 303
        assert f"You are working in {name} as Owner." in (await client.get("/app")).text


async def test_without_an_smtp_server_the_email_goes_to_the_log(
    runtime: Runtime, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    mail = sender.Mail(
        to="ana@example.com", subject="Choose a new password", text="Open http://x/app/password/reset/abc"
    )

    context = SimpleNamespace(additional_context={"runtime": runtime})
    original = runtime.settings
    runtime.settings = settings.model_copy(update={"smtp_host": None})
    try:
        with caplog.at_level(logging.WARNING):
            result = await tasks.send(context, sender.seal(runtime.secret_key, mail))  # type: ignore[arg-type]
    finally:
        runtime.settings = original
    assert result == "logged"
    assert "http://x/app/password/reset/abc" in caplog.text
    assert "mail.not_sent" in caplog.text
    assert "ana@example.com" not in sender.seal(runtime.secret_key, mail)  # the job's argument is sealed
