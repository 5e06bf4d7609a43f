"""Live fan-out over PostgreSQL ``LISTEN/NOTIFY``, so updates cross processes and replicas.

``publish`` runs ``pg_notify`` inside the caller's transaction: listeners hear of a change
only once it is committed (``publish_now``: at once, for what is not stored, such as an
answer's draft). ``Listener`` holds one connection per process, LISTENs on the
``atende`` channel and wakes the local subscribers of a topic (a conversation id). A
notification carries no data that matters: subscribers re-read the database from their
own cursor, so a missed or duplicated notification never loses or repeats a message.

``Notifier`` sends notifications for work already committed (a message received on the
hot path, ``Database.driver_autocommit()``), outside its durable commit: see migration 0033.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

if TYPE_CHECKING:
    from atende.db.session import Database

log = structlog.get_logger(__name__)
CHANNEL = "atende"
# a half-open TCP connection must not leave the listener waiting forever (ignored on sockets)
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


async def until_database_lost(
    events: AsyncIterator[dict[str, Any]], stream: str
) -> AsyncIterator[dict[str, Any]]:
    """``events`` of a live stream (Server-Sent Events), ended cleanly when the database is
    lost under it (a restart): the browser's ``EventSource`` reconnects and resumes from its
    ``Last-Event-ID``, where an error would reach a response already under way."""
    try:
        async for event in events:
            yield event
    except OperationalError as exc:
        log.info("live.stream_ended", stream=stream, reason=str(exc.orig).splitlines()[0] if exc.orig else "")


async def publish(session: AsyncSession, topic: str, kind: str, **data: Any) -> None:
    """Notify listeners of ``topic`` when the current transaction commits (or right after, in
    a ``Database.transaction(notify_after_commit=True)``)."""
    payload = json.dumps({"topic": topic, "kind": kind, **data}, default=str)
    await session.execute(
        text("SELECT atende_notify_v1(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
    )


async def publish_now(db: Database, topic: str, kind: str, **data: Any) -> None:
    """Notify listeners of ``topic`` at once, outside any transaction (e.g. an answer being
    written). PostgreSQL caps a notification at 8,000 bytes: long texts are cut."""
    payload = json.dumps({"topic": topic, "kind": kind, **data}, default=str)
    if len(payload.encode()) > 7900:
        text_ = str(data.get("text", ""))
        cut = {**data, "text": text_[: max(0, len(text_) - (len(payload.encode()) - 7900) - 16)]}
        payload = json.dumps({"topic": topic, "kind": kind, **cut}, default=str)
    async with db.autocommit() as connection:
        await connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


# the notifications of a batch, in one statement and one transaction that does not wait for
# its commit to reach the disk: nothing is stored, and a lost wake-up is made up by polling
_SEND = (
    "SELECT pg_notify(n.channel, n.payload)"
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS s,"
    " unnest(%s::text[], %s::text[]) AS n(channel, payload)"
)


class Notifier:
    """Sends the notifications of committed work soon after, batched, from one task.

    PostgreSQL lets one notifying transaction commit at a time, each holding a lock for the
    whole database until its commit is on disk (migration 0033): the durable commit of a
    received message sends none and hands them here instead (``atende_receive_message_v6``'s
    ``o_notices``). Whatever arrives while a batch is being sent goes in the next one."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[str, str]] = []
        self._task: asyncio.Task[None] | None = None

    def send(self, notices: Sequence[tuple[str, str]]) -> None:
        if not notices:
            return
        self._pending.extend(notices)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush(), name="atende-notifier")

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._db.driver_autocommit() as connection:
                    await connection.fetch_one(_SEND, ([c for c, _ in batch], [p for _, p in batch]))
            except Exception as exc:  # the database went away: listeners re-read, workers poll
                log.warning("notifier.lost", notices=len(batch), error=str(exc).splitlines()[0][:200])

    async def drain(self) -> None:
        """Wait until everything handed in so far is sent (before closing the database)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


class Subscription:
    """A queue of notifications for one topic, held by one waiting consumer."""

    def __init__(self, listener: Listener, topic: str) -> None:
        self.listener = listener
        self.topic = topic
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        try:  # the consumer's loop: an asyncio queue wakes a waiter only from its own loop
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def deliver(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to the consumer, from the listener's loop or from another thread's (a
        consumer in another event loop than the listener's, such as a test reading a live
        server's: put there directly, its waiter slept until its own timeout)."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if self._loop is None or self._loop is current:
            self._put(event)
        else:
            # the consumer's loop may close between a check and the call: its event is dropped,
            # never raised into the listener's dispatch (which serves every subscriber)
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(event)

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next notification, or ``None`` after ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    def close(self) -> None:
        subscribers = self.listener._subscribers
        subscribers[self.topic].discard(self)
        if not subscribers[self.topic]:
            del subscribers[self.topic]

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Listener:
    """One LISTEN connection per process, reconnecting when the database goes away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)
        self._callbacks: dict[str, list[Callable[[dict[str, Any]], None]]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    def subscribe(self, topic: str) -> Subscription:
        sub = Subscription(self, topic)
        self._subscribers[topic].add(sub)
        return sub

    def on(self, topic: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` with every notification of ``topic`` (and ``{"kind": "resync"}``
        after a reconnect, when notifications may have been missed)."""
        self._callbacks[topic].append(callback)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="atende-listener")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _dispatch(self, payload: str) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        topic = event.get("topic", "")
        for callback in self._callbacks.get(topic, ()):
            callback(event)
        for sub in list(self._subscribers.get(topic, ())):
            sub.deliver(event)

    def _wake_all(self) -> None:
        # after a reconnect, notifications may have been missed: every consumer re-reads
        for topic, callbacks in list(self._callbacks.items()):
            for callback in callbacks:
                callback({"topic": topic, "kind": "resync"})
        for topic, subs in list(self._subscribers.items()):
            for sub in list(subs):
                sub.deliver({"topic": topic, "kind": "resync"})

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                conninfo = psycopg.conninfo.make_conninfo(self.url, connect_timeout=5, **KEEPALIVES)
                async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._wake_all()
                    delay = 0.2
                    async for notify in conn.notifies():
                        self._dispatch(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database restarted or the network dropped
                log.warning("listener.reconnecting", error=str(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
