"""Companies, users, memberships and API keys. Services never commit: callers own the
transaction."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.db.pubsub import publish
from atende.db.scope import get_or_404
from atende.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from atende.tenancy.crypto import hash_password, hash_token, new_token, tokens_equal
from atende.tenancy.models import ApiKey, Company, Membership, Role, User

KEY_PREFIX = "atd_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
LANGUAGES = ("pt", "en", "es")
AGENT_ROLES = tuple(r.value for r in Role if r.allows(Role.agent))  # roles that answer conversations


@dataclass(frozen=True)
class Principal:
    """Who is calling: a company and the role the credential carries."""

    company_id: uuid.UUID
    role: Role
    key_prefix: str | None = None
    user_id: uuid.UUID | None = None
    key_id: uuid.UUID | None = None  # the API key's (the audit log's actor); None: a person

    def me(self) -> uuid.UUID:
        """The person of a personal key (what ``me`` means in a route)."""
        if self.user_id is None:
            raise InvalidInput(
                "agent: 'me' needs a personal key (atende keys create --user EMAIL); "
                "or name the agent by user id",
                field="agent",
            )
        return self.user_id


def slugify(name: str, fallback: str = "company") -> str:
    """A URL-safe name: "Suporte Técnico" → "suporte-tecnico"."""
    plain = unicodedata.normalize("NFKD", name)
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", plain).strip("-")
    return slug[:60] or fallback


async def create_company(
    session: AsyncSession, *, name: str, slug: str | None = None, default_language: str = "pt"
) -> Company:
    name = name.strip()
    if not name:
        raise InvalidInput("company name must not be empty")
    if default_language not in LANGUAGES:
        raise InvalidInput(f"default_language must be one of {', '.join(LANGUAGES)}")
    slug = slugify(slug or name)
    if await session.scalar(select(Company.id).where(Company.slug == slug)):
        raise Conflict(f"a company with slug '{slug}' already exists")
    # its web chat account (the widget key) comes from a trigger on ``companies``: tenancy
    # sits below the channels (migration 0018)
    company = Company(name=name, slug=slug, default_language=default_language, settings={})
    session.add(company)
    await session.flush()
    audit.record(session, "company.created", ("company", company.id), {"name": name, "slug": slug})
    return company


async def update_company(
    session: AsyncSession,
    company_id: uuid.UUID,
    *,
    name: str | None = None,
    default_language: str | None = None,
) -> Company:
    """Change the company's name and default language (``None``: kept). Its slug stays: API
    clients and the CLI name the company by it."""
    if name is not None and not name.strip():
        raise InvalidInput("name: the company's name must not be empty", field="name")
    if name is not None and len(name.strip()) > 200:
        raise InvalidInput("name: at most 200 characters", field="name")
    if default_language is not None and default_language not in LANGUAGES:
        raise InvalidInput(f"default_language: one of {', '.join(LANGUAGES)}", field="default_language")
    company = await get_company(session, str(company_id), for_update=True)
    before = {"name": company.name, "default_language": company.default_language}
    after = {
        "name": name.strip() if name is not None else company.name,
        "default_language": default_language or company.default_language,
    }
    if before != after:
        audit.record(
            session,
            "settings.company_changed",
            ("company", company_id),
            {"fields": audit.changed_fields(before, after)},
        )
    if name is not None:
        company.name = name.strip()
    if default_language is not None:
        company.default_language = default_language
    return company


async def delete_company(session: AsyncSession, company_id: uuid.UUID) -> None:
    """Delete a company and, by cascade, everything it owns (a platform session's job)."""
    deleted = await session.execute(delete(Company).where(Company.id == company_id).returning(Company.id))
    if deleted.first() is None:
        raise NotFound(f"no company {company_id}")


async def get_company(session: AsyncSession, ref: str, *, for_update: bool = False) -> Company:
    """A company by id or slug (``for_update``: locked until commit, and re-read)."""
    stmt = select(Company)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    try:
        stmt = stmt.where(Company.id == uuid.UUID(ref))
    except ValueError:
        stmt = stmt.where(Company.slug == ref)
    company = await session.scalar(stmt)
    if company is None:
        raise NotFound(f"no company '{ref}'")
    return company


async def list_companies(session: AsyncSession) -> list[Company]:
    return list(await session.scalars(select(Company).order_by(Company.created_at)))


async def create_user(
    session: AsyncSession,
    *,
    company_id: uuid.UUID,
    email: str,
    password: str,
    role: Role,
    name: str = "",
) -> User:
    """Create a user (or reuse one with that e-mail) and make them a member of a company."""
    email = email.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise InvalidInput(f"'{email}' is not an e-mail address")
    if len(password) < 8:
        raise InvalidInput("password must have at least 8 characters")
    user = await session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, password_hash=hash_password(password))
        session.add(user)
        await session.flush()
    existing = await session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.company_id == company_id)
    )
    if existing is not None:
        raise Conflict(f"{email} is already a member of this company")
    session.add(Membership(company_id=company_id, user_id=user.id, role=role.value))
    await session.flush()
    return user


