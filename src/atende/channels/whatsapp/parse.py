"""A Cloud API webhook body read into what the channel does with it: messages to store,
reactions to put on earlier messages, delivery statuses, and what it skips (logged).

Pure functions over the decoded JSON (the signature was checked on the raw bytes before):
nothing here touches the database or the network. Meta's envelope:
``{"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field":
"messages", "value": {"metadata": {"phone_number_id"}, "contacts", "messages", "statuses"}}]}]}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from atende.channels.base import DeliveryStatus

KIND = "whatsapp"
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "played": "read",  # a voice message listened to: read, as far as the outbox goes
    "failed": "failed",
}
TEXT_MAX = 4096  # a WhatsApp text body; longer fields are cut


@dataclass(frozen=True)
class Incoming:
    """One customer message: ``text`` what the bot reads (a caption for media), ``kind`` the
    WhatsApp type (``voice`` for a voice note), ``meta`` what the dashboard shows beside it
    (the media's Graph id, mime type and sha256; a location; the quoted message's wamid).
    ``unreadable``: nothing in it the bot can read (media without a caption, an unsupported
    type): the customer gets a polite note instead of a bot turn."""

    wamid: str
    wa_id: str
    kind: str
    text: str
    meta: dict[str, Any]
    unreadable: bool = False


@dataclass(frozen=True)
class Reaction:
    wamid: str
    wa_id: str
    target_wamid: str
    emoji: str  # "" when the customer took their reaction back


@dataclass(frozen=True)
class Status:
    wamid: str
    status: DeliveryStatus
    reason: str | None


@dataclass
class Change:
    """The part of a webhook for one business number."""

    phone_number_id: str
    names: dict[str, str] = field(default_factory=dict)  # wa_id -> profile name
    messages: list[Incoming] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what was left out, for the log


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return str(value or "").replace("\x00", "").strip()[:TEXT_MAX]


def _clean(value: Any, depth: int = 0) -> Any:
    """``value`` fit for a jsonb column: no NUL in any string (PostgreSQL refuses it, and a
    refused webhook is retried by Meta for days), nesting and lengths bounded."""
    if isinstance(value, str):
        return value.replace("\x00", "")[:TEXT_MAX]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int) or value is None:
        return value
    if depth > 5:
        return None
    if isinstance(value, dict):
        return {_clean(str(k))[:100]: _clean(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value[:50]]
    return str(value)[:TEXT_MAX]


def _media(kind: str, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(kind, caption, meta) of an image, audio, video, document or sticker."""
    if kind == "audio" and body.get("voice") is True:
        kind = "voice"
    media = {
        key: body[key]
        for key in ("id", "mime_type", "sha256", "filename", "animated")
        if body.get(key) not in (None, "")
    }
    return kind, _text(body.get("caption")), {"media": media}


def _coordinate(value: Any) -> str:
    return str(value) if isinstance(value, int | float) and math.isfinite(value) else "?"


