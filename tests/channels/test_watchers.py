"""A channel that fetches its messages (``watches``) gets one watcher per enabled account in
the worker (``channels.watchers``): started for a new account, stopped for a disabled or
deleted one, restarted with a changed configuration or secret, and started again after it
fails. ``MailbagChannel`` exists only in this test."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from pydantic import BaseModel, ConfigDict

from atende.channels import accounts, registry, watchers
from atende.channels.base import Account, Channel, ConversationPolicy, Joins
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

KIND = "mailbag"


class MailbagConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder: str = "INBOX"
    fail: bool = False  # its watcher raises at once


class MailbagChannel(Channel):
    kind = KIND
    conversation_policy = ConversationPolicy(Joins.thread)
    config_schema = MailbagConfig
    secret_fields = ("password",)
    watches = True

    def __init__(self) -> None:
        self.started: list[tuple[uuid.UUID, str, str]] = []  # account, folder, password
        self.running: set[uuid.UUID] = set()
        self.loop: asyncio.AbstractEventLoop | None = None  # the test's, set by ``watching``

    async def watch(self, runtime: Runtime, account: Account) -> None:
        assert isinstance(account.config, MailbagConfig)
        if asyncio.get_running_loop() is not self.loop:
            # the session's served app runs a worker, with its own watchers, in a thread: it
            # finds this channel in the registry too, on its own resync; only the test's count
            await asyncio.Event().wait()
        self.started.append((account.id, account.config.folder, account.secrets.get("password", "")))
        if account.config.fail:
            raise ConnectionRefusedError("the mailbox refused the connection")
        self.running.add(account.id)
        try:
            await asyncio.Event().wait()
        finally:
            self.running.discard(account.id)


@pytest.fixture
def channel() -> Iterator[MailbagChannel]:
    mailbag = MailbagChannel()
    registry.register(mailbag)
    yield mailbag
    registry.unregister(KIND)


@pytest.fixture
async def watching(runtime: Runtime, channel: MailbagChannel) -> AsyncIterator[asyncio.Event]:
    """``watchers.run`` in the background, re-reading the accounts every 0.1 s."""
    quick = dataclasses.replace(
        runtime, settings=runtime.settings.model_copy(update={"channel_watch_resync_seconds": 0.1})
    )
    channel.loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.create_task(watchers.run(quick, stop))
    yield stop
    stop.set()
    await asyncio.wait_for(task, 5)


async def until(check: Callable[[], bool | Awaitable[bool]], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.05)


async def new_account(runtime: Runtime, company: CompanyCtx, **config: object) -> uuid.UUID:
    async with runtime.db.transaction(company.id) as session:
        row = await accounts.create(
            session,
            runtime.secret_key,
            kind=KIND,
            external_id=f"{uuid.uuid4().hex[:8]}@example.com",
            config=config,
            secrets={"password": "first"},
        )
        return row.id


async def test_each_enabled_account_is_watched_until_disabled_or_deleted(
    runtime: Runtime,
    company: CompanyCtx,
    other_company: CompanyCtx,
    channel: MailbagChannel,
    watching: object,
) -> None:
    first = await new_account(runtime, company)
    second = await new_account(runtime, other_company)
    mine = {first, second}  # the database holds other tests' accounts too
    await until(lambda: channel.running & mine == {first, second})
    assert {(s[0], s[2]) for s in channel.started} == {(first, "first"), (second, "first")}

    async with runtime.db.transaction(company.id) as session:
        await accounts.update(session, runtime.secret_key, first, enabled=False)
    await until(lambda: channel.running & mine == {second})

    async with runtime.db.transaction(other_company.id) as session:
        await accounts.delete(session, second)
    await until(lambda: channel.running & mine == set())
    assert len([s for s in channel.started if s[0] in mine]) == 2  # nothing started again


async def test_a_changed_configuration_or_secret_restarts_the_watcher_with_it(
    runtime: Runtime, company: CompanyCtx, channel: MailbagChannel, watching: object
) -> None:
    account_id = await new_account(runtime, company)
    await until(lambda: account_id in channel.running)

    def starts() -> list[tuple[str, str]]:
        return [(folder, password) for started, folder, password in channel.started if started == account_id]

    async with runtime.db.transaction(company.id) as session:
        await accounts.update(session, runtime.secret_key, account_id, config={"folder": "Support"})
    await until(lambda: starts()[-1] == ("Support", "first"))
    async with runtime.db.transaction(company.id) as session:
        await accounts.update(session, runtime.secret_key, account_id, secrets={"password": "second"})
    await until(lambda: starts()[-1] == ("Support", "second"))
    await until(lambda: account_id in channel.running)
    # one watcher at a time: each change, one restart
    assert starts() == [("INBOX", "first"), ("Support", "first"), ("Support", "second")]


async def test_a_failing_watcher_is_started_again_after_a_delay_and_others_go_on(
    runtime: Runtime, company: CompanyCtx, channel: MailbagChannel, watching: object
) -> None:
    healthy = await new_account(runtime, company)
    failing = await new_account(runtime, company, fail=True)
    await until(lambda: healthy in channel.running)
    # started, failed, started again after RESTART_DELAYS[0] (1 s), failed again
    await until(
        lambda: sum(1 for s in channel.started if s[0] == failing) >= 2,
        seconds=watchers.RESTART_DELAYS[0] + 4,
    )
    assert failing not in channel.running and healthy in channel.running
    assert sum(1 for s in channel.started if s[0] == healthy) == 1


async def test_stopping_the_worker_stops_every_watcher(
    runtime: Runtime, company: CompanyCtx, channel: MailbagChannel, watching: asyncio.Event
) -> None:
    account_id = await new_account(runtime, company)
    await until(lambda: account_id in channel.running)
    watching.set()
    await until(lambda: channel.running == set())
