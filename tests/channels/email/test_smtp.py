"""Replies composed and sent over SMTP to a real server on 127.0.0.1 (aiosmtpd): threading
headers a mail client follows, loop protection, both parts and attachments; a deferral is
retried, a refusal is final with the server's words, a wrong login is named."""

from __future__ import annotations

import email
import ssl
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from atende.channels.base import DeliveryError
from atende.channels.email import compose, smtp
from atende.channels.email.transport import Server
from tests.conftest import free_port
from tests.fixtures.dovecot import write_certificate
from tests.fixtures.mail import PASSWORD, USER, MailSink

MAILBOX = "suporte@loja.example.com"
CUSTOMER = "cliente@example.org"


def server(sink: MailSink, *, password: str = PASSWORD) -> Server:
    return Server(host="127.0.0.1", port=sink.port, user=USER, password=password, security="plain", timeout=5)


def customers_message() -> compose.Original:
    return compose.Original(
        message_id="<abc.3@mail.example.org>",
        subject="RE: Res: Meu pedido 123 não chegou",
        references="<first.1@loja.example.com> <abc.2@mail.example.org>",
        in_reply_to="<abc.2@mail.example.org>",
    )


async def test_a_bot_reply_arrives_threaded_under_the_customers_message(smtp_sink: MailSink) -> None:
    reply = compose.reply(
        sender=MAILBOX,
        sender_name="Loja Exemplo",
        to=CUSTOMER,
        text="Olá! Seu pedido sai hoje.\n\nRastreio: https://loja.example.com/r/123",
        original=customers_message(),
        by_bot=True,
        attachments=[
            compose.Attachment("nota.pdf", "application/pdf", b"%PDF-1.4 fake"),
            compose.Attachment("itens.csv", "text/csv", "sku;qtd\nA;1\n".encode("latin-1")),
        ],
    )
    message_id = await smtp.send(server(smtp_sink), reply)

    got = smtp_sink.wait_for(CUSTOMER)
    assert got["Message-ID"] == message_id
    assert message_id.endswith("@loja.example.com>")
    assert got["In-Reply-To"] == "<abc.3@mail.example.org>"
    assert got["References"].split() == [
        "<first.1@loja.example.com>",
        "<abc.2@mail.example.org>",
        "<abc.3@mail.example.org>",
    ]
    assert got["Subject"] == "Re: Meu pedido 123 não chegou"
    assert got["Auto-Submitted"] == "auto-replied"
    assert smtp_sink.envelopes[-1] == (MAILBOX, [CUSTOMER])
    assert "Loja Exemplo" in got["From"]
    plain = got.get_body(preferencelist=("plain",))
    rich = got.get_body(preferencelist=("html",))
    assert plain is not None and "Seu pedido sai hoje." in plain.get_content()
    assert rich is not None
    assert '<a href="https://loja.example.com/r/123">' in rich.get_content()
    files = {part.get_filename(): part for part in got.iter_attachments()}
    assert files["nota.pdf"].get_content_type() == "application/pdf"
    assert files["nota.pdf"].get_payload(decode=True) == b"%PDF-1.4 fake"
    assert files["itens.csv"].get_content_type() == "text/csv"
    assert files["itens.csv"].get_payload(decode=True) == "sku;qtd\nA;1\n".encode("latin-1")


async def test_an_agents_reply_is_not_marked_automatic(smtp_sink: MailSink) -> None:
    reply = compose.reply(sender=MAILBOX, to=CUSTOMER, text="Oi, aqui é a Ana.", original=customers_message())
    await smtp.send(server(smtp_sink), reply)
    got = smtp_sink.wait_for(CUSTOMER)
    assert got["Auto-Submitted"] is None
    assert got["Subject"] == "Re: Meu pedido 123 não chegou"


def test_reply_subjects_never_stack() -> None:
    assert compose.reply_subject("Pedido") == "Re: Pedido"
    assert compose.reply_subject("Re: Pedido") == "Re: Pedido"
    assert compose.reply_subject("RE: re: Res: AW:  Pedido") == "Re: Pedido"
    assert compose.reply_subject("Fwd: Pedido") == "Re: Fwd: Pedido"
    assert compose.reply_subject("Recibo do pedido") == "Re: Recibo do pedido"  # "Re" of a word stays
    assert compose.reply_subject(None) == "Re:"


