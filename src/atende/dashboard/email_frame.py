"""``/app/conversations/{id}/messages/{id}/email``: a customer's e-mail as its sender
formatted it, for the sandboxed frame the conversation page opens it in ("Show the e-mail as
sent"), to the company's signed-in people, any role.

What is served is ``meta.email.html`` (sanitised by ``nh3`` when the e-mail was received)
cleaned once more (``parse.served_html``), with a policy that leaves nothing to run or fetch:
``sandbox`` (a unique origin, no script, no form, no pop-up, whatever the frame says),
``default-src 'none'`` (no remote image, font, style sheet or frame: remote content is never
loaded), images only from atende or ``data:``, and framing by the dashboard's own pages only
(``frame-ancestors 'self'``, ``X-Frame-Options: SAMEORIGIN``, which win over the dashboard's
``DENY``).

The e-mail's inline pictures (``cid:``, kept in the media store when it arrived) are written
into the page as ``data:`` URLs: a sandboxed frame's requests carry no ``SameSite`` session
cookie, so ``/app/media/{id}`` would answer them with the sign-in page. A picture larger than
``IMAGE_MAX`` (or past ``IMAGES_MAX`` in all), or of a type a browser could run (SVG), shows
its alt text instead. A message of another conversation or company, or one without HTML, is
the dashboard's 404.
"""

from __future__ import annotations

import base64
import re
import uuid
from html import escape

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse

from atende.channels.email import parse
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.dashboard.auth import ViewerPage
from atende.dashboard.web import PageRoute
from atende.errors import NotFound
from atende.media import service as media
from atende.media.models import Media
from atende.media.serving import INLINE_IMAGES
from atende.media.store import MediaStore

router = APIRouter(route_class=PageRoute, include_in_schema=False)

POLICY = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
PAGE = (
    '<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
    "<style>body{{font-family:sans-serif;margin:.5rem;overflow-wrap:anywhere}}"
    "img{{max-width:100%;height:auto}}</style></head><body>{body}</body></html>"
)
IMAGE_MAX = 2 * 1024 * 1024  # bytes of one inline picture written into the page
IMAGES_MAX = 8 * 1024 * 1024  # bytes of all of them
_STORED = re.compile(r'src="' + re.escape(parse.STORED_IMAGES) + r'([0-9a-fA-F-]{36})"')


def email_html(message: Message) -> str | None:
    """The sanitised HTML of a customer's e-mail, or ``None``: not an e-mail, or text only."""
    email = (message.meta or {}).get("email")
    html = email.get("html") if isinstance(email, dict) else None
    return html if isinstance(html, str) and html.strip() else None


async def _pictures(member: ViewerPage, store: MediaStore, html: str) -> dict[str, str]:
    """``data:`` URLs of the stored pictures ``html`` shows, by media id (those it can show)."""
    wanted = list(dict.fromkeys(_STORED.findall(html)))
    found: dict[str, str] = {}
    budget = IMAGES_MAX
    async with member.tenant.transaction() as session:
        rows: list[Media] = []
        for media_id in wanted:
            try:
                rows.append(await media.get(session, uuid.UUID(media_id)))
            except (NotFound, ValueError):
                continue
    for row in rows:
        if row.content_type not in INLINE_IMAGES or row.size_bytes > min(IMAGE_MAX, budget):
            continue
        try:
            blob = await media.read(store, row)
            data = b"".join([chunk async for chunk in blob.chunks])
        except NotFound:  # the bytes are gone: the alt text stays
            continue
        budget -= len(data)
        found[str(row.id)] = f"data:{row.content_type};base64,{base64.b64encode(data).decode()}"
    return found


@router.get("/conversations/{conversation_id}/messages/{message_id}/email")
async def email_as_sent(member: ViewerPage, conversation_id: uuid.UUID, message_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        message = await conversations.get_message(session, message_id)
    html = email_html(message) if message.conversation_id == conversation_id else None
    if html is None:
        raise NotFound(f"no e-mail {message_id}")
    body = parse.served_html(html)
    pictures = await _pictures(member, media.media_store(member.tenant.runtime), body)
    body = _STORED.sub(lambda m: f'src="{pictures[m.group(1)]}"' if m.group(1) in pictures else "", body)
    subject = str((message.meta or {})["email"].get("subject") or "")
    return HTMLResponse(
        PAGE.format(title=escape(subject), body=body),
        headers={
            "Content-Security-Policy": POLICY,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
