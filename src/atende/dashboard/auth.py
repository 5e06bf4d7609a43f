"""Who is asking for a page: the session cookie, CSRF tokens, and each page's role.

Every page handler takes one dependency that says what it needs: ``visitor`` (anyone),
``signed_in`` (a person), ``page_for(Role.x)`` (a member of the chosen company with at least
that role: it returns a ``Tenant``, the same caller an API key gives, so pages call the same
service functions as the API) or ``superadmin``. What a page refuses is an exception here,
turned into a page by ``web.PageRoute``: signed out → the sign-in page; a role that is not
enough → 403 saying so; anything of another company → the services' ``NotFound`` → 404.

Cookies are HttpOnly, ``SameSite=Lax``, limited to ``/app`` and ``Secure`` when the request
came over HTTPS (as uvicorn saw it: from a proxy in ``ATENDE_FORWARDED_ALLOW_IPS``, its
``X-Forwarded-Proto``). Every state-changing request carries a CSRF token: a keyed hash of
the session cookie (or, before signing in, of a random ``atende_csrf`` cookie) sent as the
form field ``csrf_token`` or, from HTMX, the ``X-CSRF-Token`` header that ``dashboard.js``
copies from the page's ``<meta name="csrf-token">``. Another site cannot read it, so it
cannot forge a request that carries it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from atende.dashboard import i18n
from atende.runtime import Runtime
from atende.tenancy.crypto import new_token
from atende.tenancy.deps import RuntimeDep, Tenant, client_ip, signed_in_from_session
from atende.tenancy.models import Role
from atende.tenancy.sessions import SignedIn

SESSION_COOKIE = "atende_session"
CSRF_COOKIE = "atende_csrf"
LANGUAGE_COOKIE = "atende_lang"
COOKIE_PATH = "/app"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


class SignInNeeded(Exception):
    """The page needs a signed-in person; ``ended``: a session cookie came, but its session
    had ended (expired, signed out elsewhere, revoked)."""

    def __init__(self, *, ended: bool) -> None:
        super().__init__("sign in first")
        self.ended = ended


class CsrfRefused(Exception):
    """A state-changing request without this browser's CSRF token: nothing was done."""


class PageForbidden(Exception):
    """The person may not use this page; ``needed``: the role it needs (``None``: the
    platform superadmin); ``no_company``: they are active in no company."""

    def __init__(self, needed: Role | None, *, no_company: bool = False) -> None:
        super().__init__("forbidden")
        self.needed = needed
        self.no_company = no_company


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    max_age: int | None = None  # None: until the browser closes
    delete: bool = False


@dataclass
class Visitor:
    """The browser asking: the signed-in person (if any), the page's language, its CSRF
    token, and the cookies the response must set."""

    runtime: Runtime
    request: Request
    signed_in: SignedIn | None
    session_token: str | None
    session_ended: bool
    csrf_seed: str
    language: str
    cookies: list[Cookie] = field(default_factory=list)

    @property
    def secure(self) -> bool:
        return self.request.url.scheme == "https"

    @property
    def csrf_token(self) -> str:
        return csrf_token(self.runtime.secret_key, self.csrf_seed)

    def set_cookie(self, name: str, value: str, max_age: int | None = None) -> None:
        self.cookies = [c for c in self.cookies if c.name != name]
        self.cookies.append(Cookie(name, value, max_age))

    def delete_cookie(self, name: str) -> None:
        self.cookies = [c for c in self.cookies if c.name != name]
        self.cookies.append(Cookie(name, "", delete=True))

    def start_session(self, token: str) -> None:
        """The response signs the browser in with ``token`` (and the CSRF token changes)."""
        max_age = int(timedelta(hours=self.runtime.settings.session_max_hours).total_seconds())
        self.set_cookie(SESSION_COOKIE, token, max_age)
        self.session_token, self.csrf_seed = token, token

    def end_session(self) -> None:
        """The response signs the browser out (a new anonymous CSRF token)."""
        self.delete_cookie(SESSION_COOKIE)
        self.session_token, self.signed_in = None, None
        self.csrf_seed = new_token(24)
        self.set_cookie(CSRF_COOKIE, self.csrf_seed)

    def tenant(self) -> Tenant | None:
        principal = self.signed_in.principal() if self.signed_in else None
        return Tenant(self.runtime, principal, ip=client_ip(self.request)) if principal else None


