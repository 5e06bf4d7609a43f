"""Settings → E-mail over HTTP: an admin connects an IMAP mailbox on a real Dovecot (its
settings stored, its secrets encrypted and never in a page, its logins checked by the readiness
monitor: working, then failing with Dovecot's reason once its password is wrong), a POP3 one,
a Mailgun webhook one (the page shows its webhook URL, and a signed post to it is taken) and a
SendGrid one (its URL with the secret part shown once, and a post to that URL taken; another
company sees none of them); bad input is said beside its field and nothing is stored."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from email.message import EmailMessage

import httpx
from sqlalchemy import select

from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from atende.tenancy.crypto import decrypt_secret
from tests.channels.email.conftest import dovecot  # noqa: F401 (fixture)
from tests.fixtures.dashboard import Team, csrf_of, signed_in
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mail import PASSWORD as SMTP_PASSWORD
from tests.fixtures.mail import USER as SMTP_USER
from tests.fixtures.mail import MailSink

PAGE = "/app/settings/email"


def a_user(dovecot: Dovecot) -> tuple[str, str]:  # noqa: F811
    user = f"sac-{uuid.uuid4().hex[:10]}@example.test"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    dovecot.add_user(user, password)
    return user, password


def smtp_fields(sink: MailSink) -> dict[str, str]:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": str(sink.port),
        "smtp_security": "none",
        "smtp_username": SMTP_USER,
        "smtp_secret": SMTP_PASSWORD,
    }


async def connect(client: httpx.AsyncClient, data: dict[str, str]) -> httpx.Response:
    token = csrf_of((await client.get(PAGE)).text)
    return await client.post(PAGE, data={**data, "csrf_token": token})


async def mailboxes(runtime: Runtime, company_id: uuid.UUID) -> dict[str, ChannelAccount]:
    async with runtime.db.transaction(company_id) as session:
        rows = await session.scalars(select(ChannelAccount).where(ChannelAccount.kind == "email"))
        return {row.external_id: row for row in rows}


async def row_of(client: httpx.AsyncClient, account: ChannelAccount, text: str, tries: int = 40) -> str:
    """The mailbox's row once it says ``text`` (the readiness monitor checks in the background)."""
    for _ in range(tries):
        found = re.search(
            rf'<tr id="mailbox-{account.id}">.*?</tr>', (await client.get(PAGE)).text, re.DOTALL
        )
        assert found
        if text in found.group(0):
            return found.group(0)
    raise AssertionError(f"the row never said {text!r}: {found.group(0)}")


async def remove(client: httpx.AsyncClient, account: ChannelAccount) -> None:
    token = csrf_of((await client.get(PAGE)).text)
    r = await client.post(
        f"/app/settings/channels/{account.id}/delete", data={"csrf_token": token, "back": PAGE}
    )
    assert (r.status_code, r.headers["location"]) == (303, f"{PAGE}?notice=channel_account_deleted")


