"""An e-mail account's settings: what is refused, in words an admin can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atende.channels.email.config import EmailConfig, imap_server, smtp_server


def test_the_address_is_lower_cased_and_defaults_are_the_usual_ports() -> None:
    config = EmailConfig(
        address=" Suporte@Loja.COM.br ", imap_host="IMAP.gmail.com", smtp_host="smtp.gmail.com"
    )
    assert config.address == "suporte@loja.com.br"
    assert config.domain == "loja.com.br"
    assert (config.imap_port, config.imap_security, config.imap_folder) == (993, "tls", "INBOX")
    assert (config.smtp_port, config.smtp_security) == (587, "starttls")
    assert config.bot_replies_per_hour == 5
    server = imap_server(config, {"imap_password": "app-password"})
    assert (server.host, server.user, server.password) == (
        "imap.gmail.com",
        "suporte@loja.com.br",
        "app-password",
    )
    # one mailbox, one password: SMTP logs in with the IMAP one unless it has its own
    assert smtp_server(config, {"imap_password": "app-password"}).password == "app-password"
    assert smtp_server(config, {"imap_password": "a", "smtp_password": "b"}).password == "b"


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({"address": "not an address", "imap_host": "h.example", "smtp_host": "h.example"}, "address"),
        (
            {
                "address": "a@b.example",
                "imap_host": "imap.example.com",
                "imap_security": "none",
                "smtp_host": "s.example",
            },
            "imap_security",
        ),
        (
            {
                "address": "a@b.example",
                "imap_host": "127.0.0.1",
                "smtp_host": "smtp.example.com",
                "smtp_security": "none",
            },
            "smtp_security",
        ),
        ({"address": "a@b.example", "smtp_host": "s.example"}, "imap_host"),
        ({"address": "a@b.example", "inbound": "pop3", "smtp_host": "s.example"}, "pop3_host"),
        ({"address": "a@b.example", "inbound": "webhook", "smtp_host": "s.example"}, "provider"),
        ({"address": "a@b.example", "imap_host": "h.example"}, "smtp_host"),
        ({"address": "a@b.example", "imap_host": "imaps://h.example", "smtp_host": "s.example"}, "imap_host"),
        (
            {
                "address": "a@b.example",
                "imap_host": "h.example",
                "smtp_host": "s.example",
                "imap_pasword": "x",
            },
            "imap_pasword",
        ),
    ],
)
def test_a_setting_refused_names_itself(settings: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        EmailConfig.model_validate(settings)
    assert where in str(caught.value)


def test_plain_connections_are_allowed_to_this_machine_only() -> None:
    config = EmailConfig(
        address="a@b.example",
        imap_host="127.0.0.1",
        imap_security="none",
        smtp_host="localhost",
        smtp_security="none",
    )
    assert imap_server(config, {}).security == "plain"
    assert smtp_server(config, {}).password is None  # a local relay without a login
