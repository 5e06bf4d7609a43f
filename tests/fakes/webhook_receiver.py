"""A loopback HTTP server that receives atende's outbound webhooks.

It records every request (path, headers, raw body, arrival time) and answers each path
with a scripted list of status codes, then 200: ``answer("/a", 500, 500)`` makes the first
two requests to ``/a`` fail; ``always_answer("/b", 500)`` makes ``/b`` fail for good.
Each test gives its endpoints their own paths, so one receiver serves many endpoints.

``verify_with("/c", secret)`` makes ``/c`` a receiver as a customer would write it with the
``standardwebhooks`` package: a request that ``Webhook(secret).verify(body, headers)``
rejects is answered 401 (and recorded with the package's reason).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.fakes.loopback import LoopbackServer, QuietHandler, running


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.monotonic() on arrival
    answered: int
    rejected: str | None = None  # why the path's Standard Webhooks verifier refused it

    @property
    def event(self) -> dict[str, Any]:
        payload: dict[str, Any] = json.loads(self.body)
        return payload


class WebhookReceiver(LoopbackServer):
    """Records requests to any path and answers them from per-path scripts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._scripts: dict[str, list[int]] = {}
        self._always: dict[str, int] = {}
        self._stalls: dict[str, float] = {}
        self._verifiers: dict[str, Webhook] = {}
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.origin

    def new_path(self) -> str:
        return f"/hooks/{uuid.uuid4().hex}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def answer(self, path: str, *statuses: int) -> None:
        """Answer the next requests to ``path`` with ``statuses`` in turn, then 200."""
        with self._lock:
            self._scripts[path] = list(statuses)

    def always_answer(self, path: str, status: int) -> None:
        with self._lock:
            self._always[path] = status

    def verify_with(self, path: str, secret: str) -> None:
        """Verify requests to ``path`` with ``standardwebhooks.Webhook(secret)``: 401 if it rejects."""
        with self._lock:
            self._verifiers[path] = Webhook(secret)

    def stall(self, path: str, seconds: float) -> None:
        """Send the status line of answers to ``path`` only after ``seconds``."""
        with self._lock:
            self._stalls[path] = seconds

    def requests(self, path: str | None = None) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    async def wait_for(
        self,
        path: str,
        done: Callable[[list[ReceivedRequest]], bool],
        *,
        timeout: float = 15.0,
    ) -> list[ReceivedRequest]:
        """Poll until ``done(requests to path)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.requests(path)
            if done(received):
                return received
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"webhook receiver: condition not met within {timeout}s; got "
                    f"{[(r.headers.get('x-atende-event'), r.answered) for r in received]}"
                )
            await asyncio.sleep(0.05)

    def _verify(self, path: str, body: bytes, headers: dict[str, str]) -> str | None:
        """Why the path's verifier rejects the request; None if it accepts it or there is none."""
        with self._lock:
            verifier = self._verifiers.get(path)
        if verifier is None:
            return None
        try:
            verifier.verify(body, headers)
        except WebhookVerificationError as exc:
            return str(exc) or type(exc).__name__
        return None

    def _status_for(self, path: str) -> int:
        with self._lock:
            if path in self._always:
                return self._always[path]
            script = self._scripts.get(path)
            return script.pop(0) if script else 200

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                rejected = receiver._verify(self.path, body, headers)
                status = 401 if rejected else receiver._status_for(self.path)
                receiver._record(
                    ReceivedRequest(
                        path=self.path,
                        headers=headers,
                        body=body,
                        at=time.monotonic(),
                        answered=status,
                        rejected=rejected,
                    )
                )
                reply = b'{"ok":true}' if status < 300 else b'{"error":"scripted failure"}'
                with receiver._lock:
                    stall = receiver._stalls.get(self.path, 0.0)
                time.sleep(stall)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a stalled answer the client stopped waiting for: what the test wants

        return Handler


def running_receiver() -> AbstractContextManager[WebhookReceiver]:
    return running(WebhookReceiver())