def csrf_token(secret_key: str, seed: str) -> str:
    return hmac.new(secret_key.encode(), b"dashboard-csrf:" + seed.encode(), hashlib.sha256).hexdigest()


async def visitor(request: Request, runtime: RuntimeDep) -> Visitor:
    """The browser of this request (once per request: FastAPI caches dependencies)."""
    token = request.cookies.get(SESSION_COOKIE) or None
    signed_in = await signed_in_from_session(runtime, token) if token else None
    anonymous = request.cookies.get(CSRF_COOKIE, "")
    if signed_in is not None and token is not None:
        seed = token
    else:
        seed = anonymous if _TOKEN.fullmatch(anonymous) else new_token(24)
    chosen = (signed_in.language if signed_in else None) or request.cookies.get(LANGUAGE_COOKIE)
    company_language = signed_in.company.default_language if signed_in and signed_in.company else None
    found = Visitor(
        runtime=runtime,
        request=request,
        signed_in=signed_in,
        session_token=token if signed_in else None,
        session_ended=token is not None and signed_in is None,
        csrf_seed=seed,
        language=i18n.choose(chosen, request.headers.get("accept-language"), company_language),
    )
    if found.session_ended:
        found.delete_cookie(SESSION_COOKIE)
    if signed_in is None and seed != anonymous:
        found.set_cookie(CSRF_COOKIE, seed)
    request.state.visitor = found  # the error pages' language and menu
    return found


VisitorDep = Annotated[Visitor, Depends(visitor)]


async def csrf_protected(request: Request, current: VisitorDep) -> None:
    """Refuse a state-changing request that does not carry this browser's CSRF token (a
    dependency of the whole dashboard router: no handler can forget it)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        try:
            form = await request.form()
        except Exception:  # a body that is not a form: no token
            form = None
        value = form.get(CSRF_FIELD) if form is not None else None
        sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, current.csrf_token):
        raise CsrfRefused


async def signed_in(current: VisitorDep) -> Visitor:
    """A page for any signed-in person."""
    if current.signed_in is None:
        raise SignInNeeded(ended=current.session_ended)
    return current


SignedInDep = Annotated[Visitor, Depends(signed_in)]


@dataclass(frozen=True)
class Member:
    """A signed-in member of the chosen company: the page's visitor and its ``Tenant``."""

    visitor: Visitor
    tenant: Tenant

    @property
    def role(self) -> Role:
        return self.tenant.principal.role

    @property
    def user_id(self) -> Any:
        return self.tenant.principal.user_id


def page_for(role: Role) -> Callable[..., Coroutine[Any, Any, Member]]:
    """A page for members whose role in the chosen company is at least ``role``."""

    async def dependency(current: SignedInDep) -> Member:
        tenant = current.tenant()
        if tenant is None:
            raise PageForbidden(role, no_company=True)
        if not tenant.principal.role.allows(role):
            raise PageForbidden(role)
        return Member(current, tenant)

    dependency.needed_role = role  # type: ignore[attr-defined]  # read by the navigation test
    return dependency


async def superadmin(current: SignedInDep) -> Visitor:
    """A page of the platform (companies), for superadmins only."""
    if current.signed_in is None or not current.signed_in.is_superadmin:
        raise PageForbidden(None)
    return current


ViewerPage = Annotated[Member, Depends(page_for(Role.viewer))]
AgentPage = Annotated[Member, Depends(page_for(Role.agent))]
AdminPage = Annotated[Member, Depends(page_for(Role.admin))]
OwnerPage = Annotated[Member, Depends(page_for(Role.owner))]
SuperadminPage = Annotated[Visitor, Depends(superadmin)]
