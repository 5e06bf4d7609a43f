"""A loopback Meta Graph API, as much of the WhatsApp Cloud API as atende calls, in Meta's
documented shapes (docs/CHANNELS.md, "WhatsApp"; Meta's Cloud API reference):

- ``POST /{version}/{phone_number_id}/messages``: a text, template, media or interactive
  message (``{"messages": [{"id": "wamid..."}]}``), or a mark-read
  (``{"status": "read", "message_id"}`` → ``{"success": true}``);
- ``GET /{version}/{phone_number_id}``: the number's details (the token check);
- ``GET /{version}/{waba_id}/message_templates``: the approved templates;
- ``GET /{version}/{media_id}``: a media file's URL (with its ``mime_type``, ``sha256`` and
  ``file_size``), then ``GET /media/{media_id}`` its bytes; an id neither a media file's nor
  asked for a number's ``fields`` is Meta's ``100`` ("Object with ID ... does not exist");
  ``declare_size(media_id, n)`` makes the URL answer name another ``file_size`` (a file
  over the limit without sending it), ``stall_media(times, seconds)`` holds the next URL
  answers back that long (a timeout), ``media_lookups`` counts the URL requests;
- ``POST /{version}/{phone_number_id}/media``: a file uploaded (multipart: ``messaging_product``,
  ``type``, ``file``) → ``{"id": "<media id>"}``, kept in ``uploads`` (and readable back by id);
  ``fail_next_upload(code, times)`` scripts the next uploads' errors;
- errors in Meta's shape (``{"error": {"message", "type", "code", "error_subcode",
  "fbtrace_id"}}``): a token not in ``tokens`` is ``190``; ``fail_next(code, times)``
  scripts the next sends (``130429`` rate limit, ``131047`` outside the 24-hour window...);
  ``fail_to(wa_id, code)`` refuses every send to one recipient.

Every request needs ``Authorization: Bearer <token>``. ``hold_answers()`` records sends but answers them only
at ``release_answers()``. ``sent`` holds the messages sent,
``read`` the wamids marked read; ``fail_reads(code)`` refuses every mark-read with that error
(``read_refused`` counts them).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer, QuietHandler

ERRORS: dict[int, tuple[int, str]] = {  # code -> (HTTP status, Meta's message)
    190: (401, "Error validating access token: Session has expired."),
    130429: (429, "Rate limit hit"),
    80007: (429, "Rate limit issues"),
    131047: (400, "Re-engagement message"),
    131026: (400, "Message undeliverable"),
    131000: (500, "Something went wrong"),
    100: (400, "Invalid parameter"),
}


@dataclass(frozen=True)
class Upload:
    phone_number_id: str
    media_id: str
    content: bytes
    mime_type: str  # the ``type`` field
    filename: str | None
    file_type: str  # the file part's own Content-Type


def _multipart(content_type: str, raw: bytes) -> dict[str, tuple[bytes, str | None, str]]:
    """A multipart/form-data body's parts: name -> (bytes, file name, part type)."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    parts: dict[str, tuple[bytes, str | None, str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = (payload, part.get_filename(), part.get_content_type())
    return parts


@dataclass(frozen=True)
class Sent:
    phone_number_id: str
    body: dict[str, Any]
    wamid: str

    @property
    def to(self) -> str:
        return str(self.body.get("to"))

    @property
    def text(self) -> str:
        return str(self.body.get("text", {}).get("body", ""))


def error_body(code: int, message: str | None = None) -> tuple[int, bytes]:
    status, default = ERRORS.get(code, (400, "Error"))
    error = {
        "message": message or default,
        "type": "OAuthException",
        "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": message or default},
        "fbtrace_id": uuid.uuid4().hex[:20],
    }
    return status, json.dumps({"error": error}).encode()


