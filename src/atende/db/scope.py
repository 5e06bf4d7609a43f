"""Helpers for code that must name the company explicitly (Core inserts, job payloads)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.session import COMPANY_KEY, UnscopedQuery


def company_of(session: AsyncSession) -> uuid.UUID:
    """The company a session is bound to; raises if it is a platform session."""
    company_id: uuid.UUID | None = session.info.get(COMPANY_KEY)
    if company_id is None:
        raise UnscopedQuery("this operation needs a company session")
    return company_id
