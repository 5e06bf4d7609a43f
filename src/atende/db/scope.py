"""Scoped lookups and helpers for code that must name the company explicitly."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.session import COMPANY_KEY, UnscopedQuery
from atende.errors import NotFound

T = TypeVar("T")


def company_of(session: AsyncSession) -> uuid.UUID:
    """The company a session is bound to; raises if it is a platform session."""
    company_id: uuid.UUID | None = session.info.get(COMPANY_KEY)
    if company_id is None:
        raise UnscopedQuery("this operation needs a company session")
    return company_id


async def get_or_404(
    session: AsyncSession,
    model: type[T],
    ident: uuid.UUID,
    what: str,
    *,
    for_update: bool = False,
    no_key: bool = False,
) -> T:
    """The row of the session's company with this id; ``NotFound`` ("no <what> <id>") if
    there is none, including when the id belongs to another company.

    ``for_update`` locks the row ``FOR UPDATE``; with ``no_key`` too, ``FOR NO KEY UPDATE``:
    for a caller that changes only columns no foreign key points at (a document's status,
    its metadata). It still waits for another writer of the row, but not for the key-share
    locks of transactions inserting rows that reference it (a job writing a document's
    chunks), which would deadlock when that job then waits to update the row itself."""
    lock: bool | dict[str, bool] = {"key_share": True} if for_update and no_key else for_update
    # a lock must come with a fresh read: the session may hold an older copy of the row
    row = await session.get(model, ident, with_for_update=lock, populate_existing=for_update)
    if row is None:
        raise NotFound(f"no {what} {ident}")
    return row
