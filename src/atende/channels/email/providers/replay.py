"""Mailgun's replay check: a token each account takes once.

A Mailgun post is signed over its ``timestamp`` and ``token``, so the same post sent again
(captured on the way, or from a log) carries a valid signature. It is refused when its
timestamp is stale, and within the tolerance by its token: each account records the tokens
it accepted (``email_webhook_tokens``) until ``expires_at``, the moment their timestamp turns
stale — past it, the timestamp check alone refuses a replay, and the row is deleted by the
next post to that account. The table holds, per account, at most the tokens of one tolerance
window (10 minutes of mail at the default 5-minute tolerance).

The check and the record are one statement (``INSERT … ON CONFLICT DO NOTHING``): of two
posts of the same token at the same time, exactly one is accepted.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels.email.providers.models import WebhookToken
from atende.db.session import Database


class TokenLedger(Protocol):
    async def first_use(self, token: str, expires_at: datetime, now: datetime) -> bool:
        """Record ``token``; whether it was not recorded before."""
        ...


async def first_use(
    session: AsyncSession,
    company_id: uuid.UUID,
    account_id: uuid.UUID,
    token: str,
    expires_at: datetime,
    now: datetime,
) -> bool:
    """Record ``token`` for the account, in ``session``'s transaction (a company session of
    ``company_id``); whether it is new. The account's expired tokens go first."""
    await session.execute(
        delete(WebhookToken).where(
            WebhookToken.company_id == company_id,
            WebhookToken.account_id == account_id,
            WebhookToken.expires_at < now,
        )
    )
    inserted = await session.execute(
        insert(WebhookToken)
        .values(company_id=company_id, account_id=account_id, token=token, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[WebhookToken.account_id, WebhookToken.token])
        .returning(WebhookToken.token)
    )
    return inserted.first() is not None


class PostgresTokenLedger:
    """The tokens of one account, each recorded in a transaction of its own (committed
    before the message is stored: a post that fails after it is retried by Mailgun with a
    token of its own, and a token is never accepted twice)."""

    def __init__(self, db: Database, company_id: uuid.UUID, account_id: uuid.UUID) -> None:
        self.db = db
        self.company_id = company_id
        self.account_id = account_id

    async def first_use(self, token: str, expires_at: datetime, now: datetime) -> bool:
        async with self.db.transaction(self.company_id) as session:
            return await first_use(session, self.company_id, self.account_id, token, expires_at, now)
