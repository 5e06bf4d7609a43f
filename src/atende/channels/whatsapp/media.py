"""A customer's media file (image, audio, voice note, video, document, sticker) fetched from
the Graph API into the media store (``atende.media``), as a job.

The webhook keeps what Meta sends about a file (its Graph media id, mime type, sha256,
caption, file name) in the message's ``meta.media`` and, in the transaction that stores the
message, queues ``channels:fetch_whatsapp_media`` (``enqueue``): the webhook never waits for
a download. The job (``fetch_into_store``):

1. reads the message in its company's session; one whose ``meta.media`` already names a
   stored file (``media_id``) or a reason it could not be fetched (``error``) is left alone,
   so a re-run stores no second copy;
2. downloads the bytes outside any transaction (``graph.download_media``: timeouts, a
   deadline, and the size limit, the smaller of WhatsApp's 100 MB and
   ``ATENDE_MEDIA_MAX_BYTES``, checked on Meta's declared size and again while reading);
3. stores them (``media.service.put``) and records ``media_id``, ``content_type`` and
   ``size`` on ``meta.media``, with the message row locked and checked again (two runs at
   once store one file), and tells the conversation's viewers (``media`` on its topic);
4. a retryable ``GraphError`` (a timeout, a rate limit, Meta's 5xx) or a failing store is
   raised again, so the queue retries with backoff; a permanent one (a file over the limit,
   a rejected token, a media id Meta no longer has), or any failure on the last attempt, is
   recorded as ``meta.media.error`` (a kind the dashboard words, ``ERRORS``) and
   ``error_detail`` (what failed, never a secret), and nothing is stored.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

import structlog
from sqlalchemy import func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels import accounts
from atende.channels.base import Account
from atende.channels.intake import ACCOUNT_META
from atende.channels.models import ChannelAccount
from atende.channels.whatsapp import graph
from atende.channels.whatsapp.channel import KIND, channel, graph_of
from atende.conversations.models import Message
from atende.db.pubsub import publish
from atende.jobs.queue import JobQueue
from atende.media import service as media_service
from atende.media.store import MediaTooLarge
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

TASK = "channels:fetch_whatsapp_media"
LIVE_KIND = "media"  # on the conversation's topic: a file arrived, or could not be fetched
# meta.media.error: why a file could not be fetched (the dashboard says each in words)
TOO_LARGE = "too_large"  # over the size limit: nothing stored
TOKEN_REJECTED = "token_rejected"  # noqa: S105 (a kind of failure) the number's access token was refused (190)
GONE = "gone"  # Meta has no such media any more (deleted, past its 30 days)
NO_ACCOUNT = "no_account"  # the number it came through was removed or disabled
UNAVAILABLE = "unavailable"  # still failing after every retry (Meta, the network, the store)
ERRORS = frozenset({TOO_LARGE, TOKEN_REJECTED, GONE, NO_ACCOUNT, UNAVAILABLE})
DETAIL_CHARS = 300


class MediaSink(Protocol):
    """Where fetched bytes go (the media store); answers the store's id of the file."""

    async def __call__(
        self, company_id: uuid.UUID, content: bytes, *, mime_type: str, filename: str | None
    ) -> str: ...


async def fetch_media(
    account: Account,
    media_id: str,
    sink: MediaSink,
    *,
    filename: str | None = None,
    max_bytes: int = graph.MEDIA_MAX_BYTES,
) -> str:
    """Download one media file of ``account``'s number and store it; the store's id.
    Raises ``graph.GraphError`` (``retryable`` says whether a later try may work: a
    rate limit, a timeout; not a file over ``max_bytes`` or a rejected token)."""
    media = await graph.download_media(graph_of(account), media_id, max_bytes=max_bytes)
    return await sink(account.company_id, media.content, mime_type=media.mime_type, filename=filename)


async def enqueue(
    session: AsyncSession, jobs: JobQueue, company_id: uuid.UUID, message_id: uuid.UUID
) -> None:
    """Queue the fetch of a stored message's file, in the transaction that stores it."""
    await jobs.enqueue(session, TASK, company_id=str(company_id), message_id=str(message_id))


def error_kind(exc: graph.GraphError) -> str:
    """What a Graph failure means for the file, as ``meta.media.error`` keeps it."""
    if exc.status == 413:
        return TOO_LARGE
    if exc.code == graph.TOKEN_REJECTED:
        return TOKEN_REJECTED
    if exc.status == 404 or exc.code == 100:  # Meta: "Object with ID ... does not exist"
        return GONE
    return UNAVAILABLE


