"""The e-mail channel end to end: a mailbox on the real Dovecot connected to a company over the
API, fetched by a worker's watcher (``channels.watchers``), answered by the bot through the
live server's worker and outbox over SMTP to a real sink (aiosmtpd), in the customer's thread;
provider webhooks posted to the live server.

The watchers run here, in a worker of the test's own that re-reads the accounts every 0.1 s
(the live server's re-reads them every 15 s): a mailbox a test connects is fetched at once.
The live server's watcher starts on it too, later, and finds it busy (one fetcher per
mailbox), as a second worker would."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atende.channels import watchers
from atende.channels.email.models import MailboxState
from atende.channels.email.providers import mailgun
from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.channels.email.conftest import Mailbox
from tests.conftest import CompanyCtx, until
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mail import PASSWORD as SMTP_PASSWORD
from tests.fixtures.mail import MailSink, body, mailbox_config

QUESTION = "Qual o prazo de entrega?"


@dataclass
class Shop:
    """A company's mailbox on the test Dovecot, connected as an e-mail account."""

    company: CompanyCtx
    mailbox: Mailbox
    sink: MailSink
    account_id: str

    @property
    def address(self) -> str:
        return self.mailbox.user


async def connect(
    company: CompanyCtx,
    dovecot: Dovecot,
    sink: MailSink,
    runtime: Runtime,
    *,
    config: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
) -> Shop:
    user = f"box-{uuid.uuid4().hex[:10]}@example.test"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    dovecot.add_user(user, password)
    r = await company.client.post(
        "/v1/channel-accounts",
        json={
            "kind": "email",
            "external_id": user.upper(),  # the address, whatever its case
            "display_name": "Suporte",
            "config": {
                **mailbox_config(user, dovecot, sink),
                "from_name": "Loja Suporte",
                "signature": "Loja Exemplo\nAtendimento",
                **(config or {}),
            },
            "secrets": {
                "imap_password": password,
                "pop3_password": password,
                "smtp_password": SMTP_PASSWORD,
                **(secrets or {}),
            },
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["external_id"] == user
    assert password not in r.text
    account_id = r.json()["id"]
    mailbox = Mailbox(dovecot, user, password, company.id, uuid.UUID(account_id), runtime.db.url)
    return Shop(company, mailbox, sink, account_id)


async def fetching(shop: Shop, runtime: Runtime) -> None:
    """Wait until the worker's fetcher has looked at the mailbox once (it takes mail that
    arrives from then on, not what was there before)."""

    async def started() -> bool:
        async with runtime.db.transaction(shop.company.id) as session:
            found = await session.scalar(
                select(MailboxState.id).where(MailboxState.account_id == uuid.UUID(shop.account_id))
            )
        return found is not None

    await until(started, what="the mailbox's fetcher")


def customer_mail(
    subject: str,
    text: str,
    *,
    to: str,
    sender: str = "Ana Souza <ana@example.org>",
    headers: dict[str, str] | None = None,
) -> tuple[bytes, str]:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now().astimezone())
    message_id = make_msgid(domain="example.org")
    mail["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(text)
    return mail.as_bytes(), message_id


async def messages(company: CompanyCtx) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    listed = (await company.client.get("/v1/conversations", params={"channel": "email", "limit": 100})).json()
    for conversation in listed["items"]:
        r = await company.client.get(
            f"/v1/conversations/{conversation['id']}/messages", params={"limit": 100}
        )
        found.extend(r.json()["items"])
    return found


async def stored(company: CompanyCtx, message_id: str) -> dict[str, Any] | None:
    return next((m for m in await messages(company) if m["channel_message_id"] == message_id), None)


async def conversation(company: CompanyCtx, conversation_id: str) -> dict[str, Any]:
    r = await company.client.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def provider_id(runtime: Runtime, company_id: uuid.UUID, message_id: str) -> str | None:
    async with runtime.db.transaction(company_id) as session:
        found: str | None = await session.scalar(
            select(Message.provider_message_id).where(Message.id == uuid.UUID(message_id))
        )
    return found


async def wait_mail(sink: MailSink, to: str, *, after: int) -> EmailMessage:
    return await asyncio.to_thread(sink.wait_for, to, after=after, timeout=30)


@pytest.fixture
async def watching(runtime: Runtime, live_server: str) -> AsyncIterator[None]:
    """A worker's watchers, re-reading the accounts every 0.1 s."""
    quick = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"channel_watch_resync_seconds": 0.1})
    )
    stop = asyncio.Event()
    task = asyncio.create_task(watchers.run(quick, stop))
    yield
    stop.set()
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def shop(
    kb_company: CompanyCtx, dovecot: Dovecot, smtp_sink: MailSink, runtime: Runtime, watching: None
) -> Shop:
    shop = await connect(kb_company, dovecot, smtp_sink, runtime)
    await fetching(shop, runtime)
    return shop


