"""SendGrid's Inbound Parse webhook.

SendGrid posts ``multipart/form-data``, unsigned unless a "security policy" (an ECDSA
signature or OAuth, a recent addition, not checked here) is attached to the parse setting. So
a post is trusted by what only SendGrid was told — HTTP basic auth credentials in the URL
configured on SendGrid (``https://user:pass@host/...``), and/or a secret segment of that URL,
unguessable (``secrets.token_urlsafe(32)``) and one per account — each compared in constant
time. An account with neither set takes no post.

The message: ``email``, the raw message, when the parse setting "POST the raw, full MIME
message" is on (kept byte for byte; the choice to make); otherwise rebuilt from ``headers``
(the raw header block), ``text`` and ``html`` (decoded by the charset ``charsets`` names for
each), and the files ``attachment1`` … ``attachmentN`` (``attachment-info`` names each file's
name, type and ``content-id``, which makes it inline).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from atende.channels.email.providers.common import (
    DEFAULT_LIMITS,
    WEBHOOK_USER,
    Attachment,
    Form,
    Inbound,
    Invalid,
    Limits,
    build_mime,
    check_attachment_count,
    clean_headers,
    decode_text,
    headers_of_block,
    parse_form,
    raw_message,
    read_authenticated_body,
    with_return_path,
)

PROVIDER = "sendgrid"


def _json_field(form: Form, name: str) -> Any:
    value = form.text(name)
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise Invalid(f"{name} is not JSON") from None


def _attachments(form: Form, limits: Limits) -> list[Attachment]:
    info = _json_field(form, "attachment-info") or {}
    if not isinstance(info, dict):
        raise Invalid("attachment-info must be an object")
    ids = _json_field(form, "content-ids") or {}
    inline = {str(field): str(cid) for cid, field in ids.items()} if isinstance(ids, dict) else {}
    files = [part for part in form.files() if part.name.startswith("attachment")]
    check_attachment_count(len(files), limits)
    found = []
    for part in files:
        described = info.get(part.name)
        described = described if isinstance(described, dict) else {}
        found.append(
            Attachment(
                filename=str(described.get("filename") or part.filename or part.name),
                content_type=str(described.get("type") or part.content_type or "application/octet-stream"),
                data=part.data,
                content_id=str(described.get("content-id") or inline.get(part.name) or "").strip("<>"),
            )
        )
    return found


def message_of(form: Form, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, bool]:
    """The message of an (authenticated) post as RFC 822 bytes, and whether it was rebuilt."""
    raw = raw_message(form, "email")
    if raw is not None:
        return raw, False
    block = form.get("headers")
    if block is None:
        raise Invalid("the post has no message: neither email (raw MIME) nor headers")
    charsets = _json_field(form, "charsets") or {}
    if not isinstance(charsets, dict):
        raise Invalid("charsets must be an object")

    def text_of(name: str) -> str | None:
        part = form.get(name)
        return None if part is None else decode_text(part.data, str(charsets.get(name) or "utf-8"))

    headers = headers_of_block(decode_text(block.data, str(charsets.get("headers") or "utf-8")))
    envelope = _json_field(form, "envelope")
    if isinstance(envelope, dict) and "from" in envelope:
        headers = with_return_path(headers, str(envelope["from"] or ""))
    if not any(name.lower() == "subject" for name, _ in headers) and form.get("subject") is not None:
        headers.append(("Subject", text_of("subject") or ""))
    mime = build_mime(
        clean_headers(headers, limits), text_of("text"), text_of("html"), _attachments(form, limits)
    )
    return mime, True


async def receive(
    request: Request,
    *,
    path_secret: str | None = None,
    username: str = WEBHOOK_USER,
    password: str = "",
    expected_path_secret: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> Inbound:
    """One Inbound Parse post, authenticated (before its body is read) and turned into its
    message. ``path_secret`` is the secret segment of the URL it came to. Raises a
    ``WebhookError`` to answer with its ``status_code`` and ``detail``."""
    body = await read_authenticated_body(
        request,
        path_secret=path_secret,
        username=username,
        password=password,
        expected_path_secret=expected_path_secret,
        limits=limits,
    )
    form = parse_form(request.headers.get("content-type", ""), body, limits)
    mime, rebuilt = message_of(form, limits)
    envelope = _json_field(form, "envelope")
    envelope = envelope if isinstance(envelope, dict) else {}
    to = envelope.get("to")
    return Inbound(
        provider=PROVIDER,
        mime=mime,
        rebuilt=rebuilt,
        envelope_to=tuple(str(a) for a in to) if isinstance(to, list) else (),
        envelope_from=str(envelope.get("from") or ""),
    )
