"""A customer's e-mail on the conversation page: the text the bot read, the subject, the whole
e-mail (quote and signature included) behind a disclosure, the files it brought, and why the
bot did not answer an automatic one; an agent's answer from the page's reply form goes out
over SMTP (the outbox, to a real sink) in the customer's thread."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from atende.channels.base import Account
from atende.channels.email import receive
from atende.channels.email.channel import channel
from atende.runtime import Runtime
from tests.fixtures.dashboard import Team, csrf_of, signed_in
from tests.fixtures.mail import PASSWORD as SMTP_PASSWORD
from tests.fixtures.mail import USER as SMTP_USER
from tests.fixtures.mail import MailSink, body, email_account


def mail(subject: str, text: str, *, to: str, headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "Ana Souza <ana@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    return message.as_bytes()


async def team_mailbox(
    runtime: Runtime, team: Team, *, smtp: dict[str, Any] | None = None, secrets: dict[str, str] | None = None
) -> tuple[str, Account]:
    """The team's mailbox, connected as an e-mail account (its address, the opened account);
    ``smtp``: where its replies go (none reachable unless told)."""
    address = f"suporte-{uuid.uuid4().hex[:6]}@loja.example"
    config = {"imap_host": "127.0.0.1", "smtp_host": "127.0.0.1", "smtp_security": "none", **(smtp or {})}
    return address, await email_account(runtime, team.company_id, address, config, secrets)


async def test_an_email_shows_its_subject_the_whole_text_its_files_and_why_it_was_not_answered(
    runtime: Runtime, team: Team, live_server: str
) -> None:
    address, account = await team_mailbox(runtime, team)
    raw = mail(
        "Pedido 123",
        "Quero trocar o tamanho.\n\nEm seg., 7 de dez. de 2026 às 10:00, Loja <x@loja.example> escreveu:\n"
        "> Seu pedido foi enviado.\n",
        to=address,
    )
    taken = await receive.take(runtime, channel, account, raw)
    assert taken.outcome == "stored"
    with_file = EmailMessage()
    with_file["From"] = "Ana Souza <ana@example.org>"
    with_file["To"] = address
    with_file["Subject"] = "Re: Pedido 123"
    with_file["Message-ID"] = make_msgid(domain="example.org")
    with_file["Auto-Submitted"] = "auto-replied"
    with_file.set_content("Estou fora até segunda.")
    with_file.add_attachment(b"%PDF-1.4\n%%EOF\n", maintype="application", subtype="pdf", filename="nota.pdf")
    automatic = await receive.take(runtime, channel, account, with_file.as_bytes())
    assert automatic.conversation_id != taken.conversation_id  # a new subject, no reply headers

    async with signed_in(live_server, team.viewer) as client:
        page = html.unescape((await client.get(f"/app/conversations/{taken.conversation_id}")).text)
        assert "Subject: Pedido 123" in page
        assert '<p class="text">Quero trocar o tamanho.</p>' in page  # what the bot read
        assert "<summary>The whole e-mail</summary>" in page
        assert "> Seu pedido foi enviado." in page
        other = html.unescape((await client.get(f"/app/conversations/{automatic.conversation_id}")).text)
        assert "Not answered by the bot: Auto-Submitted: auto-replied" in other
        assert 'aria-label="Files received"' in other and "nota.pdf" in other


def mail_saying(sink: MailSink, text: str, seconds: float = 30) -> EmailMessage:
    """The one e-mail the sink received whose text has ``text`` in it (the bot's answer to
    the customer, if it sent one, is another)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [m for m in list(sink.received) if text in body(m)]
        if found:
            assert len(found) == 1, f"{len(found)} e-mails say {text!r}"
            return found[0]
        assert time.monotonic() < deadline, f"no e-mail saying {text!r} within {seconds} s"
        time.sleep(0.1)


async def test_an_agents_reply_from_the_page_goes_out_in_the_customers_thread(
    runtime: Runtime, team: Team, live_server: str, smtp_sink: MailSink
) -> None:
    address, account = await team_mailbox(
        runtime,
        team,
        smtp={"smtp_port": smtp_sink.port, "smtp_username": SMTP_USER, "from_name": "Loja Suporte"},
        secrets={"smtp_password": SMTP_PASSWORD},
    )
    raw = mail("Troca de tamanho", "Posso trocar a camiseta M por uma G?", to=f"Suporte <{address}>")
    customer_id = message_from_bytes(raw)["Message-ID"]
    taken = await receive.take(runtime, channel, account, raw)
    assert taken.outcome == "stored"

    answer = "Olá Ana, pode sim: envie a M de volta e mandamos a G."
    url = f"/app/conversations/{taken.conversation_id}"
    async with signed_in(live_server, team.agent) as client:
        page = await client.get(url)
        r = await client.post(f"{url}/reply", data={"text": answer, "csrf_token": csrf_of(page.text)})
        assert (r.status_code, r.headers["location"]) == (303, f"{url}?notice=reply"), r.text

    sent = await asyncio.to_thread(mail_saying, smtp_sink, answer)
    assert "ana@example.org" in str(sent["To"])
    assert sent["In-Reply-To"] == customer_id
    assert sent["References"].split()[-1] == customer_id
    assert sent["Subject"] == "Re: Troca de tamanho"
    assert sent["Auto-Submitted"] is None  # a person wrote it, not the bot
    assert address in str(sent["From"]) and "Loja Suporte" in str(sent["From"])