async def test_a_customer_mail_is_answered_in_its_thread_and_the_answer_to_it_joins_it(
    shop: Shop, runtime: Runtime
) -> None:
    raw, first_id = customer_mail(
        "Prazo de entrega", f"{QUESTION}\n\n-- \nAna Souza\n(11) 99999-0000", to=f"Suporte <{shop.address}>"
    )
    shop.mailbox.deliver(raw)
    reply = await wait_mail(shop.sink, "ana@example.org", after=0)
    # threaded under the customer's message, from the mailbox, marked as automatic
    assert reply["In-Reply-To"] == first_id
    assert reply["References"] == first_id
    assert reply["Subject"] == "Re: Prazo de entrega"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert shop.address in str(reply["From"]) and "Loja Suporte" in str(reply["From"])
    text = body(reply).replace("\r\n", "\n")
    assert "Loja Exemplo\nAtendimento" in text and "\n-- \n" in text  # the signature
    assert "Fontes:" in text or "Sources:" in text  # the answer's sources as footnotes
    assert reply.get_body(preferencelist=("html",)) is not None

    customer = await until(lambda: stored(shop.company, first_id), what="the stored message")
    assert customer["text"] == QUESTION  # what the bot read: no signature
    assert "Ana Souza" in customer["meta"]["email"]["text"]  # the whole, for agents
    assert customer["meta"]["email"]["subject"] == "Prazo de entrega"
    bot = [m for m in await messages(shop.company) if m["author"] == "bot"]
    assert len(bot) == 1 and bot[0]["conversation_id"] == customer["conversation_id"]
    sent_id = await until(lambda: provider_id(runtime, shop.company.id, bot[0]["id"]), what="the sent id")
    assert sent_id == reply["Message-ID"]

    # the customer answers the bot's e-mail, quoting it: the same conversation, quote stripped
    answer_raw, second_id = customer_mail(
        "Re: Prazo de entrega",
        "E para o Rio de Janeiro?\n\n"
        f"Em seg., 7 de dez. de 2026 às 10:00, Suporte <{shop.address}> escreveu:\n"
        + "".join(f"> {line}\n" for line in text.splitlines()),
        to=shop.address,
        headers={"In-Reply-To": sent_id, "References": f"{first_id} {sent_id}"},
    )
    shop.mailbox.deliver(answer_raw)
    second = await until(lambda: stored(shop.company, second_id), what="the customer's answer")
    assert second["conversation_id"] == customer["conversation_id"]
    assert second["text"] == "E para o Rio de Janeiro?"
    assert "escreveu:" in second["meta"]["email"]["text"]  # the whole, for agents
    again = await wait_mail(shop.sink, "ana@example.org", after=1)
    assert again["In-Reply-To"] == second_id
    assert again["References"].split() == [first_id, sent_id, second_id]
    assert again["Subject"] == "Re: Prazo de entrega"

    # the same message fetched twice (a worker killed before it recorded the UID): stored and
    # answered once. A later message shows the fetcher went past it.
    shop.mailbox.deliver(raw)
    third_raw, third_id = customer_mail("Troca", "Como faço para trocar um produto?", to=shop.address)
    shop.mailbox.deliver(third_raw)
    await until(lambda: stored(shop.company, third_id), what="the message after the duplicate")
    found = [m for m in await messages(shop.company) if m["channel_message_id"] == first_id]
    assert len(found) == 1
    await asyncio.sleep(1.0)
    assert [m["In-Reply-To"] for m in shop.sink.to("ana@example.org")].count(first_id) == 1

    # an agent's reply from the API goes out in the thread too, without Auto-Submitted
    count = shop.sink.count()
    pdf = b"%PDF-1.4\n" + uuid.uuid4().bytes * 100 + b"\n%%EOF\n"
    uploaded = await shop.company.client.post(
        "/v1/media", content=pdf, headers={"Content-Type": "application/pdf"}, params={"filename": "nota.pdf"}
    )
    assert uploaded.status_code == 201, uploaded.text
    r = await shop.company.client.post(
        f"/v1/conversations/{customer['conversation_id']}/replies",
        json={"text": "Enviamos hoje mesmo. Segue a nota.", "attachments": [uploaded.json()["id"]]},
    )
    assert r.status_code == 201, r.text
    agent_mail = await wait_mail(shop.sink, "ana@example.org", after=count)
    assert agent_mail["In-Reply-To"] == second_id
    assert agent_mail["Subject"] == "Re: Prazo de entrega"
    assert agent_mail["Auto-Submitted"] is None
    assert "Enviamos hoje mesmo." in body(agent_mail)
    [file] = list(agent_mail.iter_attachments())
    assert (file.get_filename(), file.get_content_type(), file.get_content()) == (
        "nota.pdf",
        "application/pdf",
        pdf,
    )