def test_a_long_references_chain_keeps_its_first_and_latest_ids() -> None:
    chain = " ".join(f"<m{n}@example.org>" for n in range(40))
    refs = compose.reply_references(compose.Original(message_id="<m40@example.org>", references=chain))
    assert len(refs) == compose.MAX_REFERENCES
    assert refs[0] == "<m0@example.org>"
    assert refs[-1] == "<m40@example.org>"
    # a message with In-Reply-To but no References
    only = compose.Original(message_id="<b@x>", in_reply_to="<a@x>")
    assert compose.reply_references(only) == ["<a@x>", "<b@x>"]


def _sendable() -> EmailMessage:
    return compose.reply(sender=MAILBOX, to=CUSTOMER, text="Oi", original=customers_message())


async def test_a_deferral_is_retried_and_a_refusal_is_final_with_the_servers_words(
    smtp_sink: MailSink,
) -> None:
    smtp_sink.refuse("451 4.3.0 Greylisted, try again later")
    with pytest.raises(DeliveryError) as deferred:
        await smtp.send(server(smtp_sink), _sendable())
    assert deferred.value.retryable
    assert "451" in deferred.value.reason

    smtp_sink.refuse("550 5.1.1 <cliente@example.org>: Recipient address rejected: User unknown")
    with pytest.raises(DeliveryError) as refused:
        await smtp.send(server(smtp_sink), _sendable())
    assert not refused.value.retryable
    assert "550 5.1.1" in refused.value.reason
    assert "User unknown" in refused.value.reason
    assert smtp_sink.count() == 0

    await smtp.send(server(smtp_sink), _sendable())  # and the next one goes through
    assert smtp_sink.count() == 1


async def test_no_server_is_a_retryable_failure() -> None:
    nowhere = Server(
        host="127.0.0.1", port=free_port(), user=USER, password=PASSWORD, security="plain", timeout=2
    )
    with pytest.raises(DeliveryError) as failed:
        await smtp.send(nowhere, _sendable())
    assert failed.value.retryable


async def test_check_login_says_ok_or_why_not(smtp_sink: MailSink) -> None:
    ok = await smtp.check_login(server(smtp_sink))
    assert ok.ok, ok.reason
    wrong = await smtp.check_login(server(smtp_sink, password="wrong-password"))
    assert not wrong.ok
    assert "refused the login" in wrong.reason
    assert "535" in wrong.reason
    assert "wrong-password" not in wrong.reason
    with pytest.raises(DeliveryError) as refused:
        await smtp.send(server(smtp_sink, password="wrong-password"), _sendable())
    assert not refused.value.retryable


def test_the_sent_bytes_parse_back_to_the_same_headers() -> None:
    message = _sendable()
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["In-Reply-To"] == "<abc.3@mail.example.org>"
    assert parsed["Message-ID"] == message["Message-ID"]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context on a self-signed certificate, and a client context trusting it."""
    write_certificate(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return server_side, ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_replies_go_out_over_tls(
    certificate: tuple[ssl.SSLContext, ssl.SSLContext], security: str
) -> None:
    server_side, client_side = certificate
    if security == "starttls":
        sink = MailSink(free_port(), starttls=server_side)
    else:
        sink = MailSink(free_port(), implicit_tls=server_side)
    sink.start()
    try:
        tls = Server(
            host="127.0.0.1",
            port=sink.port,
            user=USER,
            password=PASSWORD,
            security=security,  # type: ignore[arg-type]
            ssl_context=client_side,
            timeout=5,
        )
        assert (await smtp.check_login(tls)).ok
        await smtp.send(tls, _sendable())
        assert sink.wait_for(CUSTOMER)["In-Reply-To"] == "<abc.3@mail.example.org>"
        # a certificate nobody vouches for is refused (the system's authorities do not know it)
        untrusted = await smtp.check_login(Server(**{**tls.__dict__, "ssl_context": None}))
        assert not untrusted.ok
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.reason
    finally:
        sink.stop()


async def test_replies_go_out_with_an_oauth2_token(smtp_sink: MailSink) -> None:
    smtp_sink.oauth2_tokens["ya29.valid"] = MAILBOX
    with_token = Server(
        host="127.0.0.1",
        port=smtp_sink.port,
        user=MAILBOX,
        oauth2_token="ya29.valid",
        security="plain",
        timeout=5,
    )
    assert (await smtp.check_login(with_token)).ok
    await smtp.send(with_token, _sendable())
    assert smtp_sink.wait_for(CUSTOMER)["In-Reply-To"] == "<abc.3@mail.example.org>"
    assert smtp_sink.logins[-1] == MAILBOX
    revoked = await smtp.check_login(Server(**{**with_token.__dict__, "oauth2_token": "ya29.revoked"}))
    assert not revoked.ok
    assert "refused the login" in revoked.reason
    assert "ya29" not in revoked.reason
