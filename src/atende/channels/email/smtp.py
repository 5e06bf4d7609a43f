"""Sending a mailbox's replies over SMTP (aiosmtplib: asyncio, MIT, maintained).

``send`` delivers one composed message (``compose.reply``) from the mailbox's server and
returns its ``Message-ID``: the provider's id of the message for the outbox, and what the
customer's reply will name in ``In-Reply-To``. Failures become the channel protocol's
``DeliveryError``, which the outbox's delivery job acts on:

- retryable: the server's 4xx (greylisting, a full queue, "try again later"), a refused or
  dropped connection, a timeout: the job tries again with backoff;
- permanent: the server's 5xx (unknown recipient, refused sender, message rejected, login
  refused), with the server's own words as the reason, shown to the agent.

A ``DeliveryError``'s reason never holds a secret. Every network operation (connecting, the
TLS handshake, each command) is bounded by the server's ``timeout``, and the whole session by
a few times it."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import aiosmtplib
from aiosmtplib.errors import (
    SMTPAuthenticationError,
    SMTPException,
    SMTPRecipientsRefused,
    SMTPResponseException,
)

from atende.channels.base import DeliveryError
from atende.channels.email.transport import Server, logged_in
from atende.observability.credentials import Verdict
from atende.observability.logging import describe

SESSION_TIMEOUTS = 4  # a whole session: at most this many times the per-operation timeout


def _client(server: Server) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=server.host,
        port=server.port,
        use_tls=server.security == "tls",
        start_tls=server.security == "starttls",  # required when asked for, never otherwise
        tls_context=server.tls() if server.security != "plain" else None,
        timeout=server.timeout,
    )


async def _login(client: aiosmtplib.SMTP, server: Server) -> None:
    if server.oauth2_token:
        await client.auth_xoauth2(server.user, server.oauth2_token)
    elif server.password is not None and server.user:
        await client.login(server.user, server.password)
    # no secret: a relay that takes mail without a login (a local one)


def _words(code: int, message: str) -> str:
    return f"{code} {' '.join(message.split())}"[:500]


def delivery_error(exc: BaseException, server: Server) -> DeliveryError:
    """What an SMTP failure means for the outbox (see the module's docstring)."""
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        reason = "; ".join(f"{r.recipient}: {_words(r.code, r.message)}" for r in exc.recipients)
        return DeliveryError(f"recipient refused: {reason}", retryable=any(400 <= c < 500 for c in codes))
    if isinstance(exc, SMTPAuthenticationError):
        return DeliveryError(
            f"{server.host} refused the login of {server.user}: {_words(exc.code, exc.message)}",
            retryable=400 <= exc.code < 500,
        )
    if isinstance(exc, SMTPResponseException) and exc.code >= 400:
        return DeliveryError(
            f"{server.host} refused the message: {_words(exc.code, exc.message)}", retryable=exc.code < 500
        )
    return DeliveryError(f"{server.host}:{server.port}: {describe(exc)}", retryable=True)


async def send(server: Server, message: EmailMessage) -> str:
    """Send ``message`` to its ``To``/``Cc``/``Bcc``; its ``Message-ID``. Raises
    ``DeliveryError`` (retryable or not)."""
    message_id = message["Message-ID"]
    if not message_id:
        raise ValueError("a message to send needs its Message-ID (compose.reply sets one)")
    client = _client(server)
    try:
        async with asyncio.timeout(server.timeout * SESSION_TIMEOUTS):
            async with client:
                await _login(client, server)
                await client.send_message(message)
    except (SMTPException, OSError, TimeoutError) as exc:
        raise delivery_error(exc, server) from exc
    return str(message_id)


async def check_login(server: Server) -> Verdict:
    """Connect, secure the connection and log in: ok, or why not (for ``/health/ready``)."""
    client = _client(server)
    try:
        async with asyncio.timeout(server.timeout * SESSION_TIMEOUTS):
            async with client:
                await _login(client, server)
    except (SMTPException, OSError, TimeoutError) as exc:
        return Verdict(False, delivery_error(exc, server).reason)
    return logged_in(server)
