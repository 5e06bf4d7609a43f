"""Live updates of the inbox and conversation pages over Server-Sent Events, presence, and
the agent's availability.

``GET /app/live`` (the page's session, like any page) streams what the page must refresh:

- ``inbox``: the company's list changed. The company's queue topic (handoffs, assignments,
  state changes, snoozes, labels: ``conversations.service.queue_topic``) says so at once;
  customers' messages and replies are announced on their conversation's topic only, so the
  stream also checks the company's latest activity every ``CHECK_SECONDS``
  (``conversations.inbox.activity_since``: a few entries of the activity index; the streams of a
  process check on one clock, and one read serves every stream of the company that asks within
  ``SHARED_SECONDS``) and says
  ``inbox`` when a conversation it had not seen at that time moved.
- with ``?conversation=ID``: ``thread`` (a message, a note, a delivery status), ``status`` (its
  state, assignee, snooze or labels changed) and ``presence`` (who else is viewing or typing,
  ``teams.presence``); while the stream is open it says this person views the conversation,
  and that they left when it closes.

An event carries no data the page shows: the page asks for the part again (the same pages,
the same checks), so a missed event costs a refresh, never a wrong screen. The stream ends
when the session does (checked every ``SESSION_CHECK_SECONDS``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Form, Query, Request, Response
from sse_starlette.sse import EventSourceResponse

from atende.conversations import inbox as listing
from atende.conversations import service as conversations
from atende.dashboard.auth import SESSION_COOKIE, AgentPage, Member, ViewerPage
from atende.dashboard.web import PageRoute, redirect
from atende.db.pubsub import Subscription, until_database_lost
from atende.errors import InvalidInput
from atende.teams import presence
from atende.teams import service as teams
from atende.teams.models import Availability
from atende.tenancy.deps import signed_in_from_session

router = APIRouter(route_class=PageRoute, include_in_schema=False)
log = structlog.get_logger(__name__)

CHECK_SECONDS = 2.0  # how often a stream looks at the company's latest activity
SHARED_SECONDS = 1.0  # a read of it this recent serves every stream of the company in the process
WINDOW = timedelta(seconds=30)  # activity this recent is compared (commits arrive out of order)
SESSION_CHECK_SECONDS = 30.0
# "media": a customer's file fetched, or not (atende.channels.whatsapp.media)
THREAD_KINDS = frozenset({"message", "note", "delivery", "delivery_failed", "media"})
STATUS_KINDS = frozenset({"state", "snoozed", "unsnoozed", "labels", "sla"})


_LEAVING: set[asyncio.Future[None]] = set()  # "left" announcements under way (kept from the GC)


def _left(task: asyncio.Future[None]) -> None:
    _LEAVING.discard(task)
    if not task.cancelled() and task.exception() is not None:  # the database may be gone at shutdown
        log.info("dashboard.presence_not_announced", error=str(task.exception()))


async def _next(subs: list[Subscription], timeout: float) -> dict[str, Any] | None:
    """The next notification of any of ``subs`` (``None`` after ``timeout`` seconds)."""
    for sub in subs:
        if not sub.queue.empty():
            return sub.queue.get_nowait()
    waiting = [asyncio.ensure_future(sub.queue.get()) for sub in subs]
    done, pending = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    found = [task.result() for task in done]
    for extra in found[1:]:  # two at once: the other goes back to be read next
        for sub in subs:
            if sub.topic == extra.get("topic"):
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(extra)
    return found[0] if found else None


Recent = set[tuple[uuid.UUID, datetime]]
# the latest read of each company's activity in this process (by runtime and company): when it
# was started, and the read
_READS: dict[tuple[int, uuid.UUID], tuple[float, asyncio.Future[Recent]]] = {}


async def _read_recent(member: Member) -> Recent:
    now = member.visitor.runtime.clock()
    async with member.tenant.transaction() as session:
        return set(await listing.activity_since(session, now - WINDOW))


async def _recent(member: Member) -> Recent:
    """The company's activity of the last ``WINDOW``, read once for every stream of the company
    in this process that asks within ``SHARED_SECONDS``: a hundred open screens cost a query or
    two every ``CHECK_SECONDS``, not a hundred (each compares it with what it saw itself)."""
    key = (id(member.visitor.runtime), member.tenant.principal.company_id)
    started = time.monotonic()
    entry = _READS.get(key)
    if (
        entry is None
        or started - entry[0] > SHARED_SECONDS
        or _failed(entry[1])
        or entry[1].get_loop() is not asyncio.get_running_loop()  # a server started again, in tests
    ):
        for stale in [k for k, (at, read) in _READS.items() if started - at > 60 and read.done()]:
            del _READS[stale]
        entry = _READS[key] = (started, asyncio.ensure_future(_read_recent(member)))
    return await asyncio.shield(entry[1])  # one stream closing does not cancel the others' read


def _tick_after(instant: float) -> float:
    """The next check after ``instant``: on one clock for every stream of the process (multiples
    of ``CHECK_SECONDS`` of ``time.monotonic``), so that they check together and share a read."""
    return (math.floor(instant / CHECK_SECONDS) + 1) * CHECK_SECONDS


def _failed(read: asyncio.Future[Recent]) -> bool:
    return read.done() and (read.cancelled() or read.exception() is not None)


class _Activity:
    """What the stream has seen of the company's latest activity."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.seen: Recent = set()
        self.started = False

    async def changed(self) -> bool:
        recent = await _recent(self.member)
        new = recent - self.seen
        self.seen = recent
        first, self.started = not self.started, True
        return bool(new) and not first


