"""An e-mail account's settings: the mailbox, how its mail comes in, how replies go out.

One channel account is one mailbox (``support@loja.com.br``): its ``external_id`` is the
address, lower-cased, and ``EmailConfig.address`` says the same. Mail comes in one way
(``inbound``): fetched over IMAP (IDLE or polling), fetched over POP3 (left on the server,
each message taken once by its UIDL), or posted by a provider's inbound webhook (Mailgun,
SendGrid Inbound Parse, Postmark). Replies always go out over SMTP.

``security``: ``tls`` (TLS from the first byte: IMAPS 993, POP3S 995, SMTPS 465),
``starttls`` (a plain connection upgraded before the login: IMAP 143, POP3 110, submission
587) or ``none``, which is refused unless the server is this machine (a local relay, the
tests' servers): a mailbox's password must never cross a network in clear (as WhatsApp's
Graph URL may be plain HTTP only to loopback).

The secrets (``EmailChannel.secret_fields``, stored encrypted, write-only) are named in
``SECRET_FIELDS``; the settings say which are needed (``imap_auth`` ``password``: the
``imap_password``; ``oauth2``: the ``imap_oauth2_token``...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from atende.channels.email.transport import Server, is_loopback

Inbound = Literal["imap", "pop3", "webhook"]
Provider = Literal["mailgun", "sendgrid", "postmark"]
Security = Literal["tls", "starttls", "none"]
Auth = Literal["password", "oauth2"]

SECRET_FIELDS = (
    "imap_password",
    "imap_oauth2_token",  # XOAUTH2 (Gmail, Microsoft 365); SMTP uses it too unless it has its own
    "pop3_password",
    "smtp_password",
    "smtp_oauth2_token",
    "mailgun_signing_key",  # Mailgun's HTTP webhook signing key
    "webhook_password",  # SendGrid / Postmark: the basic-auth password in the webhook URL
    "webhook_path_secret",  # SendGrid / Postmark: a secret segment of the webhook URL
)

# an address as mailboxes are named: no display name, no comments, one @, a dotted domain
_ADDRESS = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_HOST = re.compile(r"^(\[[0-9a-f:.]+\]|[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$")


def normal_address(value: str) -> str:
    """An e-mail address as the channel keys it: trimmed and lower-cased (the local part is
    case-sensitive only in theory; every mailbox provider folds it)."""
    return value.strip().lower()


class EmailConfig(BaseModel):
    """An e-mail account's settings (its secrets are ``SECRET_FIELDS``)."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(
        max_length=254,
        description="The mailbox's address: customers write to it, replies come from it "
        "(also the account's external_id).",
    )
    from_name: str = Field(
        default="", max_length=100, description="The name replies are sent under (“Loja Suporte”)."
    )
    inbound: Inbound = Field(
        default="imap",
        description="How mail comes in: fetched over IMAP or POP3, or posted by a provider's webhook.",
    )
    provider: Provider | None = Field(
        default=None, description="With inbound webhook: the provider that posts the mail."
    )
    webhook_username: str = Field(
        default="",
        max_length=200,
        description="SendGrid / Postmark: the basic-auth user name in the webhook URL (empty: atende).",
    )

    imap_host: str = Field(default="", max_length=253, description="IMAP server (imap.gmail.com).")
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_security: Security = "tls"
    imap_username: str = Field(default="", max_length=254, description="IMAP login (usually the address).")
    imap_folder: str = Field(default="INBOX", min_length=1, max_length=200, description="The folder read.")
    imap_auth: Auth = Field(
        default="password", description="A password (or app password), or an OAuth2 token."
    )

    pop3_host: str = Field(default="", max_length=253, description="POP3 server (pop.example.com).")
    pop3_port: int = Field(default=995, ge=1, le=65535)
    pop3_security: Security = "tls"
    pop3_username: str = Field(default="", max_length=254)

    smtp_host: str = Field(default="", max_length=253, description="SMTP server replies go through.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Security = "starttls"
    smtp_username: str = Field(
        default="", max_length=254, description="SMTP login; empty: the IMAP or POP3 login."
    )
    smtp_auth: Auth = "password"

    poll_seconds: int = Field(
        default=60,
        ge=1,
        le=3600,
        description="How often a mailbox is looked at for new mail when it cannot tell (POP3, an "
        "IMAP server without IDLE).",
    )

    thread_marker: Literal["off", "address", "subject"] = Field(
        default="off",
        description="Also mark replies with the conversation's token, for customers whose mail "
        "client drops the reply headers: in the Reply-To address (support+c-<token>@…; the "
        "mailbox must take plus-addresses: Gmail, Microsoft 365 and most hosts do) or in the "
        "subject ([#<token>]). Off: threading by the headers alone.",
    )
    signature: str = Field(
        default="", max_length=2000, description="Added under every reply (plain text; lines kept)."
    )
    bot_replies_per_hour: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="The most replies the bot sends one contact in an hour; past it, mail is "
        "stored for agents and not answered (a loop with another robot stops here). 0: the "
        "bot never answers e-mail.",
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        address = normal_address(value)
        if not _ADDRESS.match(address):
            raise ValueError("must be a plain e-mail address such as support@example.com")
        return address

    @field_validator("imap_host", "pop3_host", "smtp_host")
    @classmethod
    def _host(cls, value: str) -> str:
        host = value.strip().lower()
        if host and not _HOST.match(host):
            raise ValueError("must be a host name or an IP address, without a scheme or port")
        return host

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.inbound == "webhook" and self.provider is None:
            raise ValueError("provider: name the provider (mailgun, sendgrid or postmark) of inbound webhook")
        if self.inbound == "imap" and not self.imap_host:
            raise ValueError("imap_host: required to fetch mail over IMAP")
        if self.inbound == "pop3" and not self.pop3_host:
            raise ValueError("pop3_host: required to fetch mail over POP3")
        if not self.smtp_host:
            raise ValueError("smtp_host: required (replies go out over SMTP)")
        for name in ("imap", "pop3", "smtp"):
            host: str = getattr(self, f"{name}_host")
            if host and getattr(self, f"{name}_security") == "none" and not is_loopback(host):
                raise ValueError(
                    f"{name}_security: none is allowed only for this machine (127.0.0.1, localhost): "
                    "passwords must not cross a network in clear; use tls or starttls"
                )
        return self

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]

    def login(self, name: Literal["imap", "pop3", "smtp"]) -> str:
        """The user name of a server's login: its own, else the mailbox's other login, else
        the address."""
        own: str = getattr(self, f"{name}_username")
        return own or self.imap_username or self.pop3_username or self.address


