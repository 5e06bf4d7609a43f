"""The customer's blue ticks: a WhatsApp message is marked read when the bot takes it.

That happens in the worker, as the bot turn starts (``engine.turn.on_taken``, wired by
``atende.bootstrap``), not in the webhook's acknowledgement: the acknowledgement stays a
signature check, a parse and a store (``benchmarks/README.md``, ``whatsapp_webhook``), and
"read" means what the customer takes it to mean, that someone (the bot) has the message.
The call goes through the process's pooled Graph client (``graph.client``).

Best effort: one call, bounded in all by ``READ_DEADLINE``; a failure is logged, and the turn
goes on (a message left for the team is not marked read by the bot)."""

from __future__ import annotations

import asyncio
import uuid

import structlog

from atende.channels import accounts
from atende.channels.intake import ACCOUNT_META
from atende.channels.models import ChannelAccount
from atende.channels.whatsapp import graph
from atende.channels.whatsapp.channel import channel, graph_of
from atende.conversations.models import Message
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

# the account's lookup and the Graph call together (the call's own timeouts are shorter)
READ_DEADLINE = 8.0


async def mark_taken(runtime: Runtime, message: Message) -> None:
    """Mark ``message`` read at Meta, through the account it arrived by (its ``meta``)."""
    account_id = str((message.meta or {}).get(ACCOUNT_META) or "")
    if not message.channel_message_id or not account_id:
        return
    try:
        async with asyncio.timeout(READ_DEADLINE):
            async with runtime.db.transaction(message.company_id) as session:
                row = await session.get(ChannelAccount, uuid.UUID(account_id))
            if row is None or not row.enabled:
                return
            account = accounts.open_account(channel, row, runtime.secret_key)
            await graph.mark_read(graph_of(account), account.external_id, message.channel_message_id)
    except graph.GraphError as exc:
        log.info("whatsapp.mark_read_failed", account_id=account_id, reason=exc.reason)
    except (ValueError, TimeoutError) as exc:  # an unreadable account, a deadline passed
        log.info("whatsapp.mark_read_failed", account_id=account_id, reason=describe(exc))