def bounce(to: str, original_id: str) -> tuple[bytes, str]:
    """A delivery status report (RFC 3464), as a mail server sends one."""
    report = EmailMessage()
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.example.org>"
    report["To"] = to
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report["Date"] = format_datetime(datetime.now().astimezone())
    message_id = make_msgid(domain="mx.example.org")
    report["Message-ID"] = message_id
    report.set_content(
        "This is the mail system at host mx.example.org.\n\nI'm sorry to have to inform you..."
    )
    status = EmailMessage()
    status.set_content(
        f"Reporting-MTA: dns; mx.example.org\n\nFinal-Recipient: rfc822; nobody@example.org\n"
        f"Action: failed\nStatus: 5.1.1\nX-Original-Message-ID: {original_id}\n"
    )
    report.add_attachment(status.get_content(), subtype="plain", filename="status.txt")
    report.replace_header(
        "Content-Type", report["Content-Type"].replace("multipart/mixed", "multipart/report")
    )
    report.set_param("report-type", "delivery-status")
    return report.as_bytes(), message_id


async def test_automatic_mail_is_stored_for_agents_and_not_answered(
    kb_company: CompanyCtx, dovecot: Dovecot, smtp_sink: MailSink, runtime: Runtime, watching: None
) -> None:
    shop = await connect(kb_company, dovecot, smtp_sink, runtime, config={"bot_replies_per_hour": 1})
    await fetching(shop, runtime)
    out_of_office, ooo_id = customer_mail(
        "Ausente",
        "Estou fora até segunda.",
        to=shop.address,
        sender="bia@example.org",
        headers={"Auto-Submitted": "auto-replied"},
    )
    newsletter, list_id = customer_mail(
        "Ofertas",
        QUESTION,
        to=shop.address,
        sender="news@example.org",
        headers={"List-Id": "<ofertas.example.org>", "Precedence": "bulk"},
    )
    bounced, bounce_id = bounce(shop.address, "<x@example.test>")
    ours, ours_id = customer_mail("Cópia", QUESTION, to="ana@example.org", sender=shop.address)
    first, first_id = customer_mail("Prazo", QUESTION, to=shop.address, sender="caio@example.org")
    second, second_id = customer_mail("Outra", "E a troca?", to=shop.address, sender="caio@example.org")
    for raw in (out_of_office, newsletter, bounced, ours, first):
        shop.mailbox.deliver(raw)
    answered = await wait_mail(shop.sink, "caio@example.org", after=0)
    assert answered["In-Reply-To"] == first_id
    shop.mailbox.deliver(second)  # over the cap of one bot reply an hour

    for message_id, reason in (
        (ooo_id, "Auto-Submitted"),
        (list_id, "Precedence"),
        (bounce_id, "bounce"),
        (second_id, "limit is 1"),
    ):
        message = await until(lambda m=message_id: stored(shop.company, m), what=message_id)
        assert reason in message["meta"]["not_for_the_bot"]["reason"], message["meta"]
        # the conversation waits for the team, unanswered
        await until(
            lambda m=message: conversation(shop.company, m["conversation_id"]),
            what="the conversation",
        )
        state = await until(
            lambda m=message: _state_is(shop.company, m["conversation_id"], "waiting_human"),
            what=f"{message_id} queued for the team",
        )
        assert state
    bounce_message = await stored(shop.company, bounce_id)
    assert bounce_message is not None
    assert any(a.get("media_id") for a in bounce_message["meta"]["attachments"])  # the report, kept
    assert await stored(shop.company, ours_id) is None  # our own mail: not a customer's
    replies = [m for m in await messages(shop.company) if m["author"] == "bot"]
    assert len(replies) == 1
    assert len(shop.sink.received) == 1


