"""Where every channel hands in what it received: the channel's conversation policy applied,
the account it arrived through recorded, then ``conversations.receive_inbound``.

The policy (``base.ConversationPolicy``) becomes ``receive_inbound``'s arguments: ``Joins.named``
requires the conversation id, ``Joins.thread`` looks the conversation up by the message's
``thread_refs``, ``Joins.contact`` takes the named one or the contact's latest; a message's own
``reopens_resolved`` overrides the policy's. The rules of what a message then does to its
conversation are ``conversations.states``' (see docs/CHANNELS.md)."""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from atende.channels.base import Account, Channel, Joins
from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.db.session import DriverConnection
from atende.errors import InvalidInput
from atende.observability import metrics

# the key of a customer message's ``meta`` naming the channel account it arrived through:
# replies go out through the account of the customer's latest message (``channels.delivery``)
ACCOUNT_META = "channel_account_id"


async def receive(
    connection: AsyncConnection | DriverConnection,
    company_id: uuid.UUID,
    channel: Channel,
    inbound: InboundMessage,
    account: Account | None = None,
) -> conversations.Received:
    """Store one inbound message of ``channel`` (in the connection's transaction, or as one
    atomic statement on ``Database.driver_autocommit()`` or ``autocommit()``)."""
    if inbound.channel != channel.kind:
        raise ValueError(f"a {inbound.channel} message handed in as the {channel.kind} channel's")
    policy = channel.conversation_policy
    if policy.joins == Joins.named and inbound.conversation_id is None:
        raise InvalidInput(f"a {channel.kind} message must name its conversation")
    reopens = policy.reopens_resolved if inbound.reopens_resolved is None else inbound.reopens_resolved
    if account is not None:
        if account.company_id != company_id or account.kind != channel.kind:
            raise ValueError(f"account {account.id} is not a {channel.kind} account of company {company_id}")
        inbound = dataclasses.replace(inbound, meta={**inbound.meta, ACCOUNT_META: str(account.id)})
    received = await conversations.receive_inbound(
        connection, company_id, inbound, by_thread=policy.joins == Joins.thread, reopens_resolved=reopens
    )
    if not received.duplicate:
        metrics.MESSAGES_RECEIVED.labels(channel.kind).inc()
    return received
