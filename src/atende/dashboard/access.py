"""Signing in and out, passwords (change, forgotten), invitations accepted, the language and
the company a person works in: the pages of ``/app`` that are about access."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Path, Query, Request, Response

from atende.audit import service as audit
from atende.dashboard import emails, i18n
from atende.dashboard.auth import LANGUAGE_COOKIE, SignedInDep, VisitorDep
from atende.dashboard.throttle import Throttled, throttle_for
from atende.dashboard.web import PageRoute, explain, gettext, now, redirect, render
from atende.errors import AtendeError, InvalidInput, NotFound
from atende.tenancy import accounts, sessions
from atende.tenancy.deps import client_ip

router = APIRouter(route_class=PageRoute, include_in_schema=False)

Email = Annotated[str, Form(max_length=320)]
Password = Annotated[str, Form(max_length=1024)]
Next = Annotated[str, Form(max_length=2000)]
LANGUAGE_COOKIE_SECONDS = 365 * 86400


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path of this site, never another site's."""
    if not target or not target.startswith("/app") or target.startswith("//") or "\\" in target:
        return "/app"
    if any(ord(c) < 0x20 for c in target):
        return "/app"
    return target


def _wait_message(current: VisitorDep, throttled: Throttled) -> str:
    t = i18n.translations(current.language)
    if throttled.wait < 60:
        seconds = throttled.wait
        return t.ngettext(
            "Too many attempts. Wait %(num)d second and try again.",
            "Too many attempts. Wait %(num)d seconds and try again.",
            seconds,
        ) % {"num": seconds}
    minutes = -(-throttled.wait // 60)
    return t.ngettext(
        "Too many attempts. Wait %(num)d minute and try again.",
        "Too many attempts. Wait %(num)d minutes and try again.",
        minutes,
    ) % {"num": minutes}


@router.get("/login")
async def login_page(current: VisitorDep, next: Annotated[str, Query(max_length=2000)] = "/app") -> Response:
    if current.signed_in is not None:
        return redirect(safe_next(next))
    return render(current, "login.html", next=safe_next(next), email="", error=None)


@router.post("/login")
async def login(
    request: Request,
    current: VisitorDep,
    email: Email = "",
    password: Password = "",
    next: Next = "/app",
) -> Response:
    runtime = current.runtime
    attempts = throttle_for(runtime).sign_in
    target = safe_next(next)

    def again(status: int, error: str) -> Response:
        return render(current, "login.html", status=status, next=target, email=email, error=error)

    try:
        attempts.check(email, request)
    except Throttled as throttled:
        return again(429, _wait_message(current, throttled))
    try:
        async with runtime.db.transaction() as session:
            audit.bind(session, audit.Actor(ip=client_ip(request)))
            user = await accounts.authenticate_password(session, email=email, password=password)
            if not user.is_superadmin and not await sessions.active_companies(session, user.id):
                raise accounts.AccessDeactivated("no active membership")
            if current.session_token:
                await sessions.end_session(
                    session, secret_key=runtime.secret_key, token=current.session_token
                )
            token = await sessions.start_session(
                session,
                secret_key=runtime.secret_key,
                user_id=user.id,
                now=now(current),
                max_age=timedelta(hours=runtime.settings.session_max_hours),
            )
    except accounts.WrongCredentials as exc:
        attempts.count(email, request)
        async with runtime.db.transaction() as session:  # the attempt's own: nothing else was done
            audit.bind(session, audit.Actor(ip=client_ip(request)))
            await accounts.record_failed_sign_in(session, email=email)
        return again(401, explain(current, exc))
    except accounts.AccessDeactivated as exc:
        return again(403, explain(current, exc))
    current.start_session(token)
    return redirect(target)


@router.post("/logout")
async def logout(current: VisitorDep) -> Response:
    if current.session_token:
        async with current.runtime.db.transaction() as session:
            audit.bind(session, audit.Actor(ip=client_ip(current.request)))
            await sessions.end_session(
                session, secret_key=current.runtime.secret_key, token=current.session_token
            )
    current.end_session()
    return redirect("/app/login", notice="signed_out")


@router.get("/account")
async def account_page(current: SignedInDep) -> Response:
    return render(current, "account.html", errors={}, error=None)


@router.post("/account/password")
async def change_password(
    current: SignedInDep,
    current_password: Password = "",
    new_password: Password = "",
    confirm_password: Password = "",
) -> Response:
    _ = gettext(current)
    person = current.signed_in
    assert person is not None
    errors: dict[str, str] = {}
    if new_password != confirm_password:
        errors["confirm_password"] = _("The two new passwords are different. Type the same one twice.")
    else:
        try:
            async with current.runtime.db.transaction() as session:
                audit.bind(session, audit.Actor(user_id=person.user_id, ip=client_ip(current.request)))
                await accounts.change_password(
                    session, user_id=person.user_id, current=current_password, new=new_password
                )
                await sessions.end_sessions(session, user_id=person.user_id, keep=person.session_id)
        except accounts.WrongCredentials:
            errors["current_password"] = _("The current password is wrong.")
        except InvalidInput as exc:
            errors["new_password"] = explain(current, exc)
    if errors:
        return render(current, "account.html", status=422, errors=errors, error=None)
    return redirect("/app/account", notice="password_changed")


@router.post("/account/sign-out-everywhere")
async def sign_out_everywhere(current: SignedInDep) -> Response:
    person = current.signed_in
    assert person is not None
    async with current.runtime.db.transaction() as session:
        await sessions.end_sessions(session, user_id=person.user_id)
    current.end_session()
    return redirect("/app/login", notice="signed_out_everywhere")


@router.post("/language")
async def change_language(
    current: VisitorDep, language: Annotated[str, Form(max_length=20)] = "", next: Next = "/app"
) -> Response:
    chosen = i18n.supported(language)
    if chosen is None:
        raise InvalidInput(f"no language '{language}'", field="language")
    if current.signed_in is not None:
        async with current.runtime.db.transaction() as session:
            await accounts.set_language(session, user_id=current.signed_in.user_id, language=chosen)
    else:
        current.set_cookie(LANGUAGE_COOKIE, chosen, LANGUAGE_COOKIE_SECONDS)
    target = safe_next(next)
    return redirect(target.split("?", 1)[0] if "notice=" in target else target, notice="language_changed")


@router.post("/company")
async def switch_company(
    current: SignedInDep, company_id: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    person = current.signed_in
    assert person is not None
    try:
        wanted = uuid.UUID(company_id)
    except ValueError:
        raise NotFound(f"no company {company_id}") from None
    async with current.runtime.db.transaction() as session:
        await sessions.switch_company(
            session, session_id=person.session_id, user_id=person.user_id, company_id=wanted
        )
    return redirect("/app", notice="company_switched")


# --- forgotten passwords -------------------------------------------------------------------


@router.get("/password/forgot")
async def forgot_page(current: VisitorDep) -> Response:
    return render(current, "forgot.html", email="", error=None)


@router.post("/password/forgot")
async def forgot(request: Request, current: VisitorDep, email: Email = "") -> Response:
    """Always the same answer, whether the address has an account or not."""
    runtime = current.runtime
    attempts = throttle_for(runtime).reset
    try:
        attempts.check(email, request)
    except Throttled as throttled:
        return render(
            current, "forgot.html", status=429, email=email, error=_wait_message(current, throttled)
        )
    attempts.count(email, request)
    async with runtime.db.transaction() as session:
        found = await accounts.request_password_reset(
            session,
            secret_key=runtime.secret_key,
            email=email,
            now=now(current),
            valid_for=timedelta(minutes=runtime.settings.password_reset_minutes),
        )
        if found is not None:
            user, token = found
            await emails.send_reset_link(session, runtime, user=user, token=token, language=current.language)
    return redirect("/app/login", notice="reset_sent")


def _link_gone(current: VisitorDep, exc: AtendeError) -> Response:
    _ = gettext(current)
    return render(
        current,
        "problem.html",
        status=410,
        title=_("This link is no longer valid"),
        message=explain(current, exc),
        link={"href": "/app/password/forgot", "text": _("Ask for a new password link")},
    )


Token = Annotated[str, Path(max_length=100, description="an e-mailed link's token")]


@router.get("/password/reset/{token}")
async def reset_page(current: VisitorDep, token: Token) -> Response:
    try:
        async with current.runtime.db.transaction() as session:
            user = await accounts.reset_link_user(
                session, secret_key=current.runtime.secret_key, token=token, now=now(current)
            )
    except accounts.LinkNotValid as exc:
        return _link_gone(current, exc)
    return render(current, "reset.html", email=user.email, errors={}, error=None)


@router.post("/password/reset/{token}")
async def reset(
    current: VisitorDep, token: Token, new_password: Password = "", confirm_password: Password = ""
) -> Response:
    _ = gettext(current)
    runtime = current.runtime
    errors: dict[str, str] = {}
    email = ""
    try:
        async with runtime.db.transaction() as session:
            audit.bind(session, audit.Actor(ip=client_ip(current.request)))
            user = await accounts.reset_link_user(
                session, secret_key=runtime.secret_key, token=token, now=now(current)
            )
            email = user.email
            if new_password != confirm_password:
                errors["confirm_password"] = _(
                    "The two new passwords are different. Type the same one twice."
                )
            else:
                await accounts.reset_password(
                    session,
                    secret_key=runtime.secret_key,
                    token=token,
                    password=new_password,
                    now=now(current),
                )
    except accounts.LinkNotValid as exc:
        return _link_gone(current, exc)
    except InvalidInput as exc:
        errors["new_password"] = explain(current, exc)
    if errors:
        return render(current, "reset.html", status=422, email=email, errors=errors, error=None)
    if current.session_token:  # this browser's session ended with the others
        current.end_session()
    return redirect("/app/login", notice="password_set")


# --- invitations ---------------------------------------------------------------------------


def _invitation_gone(current: VisitorDep, exc: AtendeError) -> Response:
    _ = gettext(current)
    return render(
        current,
        "problem.html",
        status=410,
        title=_("This invitation is no longer valid"),
        message=_(
            "It was accepted already, cancelled, or it expired. Ask whoever invited you to send a new one."
        ),
    )


@router.get("/join/{token}")
async def join_page(current: VisitorDep, token: Token) -> Response:
    try:
        async with current.runtime.db.transaction() as session:
            invitation = await accounts.invitation_for(
                session, secret_key=current.runtime.secret_key, token=token, now=now(current)
            )
    except accounts.LinkNotValid as exc:
        return _invitation_gone(current, exc)
    return render(current, "join.html", invitation=invitation, name="", errors={}, error=None)


@router.post("/join/{token}")
async def join(
    current: VisitorDep,
    token: Token,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Password = "",
    confirm_password: Password = "",
) -> Response:
    _ = gettext(current)
    runtime = current.runtime
    errors: dict[str, str] = {}
    try:
        async with runtime.db.transaction() as session:
            invitation = await accounts.invitation_for(
                session, secret_key=runtime.secret_key, token=token, now=now(current)
            )
            if not invitation.has_account and password != confirm_password:
                errors["confirm_password"] = _("The two passwords are different. Type the same one twice.")
            else:
                user, company_id = await accounts.accept_invitation(
                    session,
                    secret_key=runtime.secret_key,
                    token=token,
                    now=now(current),
                    name=name,
                    password=password,
                )
                if current.session_token:
                    await sessions.end_session(
                        session, secret_key=runtime.secret_key, token=current.session_token
                    )
                session_token = await sessions.start_session(
                    session,
                    secret_key=runtime.secret_key,
                    user_id=user.id,
                    now=now(current),
                    max_age=timedelta(hours=runtime.settings.session_max_hours),
                    company_id=company_id,
                )
    except accounts.LinkNotValid as exc:
        return _invitation_gone(current, exc)
    except accounts.WrongCredentials:
        errors["password"] = _("That is not the password of your account.")
    except InvalidInput as exc:
        errors[exc.field or "password"] = explain(current, exc)
    if errors:
        async with runtime.db.transaction() as session:
            invitation = await accounts.invitation_for(
                session, secret_key=runtime.secret_key, token=token, now=now(current)
            )
        return render(
            current, "join.html", status=422, invitation=invitation, name=name, errors=errors, error=None
        )
    current.start_session(session_token)
    return redirect("/app", notice="invitation_accepted")