async def find_agent(session: AsyncSession, ref: str) -> Membership:
    """An active agent (a member whose role answers conversations, not deactivated) of the
    session's company by user id or e-mail; ``InvalidInput`` if none."""
    stmt = select(Membership).where(Membership.role.in_(AGENT_ROLES), Membership.deactivated_at.is_(None))
    try:
        stmt = stmt.where(Membership.user_id == uuid.UUID(ref))
    except ValueError:
        stmt = stmt.join(User, User.id == Membership.user_id).where(User.email == ref.strip().lower())
    member = await session.scalar(stmt)
    if member is None:
        raise InvalidInput(f"agent: '{ref}' is not an agent of this company", field="agent")
    return member


async def assignee(session: AsyncSession, principal: Principal, agent: str) -> uuid.UUID:
    """Whom ``agent`` names for an assignment: ``me`` (the person of a personal key), or an
    agent of the company by user id or e-mail."""
    if agent == "me":
        return principal.me()
    return (await find_agent(session, agent)).user_id


async def create_api_key(
    session: AsyncSession,
    *,
    secret_key: str,
    company_id: uuid.UUID,
    name: str,
    role: Role = Role.admin,
    user_email: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the full key, which is never shown again. A key for
    ``user_email`` (a member of the company) acts as that person, with their role at most."""
    user_id = None
    if user_email is not None:
        row = (
            await session.execute(
                select(User.id, Membership.role)
                .join(Membership, Membership.user_id == User.id)
                .where(User.email == user_email.strip().lower(), Membership.company_id == company_id)
            )
        ).first()
        if row is None:
            raise InvalidInput(f"{user_email} is not a member of this company")
        user_id = row[0]
        if not Role(row[1]).allows(role):
            raise InvalidInput(f"{user_email} is a {row[1]}: their key cannot have the {role.value} role")
    prefix = KEY_PREFIX + new_token(6).replace("-", "x").replace("_", "x")[:8]
    full = f"{prefix}_{new_token(24)}"
    key = ApiKey(
        company_id=company_id,
        name=name or "api key",
        prefix=prefix,
        key_hash=hash_token(secret_key, full),
        role=role.value,
        user_id=user_id,
    )
    session.add(key)
    await session.flush()
    audit.record(
        session,
        "api_key.created",
        ("api_key", key.id),
        {"name": key.name, "prefix": prefix, "role": key.role},
        company_id=company_id,
    )
    return key, full


async def revoke_api_key(session: AsyncSession, *, prefix: str) -> ApiKey:
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise NotFound(f"no API key with prefix '{prefix}'")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        audit.record(
            session,
            "api_key.revoked",
            ("api_key", key.id),
            {"name": key.name, "prefix": key.prefix},
            company_id=key.company_id,
        )
    # processes that cached this key drop it when the revocation commits
    await publish(session, "api_keys", "revoked", prefix=prefix)
    return key


KEY_ROLES = (Role.admin, Role.agent, Role.viewer)  # a company key acts as no owner


def key_roles(actor: Role) -> list[Role]:
    """The roles a member with ``actor``'s role may give a company key (never above theirs)."""
    return [role for role in KEY_ROLES if actor.allows(role)]


async def issue_api_key(
    session: AsyncSession, *, secret_key: str, actor: Principal, name: str, role: Role
) -> tuple[ApiKey, str]:
    """A company key created by ``actor`` (the dashboard, ``POST /v1/api-keys``): named,
    with a role no higher than the actor's; returns the row and the full key, shown once."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("name: give the key a name of 1 to 200 characters (what it is for)", field="name")
    if role not in key_roles(actor.role):
        allowed = ", ".join(r.value for r in key_roles(actor.role))
        raise InvalidInput(
            f"role: a key you create can have the role {allowed}; not {role.value}", field="role"
        )
    return await create_api_key(
        session, secret_key=secret_key, company_id=actor.company_id, name=name, role=role
    )


async def revoke_api_key_by_id(session: AsyncSession, *, actor: Principal, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key of the session's company by id (another company's: ``NotFound``); a key
    whose role is above the actor's is theirs to keep (``Forbidden``)."""
    key = await get_or_404(session, ApiKey, key_id, "API key")
    if not actor.role.allows(Role(key.role)):
        raise Forbidden(f"API key {key.prefix} has the {key.role} role, above yours: ask an {key.role}")
    return await revoke_api_key(session, prefix=key.prefix)


async def list_api_keys(session: AsyncSession) -> list[tuple[ApiKey, str | None]]:
    """The keys, oldest first, each with the e-mail of the member a personal key acts as
    (``None``: a company key)."""
    rows = await session.execute(
        select(ApiKey, User.email).outerjoin(User, User.id == ApiKey.user_id).order_by(ApiKey.created_at)
    )
    return [(key, email) for key, email in rows.tuples()]


async def authenticate_api_key(session: AsyncSession, *, secret_key: str, presented: str) -> Principal:
    """The principal of a presented API key; ``Unauthorized`` if wrong or revoked."""
    prefix = presented[: len(KEY_PREFIX) + 8] if presented.startswith(KEY_PREFIX) else None
    key = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    if key is None or not tokens_equal(key.key_hash, hash_token(secret_key, presented)):
        raise Unauthorized("invalid API key: send a valid key as 'Authorization: Bearer atd_...'")
    if key.revoked_at is not None:
        raise Unauthorized(f"API key {key.prefix} was revoked")
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now  # at most one write a minute per key
    return Principal(
        company_id=key.company_id,
        role=Role(key.role),
        key_prefix=key.prefix,
        user_id=key.user_id,
        key_id=key.id,
    )
