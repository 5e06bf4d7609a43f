"""Fetching a mailbox over IMAP: each message taken exactly once, across restarts and workers.

``ImapFetcher`` hands each new message of one folder, as its raw RFC 822 bytes with its UID,
to a callback (the channel, which parses and stores it), oldest first. What has been taken is
kept in PostgreSQL (``state``: the folder's ``UIDVALIDITY``, the last UID taken and that
message's ``INTERNALDATE``), and a UID is recorded as taken only after the callback returned:

- a callback that fails leaves its message (and those after it) untaken: the UIDs before it
  are recorded, and the next run starts at it. Messages are fetched in batches (one
  ``FETCH`` for up to ``BATCH_MESSAGES``) and recorded once a batch, so a worker killed
  mid-batch takes the batch's messages again. The callback may therefore see a message
  twice; the intake is idempotent on the message's ``Message-ID`` (its external id), so it
  is stored and answered once;
- one fetcher per mailbox at a time, across every worker: ``state.MailboxLock``, a
  PostgreSQL advisory lock held for as long as the fetcher runs. A second fetcher finds the
  mailbox busy and tries again later (it takes over when the first one's worker dies);
- messages are read with ``BODY.PEEK[]``: the mailbox is left as it was (unread mail stays
  unread for the people who read it too).

**The first run** takes nothing that is already in the folder (a mailbox connected with
10,000 old messages must not get 10,000 answers), only what arrives from then on, unless the
fetcher is told ``take_existing``.

**A ``UIDVALIDITY`` change** (the server rebuilt its index, the folder was deleted and made
again) renumbers every message, so the last UID says nothing any more. The policy: take only
the messages whose ``INTERNALDATE`` (when the server received them) is later than that of the
last message taken, and nothing else that is in the folder; with no such date (nothing ever
taken) take nothing old. Old mail is never re-taken; a message that arrived in the same
second as the last one taken before the change would be missed (``INTERNALDATE`` has
one-second precision), which is the lesser evil.

**New mail**: the fetcher waits in ``IDLE`` (RFC 2177) when the server offers it and polls
every ``poll_seconds`` otherwise; an ``IDLE`` is renewed every ``idle_seconds`` (servers drop
one after 30 minutes). Any news the server sends while idling ends it and a fetch pass looks
for new UIDs. A dropped connection, a timeout or a refused login is logged, and the fetcher
reconnects after an exponential backoff (``backoff_initial`` doubling to ``backoff_max``,
reset once a pass succeeds).

**Why IMAPClient in a thread, not an asyncio library.** IMAPClient (BSD licence, maintained,
on the standard library's ``imaplib``) speaks the whole protocol we need: implicit TLS,
STARTTLS, XOAUTH2 (Gmail, Microsoft 365), IDLE, parsed ``SELECT`` and ``FETCH`` responses,
and a socket timeout on connecting and on every read and write. The one asyncio client,
aioimaplib, is GPL-3.0-only (a licence this product cannot take on) and has no STARTTLS.
Each fetcher runs its blocking calls on one thread of its own, so an ``IDLE`` that waits for
minutes never holds a thread of the event loop's shared pool; the wait is cut into one-second
slices so that ``stop()`` ends it promptly.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import random
import selectors
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import psycopg
import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SocketTimeout

from atende.channels.email.state import ImapState, MailboxBusy, MailboxLock
from atende.channels.email.transport import MailboxError, Server, check_on_thread, logged_in, reaching
from atende.observability.credentials import Verdict
from atende.observability.logging import describe

log = structlog.get_logger(__name__)

# a FETCH brings up to this many messages at once (one round trip, not one each), and no more
# than this many bytes, so that a batch of large attachments is never held in memory at once
BATCH_MESSAGES = 50
BATCH_BYTES = 16 * 1024 * 1024
FETCH_IDS = 1000  # UIDs named in one command (about 7 kB of command line)

T = TypeVar("T")


@dataclass(frozen=True)
class ImapMailbox:
    """One IMAP mailbox: the server and login, and the folder fetched."""

    server: Server
    folder: str = "INBOX"


@dataclass(frozen=True)
class Fetched:
    """One message taken from the mailbox: its raw RFC 822 bytes, untouched."""

    uid: int
    uid_validity: int
    internal_date: datetime | None
    raw: bytes = b""


OnMessage = Callable[[Fetched], Awaitable[None]]


def connect(server: Server) -> IMAPClient:
    """A logged-in client (blocking: call it on a worker thread). ``MailboxError`` says why
    not: unreachable, TLS refused, login refused."""
    timeout = SocketTimeout(connect=server.timeout, read=server.timeout)
    with reaching(server):
        client = IMAPClient(
            server.host,
            port=server.port,
            ssl=server.security == "tls",
            ssl_context=server.tls() if server.security == "tls" else None,
            timeout=timeout,
        )
    client.normalise_times = False  # INTERNALDATE with its offset, not the machine's local time
    try:
        if server.security == "starttls":
            client.starttls(server.tls())
        if server.oauth2_token:
            client.oauth2_login(server.user, server.oauth2_token)
        elif server.password is not None:
            client.login(server.user, server.password)
        else:
            raise MailboxError("no password or OAuth2 token to log in with")
    except LoginError as exc:
        _close(client)
        raise MailboxError(f"login refused for {server.user}: {_server_words(exc)}") from exc
    except ssl.SSLError as exc:
        _close(client)
        raise MailboxError(f"STARTTLS with {server.host}:{server.port} failed: {describe(exc)}") from exc
    except (IMAPClientError, OSError) as exc:
        _close(client)
        raise MailboxError(f"{server.host}:{server.port} refused the session: {describe(exc)}") from exc
    except BaseException:
        _close(client)
        raise
    return client


def _server_words(exc: BaseException) -> str:
    text = str(exc)
    # imaplib quotes the server's reply as a bytes repr: b'[AUTHENTICATIONFAILED] ...'
    if text.startswith(("b'", 'b"')) and text.endswith(text[1]):
        text = text[2:-1]
    return text[:300]


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):  # already gone: nothing to close
            client.shutdown()


def _check_login(mailbox: ImapMailbox) -> Verdict:
    """Log in and open the folder (blocking): ok, or why not."""
    try:
        client = connect(mailbox.server)
    except MailboxError as exc:
        return Verdict(False, exc.reason)
    try:
        client.select_folder(mailbox.folder, readonly=True)
    except (IMAPClientError, OSError) as exc:
        return Verdict(False, f"cannot open the folder {mailbox.folder}: {_server_words(exc)}")
    finally:
        _close(client)
    return logged_in(mailbox.server)


async def check_login(mailbox: ImapMailbox) -> Verdict:
    """Log in and open the folder: ok, or why not (for ``/health/ready``)."""
    return await check_on_thread(mailbox.server, _check_login, mailbox)


def _fetch_in_chunks(client: IMAPClient, uids: list[int], item: str) -> dict[int, dict[bytes, Any]]:
    """``item`` of each of ``uids``, asked ``FETCH_IDS`` UIDs at a time: 10,000 UIDs in one
    command line would pass the servers' line limit (Dovecot's: 64 kB)."""
    found: dict[int, dict[bytes, Any]] = {}
    wanted = set(uids)
    for start in range(0, len(uids), FETCH_IDS):
        for uid, data in client.fetch(uids[start : start + FETCH_IDS], [item]).items():
            if int(uid) in wanted:  # not an unsolicited FETCH (flags changed meanwhile)
                found[int(uid)] = data
    return found


def _later(last: datetime | None, fetched: Fetched | None) -> datetime | None:
    if fetched is None or fetched.internal_date is None:
        return last
    return max(last, fetched.internal_date) if last else fetched.internal_date


class ImapFetcher:
    """The fetcher of one folder of one mailbox (see the module's docstring).

    ``await fetcher.run()`` fetches until ``stop()``; ``await fetcher.run_once()`` takes what
    is new now and returns how many messages the callback took (``MailboxBusy`` when another
    fetcher holds the mailbox; a callback's exception is raised after the messages before it
    were recorded)."""

    def __init__(
        self,
        mailbox: ImapMailbox,
        on_message: OnMessage,
        *,
        db_url: str,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        take_existing: bool = False,
        idle: bool = True,
        poll_seconds: float = 60.0,
        idle_seconds: float = 25 * 60.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 300.0,
    ) -> None:
        self.mailbox = mailbox
        self.on_message = on_message
        self.db_url = db_url
        self.company_id = company_id
        self.account_id = account_id
        self.take_existing = take_existing
        self.idle = idle
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"imap-{account_id}")
        self._stopping = threading.Event()
        self._stopped = asyncio.Event()
        self._client: IMAPClient | None = None
        self.connections = 0  # logins so far (a reconnection adds one)

    def _lock(self) -> MailboxLock:
        return MailboxLock(self.db_url, self.company_id, self.account_id, f"imap:{self.mailbox.folder}")

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    async def _connected(self) -> IMAPClient:
        if self._client is None:
            self._client = await self._call(connect, self.mailbox.server)
            self.connections += 1
        return self._client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._call(_close, client)

    async def close(self) -> None:
        await self._disconnect()
        self._executor.shutdown(wait=False)

    def stop(self) -> None:
        self._stopping.set()
        self._stopped.set()

    async def run_once(self) -> int:
        try:
            async with self._lock() as lock:
                return await self._fetch_pass(lock)
        finally:
            await self._disconnect()

    async def run(self) -> None:
        """Fetch until ``stop()`` or cancelled (the channel's ``watch``, which the workers
        cancel when the account is disabled): either way the connection is closed, within
        a second when it was idling."""
        try:
            await self._run()
        finally:
            self._stopping.set()
            self._stopped.set()
            await self._disconnect_quietly()  # after the IDLE slice under way: a second at most
            self._executor.shutdown(wait=False)

    async def _run(self) -> None:
        backoff = self.backoff_initial
        while not self._stopping.is_set():
            try:
                async with self._lock() as lock:
                    while not self._stopping.is_set():
                        await self._fetch_pass(lock)
                        backoff = self.backoff_initial
                        await self._wait_for_mail()
            except MailboxBusy:
                await self._sleep(self.poll_seconds)  # another worker fetches it; take over if it dies
                continue
            except (OSError, IMAPClientError, MailboxError, TimeoutError, psycopg.Error) as exc:
                delay = backoff * random.uniform(0.9, 1.1)  # noqa: S311  (jitter, not a secret)
                log.warning(
                    "email.imap.reconnecting",
                    account_id=str(self.account_id),
                    error=describe(exc),
                    in_seconds=round(delay, 2),
                )
                await self._disconnect_quietly()
                await self._sleep(delay)
                backoff = min(backoff * 2, self.backoff_max)
            except Exception as exc:  # the callback failed (or a bug): its message is taken again later
                delay = backoff
                log.warning(
                    "email.imap.pass_failed",
                    account_id=str(self.account_id),
                    error=describe(exc),
                    in_seconds=round(delay, 2),
                )
                await self._sleep(delay)
                backoff = min(backoff * 2, self.backoff_max)

    async def _disconnect_quietly(self) -> None:
        try:
            await self._disconnect()
        except Exception as exc:
            log.debug("email.imap.close_failed", error=describe(exc))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)

    async def _fetch_pass(self, lock: MailboxLock) -> int:
        client = await self._connected()
        folder = self.mailbox.folder
        selected: dict[bytes, Any] = await self._call(client.select_folder, folder)
        validity = int(selected[b"UIDVALIDITY"])
        uid_next = int(selected.get(b"UIDNEXT") or 0) or await self._call(self._uid_next, client)
        state = await lock.imap_state(folder)
        changed = False
        if state is None:
            if not self.take_existing:  # the first run: mail from now on
                await lock.save_imap_state(folder, ImapState(validity, uid_next - 1, None))
                return 0
            state = ImapState(validity, 0, None)
            uids = await self._call(self._uids_after, client, 0)
        elif state.uid_validity != validity:
            changed = True
            uids = await self._call(self._uids_newer_than, client, state.last_internal_date)
            log.warning(
                "email.imap.uidvalidity_changed",
                account_id=str(self.account_id),
                old=state.uid_validity,
                new=validity,
                taking=len(uids),
            )
            state = ImapState(validity, (uids[0] - 1) if uids else uid_next - 1, state.last_internal_date)
            await lock.save_imap_state(folder, state)
        else:
            uids = await self._call(self._uids_after, client, state.last_uid)
        taken = 0
        for batch in await self._call(self._batches, client, uids):
            found = await self._call(self._fetch_batch, client, batch, validity)
            recorded = state
            try:
                for uid in batch:
                    fetched = found.get(uid)
                    if fetched is not None:  # None: expunged since the search
                        await self.on_message(fetched)
                        taken += 1
                    state = ImapState(validity, uid, _later(state.last_internal_date, fetched))
            finally:
                # what the callback took, recorded once a batch (and when it fails: up to the
                # message before); a worker killed mid-batch takes the batch again
                if state != recorded:
                    await lock.save_imap_state(folder, state)
        if changed and state.last_uid < uid_next - 1:
            # everything in the folder when it was selected has been considered
            await lock.save_imap_state(folder, ImapState(validity, uid_next - 1, state.last_internal_date))
        return taken

    # blocking helpers, on the fetcher's thread

    @staticmethod
    def _uid_next(client: IMAPClient) -> int:
        uids = client.search(["ALL"])
        return (max(uids) if uids else 0) + 1

    @staticmethod
    def _uids_after(client: IMAPClient, last_uid: int) -> list[int]:
        # "n:*" always names the highest UID, even below n: keep only the new ones
        return sorted(int(uid) for uid in client.search(["UID", f"{last_uid + 1}:*"]) if int(uid) > last_uid)

    @staticmethod
    def _uids_newer_than(client: IMAPClient, since: datetime | None) -> list[int]:
        if since is None:
            return []
        # SINCE has a day's precision (in the server's time zone): a day early, then the dates
        candidates = client.search(["SINCE", (since - timedelta(days=1)).date()])
        if not candidates:
            return []
        dates = _fetch_in_chunks(client, sorted(int(uid) for uid in candidates), "INTERNALDATE")
        return sorted(int(uid) for uid, data in dates.items() if data.get(b"INTERNALDATE", since) > since)

    @staticmethod
    def _batches(client: IMAPClient, uids: list[int]) -> list[list[int]]:
        """The UIDs in groups fetched with one command each: at most ``BATCH_MESSAGES``
        messages and ``BATCH_BYTES`` (by their ``RFC822.SIZE``; a larger one alone)."""
        if not uids:
            return []
        sizes = _fetch_in_chunks(client, uids, "RFC822.SIZE")
        batches: list[list[int]] = [[]]
        total = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if batches[-1] and (len(batches[-1]) >= BATCH_MESSAGES or total + size > BATCH_BYTES):
                batches.append([])
                total = 0
            batches[-1].append(uid)
            total += size
        return batches

    @staticmethod
    def _fetch_batch(client: IMAPClient, uids: list[int], validity: int) -> dict[int, Fetched]:
        found = {}
        for uid, data in client.fetch(uids, ["INTERNALDATE", "BODY.PEEK[]"]).items():
            if int(uid) not in uids or b"BODY[]" not in data:  # an unsolicited FETCH (flags)
                continue
            internal = data.get(b"INTERNALDATE")
            found[int(uid)] = Fetched(
                uid=int(uid),
                uid_validity=validity,
                internal_date=internal if isinstance(internal, datetime) else None,
                raw=bytes(data[b"BODY[]"]),
            )
        return found

    async def _wait_for_mail(self) -> None:
        client = await self._connected()
        if self.idle and client.has_capability("IDLE"):
            await self._call(self._idle_wait, client, self.idle_seconds)
        else:
            await self._sleep(self.poll_seconds)

    def _idle_wait(self, client: IMAPClient, seconds: float) -> None:
        """IDLE until the server sends anything (new mail, an expunge, a keepalive), the
        period ends, or ``stop()``; then DONE. A closed connection raises ``imaplib``'s
        ``abort``, and the fetcher reconnects."""
        client.idle()
        deadline = time.monotonic() + seconds
        sock = client.socket()
        reader = client._imap.file  # imaplib's buffered reader (IMAPClient's idle_check reads it too)
        readable = False
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ)
            while not self._stopping.is_set() and time.monotonic() < deadline:
                if self._waiting(sock, reader, readable):
                    break
                readable = bool(selector.select(timeout=min(1.0, max(0.0, deadline - time.monotonic()))))
        client.idle_done()

    def _waiting(self, sock: Any, reader: Any, readable: bool) -> bool:
        """Whether the server sent something (buffered already, or on the socket); peeked
        without blocking and without consuming it, so that DONE's reply reads it all."""
        sock.setblocking(False)
        try:
            waiting = reader.peek(1)
        except (BlockingIOError, ssl.SSLWantReadError):  # TLS bytes with no data in them yet
            return False
        finally:
            sock.settimeout(self.mailbox.server.timeout)
        if not waiting and readable:
            raise imaplib.IMAP4.abort("the server closed the connection while idling")
        return bool(waiting)
