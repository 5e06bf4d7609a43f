"""FastAPI dependencies: the runtime, the caller (``Tenant``) and per-route role checks.

Every ``/v1`` route declares the role it needs with ``Depends(require(Role.x))``; the
returned ``Tenant`` opens transactions bound to the caller's company only. A ``Tenant`` is
built from an API key (``tenant_from_api_key``) or, for the dashboard, from a session cookie
(``signed_in_from_session``: the person, whose ``SignedIn.principal()`` is the same kind of
caller), so that pages and API routes call the same service functions.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.errors import Forbidden, Unauthorized
from atende.runtime import Runtime
from atende.tenancy.crypto import hash_token
from atende.tenancy.models import Role
from atende.tenancy.principals import TOPIC, PrincipalCache
from atende.tenancy.service import Principal, authenticate_api_key, revoke_api_key_by_id
from atende.tenancy.sessions import SessionEnded, SignedIn, authenticate_session

bearer = HTTPBearer(auto_error=False, description="A company API key: `Bearer atd_...`")
api_key_header = APIKeyHeader(name="X-Api-Key", auto_error=False, description="A company API key")


def principal_cache(runtime: Runtime) -> PrincipalCache:
    """This process's cache of authenticated keys (created, and wired to revocations, once)."""
    cache = runtime.extras.get("principals")
    if not isinstance(cache, PrincipalCache):
        cache = runtime.extras["principals"] = PrincipalCache()
        runtime.listener.on(TOPIC, cache.handle)
    return cache


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True)
class Tenant:
    """The caller's company and role, and transactions scoped to that company."""

    runtime: Runtime
    principal: Principal
    ip: str | None = None  # where the request came from (the audit log's)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction of the caller's company; what it records in the audit log is the
        caller's doing (``atende.audit``)."""
        async with self.runtime.db.transaction(self.principal.company_id) as session:
            audit.bind(session, self.actor)
            yield session

    @property
    def actor(self) -> audit.Actor:
        principal = self.principal
        return audit.Actor(user_id=principal.user_id, key_id=principal.key_id, ip=self.ip)

    @property
    def actor_type(self) -> str:
        """How a state change records its actor: a person (personal key) or the API."""
        return "agent" if self.principal.user_id is not None else "api"

    def me(self) -> uuid.UUID:
        """The person of a personal key (what ``me`` means in a route)."""
        return self.principal.me()

    async def revoke_api_key(self, key_id: uuid.UUID) -> None:
        """Revoke a key of the caller's company (``service.revoke_api_key_by_id``). It stops
        working in this process as soon as the revocation commits, and in the others when
        its notification reaches them (``principals``): the next request refuses it."""
        async with self.transaction() as session:
            key = await revoke_api_key_by_id(session, actor=self.principal, key_id=key_id)
            prefix = key.prefix
        principal_cache(self.runtime).handle({"kind": "revoked", "prefix": prefix})

    @property
    def actor_id(self) -> str | None:
        """Who acts, for the record: the person of a personal key, else the key."""
        if self.principal.user_id is not None:
            return str(self.principal.user_id)
        return self.principal.key_prefix


async def tenant_from_api_key(runtime: Runtime, presented: str) -> Tenant:
    """The caller of a company API key (cached per process, ``principals``).
    ``Unauthorized`` for an unknown or revoked key."""
    cache = principal_cache(runtime)
    key_hash = hash_token(runtime.secret_key, presented)
    principal = cache.get(key_hash)
    if principal is None:
        generation = cache.generation
        async with runtime.db.transaction() as session:
            principal = await authenticate_api_key(
                session, secret_key=runtime.secret_key, presented=presented
            )
        cache.put(key_hash, principal, generation)
    structlog.contextvars.bind_contextvars(company_id=str(principal.company_id), api_key=principal.key_prefix)
    return Tenant(runtime, principal)


async def signed_in_from_session(runtime: Runtime, token: str) -> SignedIn | None:
    """The person of a dashboard session cookie; ``None`` when its session has ended (never
    existed, signed out, expired: an expired one is deleted now). Read on every request, so
    a deactivation or a changed role applies at once."""
    async with runtime.db.transaction() as session:
        try:
            signed_in = await authenticate_session(
                session,
                secret_key=runtime.secret_key,
                token=token,
                now=runtime.clock(),
                idle=timedelta(minutes=runtime.settings.session_idle_minutes),
            )
        except SessionEnded:  # caught inside the transaction: the expired row's deletion commits
            return None
    company = str(signed_in.company.id) if signed_in.company else None
    structlog.contextvars.bind_contextvars(company_id=company, user_id=str(signed_in.user_id))
    return signed_in


async def get_tenant(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    header_key: Annotated[str | None, Depends(api_key_header)],
) -> Tenant:
    """The caller of a request, from its API key (``Authorization: Bearer`` or ``X-Api-Key``)."""
    presented = credentials.credentials if credentials else header_key
    if not presented:
        raise Unauthorized("missing API key: send 'Authorization: Bearer atd_...'")
    tenant = await tenant_from_api_key(request.app.state.runtime, presented.strip())
    return replace(tenant, ip=client_ip(request))


def client_ip(request: Request) -> str | None:
    """The caller's address, as uvicorn saw it (behind a trusted proxy: the proxy's
    ``X-Forwarded-For``, per ``ATENDE_FORWARDED_ALLOW_IPS``)."""
    return request.client.host if request.client else None


def require(role: Role) -> Callable[..., Coroutine[Any, Any, Tenant]]:
    """A dependency that admits callers whose role is at least ``role``.

    One dependency over the two security schemes (which document the API key in the
    OpenAPI schema) rather than a chain through ``get_tenant`` and ``get_runtime``: FastAPI
    spends more CPU resolving each dependency of a request than most of them do."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        header_key: Annotated[str | None, Depends(api_key_header)],
    ) -> Tenant:
        tenant = await get_tenant(request, credentials, header_key)
        principal = tenant.principal
        if not principal.role.allows(role):
            raise Forbidden(f"this needs the {role.value} role; the key has {principal.role.value}")
        return tenant

    return dependency


ViewerTenant = Annotated[Tenant, Depends(require(Role.viewer))]
AgentTenant = Annotated[Tenant, Depends(require(Role.agent))]
AdminTenant = Annotated[Tenant, Depends(require(Role.admin))]