@router.get("/live")
async def live(
    request: Request,
    member: ViewerPage,
    conversation: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    runtime = member.visitor.runtime
    person = member.visitor.signed_in
    assert person is not None
    principal = member.tenant.principal
    if conversation is not None:
        async with member.tenant.transaction() as session:
            await conversations.get_conversation(session, conversation)  # another company's: 404
    token = request.cookies.get(SESSION_COOKIE, "")
    name = person.name or person.email

    async def stream() -> AsyncIterator[dict[str, Any]]:
        topics = [conversations.queue_topic(principal.company_id)]
        if conversation is not None:
            topics.append(str(conversation))
        subs = [runtime.listener.subscribe(topic) for topic in topics]
        activity = _Activity(member)
        await activity.changed()
        checked = announced = time.monotonic()
        next_check = _tick_after(checked)
        if conversation is not None:
            await presence.announce(
                runtime.db, conversation, user_id=person.user_id, name=name, doing=presence.Doing.viewing
            )
        try:
            yield {"event": "ready", "data": "{}"}
            while not await request.is_disconnected():
                note = await _next(subs, max(0.0, next_check - time.monotonic()))
                events: set[str] = set()
                if note is not None:
                    kind = note.get("kind", "")
                    if note.get("topic") == topics[0] or kind == "resync":
                        events.add("inbox")
                        if note.get("conversation_id") == str(conversation):
                            events.add("status")
                    if conversation is not None and note.get("topic") == str(conversation):
                        if kind == "resync":
                            events |= {"thread", "status"}
                        elif kind in THREAD_KINDS:
                            events.add("thread")
                        elif kind in STATUS_KINDS:
                            events.add("status")
                        elif kind == presence.KIND and note.get("user_id") != str(person.user_id):
                            data = {k: note.get(k) for k in ("user_id", "name", "doing")}
                            yield {"event": "presence", "data": json.dumps(data)}
                # on the clock, not after every notification: a conversation with many viewers
                # hears each one's presence every REPEAT_SECONDS
                if time.monotonic() >= next_check:
                    next_check = _tick_after(time.monotonic())
                    if await activity.changed():
                        events.add("inbox")
                for event in sorted(events):
                    yield {"event": event, "data": "{}"}
                if conversation is not None and time.monotonic() - announced > presence.REPEAT_SECONDS:
                    announced = time.monotonic()
                    await presence.announce(
                        runtime.db,
                        conversation,
                        user_id=person.user_id,
                        name=name,
                        doing=presence.Doing.viewing,
                    )
                if time.monotonic() - checked > SESSION_CHECK_SECONDS:
                    checked = time.monotonic()
                    if await signed_in_from_session(runtime, token) is None:
                        yield {"event": "signed_out", "data": "{}"}
                        return
        finally:
            for sub in subs:
                sub.close()
            if conversation is not None:  # in a task of its own: this one may be cancelled
                leaving = asyncio.ensure_future(
                    presence.announce(
                        runtime.db, conversation, user_id=person.user_id, name=name, doing=presence.Doing.left
                    )
                )
                _LEAVING.add(leaving)
                leaving.add_done_callback(_left)

    return EventSourceResponse(
        until_database_lost(stream(), "dashboard"), ping=15, headers={"Cache-Control": "no-store"}
    )


@router.post("/conversations/{conversation_id}/typing")
async def typing(member: AgentPage, conversation_id: uuid.UUID) -> Response:
    """This agent is typing a reply or a note (the composer says so every few seconds)."""
    person = member.visitor.signed_in
    assert person is not None
    async with member.tenant.transaction() as session:
        await conversations.get_conversation(session, conversation_id)
    await presence.announce(
        member.visitor.runtime.db,
        conversation_id,
        user_id=person.user_id,
        name=person.name or person.email,
        doing=presence.Doing.typing,
    )
    return Response(status_code=204)


@router.post("/availability")
async def availability(
    member: AgentPage,
    availability: Annotated[str, Form(max_length=10)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/app/inbox",
) -> Response:
    """The agent says they are online (they take conversations) or away."""
    try:
        chosen = Availability(availability)
    except ValueError:
        raise InvalidInput(f"no availability '{availability}'", field="availability") from None
    async with member.tenant.transaction() as session:
        await teams.change_availability(
            session, member.tenant.principal, "me", chosen, member.visitor.runtime.clock()
        )
    target = next if next.startswith("/app") and not next.startswith("//") else "/app/inbox"
    return redirect(target.split("?", 1)[0], notice=f"availability_{chosen.value}")