async def _state_is(company: CompanyCtx, conversation_id: str, state: str) -> bool:
    return (await conversation(company, conversation_id))["state"] == state


async def test_a_refused_reply_is_marked_failed_with_the_servers_reason(shop: Shop) -> None:
    shop.sink.refuse("550 5.1.1 <ana@example.org>: mailbox unavailable")
    raw, message_id = customer_mail("Prazo", QUESTION, to=shop.address)
    shop.mailbox.deliver(raw)
    customer = await until(lambda: stored(shop.company, message_id))

    async def failed() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in await messages(shop.company)
                if m["reply_to_id"] == customer["id"] and m["delivery_status"] == "failed"
            ),
            None,
        )

    reply = await until(failed, what="the failed reply")
    assert "550 5.1.1" in reply["delivery_error"] and "mailbox unavailable" in reply["delivery_error"]
    assert shop.sink.count() == 0


def mailgun_form(key: str, raw: bytes, *, signature: str | None = None) -> dict[str, str]:
    timestamp, token = str(int(time.time())), uuid.uuid4().hex
    return {
        "timestamp": timestamp,
        "token": token,
        "signature": signature or mailgun.sign(key, timestamp, token),
        "recipient": "",
        "sender": "ana@example.org",
        "body-mime": raw.decode(),
    }


async def test_a_mailgun_post_is_stored_and_answered_and_a_forged_one_is_refused(
    kb_company: CompanyCtx, dovecot: Dovecot, smtp_sink: MailSink, runtime: Runtime, live_server: str
) -> None:
    key = f"key-{uuid.uuid4().hex}"
    shop = await connect(
        kb_company,
        dovecot,
        smtp_sink,
        runtime,
        config={"inbound": "webhook", "provider": "mailgun"},
        secrets={"mailgun_signing_key": key},
    )
    raw, message_id = customer_mail("Prazo de entrega", QUESTION, to=shop.address)
    url = f"{live_server}/webhooks/email/mailgun/{shop.account_id}/mime"
    async with httpx.AsyncClient(timeout=15) as client:
        forged = await client.post(url, data=mailgun_form("not-the-key", raw))
        assert forged.status_code == 401, forged.text
        assert await stored(shop.company, message_id) is None

        r = await client.post(url, data=mailgun_form(key, raw))
        assert r.status_code == 200, r.text
        assert r.json() == {"outcome": "stored"}
        reply = await wait_mail(shop.sink, "ana@example.org", after=0)
        assert reply["In-Reply-To"] == message_id
        # Mailgun retrying the same message (a new token): stored once
        again = await client.post(url, data=mailgun_form(key, raw))
        assert again.json() == {"outcome": "duplicate"}
        unknown = await client.post(
            f"{live_server}/webhooks/email/mailgun/{uuid.uuid4()}/mime", data=mailgun_form(key, raw)
        )
        assert unknown.status_code == 404
        # the account is Mailgun's: a post as another provider is not taken
        other = await client.post(f"{live_server}/webhooks/email/postmark/{shop.account_id}", json={})
        assert other.status_code == 404


async def test_a_postmark_post_behind_basic_auth_and_a_secret_path_is_stored(
    kb_company: CompanyCtx, dovecot: Dovecot, smtp_sink: MailSink, runtime: Runtime, live_server: str
) -> None:
    password, secret = uuid.uuid4().hex, uuid.uuid4().hex
    shop = await connect(
        kb_company,
        dovecot,
        smtp_sink,
        runtime,
        config={"inbound": "webhook", "provider": "postmark"},
        secrets={"webhook_password": password, "webhook_path_secret": secret},
    )
    raw, message_id = customer_mail("Prazo de entrega", QUESTION, to=shop.address)
    url = f"{live_server}/webhooks/email/postmark/{shop.account_id}"
    async with httpx.AsyncClient(timeout=15) as client:
        for wrong in (
            client.post(f"{url}/{secret}", json={"RawEmail": raw.decode()}, auth=("atende", "guess")),
            client.post(f"{url}/not-the-secret", json={"RawEmail": raw.decode()}, auth=("atende", password)),
        ):
            refused = await wrong
            assert refused.status_code == 401, refused.text
        assert await stored(shop.company, message_id) is None
        r = await client.post(f"{url}/{secret}", json={"RawEmail": raw.decode()}, auth=("atende", password))
        assert r.status_code == 200 and r.json() == {"outcome": "stored"}, r.text
    reply = await wait_mail(shop.sink, "ana@example.org", after=0)
    assert reply["In-Reply-To"] == message_id and reply["Subject"] == "Re: Prazo de entrega"


