"""Rendering the dashboard's pages: templates in the reader's language, the menu their role
may use, the static files, and the pages that say why a request was refused.

``PageRoute`` is the route class of every dashboard route. Whatever a handler or one of its
dependencies raises becomes a page in the visitor's language, never the API's JSON: signed
out → the sign-in page (``next`` brings them back); a missing CSRF token, a role that is not
enough, a closed session → 403 pages that say so; another company's id → 404, as the API
answers; bad input → 422 with what was wrong. HTMX requests get the same message as a notice
swapped into the page (``HX-Retarget``), or a full redirect (``HX-Redirect``) to sign in.
Every page answers ``Cache-Control: no-store``: it shows a person's data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException

from atende.dashboard import i18n
from atende.dashboard.auth import (
    COOKIE_PATH,
    LANGUAGE_COOKIE,
    CsrfRefused,
    PageForbidden,
    SignInNeeded,
    Visitor,
)
from atende.dashboard.i18n import N_
from atende.dashboard.wording import (
    AUTHOR_NAMES,
    AVAILABILITY_NAMES,
    CHANNEL_NAMES,
    DELIVERY_NAMES,
    LANGUAGE_NAMES,
    STATE_NAMES,
)
from atende.errors import AtendeError, Conflict, InvalidInput, NotFound
from atende.tenancy import accounts
from atende.tenancy.crypto import new_token
from atende.tenancy.models import Role

log = structlog.get_logger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
PRODUCT = "atende"
# the files under /app/static, by name: what they are served as
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain; charset=utf-8"}
# versioned URLs (?v=<digest of the file>) are cached for a year; anything else five minutes
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class NavItem:
    """A menu entry, shown only to whom its page admits (``role``: members with at least it;
    ``superadmin``: the platform's; neither: anyone signed in)."""

    href: str
    label: str
    role: Role | None = None
    superadmin: bool = False
    also_superadmin: bool = False  # shown to superadmins too, whatever their role

    def shown_to(self, current: Visitor) -> bool:
        person = current.signed_in
        if person is None:
            return False
        if self.superadmin or (self.also_superadmin and person.is_superadmin):
            return person.is_superadmin
        if self.role is None:
            return True
        return person.company is not None and person.company.role.allows(self.role)


# the menu, in order; later pages add their entry here (and declare the same role)
NAV: list[NavItem] = [
    NavItem("/app", N_("Home")),
    NavItem("/app/inbox", N_("Inbox"), role=Role.viewer),
    NavItem("/app/knowledge", N_("Knowledge base"), role=Role.agent),
    NavItem("/app/analytics", N_("Analytics"), role=Role.viewer),
    NavItem("/app/users", N_("Users"), role=Role.admin),
    NavItem("/app/settings", N_("Settings"), role=Role.admin),
    # the events (admins; a superadmin's of every company), the audit log; traces sit on conversations
    NavItem("/app/logs", N_("Logs"), role=Role.admin, also_superadmin=True),
    NavItem("/app/platform/companies", N_("Companies"), superadmin=True),
    NavItem("/app/account", N_("Your account")),
]


# what a spreadsheet would run as a formula when a cell starts with it (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A cell as written to a CSV export: text a spreadsheet would run as a formula starts
    with ``'``; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _current(href: str, path: str) -> str | None:
    """A menu entry's ``aria-current``: ``page`` on its own page, ``true`` on the pages of its
    section (``/app/knowledge/try`` is in Knowledge base); the home page has no section."""
    if path == href:
        return "page"
    if href != "/app" and path.startswith(href + "/"):
        return "true"
    return None


# the notices a page shows after a redirect (``?notice=<key>``): known keys only, translated
NOTICES: dict[str, str] = {
    "signed_out": N_("You are signed out."),
    "signed_out_everywhere": N_("You are signed out on every device, this one included."),
    "session_ended": N_("Your session ended. Sign in again to continue."),
    "password_changed": N_("Your password was changed. Your other sessions were ended."),
    "password_set": N_("Your new password is set. Sign in with it."),
    "reset_sent": N_(
        "If an account uses that address, we sent it a link to choose a new password. "
        "It works once, for a limited time."
    ),
    "language_changed": N_("Language changed."),
    "retention_saved": N_("Retention saved: older events are deleted within the hour."),
    "job_retried": N_(
        "The job was queued again: it runs in a moment. Its result shows here if it fails again."
    ),
    "job_not_failed": N_("That job is not failed any more (it was retried already): nothing was done."),
    "company_switched": N_("You are now working in this company."),
    "invitation_accepted": N_("Welcome! You joined the company."),
    "invitation_sent": N_("Invitation sent."),
    "invitation_cancelled": N_("Invitation cancelled."),
    "role_changed": N_("Role changed."),
    "member_deactivated": N_("Member deactivated: their sessions in this company ended."),
    "member_reactivated": N_("Member reactivated."),
    "company_created": N_("Company created. Its owner was sent an invitation."),
    "availability_online": N_("You are online: conversations can come to you."),
    "availability_away": N_("You are away: no new conversations come to you."),
    "availability_offline": N_("You are offline: no new conversations come to you."),
    # after a conversation's action sent without JavaScript (``conversation.NOTICES``)
    "reply": N_("Reply sent."),
    "template": N_("Template sent."),
    "note": N_("Note added. Only the team sees it."),
    "assign": N_("Assigned."),
    "team": N_("Given to the team: it waits in its queue."),
    "handback": N_("Handed back to the bot: it answers the customer's next message."),
    "resolve": N_("Resolved."),
    "reopen": N_("Reopened: it is yours."),
    "snooze": N_("Snoozed: it is out of the lists until then, or until the customer writes."),
    "unsnooze": N_("Woken up: it is back in the lists."),
    "label_added": N_("Label added."),
    "priority_set": N_("Priority set."),
    "label_removed": N_("Label removed."),
    "widget_saved": N_("Widget settings saved. Sites show them on their next page load."),
    # the company's settings (``settings_company``, ``settings_hours``)
    "company_saved": N_("Company profile saved."),
    "hours_saved": N_("Business hours saved."),
    "hours_removed": N_("Business hours removed: the company is always open."),
    "holidays_saved": N_("Public holidays saved."),
    "holidays_removed": N_("The company no longer closes on public holidays."),
    "closed_date_added": N_("Closed date added."),
    "closed_date_removed": N_("Closed date removed."),
    "special_hours_added": N_("Special hours added."),
    "special_hours_removed": N_("Special hours removed."),
    "calendar_imported": N_("Calendar imported."),
    "handoff_saved": N_("Handoff rules saved."),
    "knowledge_rules_saved": N_("Knowledge rules saved. They apply to the next question."),
    # the integrations' settings pages
    "team_created": N_("Team created. Add its members below."),
    "team_saved": N_("Team saved."),
    "team_deleted": N_("Team deleted. Its conversations joined the company's queue."),
    "team_member_added": N_("Added to the team."),
    "team_member_removed": N_("Removed from the team."),
    "sla_policy_created": N_("SLA policy added. Open conversations are measured against it within seconds."),
    "sla_policy_saved": N_("SLA policy saved."),
    "sla_policy_deleted": N_("SLA policy deleted."),
    "bot_saved": N_("Bot settings saved."),
    "feedback_saved": N_("Customer feedback settings saved."),
    "api_key_created": N_("API key created."),
    "api_key_revoked": N_("API key revoked: it stopped working."),
    "webhook_created": N_("Webhook added."),
    "webhook_saved": N_("Webhook saved."),
    "webhook_enabled": N_("Webhook enabled."),
    "webhook_disabled": N_("Webhook disabled: nothing is sent to it."),
    "webhook_rotated": N_("New signing secret made."),
    "webhook_deleted": N_("Webhook deleted."),
    "channel_account_created": N_("Account added."),
    "channel_account_renamed": N_("Account renamed."),
    "channel_account_enabled": N_("Account enabled."),
    "channel_account_disabled": N_("Account disabled: it routes nothing until enabled again."),
    "channel_account_secrets_saved": N_("Secrets saved."),
    "channel_account_deleted": N_("Account deleted."),
    "whatsapp_connected": N_("WhatsApp number connected. Now set up the webhook in Meta's app (step 6)."),
    "email_connected": N_("Mailbox connected. This page says whether its logins work."),
    # the knowledge base (``knowledge``, ``knowledge_articles``)
    "document_saved": N_("Document details saved."),
    "document_reindexing": N_("Queued for indexing again. Its status updates on this page."),
    "document_deleted": N_("Document deleted: the bot no longer answers from it."),
    "article_saved": N_("Article saved. It is being indexed; its status updates on this page."),
}

ROLE_NAMES = {
    Role.owner: N_("Owner"),
    Role.admin: N_("Admin"),
    Role.agent: N_("Agent"),
    Role.viewer: N_("Viewer"),
}


FILE_UNITS = ("B", "KB", "MB", "GB")


def file_size(size: int | None, locale: Any) -> str:
    """A file's size as people read it (``12 KB``, ``1,5 MB`` in pt-BR): 1000s, one decimal."""
    if size is None:
        return ""
    value = float(size)
    unit = 0
    while value >= 1000 and unit < len(FILE_UNITS) - 1:
        value /= 1000
        unit += 1
    shown = format_decimal(value, "#,##0" if unit == 0 or value >= 100 else "#,##0.#", locale=locale)
    return f"{shown} {FILE_UNITS[unit]}"


@cache
def environment(language: str) -> Environment:
    """The templates in one language (gettext installed: ``_()``, ``{% trans %}``)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    locale = i18n.locale(language)
    env.filters["date"] = lambda value: format_date(value, "medium", locale=locale) if value else ""
    env.filters["datetime"] = lambda value: format_datetime(value, "short", locale=locale) if value else ""
    # an instant in a zone (the company's): ``{{ at|when(zone) }}``
    env.filters["when"] = lambda value, zone=None: (
        format_datetime(value, "short", tzinfo=zone, locale=locale) if value else ""
    )
    env.filters["filesize"] = lambda value: file_size(value, locale)
    env.globals.update(
        static=static_url,
        product=PRODUCT,
        languages=[(tag, name) for tag, (_folder, name) in i18n.LANGUAGES.items()],
        role_names=ROLE_NAMES,
        author_names=AUTHOR_NAMES,
        state_names=STATE_NAMES,
        channel_names=CHANNEL_NAMES,
        delivery_names=DELIVERY_NAMES,
        availability_names=AVAILABILITY_NAMES,
        language_names=LANGUAGE_NAMES,
    )
    return env


@cache
def static_digest(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """The URL of a static file, versioned by its content (cached for a year)."""
    return f"/app/static/{name}?v={static_digest(name)}"


def static_files() -> dict[str, Path]:
    return {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in STATIC_TYPES}


def gettext(current: Visitor) -> Callable[[str], str]:
    """``_`` of the visitor's language, for messages composed in Python."""
    return i18n.translations(current.language).gettext


def context(current: Visitor, **values: Any) -> dict[str, Any]:
    """What every template sees: the person, the menu, the CSRF token, the language."""
    request = current.request
    person = current.signed_in
    path = request.url.path
    notice_key = request.query_params.get("notice", "")
    return {
        "visitor": current,
        "me": person,
        "company": person.company if person else None,
        "companies": person.companies if person else (),
        "nav": [
            {"href": item.href, "label": item.label, "current": _current(item.href, path)}
            for item in NAV
            if item.shown_to(current)
        ],
        "csrf_token": current.csrf_token,
        "lang": current.language,
        "path": path,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "notice": NOTICES.get(notice_key),
        **values,
    }


def render(
    current: Visitor,
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    html = environment(current.language).get_template(template).render(context(current, **values))
    return HTMLResponse(html, status_code=status, headers=headers)


def redirect(url: str, *, notice: str | None = None) -> RedirectResponse:
    """303 to ``url`` (after a form), with a notice the next page shows."""
    if notice:
        url += ("&" if "?" in url else "?") + f"notice={notice}"
    return RedirectResponse(url, status_code=303)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _fallback_visitor(request: Request) -> Visitor:
    """The visitor of a request refused before its dependencies ran (no session read)."""
    found = getattr(request.state, "visitor", None)
    if isinstance(found, Visitor):
        return found
    return Visitor(
        runtime=request.app.state.runtime,
        request=request,
        signed_in=None,
        session_token=None,
        session_ended=False,
        csrf_seed=new_token(24),
        language=i18n.choose(
            request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"), None
        ),
    )


def problem(current: Visitor, status: int, title: str, message: str, **values: Any) -> HTMLResponse:
    """A page (or, for HTMX, a notice swapped into the page) saying why nothing was done."""
    if is_htmx(current.request):
        html = (
            environment(current.language)
            .get_template("_notice.html")
            .render(message=message, title=title, error=True)
        )
        return HTMLResponse(
            html, status_code=status, headers={"HX-Retarget": "#notice", "HX-Reswap": "innerHTML"}
        )
    return render(current, "problem.html", status=status, title=title, message=message, **values)


def refusal(request: Request, exc: Exception) -> Response:
    """The page of a refused request (see the module's docstring)."""
    current = _fallback_visitor(request)
    _ = gettext(current)
    if isinstance(exc, SignInNeeded):
        target = "/app/login?next=" + quote(request.url.path, safe="/")
        if exc.ended:
            target += "&notice=session_ended"
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    if isinstance(exc, CsrfRefused):
        return problem(
            current,
            403,
            _("This form has expired"),
            _(
                "Nothing was changed: the form was old, or it came from another site. "
                "Reload the page and try again."
            ),
        )
    if isinstance(exc, PageForbidden):
        if exc.no_company:
            message = _("You are not an active member of any company. Ask an administrator to invite you.")
        elif exc.needed is None:
            message = _("This page is for the platform's administrators.")
        else:
            mine = current.signed_in.company.role if current.signed_in and current.signed_in.company else None
            message = _("This page needs the %(needed)s role; you are %(role)s.") % {
                "needed": _(ROLE_NAMES[exc.needed]),
                "role": _(ROLE_NAMES[mine]) if mine else "-",
            }
        return problem(current, 403, _("You cannot use this page"), message)
    if isinstance(exc, NotFound) or (isinstance(exc, HTTPException) and exc.status_code == 404):
        return problem(
            current,
            404,
            _("Not found"),
            _("There is nothing here. It may have been removed, or the address may be wrong."),
        )
    if isinstance(exc, RequestValidationError):
        if exc.errors() and all(e.get("loc", ("",))[0] == "path" for e in exc.errors()):
            return refusal(request, NotFound("no such page"))
        fields = sorted({str(e.get("loc", ("", "?"))[-1]) for e in exc.errors()})
        return problem(
            current,
            422,
            _("Some of what was sent is not valid"),
            _("Nothing was changed. Check these fields and try again: %(fields)s")
            % {"fields": ", ".join(fields)},
        )
    if isinstance(exc, AtendeError):
        return problem(current, exc.status_code, _("This could not be done"), explain(current, exc))
    if isinstance(exc, DataError | UnicodeEncodeError):  # a NUL byte, a lone surrogate: rolled back
        return problem(
            current,
            422,
            _("Some of what was sent is not valid"),
            _("Nothing was changed: a field holds a character that cannot be stored. Remove it, try again."),
        )
    if isinstance(exc, HTTPException):
        return problem(current, exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))
    raise exc


def too_large_page(request: Request, limit: int) -> Response:
    """The page of a form or file larger than the server takes (``atende.app``'s body limit
    refuses it before any page runs, so nobody is signed in here: the visitor's language)."""
    current = _fallback_visitor(request)
    _ = gettext(current)
    return problem(
        current,
        413,
        _("This is too large to send"),
        _("What was sent is larger than %(size)s, the most this page takes. Nothing was changed.")
        % {"size": format_decimal(round(limit / 1_048_576, 1), locale=i18n.locale(current.language)) + " MB"},
    )


def _apply_cookies(request: Request, response: Response) -> None:
    current = getattr(request.state, "visitor", None)
    if not isinstance(current, Visitor):
        return
    for cookie in current.cookies:
        if cookie.delete:
            response.delete_cookie(
                cookie.name, path=COOKIE_PATH, secure=current.secure, httponly=True, samesite="lax"
            )
        else:
            response.set_cookie(
                cookie.name,
                cookie.value,
                max_age=cookie.max_age,
                path=COOKIE_PATH,
                secure=current.secure,
                httponly=True,
                samesite="lax",
            )


class PageRoute(APIRoute):
    """The route class of the dashboard: refusals become pages; cookies the visitor set are
    written on whatever response goes out; no page is cached."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except (
                SignInNeeded,
                CsrfRefused,
                PageForbidden,
                AtendeError,
                RequestValidationError,
                HTTPException,
                DataError,
                UnicodeEncodeError,
            ) as exc:
                if isinstance(exc, AtendeError):
                    log.info("dashboard.refused", code=exc.code, status=exc.status_code)
                response = refusal(request, exc)
            _apply_cookies(request, response)
            if "cache-control" not in response.headers:
                response.headers["Cache-Control"] = "no-store"
            return response

        return page


def now(current: Visitor) -> datetime:
    return current.runtime.clock()


# what the services' refusals mean, said to a person (their English messages are for the API)
EXPLAINED: dict[type[AtendeError], str] = {
    accounts.WrongCredentials: N_("Wrong e-mail or password."),
    accounts.AccessDeactivated: N_(
        "Your access was deactivated. Ask an administrator of your company to invite you again."
    ),
    accounts.LastOwner: N_(
        "The company's last owner cannot lose that role or be deactivated. Make someone else an owner first."
    ),
    accounts.AboveYourRole: N_(
        "You cannot give a role above yours, or change someone whose role is above yours."
    ),
    accounts.NotYourself: N_("You cannot deactivate yourself. Ask another administrator."),
    accounts.LinkNotValid: N_(
        "This link is no longer valid: it was used already, or it expired. Ask for a new one."
    ),
}
FIELD_PROBLEMS: dict[str, str] = {
    "email": N_("Type a valid e-mail address, such as ana@example.com."),
    "password": N_("The password must have 8 to 256 characters."),
    "new_password": N_("The password must have 8 to 256 characters."),
    "name": N_("Type a name of 1 to 200 characters."),
    "slug": N_("A slug has 1 to 60 lowercase letters, digits and hyphens, such as suporte-tecnico."),
}


def explain(current: Visitor, exc: AtendeError) -> str:
    """A refusal of a service in the visitor's language."""
    _ = gettext(current)
    for kind, message in EXPLAINED.items():
        if isinstance(exc, kind):
            return _(message)
    if isinstance(exc, InvalidInput) and exc.field in FIELD_PROBLEMS:
        return _(FIELD_PROBLEMS[exc.field])
    if isinstance(exc, Conflict) and exc.field == "email":
        return _("That person is already a member of this company.")
    return _("Nothing was changed: %(reason)s") % {"reason": exc.message}
