"""Every network operation of the e-mail transports is bounded: a server that accepts the
connection and then says nothing (a hung server, a firewall that swallows packets) costs a
login check its timeout, not forever."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from atende.channels.email import imap, pop3, smtp
from atende.channels.email.transport import Server


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield int(listener.getsockname()[1])
    listener.close()


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["plain", "tls"])
async def test_a_silent_server_fails_the_check_within_its_timeout(
    silent_server: int, protocol: str, security: str
) -> None:
    server = Server(
        host="127.0.0.1",
        port=silent_server,
        user="u",
        password="secret-password",
        security=security,  # type: ignore[arg-type]
        timeout=1,
    )
    started = time.monotonic()
    if protocol == "imap":
        verdict = await imap.check_login(imap.ImapMailbox(server))
    elif protocol == "pop3":
        verdict = await pop3.check_login(server)
    else:
        verdict = await smtp.check_login(server)
    assert not verdict.ok
    assert time.monotonic() - started < 4
    assert "127.0.0.1" in verdict.reason  # which server, in words an admin can act on
