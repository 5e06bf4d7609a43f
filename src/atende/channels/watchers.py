"""Channels that go and fetch their messages (e-mail's IMAP and POP3 mailboxes) watch each
enabled account from the worker processes.

A channel says so with ``Channel.watches`` and implements ``Channel.watch(runtime, account)``:
a coroutine that runs until it is cancelled, taking what arrives and handing it to the
intake. ``run`` (started by ``atende.bootstrap.run_worker`` beside the job worker, so in every
``atende worker`` and in an ``atende serve`` that runs jobs) keeps one watcher task per
enabled account of such a channel:

- it reads the accounts every ``ATENDE_CHANNEL_WATCH_RESYNC_SECONDS``: a new or enabled
  account gets its watcher, a disabled or deleted one loses it (cancelled), and one whose
  address, configuration or secrets changed is restarted with them;
- a watcher that fails (a bug, an account that cannot be opened) or returns is started
  again after a growing delay (``RESTART_DELAYS``), and a watcher that ran a while starts
  again from the first delay; each failure is logged with the account, never a secret.

Several workers run the same watchers: a channel makes sure only one of them fetches a
mailbox at a time (e-mail takes a PostgreSQL advisory lock per mailbox) and that a message
is taken once (its intake dedupes by the message's id), so a worker that dies hands its
mailboxes to the others within a resync.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from atende.channels import accounts, registry
from atende.channels.base import Channel
from atende.channels.models import ChannelAccount
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # seconds before a failed watcher starts again
STEADY_SECONDS = 120.0  # a watcher that ran this long starts again from the first delay


@dataclass(frozen=True)
class Watched:
    """One account to watch, as read from the database: ``version`` changes with anything
    its watcher is built from (address, configuration, secrets)."""

    account_id: uuid.UUID
    company_id: uuid.UUID
    kind: str
    version: str


def _version(row: ChannelAccount) -> str:
    material = json.dumps([row.external_id, row.config, row.secrets], sort_keys=True, default=str)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


async def watched_accounts(runtime: Runtime) -> dict[uuid.UUID, Watched]:
    """The enabled accounts, of every company, of the channels that watch (a platform read:
    a watcher serves one company, but the list spans them all)."""
    kinds = [channel.kind for channel in registry.channels() if channel.watches]
    if not kinds:
        return {}
    async with runtime.db.transaction() as session:
        rows = list(
            await session.scalars(
                select(ChannelAccount).where(ChannelAccount.enabled, ChannelAccount.kind.in_(kinds))
            )
        )
    return {row.id: Watched(row.id, row.company_id, row.kind, _version(row)) for row in rows}


async def _watch_forever(runtime: Runtime, channel: Channel, watched: Watched) -> None:
    """Open the account and run its channel's watcher, again and again, until cancelled."""
    failures = 0
    bound = log.bind(
        channel=watched.kind, account_id=str(watched.account_id), company_id=str(watched.company_id)
    )
    while True:
        started = time.monotonic()
        try:
            async with runtime.db.transaction(watched.company_id) as session:
                row = await accounts.get(session, watched.account_id)
            account = accounts.open_account(channel, row, runtime.secret_key)
            bound.info("channel.watch_started")
            await channel.watch(runtime, account)
            reason = "the watcher returned"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any failure: logged, started again later
            reason = describe(exc)
        failures = 1 if time.monotonic() - started > STEADY_SECONDS else failures + 1
        delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1]
        bound.warning("channel.watch_stopped", reason=reason, restart_in_seconds=delay)
        await asyncio.sleep(delay)


async def run(runtime: Runtime, stop: asyncio.Event) -> None:
    """Keep one watcher per watched account until ``stop`` is set (then cancel them all)."""
    running: dict[uuid.UUID, tuple[Watched, asyncio.Task[None]]] = {}
    interval = runtime.settings.channel_watch_resync_seconds
    try:
        while not stop.is_set():
            try:
                wanted = await watched_accounts(runtime)
            except Exception as exc:  # the database away: keep what runs, retry
                log.warning("channel.watch_resync_failed", reason=describe(exc))
                wanted = {key: watched for key, (watched, _task) in running.items()}
            for account_id, (watched, task) in list(running.items()):
                if wanted.get(account_id) != watched:
                    task.cancel()
                    with suppress(asyncio.CancelledError):
                        await task
                    del running[account_id]
                    log.info("channel.watch_ended", channel=watched.kind, account_id=str(account_id))
            for account_id, watched in wanted.items():
                channel = registry.find(watched.kind)
                if account_id not in running and channel is not None:
                    task = asyncio.create_task(
                        _watch_forever(runtime, channel, watched), name=f"watch {watched.kind} {account_id}"
                    )
                    running[account_id] = (watched, task)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        tasks = [task for _watched, task in running.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