def _security(value: Security) -> Literal["tls", "starttls", "plain"]:
    return "plain" if value == "none" else value


def imap_server(config: EmailConfig, secrets: Mapping[str, str] | None, timeout: float = 30.0) -> Server:
    secrets = secrets or {}
    oauth2 = config.imap_auth == "oauth2"
    return Server(
        host=config.imap_host,
        port=config.imap_port,
        user=config.login("imap"),
        password=None if oauth2 else secrets.get("imap_password", ""),
        oauth2_token=secrets.get("imap_oauth2_token", "") if oauth2 else None,
        security=_security(config.imap_security),
        timeout=timeout,
    )


def pop3_server(config: EmailConfig, secrets: Mapping[str, str] | None, timeout: float = 30.0) -> Server:
    secrets = secrets or {}
    return Server(
        host=config.pop3_host,
        port=config.pop3_port,
        user=config.login("pop3"),
        password=secrets.get("pop3_password", ""),
        security=_security(config.pop3_security),
        timeout=timeout,
    )


def smtp_server(config: EmailConfig, secrets: Mapping[str, str] | None, timeout: float = 30.0) -> Server:
    """The SMTP login: its own password, or the IMAP/POP3 one when it has none (one mailbox,
    one password, at most providers); OAuth2 with its own token or the IMAP one."""
    secrets = secrets or {}
    if config.smtp_auth == "oauth2":
        token = secrets.get("smtp_oauth2_token") or secrets.get("imap_oauth2_token", "")
        return Server(
            host=config.smtp_host,
            port=config.smtp_port,
            user=config.login("smtp"),
            oauth2_token=token,
            security=_security(config.smtp_security),
            timeout=timeout,
        )
    # no password at all: a relay that takes mail without a login (a local one)
    password = (
        secrets.get("smtp_password") or secrets.get("imap_password") or secrets.get("pop3_password") or None
    )
    return Server(
        host=config.smtp_host,
        port=config.smtp_port,
        user=config.login("smtp"),
        password=password,
        security=_security(config.smtp_security),
        timeout=timeout,
    )