async def test_a_pop3_mailbox_is_fetched_and_answered(
    kb_company: CompanyCtx, dovecot: Dovecot, smtp_sink: MailSink, runtime: Runtime, watching: None
) -> None:
    shop = await connect(
        kb_company,
        dovecot,
        smtp_sink,
        runtime,
        config={
            "inbound": "pop3",
            "pop3_host": "127.0.0.1",
            "pop3_port": dovecot.pop3_port,
            "pop3_security": "none",
            "poll_seconds": 1,
        },
    )
    await fetching(shop, runtime)
    raw, message_id = customer_mail("Prazo de entrega", QUESTION, to=shop.address)
    shop.mailbox.deliver(raw)
    reply = await wait_mail(shop.sink, "ana@example.org", after=0)
    assert reply["In-Reply-To"] == message_id
    assert shop.mailbox.count() == 1  # left on the server


async def test_files_and_inline_pictures_are_kept_and_the_html_shows_no_remote_content(
    shop: Shop, runtime: Runtime
) -> None:
    png = bytes.fromhex("89504e470d0a1a0a") + uuid.uuid4().bytes * 20
    mail = EmailMessage()
    mail["From"] = "Ana Souza <ana@example.org>"
    mail["To"] = shop.address
    mail["Subject"] = "Produto com defeito"
    mail["Message-ID"] = message_id = make_msgid(domain="example.org")
    mail.set_content("O produto chegou quebrado, veja a foto.")
    mail.add_alternative(
        '<p>O produto chegou <b>quebrado</b>, veja a foto:</p><img src="cid:foto1@example.org">'
        '<img src="https://tracker.example.com/pixel.gif"><script>alert(1)</script>',
        subtype="html",
    )
    mail.get_payload()[1].add_related(png, "image", "png", cid="<foto1@example.org>", filename="foto.png")
    mail.add_attachment(b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf", filename="pedido.pdf")
    shop.mailbox.deliver(mail.as_bytes())

    stored_message = await until(lambda: stored(shop.company, message_id), what="the message")
    files = {f["filename"]: f for f in stored_message["meta"]["attachments"]}
    assert set(files) == {"foto.png", "pedido.pdf"}
    assert files["foto.png"]["inline"] and not files["pedido.pdf"]["inline"]
    picture = await shop.company.client.get(f"/v1/media/{files['foto.png']['media_id']}")
    assert picture.status_code == 200 and picture.content == png
    html = stored_message["meta"]["email"]["html"]
    assert f'src="/app/media/{files["foto.png"]["media_id"]}"' in html  # the stored copy
    assert "tracker.example.com" not in html and "<script" not in html
    assert stored_message["text"] == "O produto chegou quebrado, veja a foto."


@pytest.mark.parametrize("marker", ["address", "subject"])
async def test_a_reply_whose_client_dropped_the_headers_finds_its_conversation_by_the_token(
    marker: str,
    kb_company: CompanyCtx,
    dovecot: Dovecot,
    smtp_sink: MailSink,
    runtime: Runtime,
    watching: None,
) -> None:
    shop = await connect(kb_company, dovecot, smtp_sink, runtime, config={"thread_marker": marker})
    await fetching(shop, runtime)
    raw, first_id = customer_mail("Prazo de entrega", QUESTION, to=shop.address)
    shop.mailbox.deliver(raw)
    reply = await wait_mail(shop.sink, "ana@example.org", after=0)
    local, _, domain = shop.address.partition("@")
    if marker == "address":
        assert str(reply["Reply-To"]).startswith(f"{local}+c-") and str(reply["Reply-To"]).endswith(
            f"@{domain}"
        )
        assert reply["Subject"] == "Re: Prazo de entrega"
        answer_to, subject = str(reply["Reply-To"]), "Re: Prazo de entrega"
    else:
        assert reply["Reply-To"] is None
        assert str(reply["Subject"]).startswith("Re: Prazo de entrega [#")
        answer_to, subject = shop.address, str(reply["Subject"])
    # the customer's client answers without In-Reply-To or References
    answer, answer_id = customer_mail(subject, "E para o Rio?", to=answer_to)
    shop.mailbox.deliver(answer)
    first = await until(lambda: stored(shop.company, first_id))
    second = await until(lambda: stored(shop.company, answer_id), what="the answer")
    assert second["conversation_id"] == first["conversation_id"]
