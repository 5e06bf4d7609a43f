"""Reading the traces bot turns leave behind."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import service as conversations
from atende.engine.models import Trace


async def list_traces(session: AsyncSession, conversation_id: uuid.UUID) -> list[Trace]:
    await conversations.get_conversation(session, conversation_id)
    rows = await session.scalars(
        select(Trace).where(Trace.conversation_id == conversation_id).order_by(Trace.created_at)
    )
    return list(rows)


async def trace_of(session: AsyncSession, message_id: uuid.UUID) -> Trace | None:
    """The trace of the turn that took the customer message ``message_id`` (a bot reply's
    ``reply_to_id``), if a turn traced it."""
    return await session.scalar(select(Trace).where(Trace.message_id == message_id))
