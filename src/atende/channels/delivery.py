"""Delivery of outbound messages through their conversation's channel, and the credential
checks of channel accounts (for ``/health/ready``).

``deliver`` is what ``atende.bootstrap`` gives the domains as their ``Deliver`` port
(``conversations.delivery``): called once a reply has committed, it finds the account the
customer's latest message arrived through, calls the channel's ``send`` and records the
provider's message id on the message. A ``live`` channel (web chat, API) is skipped without
a database read: its customers read the live stream, fed when the message committed.

Until the outbox (a durable delivery job with retries) replaces the direct call, a failed
send is logged (``delivery.failed``) and not retried.
"""

from __future__ import annotations

import hashlib
import uuid

import structlog
from sqlalchemy import select

from atende.channels import accounts, registry
from atende.channels.base import Account, Channel, Outbound
from atende.channels.intake import ACCOUNT_META
from atende.channels.models import ChannelAccount
from atende.conversations import service as conversations
from atende.conversations.models import Contact, Message
from atende.observability.credentials import Credential, Verdict
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)


async def deliver(runtime: Runtime, company_id: uuid.UUID, kind: str, message_id: uuid.UUID) -> str | None:
    """Send a committed outbound message through its channel; the provider's id (None: a live
    channel, no account, or a disabled one)."""
    channel = registry.find(kind)
    if channel is None or channel.delivery == "live":
        return None
    async with runtime.db.transaction(company_id) as session:
        message = await conversations.get_message(session, message_id)
        conversation = await conversations.get_conversation(session, message.conversation_id)
        contact = await session.get_one(Contact, conversation.contact_id)
        account_id = await session.scalar(
            select(Message.meta[ACCOUNT_META].astext)
            .where(Message.conversation_id == conversation.id, Message.author == "customer")
            .order_by(Message.seq.desc())
            .limit(1)
        )
        row = await session.get(ChannelAccount, uuid.UUID(account_id)) if account_id else None
        if row is None or not row.enabled:
            log.warning("delivery.no_account", channel=kind, message_id=str(message_id))
            return None
        account = accounts.open_account(channel, row, runtime.secret_key)
        outbound = Outbound(
            message_id=message.id,
            conversation_id=conversation.id,
            contact_external_id=contact.external_id,
            author=message.author,
            text=message.text,
            reply_to_id=message.reply_to_id,
        )
    sent = await channel.send(account, outbound)
    async with runtime.db.transaction(company_id) as session:
        await conversations.record_sent(session, message_id, sent.provider_message_id)
    log.info("delivery.sent", channel=kind, message_id=str(message_id), account_id=str(account.id))
    return sent.provider_message_id


async def account_credentials(runtime: Runtime) -> list[Credential]:
    """The enabled accounts with secrets, of every registered channel, for ``/health/ready``."""
    async with runtime.db.transaction() as session:
        rows = list(await session.scalars(select(ChannelAccount).where(ChannelAccount.enabled)))
    found: list[Credential] = []
    for row in rows:
        channel = registry.find(row.kind)
        if channel is None or not row.secrets:
            continue
        fingerprint = hashlib.sha256(
            "\n".join([row.kind, row.external_id, *sorted((row.secrets or {}).values())]).encode()
        ).hexdigest()[:16]
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
