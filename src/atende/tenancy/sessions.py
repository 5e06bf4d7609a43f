"""Dashboard sessions: who a signed-in browser is, in which company, until when.

A session is a random token in an HttpOnly cookie; only its keyed hash is stored
(``user_sessions``), so a copy of the database signs nobody in. It ends when unused for the
idle time, at its absolute expiry whatever happens, when its person signs out (here or
everywhere), changes or resets their password, or is deactivated in the company it works in:
each of these deletes rows, and the next request finds none. Every request re-reads the
person's memberships, so a changed role or a deactivation applies at once, on every server.

A session belongs to a person, not to a company: ``company_id`` is the company they work in
now, one of their active memberships, switched without signing in again. The caller of a
page is then the same ``Principal`` an API key gives (company, role, person), so pages call
the same service functions as the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.errors import NotFound, Unauthorized
from atende.tenancy.crypto import hash_token, new_token
from atende.tenancy.models import Company, Membership, Role, User, UserSession
from atende.tenancy.service import Principal

# last_seen_at is written at most this often per session (the idle expiry's resolution)
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class SessionEnded(Unauthorized):
    """No session for this cookie: never one, signed out, expired or revoked."""


@dataclass(frozen=True)
class CompanyChoice:
    """A company a person may work in, with their role there."""

    id: uuid.UUID
    name: str
    role: Role
    default_language: str = "pt"


@dataclass(frozen=True)
class SignedIn:
    """The person behind a session cookie, their active companies and the one chosen."""

    session_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    name: str
    language: str | None
    is_superadmin: bool
    company: CompanyChoice | None
    companies: tuple[CompanyChoice, ...]

    def principal(self) -> Principal | None:
        """The caller as the services know it (``None``: no company chosen or left)."""
        if self.company is None:
            return None
        return Principal(company_id=self.company.id, role=self.company.role, user_id=self.user_id)


async def active_companies(session: AsyncSession, user_id: uuid.UUID) -> tuple[CompanyChoice, ...]:
    """The companies where the person is an active member, by name (a platform session: a
    person's memberships span companies, as authenticating an API key does)."""
    rows = await session.execute(
        select(Company.id, Company.name, Membership.role, Company.default_language)
        .join(Membership, Membership.company_id == Company.id)
        .where(Membership.user_id == user_id, Membership.deactivated_at.is_(None))
        .order_by(Company.name, Company.id)
    )
    return tuple(
        CompanyChoice(id=cid, name=name, role=Role(role), default_language=language)
        for cid, name, role, language in rows
    )


async def start_session(
    session: AsyncSession,
    *,
    secret_key: str,
    user_id: uuid.UUID,
    now: datetime,
    max_age: timedelta,
    company_id: uuid.UUID | None = None,
) -> str:
    """A new session for the person; returns its token (the cookie), never stored. Without
    ``company_id`` it starts in the company of their latest session, else their first."""
    companies = {c.id for c in await active_companies(session, user_id)}
    if company_id is None or company_id not in companies:
        latest = await session.scalar(
            select(UserSession.company_id)
            .where(UserSession.user_id == user_id, UserSession.company_id.is_not(None))
            .order_by(UserSession.created_at.desc())
            .limit(1)
        )
        company_id = latest if latest in companies else None
    if company_id is None and companies:
        company_id = (await active_companies(session, user_id))[0].id
    token = new_token(32)
    session.add(
        UserSession(
            user_id=user_id,
            token_hash=hash_token(secret_key, token),
            company_id=company_id,
            last_seen_at=now,
            expires_at=now + max_age,
        )
    )
    audit.record(session, "auth.signed_in", ("user", user_id), company_id=company_id, user_id=user_id)
    await session.flush()
    return token


async def authenticate_session(
    session: AsyncSession, *, secret_key: str, token: str, now: datetime, idle: timedelta
) -> SignedIn:
    """The person of a session cookie; ``SessionEnded`` if there is no live session (an
    expired one is deleted)."""
    found = (
        await session.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == hash_token(secret_key, token))
        )
    ).first()
    if found is None:
        raise SessionEnded("you are signed out; sign in again")
    row, user = found
    if now >= row.expires_at or now - row.last_seen_at >= idle:
        await session.delete(row)
        raise SessionEnded("your session expired; sign in again")
    if now - row.last_seen_at >= LAST_SEEN_RESOLUTION:
        row.last_seen_at = now
    companies = await active_companies(session, user.id)
    company = next((c for c in companies if c.id == row.company_id), None)
    return SignedIn(
        session_id=row.id,
        user_id=user.id,
        email=user.email,
        name=user.name,
        language=user.language,
        is_superadmin=user.is_superadmin,
        company=company,
        companies=companies,
    )


async def switch_company(
    session: AsyncSession, *, session_id: uuid.UUID, user_id: uuid.UUID, company_id: uuid.UUID
) -> CompanyChoice:
    """Work in another of the person's companies; ``NotFound`` for any company they are not an
    active member of (whether or not it exists)."""
    company = next((c for c in await active_companies(session, user_id) if c.id == company_id), None)
    row = await session.get(UserSession, session_id)
    if company is None or row is None:
        raise NotFound(f"no company {company_id}")
    row.company_id = company.id
    return company


async def end_session(session: AsyncSession, *, secret_key: str, token: str) -> None:
    """Sign one browser out (nothing happens for an unknown token)."""
    ended = await session.execute(
        delete(UserSession)
        .where(UserSession.token_hash == hash_token(secret_key, token))
        .returning(UserSession.user_id, UserSession.company_id)
    )
    for user_id, company_id in ended.all():
        audit.record(session, "auth.signed_out", ("user", user_id), company_id=company_id, user_id=user_id)


async def end_sessions(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    company_id: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    """End a person's sessions (only those working in ``company_id``, when given; all but
    ``keep``, when given); returns how many ended."""
    stmt = delete(UserSession).where(UserSession.user_id == user_id)
    if company_id is not None:
        stmt = stmt.where(UserSession.company_id == company_id)
    if keep is not None:
        stmt = stmt.where(UserSession.id != keep)
    ended = await session.execute(stmt.returning(UserSession.id))
    return len(ended.all())
