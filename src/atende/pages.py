"""Security headers of what atende serves to browsers, and its API documentation pages.

Every response says ``X-Content-Type-Options: nosniff`` (a browser runs ``/widget.js`` as
the script it is declared to be, never a JSON answer as one). Every HTML page (the demo
page, the API docs, error pages) also carries a Content-Security-Policy with
``frame-ancestors 'none'`` (no other site may frame atende's own pages), ``X-Frame-Options``
for older browsers, and ``Referrer-Policy: no-referrer``.

Nothing here touches the widget's embedding: ``/widget.js`` and ``/widget/v1`` are a script
and JSON/SSE endpoints that customers' sites load from their own pages, and their CORS
(``channels.webchat.WidgetCors``) is unchanged.

The API docs are FastAPI's Swagger UI and ReDoc pages, which load their code from
jsDelivr's CDN (as they always did) and start with an inline script: each page's policy
allows that CDN and, by its SHA-256, the one inline script it was generated with, never
inline script in general.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# atende's own pages: everything from atende itself, nothing inline, framed by nobody
OWN_PAGES = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CDN = "https://cdn.jsdelivr.net"
FAVICON = "https://fastapi.tiangolo.com"
_FRAMED_BY_NOBODY = "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_INLINE_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)

NOSNIFF = (b"x-content-type-options", b"nosniff")
HTML_HEADERS = (
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def _hashes(pattern: re.Pattern[str], html: str) -> str:
    """The CSP sources (``'sha256-…'``) of the inline scripts or styles of a page atende
    generated itself (from its own settings, never from a request)."""
    digests = (hashlib.sha256(body.encode()).digest() for body in pattern.findall(html))
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


def _text(page: HTMLResponse) -> str:
    return bytes(page.body).decode()


def _with_policy(page: HTMLResponse, policy: str) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = policy
    return page


def swagger_ui(app: FastAPI) -> HTMLResponse:
    """``/docs``: Swagger UI from the CDN, its inline start-up script allowed by hash. Styles
    may be inline (Swagger UI sets style attributes), images come from the favicon's host,
    data: URIs (its icons) and the validator badge's host; requests go to atende only."""
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - Swagger UI",
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    scripts = _hashes(_INLINE_SCRIPT, _text(page))
    return _with_policy(
        page,
        f"default-src 'none'; script-src {CDN} {scripts}; style-src {CDN} 'unsafe-inline'; "
        f"img-src 'self' data: {FAVICON} https://validator.swagger.io; connect-src 'self'; "
        f"{_FRAMED_BY_NOBODY}",
    )


def swagger_ui_oauth2_redirect() -> HTMLResponse:
    """Swagger UI's OAuth2 redirect page: its one inline script, allowed by hash."""
    page = get_swagger_ui_oauth2_redirect_html()
    scripts = _hashes(_INLINE_SCRIPT, _text(page))
    return _with_policy(page, f"default-src 'none'; script-src {scripts}; {_FRAMED_BY_NOBODY}")


def redoc(app: FastAPI) -> HTMLResponse:
    """``/redoc``: ReDoc from the CDN (its search runs in a blob: worker; its styles are
    inline, its fonts Google's)."""
    page = get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - ReDoc")
    styles = _hashes(_INLINE_STYLE, _text(page))
    return _with_policy(
        page,
        f"default-src 'none'; script-src {CDN}; worker-src blob:; "
        f"style-src 'unsafe-inline' https://fonts.googleapis.com {styles}; "
        f"font-src https://fonts.gstatic.com; img-src 'self' data: https:; connect-src 'self'; "
        f"{_FRAMED_BY_NOBODY}",
    )


def mount_docs(app: FastAPI) -> None:
    """The API documentation pages at FastAPI's usual paths, with their own policies (the
    app is created with ``docs_url=None, redoc_url=None``)."""

    async def docs() -> HTMLResponse:
        return swagger_ui(app)

    async def oauth2_redirect() -> HTMLResponse:
        return swagger_ui_oauth2_redirect()

    async def redoc_page() -> HTMLResponse:
        return redoc(app)

    app.add_api_route("/docs", docs, include_in_schema=False)
    if app.swagger_ui_oauth2_redirect_url:
        app.add_api_route(app.swagger_ui_oauth2_redirect_url, oauth2_redirect, include_in_schema=False)
    app.add_api_route("/redoc", redoc_page, include_in_schema=False)


class SecurityHeaders:
    """``nosniff`` on every response; on HTML pages also a Content-Security-Policy (the page's
    own when it set one, else ``OWN_PAGES``), ``X-Frame-Options`` and ``Referrer-Policy``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {name.lower() for name, _ in headers}
                added = [NOSNIFF]
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html"):
                    added += HTML_HEADERS
                    if b"content-security-policy" not in names:
                        added.append((b"content-security-policy", OWN_PAGES.encode()))
                message["headers"] = headers + [h for h in added if h[0] not in names]
            await send(message)

        await self.app(scope, receive, with_headers)
