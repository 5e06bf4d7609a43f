"""What the e-mail transports (``imap``, ``pop3``, ``smtp``) share: how a connection is
secured, and the rule that a mailbox's password never crosses a network in clear.

``security``: ``"tls"`` (TLS from the first byte: IMAPS 993, POP3S 995, SMTPS 465),
``"starttls"`` (a plain connection upgraded before the login: IMAP 143, POP3 110, submission
587) or ``"plain"`` (no TLS), which is refused unless the server is this machine (a local
relay, the tests' servers) or the account says ``allow_insecure`` explicitly."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from atende.observability.credentials import Verdict
from atende.observability.logging import describe

Security = Literal["tls", "starttls", "plain"]
DEFAULT_TIMEOUT_SECONDS = 30.0
A = TypeVar("A")


class MailboxError(Exception):
    """A mail server could not be reached or refused us; ``reason`` says why, in words an
    admin can act on (never a secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Server:
    """One mail server and the login on it. ``ssl_context``: whom to trust (``None``: the
    system's certificate authorities, host names checked). ``timeout``: the bound of every
    network operation (connecting, each read and write), in seconds."""

    host: str
    port: int
    user: str
    password: str | None = field(default=None, repr=False)
    oauth2_token: str | None = field(default=None, repr=False)  # XOAUTH2 (Gmail, Microsoft 365)
    security: Security = "tls"
    allow_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in ("tls", "starttls", "plain"):
            raise ValueError(f"security must be tls, starttls or plain, not {self.security!r}")
        if self.security == "plain" and not (self.allow_insecure or is_loopback(self.host)):
            raise ValueError(
                f"{self.host} would be reached without TLS: use tls or starttls "
                "(plain only for this machine, or with allow_insecure)"
            )
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def tls(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()


@contextlib.contextmanager
def reaching(server: Server) -> Iterator[None]:
    """Around opening a connection to ``server`` (IMAP, POP3): a refused TLS handshake or an
    unreachable server becomes a ``MailboxError`` that says which."""
    try:
        yield
    except ssl.SSLError as exc:
        raise MailboxError(f"TLS with {server.host}:{server.port} failed: {describe(exc)}") from exc
    except OSError as exc:
        raise MailboxError(f"cannot connect to {server.host}:{server.port}: {describe(exc)}") from exc


def logged_in(server: Server) -> Verdict:
    return Verdict(True, f"logged in to {server.host} as {server.user}")


async def check_on_thread(server: Server, check: Callable[[A], Verdict], arg: A) -> Verdict:
    """``check(arg)``, a blocking login check (for ``/health/ready``), on a thread, bounded
    by a few times the server's timeout (connecting, logging in and one command)."""
    try:
        async with asyncio.timeout(server.timeout * 4):
            return await asyncio.to_thread(check, arg)
    except TimeoutError:
        return Verdict(False, f"{server.host} did not answer within {server.timeout * 4:.0f} s")
