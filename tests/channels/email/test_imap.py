"""Fetching a mailbox over IMAP from a real Dovecot: each message taken once, in order, across
restarts, failures, a UIDVALIDITY change, a server restart and a second worker."""

from __future__ import annotations

import asyncio
import contextlib
import email
import shutil
import time
from email import policy

import pytest

from atende.channels.email.imap import Fetched, ImapFetcher, ImapMailbox, check_login
from atende.channels.email.state import MailboxBusy, MailboxLock
from atende.channels.email.transport import Server
from atende.runtime import Runtime
from tests.channels.email.conftest import Mailbox, message, new_mailbox


class Taken:
    """The fetcher's callback: keeps what it was given; ``fail_on``: raises for that subject."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.messages: list[Fetched] = []
        self.fail_on = fail_on
        self.arrived = asyncio.Event()

    async def __call__(self, fetched: Fetched) -> None:
        if self.fail_on and self.fail_on in self.subjects_of([fetched]):
            raise RuntimeError("the intake is down")
        self.messages.append(fetched)
        self.arrived.set()

    @staticmethod
    def subjects_of(messages: list[Fetched]) -> list[str]:
        return [str(email.message_from_bytes(m.raw, policy=policy.default)["Subject"]) for m in messages]

    @property
    def subjects(self) -> list[str]:
        return self.subjects_of(self.messages)

    async def wait_for(self, count: int, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while len(self.messages) < count:
            self.arrived.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(self.messages)} of {count} messages within {seconds} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), left)


def fetcher(mailbox: Mailbox, taken: Taken, server: Server | None = None, **kwargs: object) -> ImapFetcher:
    return ImapFetcher(
        ImapMailbox(server or mailbox.server()),
        taken,
        db_url=mailbox.db_url,
        company_id=mailbox.company_id,
        account_id=mailbox.account_id,
        **kwargs,  # type: ignore[arg-type]
    )


async def deliver(mailbox: Mailbox, subject: str) -> int:
    return await asyncio.to_thread(mailbox.deliver, message(subject))


async def test_each_message_is_taken_once_in_order_across_restarts(mailbox: Mailbox) -> None:
    uids = [await deliver(mailbox, f"pedido {n}") for n in (1, 2, 3)]
    taken = Taken()
    first = fetcher(mailbox, taken, take_existing=True)
    assert await first.run_once() == 3
    assert taken.subjects == ["pedido 1", "pedido 2", "pedido 3"]
    assert [m.uid for m in taken.messages] == uids
    assert all(m.raw.startswith(b"From: cliente@example.org") for m in taken.messages)
    assert all(m.internal_date is not None and m.internal_date.tzinfo for m in taken.messages)
    await first.close()

    # a restart: a new fetcher over the same stored state takes nothing old, then the new one
    again = Taken()
    second = fetcher(mailbox, again)
    assert await second.run_once() == 0
    await deliver(mailbox, "pedido 4")
    assert await second.run_once() == 1
    assert again.subjects == ["pedido 4"]
    await second.close()
    # the mail is left as it was: nothing marked read
    assert mailbox.count() == 4


async def test_a_new_mailbox_takes_only_mail_that_arrives_after_it_was_connected(mailbox: Mailbox) -> None:
    await deliver(mailbox, "antigo 1")
    await deliver(mailbox, "antigo 2")
    taken = Taken()
    fetch = fetcher(mailbox, taken)
    assert await fetch.run_once() == 0  # the 2 old ones are not answered
    await deliver(mailbox, "novo")
    assert await fetch.run_once() == 1
    assert taken.subjects == ["novo"]
    await fetch.close()


async def test_a_failing_callback_leaves_its_message_for_the_next_run(mailbox: Mailbox) -> None:
    for n in (1, 2, 3):
        await deliver(mailbox, f"pedido {n}")
    failing = Taken(fail_on="pedido 2")
    fetch = fetcher(mailbox, failing, take_existing=True)
    with pytest.raises(RuntimeError, match="intake is down"):
        await fetch.run_once()
    assert failing.subjects == ["pedido 1"]
    await fetch.close()

    taken = Taken()
    retry = fetcher(mailbox, taken)
    assert await retry.run_once() == 2
    assert taken.subjects == ["pedido 2", "pedido 3"]  # pedido 1 is not taken again
    await retry.close()


def _rebuild_uids(mailbox: Mailbox) -> None:
    """What a server does when it rebuilds its index: every message gets a new UID under a
    new UIDVALIDITY (Dovecot: its dovecot-uidlist removed)."""
    maildir = mailbox.dovecot.home(mailbox.user) / "Maildir"
    for name in ("dovecot-uidlist", "dovecot.index", "dovecot.index.cache", "dovecot.index.log"):
        path = maildir / name
        if path.exists():
            path.unlink()
    shutil.rmtree(maildir / "tmp", ignore_errors=True)
    (maildir / "tmp").mkdir()
    shutil.chown(maildir / "tmp", mailbox.dovecot.uid, mailbox.dovecot.gid)


async def test_a_uidvalidity_change_takes_no_old_mail_again(mailbox: Mailbox) -> None:
    for n in (1, 2):
        await deliver(mailbox, f"antigo {n}")
    taken = Taken()
    fetch = fetcher(mailbox, taken, take_existing=True)
    assert await fetch.run_once() == 2
    old_validity = taken.messages[0].uid_validity
    await fetch.close()

    await asyncio.sleep(1.1)  # INTERNALDATE has a second's precision
    mailbox.dovecot.stop()
    _rebuild_uids(mailbox)
    mailbox.dovecot.start()
    await deliver(mailbox, "novo depois da mudança")

    after = Taken()
    fetch = fetcher(mailbox, after)
    assert await fetch.run_once() == 1
    assert after.subjects == ["novo depois da mudança"]
    assert after.messages[0].uid_validity != old_validity
    # and from then on, as usual
    await deliver(mailbox, "mais um")
    assert await fetch.run_once() == 1
    assert after.subjects[-1] == "mais um"
    await fetch.close()


@pytest.mark.parametrize("security", ["plain", "tls"])
async def test_idle_yields_a_new_message_within_two_seconds(mailbox: Mailbox, security: str) -> None:
    taken = Taken()
    fetch = fetcher(mailbox, taken, mailbox.server(security=security), idle=True, poll_seconds=60)
    task = asyncio.create_task(fetch.run())
    try:
        await asyncio.sleep(1.0)  # connected, baseline recorded, idling
        started = time.monotonic()
        await deliver(mailbox, "chegou agora")
        await taken.wait_for(1, seconds=5)
        assert time.monotonic() - started < 2.0
        assert taken.subjects == ["chegou agora"]
    finally:
        fetch.stop()
        await asyncio.wait_for(task, 10)


async def test_without_idle_it_polls(mailbox: Mailbox) -> None:
    taken = Taken()
    fetch = fetcher(mailbox, taken, idle=False, poll_seconds=0.3)
    task = asyncio.create_task(fetch.run())
    try:
        await asyncio.sleep(0.8)
        await deliver(mailbox, "por polling")
        await taken.wait_for(1, seconds=5)
        assert taken.subjects == ["por polling"]
    finally:
        fetch.stop()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("security", ["plain", "tls"])
async def test_a_dropped_connection_reconnects_and_goes_on(mailbox: Mailbox, security: str) -> None:
    taken = Taken()
    fetch = fetcher(mailbox, taken, mailbox.server(security=security), backoff_initial=0.2, backoff_max=1.0)
    task = asyncio.create_task(fetch.run())
    try:
        await asyncio.sleep(1.0)
        await deliver(mailbox, "antes")
        await taken.wait_for(1)
        await asyncio.to_thread(mailbox.dovecot.kick, mailbox.user)  # its connection dropped
        await deliver(mailbox, "depois")
        await taken.wait_for(2, seconds=15)
        assert taken.subjects == ["antes", "depois"]
        assert fetch.connections >= 2
    finally:
        fetch.stop()
        await asyncio.wait_for(task, 15)


async def test_two_fetchers_on_one_mailbox_only_one_fetches(mailbox: Mailbox) -> None:
    first, second = Taken(), Taken()
    one = fetcher(mailbox, first, poll_seconds=0.3)
    other = fetcher(mailbox, second, poll_seconds=0.3)
    task = asyncio.create_task(one.run())
    other_task: asyncio.Task[None] | None = None
    try:
        await asyncio.sleep(1.0)
        with pytest.raises(MailboxBusy):
            await other.run_once()
        other_task = asyncio.create_task(other.run())
        for n in (1, 2, 3):
            await deliver(mailbox, f"pedido {n}")
        await first.wait_for(3)
        await asyncio.sleep(0.5)
        assert first.subjects == ["pedido 1", "pedido 2", "pedido 3"]
        assert second.messages == []
        # the first one's worker goes away: the other takes over, without taking anything again
        one.stop()
        await asyncio.wait_for(task, 10)
        await deliver(mailbox, "pedido 4")
        await second.wait_for(1)
        assert second.subjects == ["pedido 4"]
    finally:
        one.stop()
        other.stop()
        await asyncio.wait_for(
            asyncio.gather(task, *[t for t in [other_task] if t], return_exceptions=True), 10
        )


@pytest.mark.parametrize("security", ["plain", "starttls", "tls"])
async def test_check_login_says_ok_over_each_kind_of_connection(mailbox: Mailbox, security: str) -> None:
    verdict = await check_login(ImapMailbox(mailbox.server(security=security)))
    assert verdict.ok, verdict.reason


async def test_check_login_says_why_not(mailbox: Mailbox) -> None:
    wrong = await check_login(ImapMailbox(mailbox.server(password="not-the-password")))
    assert not wrong.ok
    assert "login refused" in wrong.reason
    assert "not-the-password" not in wrong.reason
    folder = await check_login(ImapMailbox(mailbox.server(), folder="Nope"))
    assert not folder.ok
    assert "Nope" in folder.reason
    # a certificate no authority of the system vouches for
    untrusted = Server(**{**mailbox.server(security="tls").__dict__, "ssl_context": None})
    refused_tls = await check_login(ImapMailbox(untrusted))
    assert not refused_tls.ok
    assert "CERTIFICATE_VERIFY_FAILED" in refused_tls.reason
    closed = Server(host="127.0.0.1", port=1, user="x", password="y", security="plain", timeout=2)
    unreachable = await check_login(ImapMailbox(closed))
    assert not unreachable.ok
    assert "cannot connect to 127.0.0.1:1" in unreachable.reason


def test_a_password_never_crosses_a_network_in_clear() -> None:
    with pytest.raises(ValueError, match="without TLS"):
        Server(host="imap.example.com", port=143, user="a", password="b", security="plain")
    Server(host="imap.example.com", port=143, user="a", password="b", security="plain", allow_insecure=True)
    Server(host="localhost", port=143, user="a", password="b", security="plain")


async def test_a_mailbox_logs_in_with_an_oauth2_token(mailbox: Mailbox) -> None:
    """XOAUTH2, as Gmail and Microsoft 365 take it: the server asks the token's issuer."""
    token = mailbox.dovecot.issue_token(mailbox.user)
    with_token = Server(
        host="127.0.0.1",
        port=mailbox.dovecot.imaps_port,
        user=mailbox.user,
        oauth2_token=token,
        security="tls",
        ssl_context=mailbox.dovecot.tls_context(),
        timeout=10,
    )
    await deliver(mailbox, "via oauth2")
    taken = Taken()
    fetch = fetcher(mailbox, taken, server=with_token, take_existing=True)
    assert await fetch.run_once() == 1
    assert taken.subjects == ["via oauth2"]
    await fetch.close()

    revoked_token = Server(**{**with_token.__dict__, "oauth2_token": "ya29.revoked"})
    revoked = await check_login(ImapMailbox(revoked_token))
    assert not revoked.ok
    assert "login refused" in revoked.reason
    assert "ya29" not in revoked.reason


