"""A raw e-mail (RFC 5322 bytes, as IMAP, POP3 or a provider's webhook hands it over) read into
what the e-mail channel needs: who wrote to whom, the threading headers, the loop-protection
headers, the plain and HTML bodies and the attachments.

Pure functions: nothing here touches the database, the network or the media store (the
channel files ``ParsedEmail.attachments`` with ``atende.media.service.put``). Parsing never
raises on what a sender wrote (a broken charset, a malformed header, a truncated MIME part):
the worst is a replacement character or a missing field, with the reason in ``defects``.
The one refusal is size (``MessageTooLarge``), before anything is parsed.

Python's ``email`` package with ``email.policy.default`` does the MIME work (RFC 2047 and
2231 decoding, addresses, multipart walking); ``mail-parser`` adds little on top of it.
What the standard library leaves to us: a charset that lies (bytes that are not what the part
declares, or a charset Python does not know) is decoded by ``charset-normalizer``'s guess;
HTML is turned into text by ``inscriptis`` (it keeps paragraphs, lists and tables apart) and
sanitised for agents by ``nh3`` (``safe_html``: no scripts, no event handlers, no style, and
no remote image: only ``cid:`` images the caller maps to the attachments it stored).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

import charset_normalizer
import nh3
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

MAX_BYTES = 25 * 1024 * 1024  # what Gmail and Microsoft 365 accept; a mailbox's larger mail is refused
MAX_PARTS = 500  # MIME parts looked at; a message with more is read as far as that
MAX_DEPTH = 20  # nesting of multiparts and attached messages
MAX_REFS = 100  # References kept (the newest); a longer chain is a loop or an attack
ID_MAX = 255  # the longest message id stored (``messages.channel_message_id``)
HEADER_MAX = 2000  # a header value kept (a Subject of a megabyte is not a subject)
TEXT_MAX = 1_000_000  # characters of a body kept

_ID = re.compile(rf"<([^<>\s]{{1,{ID_MAX - 2}}})>")
_CID = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)
_HTML_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_anchors=False)


class MessageTooLarge(ValueError):
    """The message is larger than the mailbox takes (``max_bytes``)."""


@dataclass(frozen=True)
class Address:
    name: str
    address: str  # ``local@domain``, the domain lower-cased

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


@dataclass(frozen=True)
class Attachment:
    """A part that is not the message's text: a file, an inline image (``content_id`` is what
    the HTML's ``cid:`` names, without ``<>``), an attached message (``message/rfc822``), a
    bounce's delivery report. ``filename`` is ``None`` when the sender gave none."""

    filename: str | None
    content_type: str
    data: bytes = field(repr=False)
    content_id: str | None = None
    inline: bool = False


@dataclass(frozen=True)
class ParsedEmail:
    """One e-mail. ``text`` is the plain body (from the HTML when there is no plain part,
    ``text_from_html``), with quotes and signature: ``quotes.strip_email`` strips them for
    the bot. ``html`` is the HTML as the sender wrote it: never show it, show ``safe_html``."""

    message_id: str | None  # ``<local@domain>``, as are the ids below
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]  # oldest first
    subject: str
    date: datetime | None
    from_: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    return_path: str | None = None  # ``""``: the null sender ``<>`` of bounces and auto-replies
    auto_submitted: str | None = None
    precedence: str | None = None
    list_id: str | None = None
    list_unsubscribe: str | None = None
    x_autoreply: str | None = None  # X-Autoreply / X-Autorespond / X-Auto-Response-Suppress
    delivery_report: bool = False  # multipart/report with a delivery status: a bounce
    text: str = ""
    html: str | None = None
    text_from_html: bool = False
    attachments: tuple[Attachment, ...] = ()
    size: int = 0
    defects: tuple[str, ...] = ()

    @property
    def reply_address(self) -> Address | None:
        """Where an answer goes: ``Reply-To`` when set, else ``From``."""
        return self.reply_to[0] if self.reply_to else self.from_

    def automatic(self) -> str | None:
        """Why no robot may answer this message (RFC 3834 and common practice: an auto-reply,
        a bounce, a mailing list, bulk mail), or ``None``: a person wrote it. The message is
        still stored for agents."""
        if self.auto_submitted and self.auto_submitted.split(";")[0].strip().lower() != "no":
            return f"Auto-Submitted: {self.auto_submitted}"
        if self.delivery_report:
            return "a delivery status report (a bounce)"
        if self.precedence and self.precedence.strip().lower() in ("bulk", "junk", "list", "auto_reply"):
            return f"Precedence: {self.precedence}"
        if self.list_id or self.list_unsubscribe:
            return "a mailing list (List-Id / List-Unsubscribe)"
        if self.x_autoreply:
            return "an auto-reply (X-Autoreply)"
        sender = self.from_.address.split("@")[0].lower() if self.from_ else ""
        if sender in ("mailer-daemon", "postmaster"):
            return f"sent by {sender}"
        if self.return_path == "":
            return "the null sender (Return-Path: <>)"
        return None


