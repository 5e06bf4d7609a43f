"""The enabled WhatsApp numbers of the platform, their secrets decrypted: what the webhook
checks every delivery's signature against and routes it by, cached per process.

Reading them on every delivery cost a query over every enabled account before the signature
was even checked (``benchmarks/README.md``, ``whatsapp_webhook``). They are kept as API keys
are (``atende.tenancy.principals``): a change to a channel account notifies every process
(``LISTEN/NOTIFY``, topic ``channel_accounts``, from ``atende.channels.accounts``), which drops
its copy; so does a reconnect of the listener (notifications may have been missed), and the
copy lives ``ttl`` seconds at most. A load that began before a notification is used but not
kept (``generation``).

A delivery the copy cannot place (no secret signs it, or it names a number the copy lacks)
is checked again against a fresh read before it is refused or dropped: a number connected a
moment ago, or an app secret just rotated, is honoured at once, even before its notification
arrives. What the copy still holds after a number is disabled or a secret replaced lasts until
the notification (milliseconds), at most ``ttl``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import structlog
from sqlalchemy import select

from atende.channels import accounts
from atende.channels.base import Account
from atende.channels.models import ChannelAccount
from atende.channels.whatsapp.channel import KIND, channel
from atende.observability.logging import describe
from atende.runtime import Runtime
from atende.tenancy.crypto import decrypt_secret

log = structlog.get_logger(__name__)
EXTRAS_KEY = "whatsapp_numbers"


@lru_cache(maxsize=4096)
def _decrypted(secret_key: str, token: str) -> str:
    """A secret decrypted once per process (Fernet costs a little on every webhook)."""
    return decrypt_secret(secret_key, token)


@dataclass(frozen=True)
class Number:
    """One enabled WhatsApp account: its row, its readable secrets, and the account opened
    for the channel (``None`` when it cannot be: ``error`` says why)."""

    row: ChannelAccount
    secrets: dict[str, str]
    account: Account | None
    error: str = ""


@dataclass(frozen=True)
class Snapshot:
    numbers: list[Number]
    loaded_at: float
    fresh: bool = False  # read from the database for this very call
    by_number: dict[str, Number] = field(default_factory=dict)

    def having(self, name: str) -> list[tuple[Number, str]]:
        """The numbers with the secret ``name``, and its value."""
        return [(n, n.secrets[name]) for n in self.numbers if name in n.secrets]


def _number(runtime: Runtime, row: ChannelAccount) -> Number:
    secrets: dict[str, str] = {}
    for name, token in (row.secrets or {}).items():
        try:
            secrets[name] = _decrypted(runtime.secret_key, token)
        except ValueError:
            log.warning("whatsapp.secret_unreadable", account_id=str(row.id), secret=name)
    try:
        return Number(row, secrets, accounts.open_account(channel, row, runtime.secret_key))
    except ValueError as exc:  # a secret that no longer decrypts (ATENDE_SECRET_KEY changed)
        return Number(row, secrets, None, describe(exc))


async def _read(runtime: Runtime) -> list[Number]:
    """Every enabled WhatsApp account (a platform session: a webhook names no company until
    it is trusted)."""
    async with runtime.db.transaction() as session:
        rows = list(
            await session.scalars(
                select(ChannelAccount).where(ChannelAccount.kind == KIND, ChannelAccount.enabled)
            )
        )
    return [_number(runtime, row) for row in rows]


class Numbers:
    """This process's copy of the enabled WhatsApp numbers."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self.generation = 0  # bumped by every notification: a load begun before one is not kept
        self._snapshot: Snapshot | None = None
        self._loading: asyncio.Task[Snapshot] | None = None

    def handle(self, event: dict[str, Any]) -> None:
        """React to a notification of the ``channel_accounts`` topic (or a resync)."""
        if event.get("channel") not in (None, KIND):
            return  # another channel's account
        self.generation += 1
        self._snapshot = None

    async def get(self, runtime: Runtime) -> Snapshot:
        """The copy, read again when it is missing or older than ``ttl`` (one read at a time)."""
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded_at <= self.ttl:
            return snapshot
        if self._loading is not None and not self._loading.done():
            # another request is reading: its answer, though not read for this one (``fresh``)
            joined = await asyncio.shield(self._loading)
            return Snapshot(joined.numbers, joined.loaded_at, by_number=joined.by_number)
        self._loading = asyncio.ensure_future(self.load(runtime))
        return await asyncio.shield(self._loading)

    async def load(self, runtime: Runtime) -> Snapshot:
        """Read the numbers now (kept unless a notification came meanwhile)."""
        generation = self.generation
        numbers = await _read(runtime)
        snapshot = Snapshot(
            numbers, time.monotonic(), fresh=True, by_number={n.row.external_id: n for n in numbers}
        )
        if generation == self.generation:
            self._snapshot = Snapshot(snapshot.numbers, snapshot.loaded_at, by_number=snapshot.by_number)
        return snapshot


def numbers_of(runtime: Runtime) -> Numbers:
    """This process's copy (created, and wired to the accounts' notifications, once)."""
    cache = runtime.extras.get(EXTRAS_KEY)
    if not isinstance(cache, Numbers):
        cache = runtime.extras[EXTRAS_KEY] = Numbers()
        runtime.listener.on(accounts.TOPIC, cache.handle)
    return cache
