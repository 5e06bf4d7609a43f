"""A Sentry ingestion endpoint on 127.0.0.1 for the real ``sentry-sdk`` to send to.

The SDK posts envelopes to ``/api/<project id>/envelope/`` (``Content-Type:
application/x-sentry-envelope``, gzip- or brotli-encoded): a JSON header line, then items,
each a JSON item header line and a payload (``length`` bytes when the header says so,
else up to the next newline). The fake keeps every envelope's raw (decoded) bytes and its
parsed items, and can stall before answering (a Sentry that does not answer).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer, QuietHandler, running


@dataclass
class Envelope:
    project: str
    headers: dict[str, str]
    raw: bytes  # decoded, as the SDK wrote it
    header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    def payloads(self, item_type: str) -> list[dict[str, Any]]:
        return [json.loads(body) for head, body in self.items if head.get("type") == item_type]


def parse(raw: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    first, _, rest = raw.partition(b"\n")
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        head = json.loads(line)
        if "length" in head:
            body, rest = rest[: head["length"]], rest[head["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            body, _, rest = rest.partition(b"\n")
        items.append((head, body))
    return json.loads(first), items


def decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # the SDK uses brotli only when it is installed

        return bytes(brotli.decompress(body))
    return body


class FakeSentry(LoopbackServer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.envelopes: list[Envelope] = []
        self.stall_seconds = 0.0
        super().__init__()

    def dsn(self, project: int = 1) -> str:
        return self.origin.replace("http://", "http://public@") + f"/{project}"

    def events(self) -> list[dict[str, Any]]:
        """Error events (item type ``event``) received so far."""
        with self._lock:
            return [e for envelope in self.envelopes for e in envelope.payloads("event")]

    def transactions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [t for envelope in self.envelopes for t in envelope.payloads("transaction")]

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(envelope.raw for envelope in self.envelopes)

    def wait_for(self, found: Callable[[FakeSentry], Any], seconds: float = 15) -> Any:
        """The first truthy ``found(self)`` as envelopes arrive, or an AssertionError."""
        deadline = time.monotonic() + seconds
        while True:
            result = found(self)
            if result:
                return result
            with self._arrived:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"not received within {seconds}s; got {len(self.envelopes)} envelopes"
                    )
                self._arrived.wait(min(left, 0.2))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(parts) != 3 or parts[0] != "api" or parts[2] != "envelope":
                    return self.send_json(404, b'{"detail":"not found"}')
                raw = decode(body, self.headers.get("Content-Encoding", ""))
                header, items = parse(raw)
                time.sleep(fake.stall_seconds)
                envelope = Envelope(
                    parts[1], {k.lower(): v for k, v in self.headers.items()}, raw, header, items
                )
                with fake._arrived:
                    fake.envelopes.append(envelope)
                    fake._arrived.notify_all()
                return self.send_json(200, json.dumps({"id": header.get("event_id")}).encode())

        return Handler


def running_sentry() -> AbstractContextManager[FakeSentry]:
    return running(FakeSentry())