def parse(raw: bytes, *, max_bytes: int = MAX_BYTES) -> ParsedEmail:
    """Read one message. Raises ``MessageTooLarge`` when it is over ``max_bytes``; never on
    its content."""
    if len(raw) > max_bytes:
        raise MessageTooLarge(f"the message is {len(raw)} bytes, over the {max_bytes} this mailbox takes")
    message = message_from_bytes(raw, policy=policy.default)
    defects: list[str] = [type(d).__name__ for d in message.defects]
    reader = _Reader(defects)
    reader.walk(message, 0)
    html = reader.html
    text = reader.text
    text_from_html = False
    if not text.strip() and html:
        text, text_from_html = html_to_text(html), True
    attachments = reader.attachments
    if html:  # an image the HTML shows by ``cid:`` is inline, whatever its disposition says
        shown = {cid.lower() for cid in _CID.findall(html)}
        attachments = [
            replace(a, inline=True) if (a.content_id or "").lower() in shown else a for a in attachments
        ]
    content_type = message.get_content_type()
    report = content_type == "multipart/report" and (
        str(message.get_param("report-type", "", header="content-type")).lower() == "delivery-status"
    )
    return ParsedEmail(
        message_id=_first_id(_header(message, "message-id", defects)),
        in_reply_to=_ids(_header(message, "in-reply-to", defects))[-1:],
        references=_ids(_header(message, "references", defects))[-MAX_REFS:],
        subject=_one_line(_header(message, "subject", defects)),
        date=_date(_header(message, "date", defects)),
        from_=next(iter(_addresses(message, "from", defects)), None),
        to=_addresses(message, "to", defects),
        cc=_addresses(message, "cc", defects),
        reply_to=_addresses(message, "reply-to", defects),
        return_path=_return_path(_header(message, "return-path", defects)),
        auto_submitted=_header(message, "auto-submitted", defects),
        precedence=_header(message, "precedence", defects),
        list_id=_header(message, "list-id", defects),
        list_unsubscribe=_header(message, "list-unsubscribe", defects),
        x_autoreply=_header(message, "x-autoreply", defects)
        or _header(message, "x-autorespond", defects)
        or _header(message, "x-auto-response-suppress", defects),
        delivery_report=report or any(a.content_type == "message/delivery-status" for a in attachments),
        text=text[:TEXT_MAX],
        html=html[:TEXT_MAX] if html else None,
        text_from_html=text_from_html,
        attachments=tuple(attachments),
        size=len(raw),
        defects=tuple(dict.fromkeys(defects)),
    )


class _Reader:
    """Walks the MIME tree once: the first plain and HTML parts that are not attachments are
    the bodies, every other leaf is an attachment."""

    def __init__(self, defects: list[str]) -> None:
        self.defects = defects
        self.text = ""
        self.html: str | None = None
        self.attachments: list[Attachment] = []
        self.parts = 0

    def walk(self, part: Message, depth: int, within: str = "") -> None:
        self.parts += 1
        if self.parts > MAX_PARTS or depth > MAX_DEPTH:
            if "too many parts" not in self.defects:
                self.defects.append("too many parts")
            return
        content_type = part.get_content_type()
        if part.get_content_maintype() == "message" and depth > 0:
            # a forwarded or bounced message, a bounce's delivery report: kept whole, as a
            # file, never read as our text
            inner = part.get_payload()
            blocks = [b for b in inner if isinstance(b, Message)] if isinstance(inner, list) else []
            try:
                data = b"\n".join(b.as_bytes() for b in blocks) if blocks else _payload(part)
            except Exception:  # an attached message Python cannot serialise back
                data = _payload(part)
            self.attachments.append(self._attachment(part, content_type, data))
            return
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                for child in children:
                    if isinstance(child, Message):
                        self.walk(child, depth + 1, part.get_content_subtype())
            return
        if part.get_content_maintype() == "text" and not _is_attachment(part):
            # the first plain and HTML parts are the bodies; later ones in a multipart/mixed
            # continue them (Apple Mail splits the text around an inline picture)
            if content_type == "text/plain" and (not self.text or within == "mixed"):
                text = decode_text(_payload(part), part.get_content_charset(), self.defects)
                self.text = f"{self.text}\n{text}" if self.text else text
                return
            if content_type == "text/html" and (self.html is None or within == "mixed"):
                html = decode_text(_payload(part), part.get_content_charset(), self.defects)
                self.html = f"{self.html}\n{html}" if self.html else html
                return
        self.attachments.append(self._attachment(part, content_type, _payload(part)))

    def _attachment(self, part: Message, content_type: str, data: bytes) -> Attachment:
        try:
            filename = part.get_filename()
        except Exception:  # a malformed RFC 2231 parameter
            filename = None
            self.defects.append("unreadable filename")
        content_id = (_first_id(_header(part, "content-id", self.defects)) or "").strip("<>") or None
        disposition = (part.get_content_disposition() or "").lower()
        return Attachment(
            filename=(_one_line(filename) or None) if filename else None,
            content_type=content_type,
            data=data,
            content_id=content_id,
            inline=disposition == "inline" or (disposition != "attachment" and content_id is not None),
        )


