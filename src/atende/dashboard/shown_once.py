"""Secrets a page shows exactly once (a new API key, a webhook's signing secret): the form
that creates one answers a 303 as every form does, and the secret rides to the next page in
a short-lived HttpOnly cookie, encrypted with the deployment's key; the page that shows it
deletes the cookie, so a reload, the back button or another tab never shows it again. The
secret is never in a URL, a log or the database in the clear."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from fastapi import Response

from atende.dashboard.auth import Visitor
from atende.dashboard.forms import Again, attempt
from atende.dashboard.web import redirect
from atende.tenancy.crypto import decrypt_secret, encrypt_secret

COOKIE = "atende_once"
MAX_AGE = 300  # seconds: the redirect follows at once; a stale one is dropped


def show_once(current: Visitor, kind: str, subject: str, secret: str) -> None:
    """The next page that asks for ``kind`` of ``subject`` shows ``secret`` (then never again)."""
    sealed = encrypt_secret(current.runtime.secret_key, json.dumps([kind, subject, secret]))
    current.set_cookie(COOKIE, sealed, MAX_AGE)


def take_shown(current: Visitor, kind: str) -> tuple[str, str] | None:
    """The ``(subject, secret)`` waiting for this page, if one is (and forget it)."""
    sealed = current.request.cookies.get(COOKIE)
    if not sealed:
        return None
    try:
        found_kind, subject, secret = json.loads(decrypt_secret(current.runtime.secret_key, sealed))
    except (ValueError, TypeError):  # another deployment's key, a forged cookie: nothing to show
        current.delete_cookie(COOKIE)
        return None
    if found_kind != kind:  # another page's: it waits there (for a few minutes)
        return None
    current.delete_cookie(COOKIE)
    return str(subject), str(secret)


async def create_shown_once(
    current: Visitor,
    work: Awaitable[tuple[str, str]],
    again: Again,
    *,
    kind: str,
    then: Callable[[str], str],
    notice: str,
) -> Response:
    """A form that makes a secret (a new API key, a webhook's secret, a rotated one): ``work``
    answers ``(subject, secret)``; refused, ``again``'s page says why; else the secret waits
    for the next page and the form redirects to ``then(subject)`` with ``notice``."""
    made = await attempt(current, work, again)
    if isinstance(made, Response):
        return made
    subject, secret = made
    show_once(current, kind, subject, secret)
    return redirect(then(subject), notice=notice)
