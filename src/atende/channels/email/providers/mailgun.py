"""Mailgun's inbound routes: ``forward()`` to a URL, and ``store(notify=URL)``.

Mailgun posts a form (``multipart/form-data`` when there are attachments, else urlencoded)
signed with the account's HTTP webhook signing key: ``signature`` is the hex HMAC-SHA256 of
``timestamp`` + ``token``. A post is taken only when the signature matches (constant time),
its timestamp is within ``TOLERANCE`` of now, and its token is new to the account
(``replay``) — in that order, so a forged post writes nothing, not even a token; any failure
is ``Unauthorized`` (401).

The message: ``body-mime``, the raw message, when the route's URL ends in ``mime`` (Mailgun's
"raw MIME" forward), kept byte for byte; otherwise rebuilt from the parsed fields — the
original headers from ``message-headers`` (a JSON list of ``[name, value]``, in order), or,
without it, from the top-level ``from``, ``To``, ``subject``, ``Message-Id``… fields;
``body-plain``, ``body-html``; the files ``attachment-1`` … ``attachment-N``, inline the ones
``content-id-map`` (``{"<cid>": "attachment-1"}``) names.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from starlette.requests import Request

from atende.channels.email.providers.common import (
    DEFAULT_LIMITS,
    Attachment,
    Form,
    Inbound,
    Invalid,
    Limits,
    Unauthorized,
    build_mime,
    check_attachment_count,
    clean_headers,
    parse_form,
    raw_message,
    read_body,
    with_return_path,
)
from atende.channels.email.providers.replay import TokenLedger

PROVIDER = "mailgun"
TOLERANCE = timedelta(minutes=5)

# the top-level fields a parsed post carries the main headers in, for a post without
# ``message-headers`` (older routes, ``store()`` notifications)
_FALLBACK_HEADERS = (
    ("From", "from"),
    ("To", "To"),
    ("Cc", "Cc"),
    ("Subject", "subject"),
    ("Date", "Date"),
    ("Message-ID", "Message-Id"),
    ("In-Reply-To", "In-Reply-To"),
    ("References", "References"),
    ("Auto-Submitted", "Auto-Submitted"),
    ("List-Id", "List-Id"),
    ("Precedence", "Precedence"),
)


def sign(signing_key: str, timestamp: str, token: str) -> str:
    """The signature Mailgun computes: hex HMAC-SHA256 of ``timestamp + token``."""
    return hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def verify(
    signing_key: str, form: Form, now: datetime, tolerance: timedelta = TOLERANCE
) -> tuple[str, datetime]:
    """The post's token and the moment it turns stale, when its signature is the account's
    and its timestamp within ``tolerance`` of ``now``; ``Unauthorized`` otherwise."""
    timestamp = form.text("timestamp") or ""
    token = form.text("token") or ""
    given = (form.text("signature") or "").strip().lower()
    if not signing_key or not timestamp or not token or not given:
        raise Unauthorized("missing Mailgun signature, timestamp or token")
    expected = sign(signing_key, timestamp, token)
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", errors="replace")):
        raise Unauthorized("invalid Mailgun signature")
    try:
        signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    except (ValueError, OverflowError, OSError):
        raise Unauthorized("invalid Mailgun timestamp") from None
    if abs(now - signed_at) > tolerance:
        raise Unauthorized("stale Mailgun timestamp: the post was signed too long ago")
    if len(token) > 200:
        raise Unauthorized("invalid Mailgun token")
    return token, signed_at + tolerance


def _headers(form: Form) -> list[tuple[str, str]]:
    listed = form.text("message-headers")
    if listed:
        try:
            pairs = json.loads(listed)
        except ValueError:
            raise Invalid("message-headers is not JSON") from None
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in pairs
        ):
            raise Invalid("message-headers must be a list of [name, value] pairs")
        return [(name, value) for name, value in pairs]
    found = []
    for header, field in _FALLBACK_HEADERS:
        value = form.text(field)
        if value:
            found.append((header, value))
    if not any(name == "To" for name, _ in found) and form.text("recipient"):
        found.append(("To", form.text("recipient") or ""))
    return found


def _attachments(form: Form, limits: Limits) -> list[Attachment]:
    count_text = form.text("attachment-count") or "0"
    try:
        count = int(count_text)
    except ValueError:
        raise Invalid("attachment-count is not a number") from None
    check_attachment_count(count, limits)
    inline: dict[str, str] = {}
    mapped = form.text("content-id-map")
    if mapped:
        try:
            ids = json.loads(mapped)
        except ValueError:
            raise Invalid("content-id-map is not JSON") from None
        if not isinstance(ids, dict):
            raise Invalid("content-id-map must be an object")
        inline = {str(field): str(cid).strip("<>") for cid, field in ids.items()}
    found = []
    for index in range(1, max(count, 0) + 1):
        name = f"attachment-{index}"
        part = form.get(name)
        if part is None:
            raise Invalid(f"{name} is missing (attachment-count is {count})")
        found.append(
            Attachment(
                filename=part.filename or name,
                content_type=part.content_type or "application/octet-stream",
                data=part.data,
                content_id=inline.get(name, ""),
            )
        )
    return found


def message_of(form: Form, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, bool]:
    """The message of a (verified) post as RFC 822 bytes, and whether it was rebuilt."""
    raw = raw_message(form, "body-mime")
    if raw is not None:
        return raw, False
    if (
        form.get("body-plain") is None
        and form.get("body-html") is None
        and form.get("message-headers") is None
    ):
        raise Invalid("the post has no message: neither body-mime nor body-plain, body-html, message-headers")
    htmls = [part.data.decode("utf-8", errors="replace") for part in form.all("body-html")]
    mime = build_mime(
        clean_headers(with_return_path(_headers(form), form.text("sender")), limits),
        form.text("body-plain"),
        "\n".join(htmls) if htmls else None,
        _attachments(form, limits),
    )
    return mime, True


async def receive(
    request: Request,
    *,
    signing_key: str,
    ledger: TokenLedger,
    now: datetime | None = None,
    tolerance: timedelta = TOLERANCE,
    limits: Limits = DEFAULT_LIMITS,
) -> Inbound:
    """One Mailgun post to an account with ``signing_key``, checked (signature, timestamp,
    then its token recorded in ``ledger``) and turned into its message. Raises a
    ``WebhookError`` to answer with its ``status_code`` and ``detail``."""
    now = now or datetime.now(UTC)
    body = await read_body(request, limits)
    form = parse_form(request.headers.get("content-type", ""), body, limits)
    token, expires_at = verify(signing_key, form, now, tolerance)
    mime, rebuilt = message_of(form, limits)  # a post that is no message spends no token
    if not await ledger.first_use(token, expires_at, now):
        raise Unauthorized("this Mailgun token was used before (a replayed post)")
    recipient = form.text("recipient") or ""
    return Inbound(
        provider=PROVIDER,
        mime=mime,
        rebuilt=rebuilt,
        envelope_to=tuple(r.strip() for r in recipient.split(",") if r.strip()),
        envelope_from=form.text("sender") or "",
    )