def customer_mail(to: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "cliente@example.org"
    mail["To"] = to
    mail["Subject"] = "Meu pedido"
    mail["Message-ID"] = f"<{uuid.uuid4().hex}@example.org>"
    mail.set_content("Onde está meu pedido?\n")
    return mail


async def test_an_admin_connects_an_imap_mailbox_whose_login_is_checked(
    live_server: str,
    team: Team,
    runtime: Runtime,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: MailSink,
    checks_every_view: None,
) -> None:
    user, password = a_user(dovecot)
    async with signed_in(live_server, team.admin) as client:
        assert "No mailbox is connected yet." in (await client.get(PAGE)).text
        r = await connect(
            client,
            {
                "arrival": "imap",
                "address": user.upper(),
                "from_name": "Loja Suporte",
                "imap_host": "127.0.0.1",
                "imap_port": str(dovecot.imap_port),
                "imap_security": "none",
                "imap_auth": "password",
                "imap_secret": password,
                "signature": "Loja da Olga\r\nAtendimento",
                "bot_replies_per_hour": "3",
                **smtp_fields(smtp_sink),
            },
        )
        assert (r.status_code, r.headers["location"]) == (303, f"{PAGE}?notice=email_connected")
        account = (await mailboxes(runtime, team.company_id))[user]
        assert account.enabled and account.display_name == "Loja Suporte"
        config = account.config
        assert (config["address"], config["inbound"], config["imap_host"], config["imap_port"]) == (
            user,
            "imap",
            "127.0.0.1",
            dovecot.imap_port,
        )
        assert (config["imap_folder"], config["smtp_username"], config["bot_replies_per_hour"]) == (
            "INBOX",
            SMTP_USER,
            3,
        )
        assert config["signature"] == "Loja da Olga\nAtendimento"
        assert sorted(account.secrets) == ["imap_password", "smtp_password"]
        assert password not in str(account.secrets)  # encrypted
        assert decrypt_secret(runtime.secret_key, account.secrets["imap_password"]) == password

        html = (await client.get(f"{PAGE}?notice=email_connected")).text
        assert "Mailbox connected." in html
        assert password not in html and SMTP_PASSWORD not in html
        row = await row_of(client, account, "The logins work")
        assert f"IMAP: <code>127.0.0.1:{dovecot.imap_port}</code>" in row
        assert "IMAP password, SMTP password" in row

        # the password changes at the server: the page says the login failed, and why
        token = csrf_of(html)
        r = await client.post(
            f"/app/settings/channels/{account.id}/secrets",
            data={"csrf_token": token, "back": PAGE, "secret_imap_password": "not-the-password"},
        )
        assert (r.status_code, r.headers["location"]) == (303, f"{PAGE}?notice=channel_account_secrets_saved")
        row = await row_of(client, account, "The login failed")
        assert f"{user}: IMAP login failed" in row
        assert "not-the-password" not in row
        await remove(client, account)
        assert user not in (await client.get(PAGE)).text


async def test_a_pop3_mailbox_and_webhook_mailboxes_with_their_urls(
    live_server: str,
    team: Team,
    rival: Team,
    runtime: Runtime,
    dovecot: Dovecot,  # noqa: F811
    smtp_sink: MailSink,
) -> None:
    pop3_user, pop3_password = a_user(dovecot)
    mailgun = f"mg-{uuid.uuid4().hex[:8]}@example.test"
    sendgrid = f"sg-{uuid.uuid4().hex[:8]}@example.test"
    async with signed_in(live_server, team.admin) as client:
        r = await connect(
            client,
            {
                "arrival": "pop3",
                "address": pop3_user,
                "pop3_host": "127.0.0.1",
                "pop3_port": str(dovecot.pop3_port),
                "pop3_security": "none",
                "pop3_password": pop3_password,
                **smtp_fields(smtp_sink),
            },
        )
        assert r.status_code == 303, r.text
        r = await connect(
            client,
            {
                "arrival": "mailgun",
                "address": mailgun,
                "mailgun_signing_key": "key-mailgun-signing",
                **smtp_fields(smtp_sink),
            },
        )
        assert r.status_code == 303, r.text
        r = await connect(
            client,
            {
                "arrival": "sendgrid",
                "address": sendgrid,
                "webhook_username": "sendgrid",
                "webhook_password": "parse-password",
                **smtp_fields(smtp_sink),
            },
        )
        assert r.status_code == 303, r.text
        found = await mailboxes(runtime, team.company_id)
        assert (found[pop3_user].config["inbound"], found[pop3_user].config["pop3_port"]) == (
            "pop3",
            dovecot.pop3_port,
        )
        assert sorted(found[pop3_user].secrets) == ["pop3_password", "smtp_password"]
        assert (found[mailgun].config["inbound"], found[mailgun].config["provider"]) == ("webhook", "mailgun")
        assert sorted(found[mailgun].secrets) == ["mailgun_signing_key", "smtp_password"]
        assert sorted(found[sendgrid].secrets) == ["smtp_password", "webhook_password", "webhook_path_secret"]
        path_secret = decrypt_secret(runtime.secret_key, found[sendgrid].secrets["webhook_path_secret"])
        assert len(path_secret) >= 40  # made by the page: unguessable

        # the SendGrid URL with its secrets, this once
        html = (await client.get(PAGE)).text
        secret_url = f"http://sendgrid:parse-password@{live_server.removeprefix('http://')}"
        secret_url += f"/webhooks/email/sendgrid/{found[sendgrid].id}/{path_secret}"
        assert f'value="{secret_url}"' in html
        again = (await client.get(PAGE)).text
        assert (
            path_secret not in again and "parse-password" not in again and "key-mailgun-signing" not in again
        )
        assert f'value="{live_server}/webhooks/email/mailgun/{found[mailgun].id}/mime"' in again
        assert f"POP3: <code>127.0.0.1:{dovecot.pop3_port}</code>" in again

        async with signed_in(live_server, rival.admin) as theirs:  # another company sees none of them
            html = (await theirs.get(PAGE)).text
            assert "No mailbox is connected yet." in html
            assert all(address not in html for address in found)

        # SendGrid posting to that URL is taken, and Mailgun posting (signed) to the one listed
        mail = customer_mail(sendgrid)
        async with httpx.AsyncClient(timeout=15) as provider:
            posted = await provider.post(
                secret_url, files={"email": (None, mail.as_bytes()), "to": (None, sendgrid)}
            )
            assert (posted.status_code, posted.json()) == (200, {"outcome": "stored"}), posted.text
            forged = await provider.post(
                secret_url.replace(path_secret, "guessed"), files={"email": (None, mail.as_bytes())}
            )
            assert forged.status_code == 401
            timestamp, token = str(int(time.time())), uuid.uuid4().hex
            signature = hmac.new(b"key-mailgun-signing", (timestamp + token).encode(), hashlib.sha256)
            posted = await provider.post(
                f"{live_server}/webhooks/email/mailgun/{found[mailgun].id}/mime",
                files={
                    "timestamp": (None, timestamp),
                    "token": (None, token),
                    "signature": (None, signature.hexdigest()),
                    "body-mime": (None, customer_mail(mailgun).as_bytes()),
                },
            )
            assert (posted.status_code, posted.json()) == (200, {"outcome": "stored"}), posted.text
        for account in found.values():
            await remove(client, account)


async def test_bad_input_is_said_beside_its_field_and_nothing_is_stored(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    good = {
        "arrival": "imap",
        "address": "sac@example.test",
        "imap_host": "imap.example.test",
        "imap_secret": "app-password-1",
        "smtp_host": "smtp.example.test",
    }
    cases = [
        ({"imap_port": "99999"}, "imap_port", "A port is a number from 1 to 65535."),
        ({"smtp_port": "five"}, "smtp_port", "A port is a number from 1 to 65535."),
        ({"imap_host": "https://imap.example.test"}, "imap_host", "without https:// or a port"),
        ({"imap_host": ""}, "imap_host", "Required to fetch the mail from this server."),
        ({"smtp_host": ""}, "smtp_host", "Required: replies go out over SMTP."),
        ({"imap_security": "none"}, "imap_security", "a password must not cross a network in clear"),
        ({"address": "Sac <sac@example.test>"}, "address", "Enter a plain e-mail address"),
        ({"imap_secret": ""}, "imap_secret", "Required: the mailbox&#39;s password"),
        ({"arrival": "pop3", "pop3_host": "pop.example.test"}, "pop3_password", "Required"),
        ({"arrival": "mailgun", "smtp_secret": "x"}, "mailgun_signing_key", "Mailgun signs every post"),
        ({"poll_seconds": "0"}, "poll_seconds", "A number of seconds from 1 to 3600."),
        ({"bot_replies_per_hour": "-1"}, "bot_replies_per_hour", "A number from 0 to 1000"),
        ({"signature": "s" * 2001}, "signature", "Too long: at most 2000 characters."),
        ({"arrival": "pigeon"}, "arrival", "Choose how mail arrives."),
        ({"smtp_security": "ssl3"}, "smtp_security", "Choose one of the options."),
        ({"imap_auth": "kerberos"}, "imap_auth", "Choose one of the options."),
    ]
    async with signed_in(live_server, team.admin) as client:
        for change, field, message in cases:
            r = await connect(client, {**good, **change})
            assert r.status_code == 422, (change, r.status_code)
            said = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', r.text)
            assert said and message in said.group(1), (change, re.findall(r"field-error[^<]*", r.text))
            assert 'role="alert">The mailbox was not connected' in r.text
            assert "app-password-1" not in r.text  # a secret typed is never sent back
        assert await mailboxes(runtime, team.company_id) == {}
        # the same address twice: the second refused beside the address
        r = await connect(
            client, {**good, "imap_host": "127.0.0.1", "imap_security": "none", "imap_port": "1"}
        )
        assert r.status_code == 303
        r = await connect(client, {**good, "address": "SAC@example.test"})
        assert r.status_code == 409
        assert re.search(r'id="address-error">That mailbox is connected already.', r.text)
        [account] = (await mailboxes(runtime, team.company_id)).values()
        assert account.config["imap_host"] == "127.0.0.1"
        await remove(client, account)
