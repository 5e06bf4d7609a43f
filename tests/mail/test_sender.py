"""Sending one e-mail over SMTP: a server that never answers costs at most the timeout, a
server that cannot encrypt gets nothing when STARTTLS is asked for, and the message says who
sends it."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Iterator

import pytest

from atende.config import Settings
from atende.mail import sender
from tests.conftest import free_port
from tests.fixtures import servers
from tests.fixtures.mail import MailSink

MAIL = sender.Mail(to="ana@example.com", subject="Olá", text="Um link: http://x/app/join/abc")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says a word (a stuck server or a black-holing firewall)."""
    with servers.silent_server() as port:
        yield port


def test_a_server_that_never_answers_fails_within_the_timeout(settings: Settings, silent_server: int) -> None:
    quick = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": silent_server, "smtp_timeout_seconds": 0.5}
    )
    started = time.monotonic()
    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected, OSError)):
        sender.send(quick, MAIL)
    assert time.monotonic() - started < 3


def test_starttls_asked_of_a_server_without_it_sends_nothing(settings: Settings) -> None:
    sink = MailSink(free_port())
    sink.start()
    try:
        strict = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": sink.port,
                "smtp_tls": "starttls",
                "smtp_user": None,
            }
        )
        with pytest.raises(smtplib.SMTPNotSupportedError):
            sender.send(strict, MAIL)
        assert sink.count() == 0
    finally:
        sink.stop()


def test_the_message_names_its_sender_and_has_an_id_of_its_domain(settings: Settings) -> None:
    composed = sender.message(
        settings.model_copy(update={"smtp_from": "Suporte <no-reply@loja.example>"}), MAIL
    )
    assert composed["From"] == "Suporte <no-reply@loja.example>"
    assert composed["To"] == "ana@example.com"
    assert composed["Message-ID"].endswith("@loja.example>")
    assert composed.get_content().strip() == MAIL.text


def test_a_sealed_message_opens_only_with_the_secret(settings: Settings) -> None:
    sealed = sender.seal("secret one", MAIL)
    assert "ana@example.com" not in sealed and "abc" not in sealed
    assert sender.unseal("secret one", sealed) == MAIL
    with pytest.raises(ValueError, match="ATENDE_SECRET_KEY"):
        sender.unseal("another secret", sealed)
