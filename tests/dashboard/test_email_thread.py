"""A customer's e-mail on the conversation page: the text the bot read, the subject, the whole
e-mail (quote and signature included) behind a disclosure, the files it brought, and why the
bot did not answer an automatic one."""

from __future__ import annotations

import html
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

from atende.channels.email import receive
from atende.channels.email.channel import channel
from atende.runtime import Runtime
from tests.fixtures.dashboard import Team, signed_in
from tests.fixtures.mail import email_account


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


async def test_an_email_shows_its_subject_the_whole_text_its_files_and_why_it_was_not_answered(
    runtime: Runtime, team: Team, live_server: str
) -> None:
    address = f"suporte-{uuid.uuid4().hex[:6]}@loja.example"
    account = await email_account(
        runtime,
        team.company_id,
        address,
        {"imap_host": "127.0.0.1", "smtp_host": "127.0.0.1", "smtp_security": "none"},
    )
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