class FakeGraphApi(LoopbackServer):
    def __init__(self, tokens: set[str] | None = None) -> None:
        self._lock = threading.Lock()
        self.tokens: set[str] = set(tokens or {"test-access-token"})
        self.sent: list[Sent] = []
        self.read: list[str] = []
        self.attempts = 0  # send requests, answered or failed
        self.requests = 0  # every request, authorised or not
        self.number_checks = 0  # GET /{phone_number_id} answered (the token checks)
        self.template_lists = 0  # GET /{waba_id}/message_templates answered
        self._fail_next: list[int | None] = []
        self._fail_to: dict[str, int] = {}
        self._fail_reads: int | None = None
        self.read_refused = 0
        self.media: dict[str, tuple[bytes, str]] = {}
        self.declared_sizes: dict[str, int] = {}
        self.media_lookups = 0  # GET /{media_id} answered or held
        self._stall_media: list[float] = []
        self.uploads: list[Upload] = []
        self.upload_attempts = 0
        self._fail_uploads: list[int] = []
        self._answering = threading.Event()
        self._answering.set()
        self.templates: list[dict[str, Any]] = [
            {
                "name": "hello_world",
                "language": "en_US",
                "status": "APPROVED",
                "category": "UTILITY",
                "id": "1000000001",
                "components": [{"type": "BODY", "text": "Hello {{1}}, how can we help?"}],
            },
            {
                "name": "order_update",
                "language": "pt_BR",
                "status": "APPROVED",
                "category": "UTILITY",
                "id": "1000000002",
                "parameter_format": "NAMED",
                "components": [
                    {"type": "HEADER", "format": "TEXT", "text": "Seu pedido"},
                    {"type": "BODY", "text": "Olá {{name}}, o pedido {{order}} saiu para entrega."},
                    {"type": "FOOTER", "text": "Loja Exemplo"},
                ],
            },
            {
                "name": "promo_photo",
                "language": "pt_BR",
                "status": "APPROVED",
                "category": "MARKETING",
                "id": "1000000003",
                "components": [
                    {"type": "HEADER", "format": "IMAGE"},
                    {"type": "BODY", "text": "Novidades para você!"},
                ],
            },
            {
                "name": "draft_template",
                "language": "pt_BR",
                "status": "PENDING",
                "category": "UTILITY",
                "id": "1000000004",
                "components": [{"type": "BODY", "text": "Ainda em análise"}],
            },
        ]
        super().__init__()

    def fail_next(self, code: int, times: int = 1) -> None:
        self.script(*[code] * times)

    def script(self, *codes: int | None) -> None:
        """Answer the next sends with these error codes in turn (``None``: accept it)."""
        with self._lock:
            self._fail_next.extend(codes)

    def fail_next_upload(self, code: int, times: int = 1) -> None:
        """Answer the next media uploads with this error code."""
        with self._lock:
            self._fail_uploads.extend([code] * times)

    def hold_answers(self) -> None:
        """Record sends but keep their answers back (Meta's statuses may arrive first)."""
        self._answering.clear()

    def release_answers(self) -> None:
        self._answering.set()

    def declare_size(self, media_id: str, size: int) -> None:
        with self._lock:
            self.declared_sizes[media_id] = size

    def stall_media(self, times: int, seconds: float) -> None:
        """Hold the next ``times`` media URL answers back for ``seconds`` (a caller's timeout)."""
        with self._lock:
            self._stall_media.extend([seconds] * times)

    def fail_reads(self, code: int | None) -> None:
        """Refuse every mark-read with ``code`` (``None``: accept them again)."""
        with self._lock:
            self._fail_reads = code

    def fail_to(self, wa_id: str, code: int) -> None:
        with self._lock:
            self._fail_to[wa_id] = code

    def sent_to(self, wa_id: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.to == wa_id]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def _authorised(self) -> bool:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                with fake._lock:
                    fake.requests += 1
                if token in fake.tokens:
                    return True
                self.send_json(*error_body(190))
                return False

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].strip("/").split("/")
                if not self._authorised():
                    return
                if path[0] == "media" and len(path) == 2 and path[1] in fake.media:
                    content, mime = fake.media[path[1]]
                    self.send_response(200)
                    self.send_header("Content-Type", mime)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                    return
                if len(path) == 3 and path[2] == "message_templates":
                    with fake._lock:
                        fake.template_lists += 1
                    self.send_json(200, json.dumps({"data": fake.templates, "paging": {}}).encode())
                    return
                if len(path) == 2 and path[1] in fake.media:
                    content, mime = fake.media[path[1]]
                    with fake._lock:
                        fake.media_lookups += 1
                        stall = fake._stall_media.pop(0) if fake._stall_media else 0.0
                        size = fake.declared_sizes.get(path[1], len(content))
                    if stall:
                        time.sleep(stall)
                    body = {
                        "messaging_product": "whatsapp",
                        "url": f"{fake.origin}/media/{path[1]}",
                        "mime_type": mime,
                        "sha256": hashlib.sha256(content).hexdigest(),
                        "file_size": size,
                        "id": path[1],
                    }
                    self.send_json(200, json.dumps(body).encode())
                    return
                if len(path) == 2 and "fields=" not in self.path:
                    message = (
                        f"Unsupported get request. Object with ID '{path[1]}' does not exist, cannot be "
                        "loaded due to missing permissions, or does not support this operation."
                    )
                    self.send_json(*error_body(100, message))
                    return
                if len(path) == 2:
                    with fake._lock:
                        fake.number_checks += 1
                    body = {"id": path[1], "display_phone_number": "+55 11 4000-0000"}
                    self.send_json(200, json.dumps(body).encode())
                    return
                self.send_json(*error_body(100, "Unknown path"))

            def _upload(self, phone_number_id: str, raw: bytes) -> None:
                parts = _multipart(self.headers.get("Content-Type", ""), raw)
                product, mime, file = parts.get("messaging_product"), parts.get("type"), parts.get("file")
                if product is None or product[0] != b"whatsapp" or mime is None or file is None:
                    self.send_json(*error_body(100, "messaging_product, type and file are required"))
                    return
                with fake._lock:
                    fake.upload_attempts += 1
                    code = fake._fail_uploads.pop(0) if fake._fail_uploads else None
                if code is not None:
                    self.send_json(*error_body(code))
                    return
                media_id = str(uuid.uuid4().int)[:16]
                upload = Upload(phone_number_id, media_id, file[0], mime[0].decode(), file[1], file[2])
                with fake._lock:
                    fake.uploads.append(upload)
                    fake.media[media_id] = (upload.content, upload.mime_type)
                self.send_json(200, json.dumps({"id": media_id}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                path = self.path.split("?", 1)[0].strip("/").split("/")
                if not self._authorised():
                    return
                if len(path) == 3 and path[2] == "media":
                    self._upload(path[1], raw)
                    return
                if len(path) != 3 or path[2] != "messages":
                    self.send_json(*error_body(100, "Unknown path"))
                    return
                body = json.loads(raw)
                if body.get("messaging_product") != "whatsapp":
                    self.send_json(*error_body(100, "messaging_product must be whatsapp"))
                    return
                if body.get("status") == "read":
                    with fake._lock:
                        refused = fake._fail_reads
                        if refused is None:
                            fake.read.append(str(body.get("message_id")))
                        else:
                            fake.read_refused += 1
                    if refused is not None:
                        self.send_json(*error_body(refused))
                        return
                    self.send_json(200, b'{"success": true}')
                    return
                with fake._lock:
                    fake.attempts += 1
                    code = (
                        fake._fail_next.pop(0) if fake._fail_next else fake._fail_to.get(str(body.get("to")))
                    )
                    if code is None:
                        wamid = f"wamid.{uuid.uuid4().hex}"
                        fake.sent.append(Sent(path[1], body, wamid))
                if code is not None:
                    self.send_json(*error_body(code))
                    return
                fake._answering.wait(timeout=60)  # held: the message is sent, the answer not yet
                answer = {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                    "messages": [{"id": wamid}],
                }
                self.send_json(200, json.dumps(answer).encode())

        return Handler
