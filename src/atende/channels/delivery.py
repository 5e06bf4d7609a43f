"""Delivering one outbound message through its conversation's channel (the outbox's job,
``atende.channels.tasks``), and the credential checks of channel accounts (``/health/ready``).

Every outbound message of a ``push`` channel is stored ``queued`` with its delivery job, in
one transaction (``conversations.service.add_reply``); one of a ``live`` channel (web chat,
API) is stored ``sent`` with no job: its customer reads the live stream, fed when the message
commits. The job:

1. locks the message and reads it; a message past ``queued`` was sent by an earlier run of
   the job (a retry, a stalled job run again): nothing is sent twice from here;
2. a ``live`` channel's message (queued by a process that had not registered the channel,
   or before replies on live channels were stored ``sent``) is marked ``sent`` under its own
   id, without a call;
3. a ``push`` channel: the account is the one the customer's latest message arrived through;
   ``send`` is called outside any transaction (no row lock or connection held across a
   network call), then the message is marked ``sent`` with the provider's id, and moved on
   by a status update the provider sent for that id while ``send`` was in flight (kept
   pending by ``conversations.service.apply_delivery_status``);
4. a ``DeliveryError(retryable=True)`` (or any other exception) is raised again, so the queue
   retries with backoff; a permanent one, or any failure on the last attempt, marks the
   message ``failed`` with the reason, which the conversation's topic and the
   ``message.delivery_failed`` webhook announce.

Exactly once: a crash before ``send`` leaves the message ``queued`` and the job ``doing``; the
stalled-job recovery runs it again and it is sent once. A crash after the provider accepted
the message but before ``sent`` was recorded sends it again on the retry: at least once,
unless the provider dedupes by the idempotency key every attempt carries
(``Outbound.message_id``), which a channel passes when its provider takes one.
"""

from __future__ import annotations

import functools
import hashlib
import uuid

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels import accounts, registry
from atende.channels.base import Account, Attachment, Channel, DeliveryError, Outbound
from atende.channels.intake import ACCOUNT_META
from atende.channels.models import ChannelAccount
from atende.conversations import attachments
from atende.conversations import service as conversations
from atende.conversations.models import Contact, Conversation, Message
from atende.errors import NotFound
from atende.media import service as media
from atende.media.store import MediaMissing, MediaStore
from atende.observability import events
from atende.observability.credentials import Credential, Verdict
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)


class Failed(Exception):
    """The message cannot be delivered; trying again would not help."""


async def deliver(
    runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID, *, last_attempt: bool
) -> str:
    """Deliver a queued message; what became of it. Raises to be retried (not on the last
    attempt, which marks the message failed instead)."""
    failed: tuple[str, uuid.UUID, str] | None = None  # (channel, conversation, reason)
    try:
        async with runtime.db.transaction(company_id) as session:
            message = await conversations.message_to_deliver(session, message_id)
            if message is None:
                return "nothing to deliver"  # sent already (or beyond, or failed), or deleted
            channel = registry.find(message.channel)
            try:
                if channel is None:
                    raise Failed(f"no channel '{message.channel}' is registered in this process")
                if channel.delivery == "live":
                    await conversations.advance_delivery(
                        session, runtime.jobs, message.id, "sent", provider_message_id=str(message.id)
                    )
                    return "sent (live stream)"
                account, outbound = await _prepare(session, runtime, channel, message)
            except Failed as exc:
                await conversations.advance_delivery(
                    session, runtime.jobs, message.id, "failed", reason=str(exc)
                )
                log.warning(
                    "delivery.failed", channel=message.channel, message_id=str(message_id), reason=str(exc)
                )
                failed = (message.channel, message.conversation_id, str(exc))
        if failed is not None:
            await _record_failure(runtime, company_id, message_id, *failed)
            return "failed"
        assert channel is not None  # a missing channel failed above
    except Exception as exc:
        # anything else while reading (a database error, a damaged account reference) is
        # retried like a failed send, and on the last attempt marks the message failed
        # rather than leaving it queued for ever
        if not last_attempt:
            raise
        await _fail(runtime, company_id, message_id, describe(exc), channel="unknown")
        return "failed"
    try:
        sent = await channel.send(account, outbound)
    except DeliveryError as exc:
        if exc.retryable and not last_attempt:
            log.warning(
                "delivery.retrying", channel=channel.kind, message_id=str(message_id), reason=exc.reason
            )
            raise
        await _fail(runtime, company_id, message_id, exc.reason, channel=channel.kind)
        return "failed"
    except Exception as exc:
        if not last_attempt:
            log.warning(
                "delivery.retrying", channel=channel.kind, message_id=str(message_id), reason=describe(exc)
            )
            raise
        await _fail(runtime, company_id, message_id, describe(exc), channel=channel.kind)
        return "failed"
    async with runtime.db.transaction(company_id) as session:
        await conversations.record_sent(
            session, runtime.jobs, message_id, channel.kind, sent.provider_message_id
        )
    log.info("delivery.sent", channel=channel.kind, message_id=str(message_id), account_id=str(account.id))
    return "sent"