async def test_a_mailboxs_state_is_its_companys_alone(mailbox: Mailbox, runtime: Runtime) -> None:
    """The state is read under the account's company: another company naming the same
    account id sees none of it."""
    await deliver(mailbox, "pedido")
    taken = Taken()
    fetch = fetcher(mailbox, taken, take_existing=True)
    assert await fetch.run_once() == 1
    await fetch.close()
    other = await new_mailbox(mailbox.dovecot, runtime)
    async with MailboxLock(mailbox.db_url, other.company_id, mailbox.account_id, "imap:INBOX") as lock:
        assert await lock.imap_state("INBOX") is None
    async with MailboxLock(mailbox.db_url, mailbox.company_id, mailbox.account_id, "imap:INBOX") as lock:
        state = await lock.imap_state("INBOX")
        assert state is not None
        assert state.last_uid == taken.messages[0].uid


async def test_a_cancelled_fetcher_logs_out_and_frees_its_mailbox_at_once(mailbox: Mailbox) -> None:
    """The workers cancel a watcher when its account is disabled: an idling fetcher then
    leaves the mailbox (its connection and its lock) within a second or two."""
    taken = Taken()
    fetch = fetcher(mailbox, taken)
    task = asyncio.create_task(fetch.run())
    await asyncio.sleep(1.0)  # idling
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 2.5
    assert fetch._client is None
    after = fetcher(mailbox, Taken())
    assert await after.run_once() == 0  # not busy: the lock went with it
    await after.close()
