"""Fetching a mailbox over POP3, for providers without IMAP: mail left on the server, each
message taken once by its ``UIDL``.

POP3 has no folders, no push and no ``UIDVALIDITY``: the server lists its messages with a
unique id each (``UIDL``, RFC 1939), stable across sessions. ``Pop3Fetcher`` hands each
message whose UIDL it has not taken to a callback (raw RFC 822 bytes, in the server's order),
and records the UIDL (``email_pop3_uidls``) only after the callback returned, as the IMAP
fetcher records its UIDs (``imap``: a worker killed mid-fetch takes the message again, and
the intake's idempotency on ``Message-ID`` stores and answers it once). Nothing is deleted
from the server (no ``DELE``): the mailbox's owner keeps the mail and may read it elsewhere.
The UIDLs of messages gone from the server are forgotten on each pass, so the table never
holds more than the mailbox. One fetcher per mailbox at a time, across workers, by the
same advisory lock (``state.MailboxLock``).

The first run takes nothing already on the server unless told ``take_existing`` (it marks
what is there as seen; a row in ``email_mailbox_states`` under the folder name ``POP3`` says
it ran). New mail is found by polling every ``poll_seconds``.

**Why ``poplib`` in a thread.** There is no maintained asyncio POP3 client on PyPI (the
few packages that name POP3 are honeypots, proxies and command-line tools); the standard
library's ``poplib`` does TLS, STLS and a socket timeout on connecting and on every read.
Each fetcher runs it on one thread of its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import poplib
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import structlog

from atende.channels.email.state import ImapState, MailboxBusy, MailboxLock
from atende.channels.email.transport import MailboxError, Server, check_on_thread, logged_in, reaching
from atende.observability.credentials import Verdict
from atende.observability.logging import describe

log = structlog.get_logger(__name__)

T = TypeVar("T")
MARKER_FOLDER = "POP3"  # the email_mailbox_states row that says the first run happened


@dataclass(frozen=True)
class Pop3Fetched:
    uidl: str
    raw: bytes


OnPop3Message = Callable[[Pop3Fetched], Awaitable[None]]


def _server_words(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    first = args[0] if args else exc
    text = first.decode(errors="replace") if isinstance(first, bytes) else str(first)
    return text[:300]


def connect(server: Server) -> poplib.POP3:
    """A logged-in POP3 session (blocking). ``MailboxError`` says why not."""
    with reaching(server):
        if server.security == "tls":
            client: poplib.POP3 = poplib.POP3_SSL(
                server.host, server.port, timeout=server.timeout, context=server.tls()
            )
        else:
            client = poplib.POP3(server.host, server.port, timeout=server.timeout)
    try:
        if server.security == "starttls":
            client.stls(server.tls())
        if server.oauth2_token:
            auth = f"user={server.user}\1auth=Bearer {server.oauth2_token}\1\1"
            # poplib has no AUTH: its one-line command, as its own user() and pass_() send theirs
            raw = cast(Any, client)
            answer = raw._shortcmd("AUTH XOAUTH2 " + base64.b64encode(auth.encode()).decode())
            if not answer.startswith(b"+OK"):
                # a refusal comes as a challenge holding the error (JSON); answered with an
                # empty line, the server says -ERR, which raises
                raw._shortcmd("")
        elif server.password is not None:
            client.user(server.user)
            client.pass_(server.password)
        else:
            raise MailboxError("no password or OAuth2 token to log in with")
    except poplib.error_proto as exc:
        _close(client)
        raise MailboxError(f"login refused for {server.user}: {_server_words(exc)}") from exc
    except ssl.SSLError as exc:
        _close(client)
        raise MailboxError(f"STLS with {server.host}:{server.port} failed: {describe(exc)}") from exc
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: poplib.POP3) -> None:
    try:
        client.quit()  # without DELE nothing is deleted
    except Exception:
        with contextlib.suppress(Exception):
            client.close()


def _listing(client: poplib.POP3) -> list[tuple[int, str]]:
    """``(message number, UIDL)`` of every message on the server, in its order."""
    try:
        _response, lines, _octets = client.uidl()
    except poplib.error_proto as exc:
        raise MailboxError(
            f"the server offers no UIDL, which leaving mail on it needs: {_server_words(exc)}"
        ) from exc
    listing = []
    for line in lines:
        number, _, uidl = line.decode("ascii", errors="replace").partition(" ")
        if number.isdigit() and uidl.strip():
            listing.append((int(number), uidl.strip()[:70]))
    return listing


def _retrieve(client: poplib.POP3, number: int) -> bytes:
    _response, lines, _octets = client.retr(number)
    # poplib strips the line ends and the dot-stuffing; the message is its lines in CRLF
    return b"\r\n".join(lines) + b"\r\n"


def _check_login(server: Server) -> Verdict:
    """Log in and list the mailbox (blocking): ok, or why not."""
    try:
        client = connect(server)
    except MailboxError as exc:
        return Verdict(False, exc.reason)
    try:
        _listing(client)
    except MailboxError as exc:
        return Verdict(False, exc.reason)
    except (poplib.error_proto, OSError) as exc:
        return Verdict(False, f"{server.host} failed to list the mailbox: {_server_words(exc)}")
    finally:
        _close(client)
    return logged_in(server)


async def check_login(server: Server) -> Verdict:
    """Log in and list the mailbox: ok, or why not (for ``/health/ready``)."""
    return await check_on_thread(server, _check_login, server)


class Pop3Fetcher:
    """The fetcher of one POP3 mailbox (see the module's docstring): ``run_once()`` takes what
    is new and returns how many; ``run()`` polls until ``stop()``."""

    def __init__(
        self,
        server: Server,
        on_message: OnPop3Message,
        *,
        db_url: str,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        take_existing: bool = False,
        poll_seconds: float = 60.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.server = server
        self.on_message = on_message
        self.db_url = db_url
        self.company_id = company_id
        self.account_id = account_id
        self.take_existing = take_existing
        self.poll_seconds = poll_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"pop3-{account_id}")
        self._stopped = asyncio.Event()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(fn, *args))

    def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        self._executor.shutdown(wait=False)

    async def run_once(self) -> int:
        async with MailboxLock(self.db_url, self.company_id, self.account_id, "pop3") as lock:
            client = await self._call(connect, self.server)
            try:
                return await self._fetch_pass(lock, client)
            finally:
                await self._call(_close, client)

    async def _fetch_pass(self, lock: MailboxLock, client: poplib.POP3) -> int:
        listing = await self._call(_listing, client)
        on_server = {uidl for _number, uidl in listing}
        seen = await lock.pop3_seen()
        if await lock.imap_state(MARKER_FOLDER) is None:
            await lock.save_imap_state(MARKER_FOLDER, ImapState(0, 0, None))
            if not self.take_existing:  # the first run: mail from now on
                for uidl in sorted(on_server - seen):
                    await lock.pop3_taken(uidl)
                return 0
        taken = 0
        for number, uidl in listing:
            if uidl in seen:
                continue
            raw = await self._call(_retrieve, client, number)
            await self.on_message(Pop3Fetched(uidl, raw))
            await lock.pop3_taken(uidl)
            seen.add(uidl)
            taken += 1
        await lock.pop3_forget(seen - on_server)
        return taken

    async def run(self) -> None:
        """Poll until ``stop()`` or cancelled."""
        try:
            await self._run()
        finally:
            self._stopped.set()
            await self.close()

    async def _run(self) -> None:
        backoff = self.backoff_initial
        while not self._stopped.is_set():
            delay = self.poll_seconds
            try:
                await self.run_once()
                backoff = self.backoff_initial
            except MailboxBusy:
                pass  # another worker fetches it
            except Exception as exc:  # the server, the database or the callback: try again later
                delay = backoff * random.uniform(0.9, 1.1)  # noqa: S311  (jitter, not a secret)
                log.warning(
                    "email.pop3.retrying",
                    account_id=str(self.account_id),
                    error=describe(exc),
                    in_seconds=round(delay, 2),
                )
                backoff = min(backoff * 2, self.backoff_max)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), timeout=delay)
