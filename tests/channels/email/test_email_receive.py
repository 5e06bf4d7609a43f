"""``receive.take``, the one path every e-mail takes (IMAP, POP3 or a webhook), on the real
PostgreSQL and media store: what the bot reads, what is dropped, what is kept for agents."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from atende.channels.base import Account
from atende.channels.email import receive
from atende.channels.email.channel import channel
from atende.conversations.models import Message
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.fixtures.mail import email_account


@pytest.fixture
async def account(runtime: Runtime) -> Account:
    slug = f"co-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug)
    address = f"suporte@{slug}.example"
    return await email_account(
        runtime,
        company.id,
        address,
        {"inbound": "webhook", "provider": "mailgun", "smtp_host": "smtp.example.com"},
    )


def mail(sender: str, to: str, subject: str = "Pedido") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="example.org")
    return message


async def message_of(runtime: Runtime, account: Account, message_id: uuid.UUID) -> Message:
    async with runtime.db.transaction(account.company_id) as session:
        return await session.get_one(Message, message_id)


async def test_an_html_only_reply_is_read_without_its_quote_and_kept_whole(
    runtime: Runtime, account: Account
) -> None:
    config = account.config
    message = mail("Ana <ana@example.org>", config.address, "Re: Pedido")  # type: ignore[attr-defined]
    message.set_content(
        '<div>Pode trocar pelo tamanho M?</div><div class="gmail_quote">'
        "<div>Em seg., 7 de dez. de 2026, Loja escreveu:</div>"
        '<blockquote class="gmail_quote">Seu pedido foi enviado.</blockquote></div>',
        subtype="html",
    )
    taken = await receive.take(runtime, channel, account, message.as_bytes())
    assert taken.outcome == "stored" and taken.message_id is not None
    stored = await message_of(runtime, account, taken.message_id)
    assert stored.text == "Pode trocar pelo tamanho M?"
    assert "Seu pedido foi enviado." in stored.meta["email"]["text"]
    assert stored.meta["email"]["html"] is not None and "<blockquote" in stored.meta["email"]["html"]
    assert stored.channel_message_id == message["Message-ID"]
    # taken again (a provider's retry): nothing new
    assert (await receive.take(runtime, channel, account, message.as_bytes())).outcome == "duplicate"


async def test_our_own_mail_and_mail_without_a_sender_are_dropped(runtime: Runtime, account: Account) -> None:
    address = account.config.address  # type: ignore[attr-defined]
    own = mail(f"Loja <{address.upper()}>", "ana@example.org")
    own.set_content("Seu pedido foi enviado.")
    assert (await receive.take(runtime, channel, account, own.as_bytes())).outcome == "own"
    tagged = mail(address.replace("@", "+c-x@"), "ana@example.org")  # our plus-address
    tagged.set_content("x")
    assert (await receive.take(runtime, channel, account, tagged.as_bytes())).outcome == "own"
    nobody = mail("", address)
    del nobody["From"]
    nobody.set_content("?")
    assert (await receive.take(runtime, channel, account, nobody.as_bytes())).outcome == "no_sender"
    async with runtime.db.transaction(account.company_id) as session:
        assert list(await session.scalars(select(Message.id))) == []


async def test_a_message_over_the_size_limit_is_kept_as_a_note_of_its_headers(
    runtime: Runtime, account: Account
) -> None:
    message = mail("Ana <ana@example.org>", account.config.address, "Vídeo do defeito")  # type: ignore[attr-defined]
    message.set_content("veja o vídeo")
    message.add_attachment(b"\x00" * 5000, maintype="video", subtype="mp4", filename="defeito.mp4")
    taken = await receive.take(runtime, channel, account, message.as_bytes(), max_bytes=2000)
    assert taken.outcome == "stored" and taken.message_id is not None
    assert taken.not_for_the_bot == "too large to read"
    stored = await message_of(runtime, account, taken.message_id)
    assert "over the 2000 this mailbox takes" in stored.text and "Read it in the mailbox" in stored.text
    assert stored.meta["email"]["subject"] == "Vídeo do defeito"
    assert stored.meta["not_for_the_bot"] == {"reason": "too large to read", "hand_off": True}