def _location(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    place = {
        key: body[key]
        for key in ("latitude", "longitude", "name", "address", "url")
        if body.get(key) not in (None, "")
    }
    where = ", ".join(_text(body.get(key)) for key in ("name", "address") if body.get(key))
    coords = ", ".join(_coordinate(body.get(key)) for key in ("latitude", "longitude"))
    return (f"📍 {where} ({coords})" if where else f"📍 {coords}"), {"location": place}


def _contacts(cards: Any) -> tuple[str, dict[str, Any]]:
    shared: list[dict[str, Any]] = []
    for card in _list(cards):
        if not isinstance(card, dict):
            continue
        name = _obj(card.get("name"))
        phones = [p.get("phone") for p in _list(card.get("phones")) if isinstance(p, dict) and p.get("phone")]
        numbers = [str(p) for p in phones]
        shared.append({"name": _text(name.get("formatted_name")), "phones": numbers})
    lines = [" ".join(filter(None, [str(c["name"]), ", ".join(c["phones"])])) for c in shared]
    return "👤 " + "; ".join(lines), {"contacts": shared}


def _message(raw: dict[str, Any]) -> Incoming | Reaction | str:
    """One entry of ``value.messages``: a message, a reaction, or why it is skipped."""
    wamid = _text(raw.get("id"))[:200]
    wa_id = _text(raw.get("from"))[:200]
    kind = _text(raw.get("type"))
    if not wamid or not wa_id:
        return "a message without id or sender"
    body = _obj(raw.get(kind))
    meta: dict[str, Any] = {}
    context = _obj(raw.get("context"))
    if context.get("id"):
        meta["reply_to_wamid"] = str(context["id"])
    if context.get("forwarded") or context.get("frequently_forwarded"):
        meta["forwarded"] = "frequently" if context.get("frequently_forwarded") else True
    referral = _obj(raw.get("referral"))
    if referral:
        meta["referral"] = {
            k: referral[k] for k in ("source_url", "source_type", "headline") if k in referral
        }
    text = ""
    unreadable = False
    if kind == "reaction":
        target = _text(body.get("message_id"))
        if not target:
            return "a reaction naming no message"
        return Reaction(wamid, wa_id, target, _text(body.get("emoji")))
    if kind == "text":
        text = _text(body.get("body"))
    elif kind in MEDIA_TYPES:
        kind, text, media = _media(kind, body)
        meta.update(media)
    elif kind == "location":
        text, place = _location(body)
        meta.update(place)
    elif kind == "contacts":
        text, shared = _contacts(raw.get("contacts"))
        meta.update(shared)
    elif kind == "interactive":
        reply_type = _text(body.get("type"))
        reply = _obj(body.get(reply_type))
        text = _text(reply.get("title"))
        if reply.get("description"):
            text = f"{text} — {_text(reply.get('description'))}"
        meta["choice"] = {"type": reply_type, "id": _text(reply.get("id"))[:256]}
    elif kind == "button":  # a template's quick-reply button
        text = _text(body.get("text"))
        meta["choice"] = {"type": "quick_reply", "payload": _text(body.get("payload"))[:256]}
    elif kind in ("system", "revoke", "edit", "ephemeral", "request_welcome"):
        return f"a {kind} message"
    else:  # unsupported, unknown, order, poll...: the customer sent what we cannot read
        errors = _list(raw.get("errors"))
        meta["unsupported"] = {
            "type": kind,
            "errors": [
                {"code": e.get("code"), "title": _text(e.get("title"))[:200]}
                for e in errors
                if isinstance(e, dict)
            ],
        }
    if not text:
        unreadable = True
        text = f"[{kind}]" if kind in (*MEDIA_TYPES, "voice") else f"[{kind or 'unknown'} message]"
    meta = _clean({"whatsapp_type": kind, **meta})
    return Incoming(wamid, wa_id, kind or "unknown", text, meta, unreadable)


def _status(raw: dict[str, Any]) -> Status | str:
    wamid = _text(raw.get("id"))[:255]  # longer names no message we sent
    status = STATUSES.get(_text(raw.get("status")))
    if not wamid or status is None:
        return f"a status {raw.get('status')!r}"
    reason = None
    if status == "failed":
        errors = [e for e in _list(raw.get("errors")) if isinstance(e, dict)]
        parts = [
            f"WhatsApp error {e.get('code')}: {_text(e.get('title') or e.get('message'))}" for e in errors
        ]
        reason = "; ".join(parts)[:500] or "WhatsApp reported the message failed"
    return Status(wamid, status, reason)


def changes(payload: Any) -> list[Change]:
    """The changes of a webhook body, by business number; malformed parts are skipped."""
    found: list[Change] = []
    if not isinstance(payload, dict):
        return found
    for entry in _list(payload.get("entry")):
        if not isinstance(entry, dict):
            continue
        for raw in _list(entry.get("changes")):
            value = raw.get("value") if isinstance(raw, dict) else None
            if not isinstance(value, dict):
                continue
            metadata = _obj(value.get("metadata"))
            change = Change(phone_number_id=_text(metadata.get("phone_number_id")))
            if raw.get("field") != "messages":
                change.skipped.append(f"a {raw.get('field')!r} change")
                found.append(change)
                continue
            for contact in _list(value.get("contacts")):
                if isinstance(contact, dict) and contact.get("wa_id"):
                    profile = _obj(contact.get("profile"))
                    if profile.get("name"):
                        change.names[str(contact["wa_id"])] = _text(profile["name"])[:200]
            for message in _list(value.get("messages")):
                parsed = _message(message) if isinstance(message, dict) else "a message that is not an object"
                if isinstance(parsed, Incoming):
                    change.messages.append(parsed)
                elif isinstance(parsed, Reaction):
                    change.reactions.append(parsed)
                else:
                    change.skipped.append(parsed)
            for status in _list(value.get("statuses")):
                parsed_status = (
                    _status(status) if isinstance(status, dict) else "a status that is not an object"
                )
                if isinstance(parsed_status, Status):
                    change.statuses.append(parsed_status)
                else:
                    change.skipped.append(parsed_status)
            for error in _list(value.get("errors")):
                if isinstance(error, dict):
                    change.skipped.append(f"an error {error.get('code')}: {_text(error.get('title'))[:100]}")
            found.append(change)
    return found
