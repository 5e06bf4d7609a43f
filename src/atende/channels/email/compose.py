"""A reply e-mail, composed so that every mail client threads it under the customer's message.

- ``Message-ID``: new, on the mailbox's own domain (``<random@support.example.com>``): the
  id the customer's next reply names in ``In-Reply-To``;
- ``In-Reply-To``: the customer's message's ``Message-ID``; ``References``: that message's
  ``References`` (or, without them, its ``In-Reply-To``) followed by its ``Message-ID``
  (RFC 5322 3.6.4), trimmed to the first id and the latest ones when the chain grows long;
- ``Subject``: ``Re: `` and the customer's subject, never ``Re: Re: Re:`` (the prefixes mail
  clients in our languages put there, ``Re:``, ``RE:``, ``Res:``, ``RES:``, ``AW:``, ``SV:``,
  are taken off first);
- ``Auto-Submitted: auto-replied`` (RFC 3834) when the bot wrote it: the customer's
  auto-responder then does not answer it, and no loop starts; an agent's reply goes without;
- a ``text/plain`` part and a ``text/html`` alternative (written from the text when none is
  given), then the attachments, each given as ``(filename, content type, bytes)``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|res|aw|sv|antw|r)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
MAX_REFERENCES = 20  # ids kept in References: the first and the latest 19


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Original:
    """What a reply needs of the customer's message: its headers, as received."""

    message_id: str | None
    subject: str | None = None
    references: str | None = None
    in_reply_to: str | None = None


def new_message_id(address: str) -> str:
    """A fresh ``Message-ID`` on the domain of ``address`` (the mailbox's)."""
    domain = parseaddr(address)[1].rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain)


def reply_subject(subject: str | None) -> str:
    """``Re: <subject>``, with the reply prefixes already there taken off (not stacked)."""
    rest = REPLY_PREFIX.sub("", " ".join((subject or "").split()))
    return f"Re: {rest}" if rest else "Re:"


def ids(header: str | None) -> list[str]:
    """The message ids in a ``References`` or ``In-Reply-To`` header, in order."""
    return MESSAGE_ID.findall(header or "")


def reply_references(original: Original) -> list[str]:
    chain = ids(original.references) or ids(original.in_reply_to)
    if original.message_id:
        chain += ids(original.message_id)
    unique = list(dict.fromkeys(chain))
    if len(unique) > MAX_REFERENCES:  # RFC 5322: keep the first, drop from the middle
        unique = [unique[0], *unique[-(MAX_REFERENCES - 1) :]]
    return unique


def text_to_html(text: str) -> str:
    """The text as simple HTML: escaped, paragraphs and line breaks kept, links made links."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    parts = []
    for paragraph in paragraphs:
        escaped = html.escape(paragraph)
        linked = re.sub(r"(https?://[^\s<>&]+)", r'<a href="\1">\1</a>', escaped)
        parts.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "<!DOCTYPE html>\n<html><body>\n" + "\n".join(parts) + "\n</body></html>\n"


def reply(
    *,
    sender: str,
    to: str,
    text: str,
    original: Original | None = None,
    subject: str | None = None,
    html_body: str | None = None,
    by_bot: bool = False,
    sender_name: str | None = None,
    attachments: Sequence[Attachment] = (),
    message_id: str | None = None,
) -> EmailMessage:
    """The reply to send from the mailbox ``sender`` to ``to`` (see the module's docstring).
    ``subject`` is used as given when there is no ``original`` (a first message)."""
    message = EmailMessage()
    message["From"] = Address(display_name=sender_name or "", addr_spec=sender) if sender_name else sender
    message["To"] = to
    message["Subject"] = reply_subject(original.subject) if original else (subject or "")
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or new_message_id(sender)
    if original and original.message_id and ids(original.message_id):
        message["In-Reply-To"] = ids(original.message_id)[0]
    references = reply_references(original) if original else []
    if references:
        message["References"] = " ".join(references)
    if by_bot:
        message["Auto-Submitted"] = "auto-replied"
    message.set_content(text)
    message.add_alternative(html_body or text_to_html(text), subtype="html")
    for attachment in attachments:
        # as bytes, base64, whatever the type (the e-mail package takes only str for text/*),
        # then labelled with the type it has
        message.add_attachment(
            attachment.data, maintype="application", subtype="octet-stream", filename=attachment.filename
        )
        content_type = attachment.content_type.strip().lower()
        if content_type != "application/octet-stream" and re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
            message.get_payload()[-1].set_type(content_type)  # type: ignore[index,union-attr]
    return message
