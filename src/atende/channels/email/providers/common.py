"""What the three providers' webhooks share: their errors, their limits, the request body
read with a bound, the form parsed to bytes, credentials compared in constant time, and the
message rebuilt as MIME from a provider's parsed fields.

The form is parsed here (with ``python-multipart``, the parser Starlette uses) rather than
with ``Request.form()``: Starlette turns each field into text, trying UTF-8 and falling back
on Latin-1 without saying which it did, so a raw message in ``body-mime`` or ``email`` (8-bit
bytes in any charset) could not be had back byte for byte, nor a SendGrid field decoded by the
charset SendGrid names for it. Here every field stays bytes until its provider decodes it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hmac
import re
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.header import Header
from email.message import EmailMessage
from email.parser import Parser
from typing import Any, cast

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

MiB = 1024 * 1024
# the user name of the basic auth credentials put in a SendGrid or Postmark webhook URL
# (``https://atende:<password>@host/…``) when an account names none
WEBHOOK_USER = "atende"


class WebhookError(Exception):
    """A request refused: ``status_code`` and ``detail`` are the answer to give. Nothing of
    it was stored."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(WebhookError):
    """Wrong or missing signature or credentials, a stale timestamp, a token seen before."""

    status_code = 401


class Malformed(WebhookError):
    """The body cannot be read as the provider's format (not a form, not JSON, cut short)."""

    status_code = 400


class Invalid(WebhookError):
    """Read, but a field is missing or wrong (no message in it, bad base64, bad JSON field)."""

    status_code = 422


class TooLarge(WebhookError):
    """Over ``Limits``: the body, or the number of attachments or fields."""

    status_code = 413


class UnsupportedMediaType(WebhookError):
    status_code = 415


@dataclass(frozen=True)
class Limits:
    """Bounds on one webhook request. Providers' own caps: Mailgun takes messages up to
    25 MB, SendGrid 30 MB, Postmark 35 MB (base64 in JSON: a third more on the wire)."""

    max_body_bytes: int = 50 * MiB
    max_attachments: int = 100
    max_fields: int = 400  # form fields besides the attachments (Mailgun posts every header as one)
    max_headers: int = 1000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Inbound:
    """One e-mail a provider posted, as the channel takes it: ``mime`` is the message as
    RFC 822 bytes — the provider's raw MIME when it posted it (``rebuilt`` false), else
    rebuilt from its parsed fields — so that every e-mail, from IMAP, POP3 or any webhook,
    goes through the one MIME parser. ``envelope_to`` / ``envelope_from``: the SMTP envelope
    when the provider gives it (the mailbox the message was delivered to, which a ``Bcc``
    leaves out of the headers)."""

    provider: str
    mime: bytes
    rebuilt: bool
    envelope_to: tuple[str, ...] = ()
    envelope_from: str = ""


@dataclass(frozen=True)
class Attachment:
    """A file of a rebuilt message; ``content_id`` (without ``<>``) makes it inline, shown
    where the HTML body says ``cid:<content_id>``."""

    filename: str
    content_type: str
    data: bytes
    content_id: str = ""


# -- the request body -----------------------------------------------------------------------