def _media_of(message: Message | None) -> dict[str, Any] | None:
    if message is None or message.channel != KIND:
        return None
    media = (message.meta or {}).get("media")
    return media if isinstance(media, dict) else None


def _settled(media: dict[str, Any]) -> bool:
    return bool(media.get("media_id") or media.get("error"))


async def _record(session: AsyncSession, message: Message, **changes: Any) -> None:
    """Merge ``changes`` into the message's ``meta.media`` and tell its viewers."""
    merged = func.jsonb_set(Message.meta, ["media"], Message.meta["media"].op("||")(literal(changes, JSONB)))
    await session.execute(
        update(Message)
        .where(Message.id == message.id, Message.company_id == message.company_id)
        .values(meta=merged)
    )
    await publish(session, str(message.conversation_id), LIVE_KIND, message_id=str(message.id))


async def _locked(session: AsyncSession, message_id: uuid.UUID) -> Message | None:
    return await session.scalar(select(Message).where(Message.id == message_id).with_for_update())


async def _fail(
    runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID, kind: str, detail: str
) -> str:
    async with runtime.db.transaction(company_id) as session:
        message = await _locked(session, message_id)
        media = _media_of(message)
        if message is None or media is None or _settled(media):
            return "already settled"
        await _record(session, message, error=kind, error_detail=detail[:DETAIL_CHARS])
    log.warning("whatsapp.media_failed", message_id=str(message_id), error=kind, detail=detail[:DETAIL_CHARS])
    return f"failed: {kind}"


async def fetch_into_store(
    runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID, *, last_attempt: bool
) -> str:
    """Fetch the file of one stored WhatsApp message into the media store; what became of
    it. Raises to be retried (never on the last attempt, which records the failure)."""
    async with runtime.db.transaction(company_id) as session:
        message = await session.get(Message, message_id)
        media = _media_of(message)
        if message is None or media is None:
            return "no media to fetch"
        if _settled(media):
            return "already settled"
        graph_id = str(media.get("id") or "")
        account_id = str((message.meta or {}).get(ACCOUNT_META) or "")
        try:
            row = await session.get(ChannelAccount, uuid.UUID(account_id)) if account_id else None
        except ValueError:
            row = None
        account = None
        if row is not None and row.enabled:
            try:
                account = accounts.open_account(channel, row, runtime.secret_key)
            except ValueError:
                account = None
    if not graph_id:
        return await _fail(runtime, company_id, message_id, GONE, "the message names no media id")
    if account is None:
        return await _fail(
            runtime, company_id, message_id, NO_ACCOUNT, "no enabled WhatsApp account to fetch it through"
        )
    max_bytes = min(graph.MEDIA_MAX_BYTES, runtime.settings.media_max_bytes)
    declared_type = str(media.get("mime_type") or "")
    filename = media.get("filename")

    async def sink(company_id: uuid.UUID, content: bytes, *, mime_type: str, filename: str | None) -> str:
        async with runtime.db.transaction(company_id) as session:
            message = await _locked(session, message_id)
            found = _media_of(message)
            if message is None or found is None:
                return ""
            if found.get("media_id"):  # another run stored it meanwhile
                return str(found["media_id"])
            stored = await media_service.put(
                session,
                media_service.media_store(runtime),
                content,
                content_type=mime_type or declared_type,
                filename=filename,
                max_bytes=max_bytes,
            )
            await _record(
                session,
                message,
                media_id=str(stored.id),
                content_type=stored.content_type,
                size=stored.size_bytes,
            )
            return str(stored.id)

    try:
        stored_id = await fetch_media(
            account,
            graph_id,
            sink,
            filename=filename if isinstance(filename, str) else None,
            max_bytes=max_bytes,
        )
    except graph.GraphError as exc:
        if exc.retryable and not last_attempt:
            log.info("whatsapp.media_retrying", message_id=str(message_id), reason=exc.reason)
            raise
        return await _fail(runtime, company_id, message_id, error_kind(exc), exc.reason)
    except MediaTooLarge as exc:
        return await _fail(runtime, company_id, message_id, TOO_LARGE, str(exc))
    except Exception as exc:  # the store or the database: retried, and recorded at the end
        if not last_attempt:
            log.warning("whatsapp.media_retrying", message_id=str(message_id), reason=describe(exc))
            raise
        return await _fail(runtime, company_id, message_id, UNAVAILABLE, describe(exc))
    if not stored_id:
        return "no media to fetch"  # the message was deleted meanwhile
    log.info("whatsapp.media_stored", message_id=str(message_id), media_id=stored_id)
    return "stored"
