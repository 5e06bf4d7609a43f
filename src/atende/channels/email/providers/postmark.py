"""Postmark's inbound webhook.

Postmark posts JSON and signs nothing; the webhook URL configured on its inbound stream
carries HTTP basic auth credentials (``https://user:pass@host/...``), which Postmark sends as
an ``Authorization: Basic`` header, checked here in constant time (and/or, as for SendGrid,
a secret path segment).

The message: ``RawEmail`` when the stream has "Include raw email content in JSON payload" on
(kept as posted, UTF-8); otherwise rebuilt from the fields. Postmark's ``MessageID`` is its
own id, not the message's: the original ``Message-ID``, ``In-Reply-To``, ``References`` and
the other headers are in ``Headers`` (``[{"Name", "Value"}]``); ``From``, ``To``, ``Cc``,
``Reply-To``, ``Subject`` and ``Date`` are top-level fields (``FromFull``, ``ToFull``,
``CcFull`` with each address's name). Bodies: ``TextBody``, ``HtmlBody``; files:
``Attachments`` (``Name``, base64 ``Content``, ``ContentType``, ``ContentID`` for inline ones).
"""

from __future__ import annotations

import base64
import binascii
import json
from email.utils import formataddr
from typing import Any

from starlette.requests import Request

from atende.channels.email.providers.common import (
    DEFAULT_LIMITS,
    WEBHOOK_USER,
    Attachment,
    Inbound,
    Invalid,
    Limits,
    Malformed,
    build_mime,
    check_attachment_count,
    clean_headers,
    read_authenticated_body,
)

PROVIDER = "postmark"

# top-level fields, in the order written; a ``Headers`` entry of the same name is left out
_TOP = ("From", "To", "Cc", "Reply-To", "Subject", "Date")


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    return value


def _addresses(payload: dict[str, Any], full: str, plain: str) -> str:
    """``ToFull``'s ``[{Email, Name}]`` as a header value (the names kept), else ``To``."""
    listed = payload.get(full)
    if isinstance(listed, dict):
        listed = [listed]
    if isinstance(listed, list) and listed:
        found = []
        for entry in listed:
            if not isinstance(entry, dict) or not isinstance(entry.get("Email"), str):
                raise Invalid(f"{full} must list objects with an Email")
            name = entry.get("Name")
            found.append(formataddr((name if isinstance(name, str) else "", entry["Email"])))
        return ", ".join(found)
    return _text(payload, plain)


def _headers(payload: dict[str, Any]) -> list[tuple[str, str]]:
    top = {
        "From": _addresses(payload, "FromFull", "From"),
        "To": _addresses(payload, "ToFull", "To"),
        "Cc": _addresses(payload, "CcFull", "Cc"),
        "Reply-To": _text(payload, "ReplyTo"),
        "Subject": _text(payload, "Subject"),
        "Date": _text(payload, "Date"),
    }
    headers = [(name, top[name]) for name in _TOP if top[name]]
    listed = payload.get("Headers") or []
    if not isinstance(listed, list):
        raise Invalid("Headers must be a list")
    taken = {name.lower() for name, _ in headers}
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("Name"), str):
            raise Invalid("Headers must list objects with a Name and a Value")
        value = entry.get("Value")
        if entry["Name"].lower() not in taken:
            headers.append((entry["Name"], value if isinstance(value, str) else ""))
    return headers


def _attachments(payload: dict[str, Any], limits: Limits) -> list[Attachment]:
    listed = payload.get("Attachments") or []
    if not isinstance(listed, list):
        raise Invalid("Attachments must be a list")
    check_attachment_count(len(listed), limits)
    found = []
    for index, entry in enumerate(listed, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("Content"), str):
            raise Invalid(f"attachment {index} has no base64 Content")
        try:
            data = base64.b64decode(entry["Content"], validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(f"attachment {index}'s Content is not base64") from None
        found.append(
            Attachment(
                filename=str(entry.get("Name") or f"attachment-{index}"),
                content_type=str(entry.get("ContentType") or "application/octet-stream"),
                data=data,
                content_id=str(entry.get("ContentID") or "").strip("<>"),
            )
        )
    return found


def message_of(payload: Any, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, bool]:
    """The message of an (authenticated) post as RFC 822 bytes, and whether it was rebuilt."""
    if not isinstance(payload, dict):
        raise Invalid("the body must be a JSON object")
    raw = _text(payload, "RawEmail")
    if raw.strip():
        return raw.encode("utf-8", errors="replace"), False
    if not any(payload.get(name) for name in ("From", "FromFull", "TextBody", "HtmlBody", "Headers")):
        raise Invalid("the post has no message: no From, Headers, TextBody or HtmlBody")
    text = _text(payload, "TextBody")
    html = _text(payload, "HtmlBody")
    mime = build_mime(
        clean_headers(_headers(payload), limits),
        text if text or not html else None,
        html or None,
        _attachments(payload, limits),
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
    """One Postmark inbound post, authenticated (before its body is read) and turned into
    its message. Raises a ``WebhookError`` to answer with its ``status_code`` and ``detail``."""
    body = await read_authenticated_body(
        request,
        path_secret=path_secret,
        username=username,
        password=password,
        expected_path_secret=expected_path_secret,
        limits=limits,
    )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Malformed("the body is not JSON") from None
    mime, rebuilt = message_of(payload, limits)
    original = _text(payload, "OriginalRecipient")
    return Inbound(
        provider=PROVIDER,
        mime=mime,
        rebuilt=rebuilt,
        envelope_to=(original,) if original else (),
    )