def _is_attachment(part: Message) -> bool:
    return (part.get_content_disposition() or "").lower() == "attachment" or bool(part.get_param("name"))


def _payload(part: Message) -> bytes:
    """A leaf's bytes, transfer-decoded (a broken base64 gives what could be read)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def decode_text(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    """``data`` as text: by its declared charset when the bytes are that charset, else by
    ``charset-normalizer``'s guess (a Latin-1 body labelled UTF-8, ``charset="unknown-8bit"``),
    else UTF-8 with replacement characters. Never raises."""
    declared = _codec(charset)
    if declared is not None:
        try:
            return _clean_text(data.decode(declared))
        except UnicodeDecodeError:
            pass
    elif charset and defects is not None:
        defects.append(f"unknown charset {charset[:40]!r}")
    if declared is None:
        try:  # undeclared or unknown: plain ASCII or UTF-8 is the common case, and unambiguous
            return _clean_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    if defects is not None and declared is not None:
        defects.append(f"bytes that are not {declared}")
    best = charset_normalizer.from_bytes(data).best()
    if best is not None and best.encoding in _LATIN:
        # Among the Latin single-byte pages the bytes alone cannot tell (``n\xe3o`` is "não" in
        # Windows-1252 and "năo" in Windows-1250): the one Brazilian, Spanish and English mail
        # uses is Windows-1252, when the bytes are valid in it
        try:
            return _clean_text(data.decode("cp1252"))
        except UnicodeDecodeError:
            pass
    if best is not None:
        return _clean_text(str(best))
    return _clean_text(data.decode("utf-8", "replace"))


_LATIN = frozenset(
    {"latin_1", "cp1250", "cp1252", "cp1254", "cp1257", "cp1258", "mac_roman", "mac_latin2"}
    | {"mac_iceland", "mac_turkish", "cp850", "cp858", "cp437"}
    | {f"iso8859_{n}" for n in (2, 3, 4, 9, 10, 13, 14, 15, 16)}
)


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    if name in ("us-ascii", "ascii", "ansi_x3.4-1968"):
        # mail that says ASCII and is not is nearly always UTF-8 or Windows-1252: let the guess decide
        return "ascii"
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # ISO-8859-1 labels are Windows-1252 in practice (the WHATWG encoding standard does the same)
    return "cp1252" if codec == "latin-1" else codec


def _clean_text(text: str) -> str:
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def _header(message: Message, name: str, defects: list[str]) -> str | None:
    """A header's decoded value (RFC 2047 words decoded), or ``None``; a header the parser
    cannot read is taken raw, and 8-bit bytes in it are decoded like a body's."""
    try:
        value = message.get(name)
    except Exception:  # the header parser failing on a malformed value
        defects.append(f"unreadable {name}")
        value = next((v for k, v in message.raw_items() if k.lower() == name), None)
    if value is None:
        return None
    text = str(value)
    raw = next((v for k, v in message.raw_items() if k.lower() == name), None)
    if isinstance(raw, str) and any("\udc80" <= c <= "\udcff" for c in raw):
        # raw 8-bit bytes in the header (no RFC 2047): the parser made them U+FFFD; decode them
        # as a body's, then any encoded words beside them
        data = raw.encode("ascii", "surrogateescape")
        try:  # too short for a guess: UTF-8, else the Windows-1252 of older Western mailers
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1252", "replace")
        try:
            text = str(make_header(decode_header(text)))
        except Exception:
            defects.append(f"unreadable {name}")
    text = text.replace("\x00", "")
    # a References chain grows at its end: what a long one loses is its oldest ids
    return (text[-MAX_REFS * ID_MAX :] if name == "references" else text[:HEADER_MAX]).strip()