async def read_body(request: Request, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The request body, refused (``TooLarge``) as soon as it passes ``max_body_bytes``:
    by its ``Content-Length`` before anything is read, else while it streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise Malformed("Content-Length is not a number") from None
        if length > limits.max_body_bytes:
            raise TooLarge(f"the body is over the limit of {limits.max_body_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise TooLarge(f"the body is over the limit of {limits.max_body_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Malformed("the client went away before the body was complete") from None
    return b"".join(chunks)


# -- forms, as bytes ------------------------------------------------------------------------


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str = ""


@dataclass
class Form:
    """A posted form, every value bytes. ``get`` and ``text`` take a field's first value."""

    parts: list[Part] = field(default_factory=list)

    def get(self, name: str) -> Part | None:
        return next((part for part in self.parts if part.name == name), None)

    def all(self, name: str) -> list[Part]:
        return [part for part in self.parts if part.name == name]

    def text(self, name: str, charset: str = "utf-8") -> str | None:
        part = self.get(name)
        return None if part is None else decode_text(part.data, charset)

    def files(self) -> list[Part]:
        return [part for part in self.parts if part.filename is not None]


def raw_message(form: Form, name: str) -> bytes | None:
    """The raw message a provider posts in field ``name`` (Mailgun's ``body-mime``, SendGrid's
    ``email``), byte for byte; None when the post has none (the message is rebuilt), ``Invalid``
    when it is empty."""
    raw = form.get(name)
    if raw is None:
        return None
    if not raw.data.strip():
        raise Invalid(f"{name} is empty")
    return raw.data


def check_attachment_count(count: int, limits: Limits) -> None:
    """``TooLarge`` when a post names more files than ``limits`` take."""
    if count > limits.max_attachments:
        raise TooLarge(f"more than {limits.max_attachments} attachments")


def decode_text(data: bytes, charset: str = "utf-8") -> str:
    """``data`` read as the charset it was declared in; when that fails (a mislabelled
    field) as UTF-8; and when that fails too, as Windows-1252, never an error."""
    for candidate in (charset, "utf-8"):
        try:
            return data.decode(codecs.lookup(candidate).name)
        except (LookupError, UnicodeDecodeError):
            continue
    return data.decode("cp1252", errors="replace")


def parse_form(content_type: str, body: bytes, limits: Limits = DEFAULT_LIMITS) -> Form:
    """A ``multipart/form-data`` or ``application/x-www-form-urlencoded`` body, parsed;
    ``UnsupportedMediaType`` for any other type, ``Malformed`` for a body that is not the
    form it says, ``TooLarge`` past ``max_fields`` fields or ``max_attachments`` files."""
    media_type, options = parse_options_header(content_type)
    if media_type == b"application/x-www-form-urlencoded":
        # Latin-1 maps each byte to one character and back: the fields' bytes, whatever they are
        try:
            pairs = urllib.parse.parse_qsl(
                body.decode("latin-1"),
                keep_blank_values=True,
                encoding="latin-1",
                max_num_fields=limits.max_fields + limits.max_attachments,
            )
        except ValueError:
            raise TooLarge("the form has too many fields") from None
        return Form(
            [Part(decode_text(name.encode("latin-1")), value.encode("latin-1")) for name, value in pairs]
        )
    if media_type != b"multipart/form-data":
        raise UnsupportedMediaType("expected multipart/form-data or application/x-www-form-urlencoded")
    boundary = options.get(b"boundary")
    if not boundary:
        raise Malformed("the multipart body has no boundary")
    return _parse_multipart(boundary, body, limits)


class _MultipartReader:
    """python-multipart's callbacks, collecting each part's headers and bytes."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.form = Form()
        self.headers: dict[bytes, bytes] = {}
        self.header_field = b""
        self.header_value = b""
        self.data = bytearray()
        self.ended = False
        self.files = 0

    def on_part_begin(self) -> None:
        self.headers = {}
        self.data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.strip().lower()] = self.header_value.strip()
        self.header_field = b""
        self.header_value = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.data += data[start:end]

    def on_part_end(self) -> None:
        _disposition, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise Malformed("a form part has no name")
        filename = options.get(b"filename")
        if filename is not None:
            self.files += 1
            if self.files > self.limits.max_attachments:
                raise TooLarge(f"more than {self.limits.max_attachments} files")
        elif len(self.form.parts) - self.files >= self.limits.max_fields:
            raise TooLarge(f"more than {self.limits.max_fields} form fields")
        self.form.parts.append(
            Part(
                name=decode_text(name),
                data=bytes(self.data),
                filename=None if filename is None else decode_text(filename),
                content_type=self.headers.get(b"content-type", b"").decode("latin-1"),
            )
        )

    def on_end(self) -> None:
        self.ended = True


def _parse_multipart(boundary: bytes, body: bytes, limits: Limits) -> Form:
    reader = _MultipartReader(limits)
    callbacks: Any = {
        "on_part_begin": reader.on_part_begin,
        "on_part_data": reader.on_part_data,
        "on_part_end": reader.on_part_end,
        "on_header_field": reader.on_header_field,
        "on_header_value": reader.on_header_value,
        "on_header_end": reader.on_header_end,
        "on_end": reader.on_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks, max_header_count=32, max_header_size=16 * 1024)
        parser.write(body)
        parser.finalize()
    except WebhookError:
        raise
    except ValueError as exc:  # python-multipart's MultipartParseError and its kin
        raise Malformed(f"the multipart body cannot be read: {exc}"[:300]) from None
    if not reader.ended:
        raise Malformed("the multipart body ends before its closing boundary")
    return reader.form


# -- credentials ----------------------------------------------------------------------------


def same_secret(given: str | bytes | None, expected: str | bytes) -> bool:
    """``given`` is ``expected``, compared in constant time (an empty ``expected`` matches
    nothing: an account with no secret set accepts no request)."""
    if isinstance(expected, str):
        expected = expected.encode()
    if not expected or given is None:
        return False
    if isinstance(given, str):
        given = given.encode()
    return hmac.compare_digest(given, expected)


def check_basic_auth(authorization: str | None, username: str, password: str) -> None:
    """``Unauthorized`` unless the ``Authorization`` header is ``Basic`` with this user and
    password (both compared, in constant time, whichever is wrong)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise Unauthorized("HTTP basic authentication is required")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("wrong credentials") from None
    user, sep, secret = decoded.partition(b":")
    user_ok = same_secret(user, username)
    secret_ok = same_secret(secret, password)
    if not (sep and user_ok and secret_ok):
        raise Unauthorized("wrong credentials")


def authenticate(
    authorization: str | None,
    path_secret: str | None,
    *,
    username: str = WEBHOOK_USER,
    password: str = "",
    expected_path_secret: str = "",
) -> None:
    """``Unauthorized`` unless every protection the account has set is met (SendGrid,
    Postmark: they sign nothing): the basic auth credentials when it has a password, the path
    secret when it has one — and it must have at least one (fail closed)."""
    if not password and not expected_path_secret:
        raise Unauthorized("this mailbox has no webhook credentials set: it takes no post")
    if expected_path_secret and not same_secret(path_secret, expected_path_secret):
        raise Unauthorized("wrong secret in the webhook URL")
    if password:
        check_basic_auth(authorization, username, password)


async def read_authenticated_body(
    request: Request,
    *,
    path_secret: str | None,
    username: str,
    password: str,
    expected_path_secret: str,
    limits: Limits,
) -> bytes:
    """The body of a post ``authenticate`` lets in, checked before a byte of it is read (a
    stranger's post costs no memory)."""
    authenticate(
        request.headers.get("authorization"),
        path_secret,
        username=username,
        password=password,
        expected_path_secret=expected_path_secret,
    )
    return await read_body(request, limits)


# -- a message rebuilt from parsed fields --------------------------------------------------

_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII but ':'
_FOLD = re.compile(r"\r?\n(?=[ \t])")  # unfolding (RFC 5322 2.2.3): the line break goes, the space stays
_BREAKS = re.compile(r"[\r\n\x00]+")

# CRLF, and every part 7-bit (quoted-printable or base64): bytes any store and parser take
_REBUILT = policy.SMTP.clone(cte_type="7bit")

# the original's structure headers: the rebuilt message has its own
_STRUCTURE = ("content-", "mime-version")


def clean_headers(pairs: Iterable[tuple[str, str]], limits: Limits = DEFAULT_LIMITS) -> list[tuple[str, str]]:
    """Header fields fit to write again: names RFC 5322 allows, values unfolded and without
    line breaks or NULs (a header cannot smuggle another in), the original's ``Content-*``
    and ``MIME-Version`` left out (the rebuilt message's structure is its own)."""
    cleaned: list[tuple[str, str]] = []
    for given, value in pairs:
        name = given.strip()
        if not _HEADER_NAME.fullmatch(name) or name.lower().startswith(_STRUCTURE):
            continue
        cleaned.append((name, _BREAKS.sub(" ", _FOLD.sub("", value)).strip()))
        if len(cleaned) > limits.max_headers:
            raise TooLarge(f"more than {limits.max_headers} header fields")
    return cleaned


def with_return_path(headers: list[tuple[str, str]], envelope_from: str | None) -> list[tuple[str, str]]:
    """``headers`` with the SMTP envelope sender as ``Return-Path`` first, as the last MTA
    writes it, when the provider gave the sender and the headers have none: ``<>``, the null
    sender of bounces and auto-replies, is what loop protection looks for."""
    if envelope_from is None or any(name.lower() == "return-path" for name, _ in headers):
        return headers
    return [("Return-Path", f"<{envelope_from.strip().strip('<>')}>"), *headers]


def headers_of_block(block: str) -> list[tuple[str, str]]:
    """The fields of a raw header block (SendGrid's ``headers``), in order, values as
    written (encoded words are decoded when the rebuilt message reads them)."""
    parsed = Parser(policy=policy.compat32).parsestr(block.lstrip("\r\n"), headersonly=True)
    return [(name, str(value)) for name, value in parsed.items()]


def _split_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = content_type.split(";", maxsplit=1)[0].strip().lower().partition("/")
    if not maintype or not subtype or not _HEADER_NAME.fullmatch(maintype + subtype):
        return "application", "octet-stream"
    return maintype, subtype


def _header_bytes(name: str, value: str) -> bytes:
    """One header field, as the original had it when it is ASCII (no parser between: a
    Message-ID or References of any shape is kept exactly; folded at spaces only past
    RFC 5322's 998 characters); non-ASCII values as RFC 2047 encoded words (address headers
    keep their addresses plain), by the e-mail package's own folding, else by ``Header``."""
    if value.isascii():
        line = f"{name}: {value}"
        if len(line) <= 998:
            return line.encode() + b"\r\n"
        words, lines, current = line.split(" "), [], ""
        for word in words:
            if current and len(current) + 1 + len(word) > 78:
                lines.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        lines.append(current)
        return "\r\n ".join(lines).encode() + b"\r\n"
    folded = _folded_by_package(name, value)
    if folded is not None:
        return folded
    # the e-mail package cannot fold every value (a continuation line without its leading
    # space, which would end the header block): the whole value as encoded words then
    folded = (
        f"{name}: " + Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    ).encode() + b"\r\n"
    if not _well_folded(folded):
        raise Invalid(f"the {name[:60]} header cannot be written")
    return folded


def _folded_by_package(name: str, value: str) -> bytes | None:
    try:
        folded = _REBUILT.header_factory(name, value).fold(policy=_REBUILT).encode("ascii")
    except Exception:  # the header registry's parsers raise all sorts on garbage
        return None
    return folded if _well_folded(folded) else None


def _well_folded(field: bytes) -> bool:
    """One header field: CRLF-terminated lines, every one after the first a continuation."""
    lines = field.split(b"\r\n")
    return (
        field.isascii()
        and lines[-1] == b""
        and b"\r" not in field.replace(b"\r\n", b"")
        and b"\n" not in field.replace(b"\r\n", b"")
        and all(line[:1] in (b" ", b"\t") and line.strip() for line in lines[1:-1])
    )


def build_mime(
    headers: Sequence[tuple[str, str]],
    text: str | None,
    html: str | None,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """The message as RFC 822 bytes (CRLF, 7-bit clean): ``headers`` kept in their order,
    a ``text/plain`` and a ``text/html`` alternative (UTF-8; line ends made CRLF, as MIME
    text has them), inline files beside the HTML in a ``multipart/related`` and the other
    files attached, each byte for byte (base64). ``Invalid`` when it cannot be written even
    so (no garbage becomes a 500)."""
    try:
        written = b"".join(_header_bytes(name, value) for name, value in headers)
    except Exception as exc:
        raise Invalid(f"the headers cannot be written: {exc}"[:300]) from None
    if html is not None and not (text or "").strip():
        text = None  # an empty plain part beside the HTML is none (Postmark sends "" for "none")
    message = EmailMessage(policy=_REBUILT)
    inline = [a for a in attachments if a.content_id and html is not None]
    files = [a for a in attachments if not (a.content_id and html is not None)]
    try:
        if text is not None or html is None:
            message.set_content(text or "")
            if html is not None:
                message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
        if inline:
            html_part = message  # the HTML alone, or the second of the alternatives
            if message.get_content_type() != "text/html":
                html_part = cast("list[EmailMessage]", message.get_payload())[1]
            for item in inline:
                maintype, subtype = _split_type(item.content_type)
                html_part.add_related(
                    item.data,
                    maintype,
                    subtype,
                    cid=f"<{_BREAKS.sub('', item.content_id).strip('<> ')}>",
                    filename=_BREAKS.sub(" ", item.filename) or None,
                    disposition="inline",
                )
        for item in files:
            maintype, subtype = _split_type(item.content_type)
            filename = _BREAKS.sub(" ", item.filename).strip() or "attachment"
            message.add_attachment(item.data, maintype, subtype, filename=filename)
        return written + message.as_bytes(policy=_REBUILT)
    except WebhookError:
        raise
    except Exception as exc:  # folding a pathological header value; never a 500
        raise Invalid(f"the message cannot be rebuilt from its fields: {exc}"[:300]) from None
