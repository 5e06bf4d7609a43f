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
    session: AsyncSession, model: type[T], ident: uuid.UUID, what: str, *, for_update: bool = False
) -> T:
    """The row of the session's company with this id; ``NotFound`` ("no <what> <id>") if
    there is none, including when the id belongs to another company."""
    # a lock must come with a fresh read: the session may hold an older copy of the row
    row = await session.get(model, ident, with_for_update=for_update, populate_existing=for_update)
    if row is None:
        raise NotFound(f"no {what} {ident}")
    return row