def _one_line(value: str | None) -> str:
    return " ".join((value or "").split())


def _ids(value: str | None) -> tuple[str, ...]:
    """The message ids in a header, in order, each once, as ``<local@domain>`` (the form the
    headers use and ``email.utils.make_msgid`` makes: what we store and compare); a bare id
    without ``<>`` (some mailers write them so) when there is no bracketed one."""
    if not value:
        return ()
    found = _ID.findall(value)
    if not found:
        bare = value.strip()
        found = [bare] if "@" in bare and not re.search(r"[\s<>]", bare) and len(bare) <= ID_MAX - 2 else []
    return tuple(dict.fromkeys(f"<{i}>" for i in found))


def _first_id(value: str | None) -> str | None:
    ids = _ids(value)
    return ids[0] if ids else None


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _address(name: str, address: str) -> Address | None:
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(address) > 320:
        return None
    return Address(_one_line(name)[:200], f"{local}@{domain.lower()}")


def _addresses(message: Message, name: str, defects: list[str]) -> tuple[Address, ...]:
    found: list[Address] = []
    try:
        header = message.get(name)
        groups = getattr(header, "addresses", None)
        if groups is not None and "\ufffd" in str(header):  # 8-bit bytes: read as _header does
            groups, header = None, _header(message, name, defects)
        pairs = (
            [(a.display_name, a.addr_spec) for a in groups]
            if groups is not None
            else getaddresses([str(header)])
            if header
            else []
        )
    except Exception:
        defects.append(f"unreadable {name}")
        pairs = getaddresses([_header(message, name, defects) or ""])
    for display, spec in pairs[:100]:
        if (address := _address(display, spec)) is not None:
            found.append(address)
    return tuple(found)


def _return_path(value: str | None) -> str | None:
    if value is None:
        return None
    return parseaddr(value)[1].strip()


def html_to_text(html: str) -> str:
    """HTML as text for the bot: paragraphs, line breaks, lists and table cells apart, no
    markup, no link targets. Never raises (the input is a stranger's HTML)."""
    try:
        text = get_text(html, _HTML_CONFIG)
    except Exception:  # lxml refusing a document (an encoding declaration in a str)
        text = re.sub(r"<[^>]*>", " ", html)
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_SAFE_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_SAFE_ATTRIBUTES: dict[str, set[str]] = {
    **{tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()},
    "img": {"src", "alt", "width", "height"},
    "a": {"href", "title"},
}


def safe_html(html: str, cid_urls: Mapping[str, str] | None = None) -> str:
    """The sender's HTML fit to show an agent: scripts, styles, event handlers, forms and
    frames removed, links kept (``rel="noopener noreferrer"``), and no remote content loaded:
    an image whose source is a ``cid:`` the caller stored is pointed at that copy
    (``cid_urls``: content id without ``<>`` -> URL), every other image loses its source (a
    tracking pixel, a remote picture) and shows its alt text."""
    urls = dict(cid_urls or {})

    def image_source(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            if value.lower().startswith("cid:"):
                return urls.get(value[4:].strip().strip("<>"))
            return None
        return value

    return nh3.clean(
        html,
        tags=_SAFE_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_SAFE_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "cid"},
        attribute_filter=image_source,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


STORED_IMAGES = "/app/media/"  # where ``receive`` points an HTML's ``cid:`` images (the dashboard's copies)


def served_html(stored: str) -> str:
    """``meta.email.html`` (``safe_html``'s output, cut at a length) cleaned once more as it
    is served to an agent: the cut may leave a tag half open, and a message stored by an
    older version may hold what is no longer allowed. An image may only show a stored copy
    (``/app/media/…``); any other source is dropped as before."""

    def stored_image(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            return value if value.startswith(STORED_IMAGES) and "//" not in value else None
        return value

    return nh3.clean(
        stored,
        tags=_SAFE_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_SAFE_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=stored_image,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def iter_inline_images(parsed: ParsedEmail) -> Iterator[Attachment]:
    """The attachments an HTML body can show by ``cid:``."""
    return (a for a in parsed.attachments if a.content_id and a.content_type.startswith("image/"))