async def _prepare(
    session: AsyncSession, runtime: Runtime, channel: Channel, message: Message
) -> tuple[Account, Outbound]:
    conversation = await session.get_one(Conversation, message.conversation_id)
    contact = await session.get_one(Contact, conversation.contact_id)
    account = await conversation_account(session, runtime, channel, conversation.id)
    outbound = Outbound(
        message_id=message.id,
        conversation_id=conversation.id,
        contact_external_id=contact.external_id,
        author=message.author,
        text=message.text,
        reply_to_id=message.reply_to_id,
        meta=dict(message.meta or {}),
        attachments=await _attachments(session, runtime, message),
    )
    return account, await channel.prepare(runtime, session, account, outbound)


async def _attachments(session: AsyncSession, runtime: Runtime, message: Message) -> tuple[Attachment, ...]:
    """The files the message carries (``meta.attachments``), their bytes read only when
    ``send`` asks; ``Failed`` when one was deleted since the reply was stored."""
    store = media.media_store(runtime)
    found: list[Attachment] = []
    for item in attachments.of(message.meta):
        try:
            row = await media.get(session, uuid.UUID(str(item.get("media_id"))))
        except (ValueError, NotFound):
            raise Failed(f"the attached file {item.get('media_id')} no longer exists") from None
        read = functools.partial(_read_file, store, row.storage_key, row.id)
        found.append(Attachment(row.id, row.content_type, row.filename, row.size_bytes, read))
    return tuple(found)


async def _read_file(store: MediaStore, key: str, media_id: uuid.UUID) -> bytes:
    """A file's bytes from the media store: a missing file is a permanent failure, a store
    that cannot answer now (``MediaUnavailable``) is retried."""
    try:
        blob = await store.open(key)
    except MediaMissing:
        missing = f"the attached file {media_id} is missing from the media store"
        raise DeliveryError(missing, retryable=False) from None
    return b"".join([chunk async for chunk in blob.chunks])


async def conversation_account(
    session: AsyncSession, runtime: Runtime, channel: Channel, conversation_id: uuid.UUID
) -> Account:
    """The account a conversation's messages go out through: the one its customer's latest
    message arrived through (``Failed``: none, or disabled, or unreadable)."""
    account_id = await session.scalar(
        select(Message.meta[ACCOUNT_META].astext)
        .where(Message.conversation_id == conversation_id, Message.author == "customer")
        .order_by(Message.seq.desc())
        .limit(1)
    )
    try:
        row = await session.get(ChannelAccount, uuid.UUID(account_id)) if account_id else None
    except ValueError:  # not a UUID: a message's meta damaged by hand
        row = None
    if row is None or not row.enabled:
        raise Failed(f"no enabled {channel.kind} account to send through")
    try:
        return accounts.open_account(channel, row, runtime.secret_key)
    except ValueError as exc:
        raise Failed(f"the {channel.kind} account cannot be opened: {describe(exc)}") from exc


async def _fail(
    runtime: Runtime, company_id: uuid.UUID, message_id: uuid.UUID, reason: str, *, channel: str
) -> None:
    async with runtime.db.transaction(company_id) as session:
        await conversations.advance_delivery(session, runtime.jobs, message_id, "failed", reason=reason)
        message = await session.get(Message, message_id)
        conversation_id = message.conversation_id if message is not None else None
    log.warning("delivery.failed", channel=channel, message_id=str(message_id), reason=reason)
    await _record_failure(runtime, company_id, message_id, channel, conversation_id, reason)


async def _record_failure(
    runtime: Runtime,
    company_id: uuid.UUID,
    message_id: uuid.UUID,
    channel: str,
    conversation_id: uuid.UUID | None,
    reason: str,
) -> None:
    """The failure as an error event of the company (``/app/logs``), linked to its conversation."""
    await events.record(
        runtime,
        events.DELIVERY_FAILED,
        f"A {channel} message could not be delivered: {reason}",
        level="error",
        company_id=company_id,
        conversation_id=conversation_id,
        details={"channel": channel, "message_id": str(message_id), "reason": reason},
    )


def credential_fingerprint(row: ChannelAccount) -> str:
    """The readiness check's name for an account's secrets: equal while they are unchanged
    (a page finds the account's last verdict by it)."""
    return hashlib.sha256(
        "\n".join([row.kind, row.external_id, *sorted((row.secrets or {}).values())]).encode()
    ).hexdigest()[:16]


async def account_credentials(runtime: Runtime) -> list[Credential]:
    """The enabled accounts with secrets, of every registered channel, for ``/health/ready``."""
    async with runtime.db.transaction() as session:
        rows = list(await session.scalars(select(ChannelAccount).where(ChannelAccount.enabled)))
    found: list[Credential] = []
    for row in rows:
        channel = registry.find(row.kind)
        if channel is None or not row.secrets:
            continue
        fingerprint = credential_fingerprint(row)
        label = f"{row.kind} {row.display_name or row.external_id}"
        try:
            account = accounts.open_account(channel, row, runtime.secret_key)
        except ValueError as exc:
            reason = describe(exc)

            async def undecryptable(reason: str = reason) -> Verdict:
                return Verdict(False, reason)

            found.append(Credential(row.kind, row.company_id, label, fingerprint, undecryptable))
            continue

        async def check(channel: Channel = channel, account: Account = account) -> Verdict:
            return await channel.check_credentials(account)

        found.append(Credential(row.kind, row.company_id, label, fingerprint, check))
    return found
