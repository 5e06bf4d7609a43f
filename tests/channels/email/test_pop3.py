"""Fetching a mailbox over POP3 from a real Dovecot, leaving the mail on the server: each
message taken once by its UIDL, the UIDLs of deleted mail forgotten."""

from __future__ import annotations

import asyncio
import email
import poplib
from email import policy

import pytest

from atende.channels.email.pop3 import Pop3Fetched, Pop3Fetcher, check_login
from atende.channels.email.transport import Server
from atende.runtime import Runtime
from tests.channels.email.conftest import Mailbox, message


class Taken:
    def __init__(self) -> None:
        self.messages: list[Pop3Fetched] = []

    async def __call__(self, fetched: Pop3Fetched) -> None:
        self.messages.append(fetched)

    @property
    def subjects(self) -> list[str]:
        return [str(email.message_from_bytes(m.raw, policy=policy.default)["Subject"]) for m in self.messages]


def fetcher(mailbox: Mailbox, taken: Taken, **kwargs: object) -> Pop3Fetcher:
    return Pop3Fetcher(
        mailbox.pop3_server(),
        taken,
        db_url=mailbox.db_url,
        company_id=mailbox.company_id,
        account_id=mailbox.account_id,
        **kwargs,  # type: ignore[arg-type]
    )


async def uidls_kept(runtime: Runtime, mailbox: Mailbox) -> int:
    async with runtime.db.autocommit() as conn:
        result = await conn.exec_driver_sql(
            "SELECT count(*) FROM email_pop3_uidls WHERE company_id = %(c)s AND account_id = %(a)s",
            {"c": mailbox.company_id, "a": mailbox.account_id},
        )
        return int(result.scalar_one())


def delete_first(mailbox: Mailbox) -> None:
    client = poplib.POP3("127.0.0.1", mailbox.dovecot.pop3_port, timeout=10)
    client.user(mailbox.user)
    client.pass_(mailbox.password)
    client.dele(1)
    client.quit()


async def test_mail_left_on_the_server_is_taken_once(mailbox: Mailbox, runtime: Runtime) -> None:
    for n in (1, 2):
        await asyncio.to_thread(mailbox.deliver, message(f"pedido {n}"))
    taken = Taken()
    pop = fetcher(mailbox, taken, take_existing=True)
    assert await pop.run_once() == 2
    assert taken.subjects == ["pedido 1", "pedido 2"]
    assert taken.messages[0].raw.startswith(b"From: cliente@example.org\r\n")
    assert await pop.run_once() == 0  # fetched twice, taken once
    assert mailbox.count() == 2  # still on the server

    await asyncio.to_thread(mailbox.deliver, message("pedido 3"))
    again = fetcher(mailbox, taken)  # a restart
    assert await again.run_once() == 1
    assert taken.subjects[-1] == "pedido 3"

    # the owner deletes a message elsewhere: its UIDL is forgotten, nothing is taken again
    assert await uidls_kept(runtime, mailbox) == 3
    await asyncio.to_thread(delete_first, mailbox)
    assert await again.run_once() == 0
    assert await uidls_kept(runtime, mailbox) == 2
    await pop.close()
    await again.close()


async def test_a_new_pop3_mailbox_takes_only_new_mail(mailbox: Mailbox) -> None:
    await asyncio.to_thread(mailbox.deliver, message("antigo"))
    taken = Taken()
    pop = fetcher(mailbox, taken)
    assert await pop.run_once() == 0
    assert await pop.run_once() == 0
    await asyncio.to_thread(mailbox.deliver, message("novo"))
    assert await pop.run_once() == 1
    assert taken.subjects == ["novo"]
    await pop.close()


async def test_an_empty_mailbox_at_the_first_run_still_takes_what_comes_next(mailbox: Mailbox) -> None:
    taken = Taken()
    pop = fetcher(mailbox, taken)
    assert await pop.run_once() == 0
    await asyncio.to_thread(mailbox.deliver, message("primeiro"))
    assert await pop.run_once() == 1
    await pop.close()


async def test_polling_finds_new_mail(mailbox: Mailbox) -> None:
    taken = Taken()
    pop = fetcher(mailbox, taken, poll_seconds=0.3)
    task = asyncio.create_task(pop.run())
    try:
        await asyncio.sleep(0.8)
        await asyncio.to_thread(mailbox.deliver, message("por polling"))
        for _ in range(50):
            if taken.messages:
                break
            await asyncio.sleep(0.1)
        assert taken.subjects == ["por polling"]
    finally:
        pop.stop()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("security", ["plain", "starttls", "tls"])
async def test_pop3_check_login(mailbox: Mailbox, security: str) -> None:
    verdict = await check_login(mailbox.pop3_server(security=security))
    assert verdict.ok, verdict.reason


async def test_pop3_check_login_says_why_not(mailbox: Mailbox) -> None:
    wrong = await check_login(mailbox.pop3_server(password="nope-nope"))
    assert not wrong.ok
    assert "login refused" in wrong.reason
    assert "nope-nope" not in wrong.reason


async def test_pop3_logs_in_with_an_oauth2_token(mailbox: Mailbox) -> None:
    server = mailbox.pop3_server(security="tls")
    token = mailbox.dovecot.issue_token(mailbox.user)
    ok = await check_login(Server(**{**server.__dict__, "password": None, "oauth2_token": token}))
    assert ok.ok, ok.reason
    revoked_token = Server(**{**server.__dict__, "password": None, "oauth2_token": "ya29.revoked"})
    revoked = await check_login(revoked_token)
    assert not revoked.ok
    assert "login refused" in revoked.reason
