"""A push channel of the tests whose provider is a loopback HTTP server: the realistic shape
of a channel (WhatsApp, SMS) for the outbox's tests, importable by a worker subprocess
(``tests/channels/outbox_worker.py`` registers it there).

``LoopbackChannel.send`` POSTs ``{"to", "text", "idempotency_key"}`` to its account's
``config.endpoint`` with the ``access_token`` secret, and maps the provider's answers the way
a real channel would: 2xx → ``SentMessage(id)``; 5xx, 429, a timeout or a refused connection
→ ``DeliveryError(retryable=True)``; any other 4xx → ``DeliveryError(retryable=False)`` with
the provider's ``error``.

``FakeProvider`` records every request and dedupes by idempotency key, as providers do:
``delivered`` holds each key it accepted once. Its answers are scripted by a marker in the
text (a conversation's bot reply may reach it too): ``answer("[flaky]", 503, 503)`` fails the
first two requests whose text holds ``[flaky]``, ``always_answer("[no]", 400, "reason")``
refuses every one, and ``hold("[slow]")`` accepts such a request (its id assigned, as a
provider that reports on it already has) but answers only once the returned event is set:
a ``send`` still in flight.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

import httpx
from pydantic import BaseModel, ConfigDict

from atende.channels.base import (
    Account,
    Channel,
    ConversationPolicy,
    DeliveryError,
    Joins,
    Outbound,
    SentMessage,
)
from tests.fakes.loopback import LoopbackServer, QuietHandler

KIND = "loopback"


class LoopbackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    endpoint: str


class LoopbackChannel(Channel):
    kind = KIND
    conversation_policy = ConversationPolicy(Joins.contact)
    config_schema = LoopbackConfig
    secret_fields = ("access_token",)

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        assert isinstance(account.config, LoopbackConfig)
        body = {
            "to": outbound.contact_external_id,
            "text": outbound.text,
            "idempotency_key": str(outbound.message_id),
        }
        headers = {"Authorization": f"Bearer {account.secrets.get('access_token', '')}"}
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                r = await client.post(account.config.endpoint, json=body, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if r.is_success:
            return SentMessage(str(r.json()["id"]))
        reason = str(r.json().get("error", r.text))[:200]
        raise DeliveryError(
            f"{r.status_code} {reason}", retryable=r.status_code >= 500 or r.status_code == 429
        )


@dataclass(frozen=True)
class ProviderRequest:
    path: str
    key: str
    to: str
    text: str
    answered: int


class FakeProvider(LoopbackServer):
    def __init__(self) -> None:
        self.requests: list[ProviderRequest] = []
        self.delivered: dict[str, str] = {}  # idempotency key -> the provider's id
        self._script: dict[str, list[int]] = defaultdict(list)
        self._refuse: dict[str, tuple[int, str]] = {}
        self._held: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        super().__init__()

    def answer(self, marker: str, *codes: int) -> None:
        self._script[marker].extend(codes)

    def always_answer(self, marker: str, code: int, error: str) -> None:
        self._refuse[marker] = (code, error)

    def hold(self, marker: str) -> threading.Event:
        """Answer the requests whose text holds ``marker`` once the event is set (within the
        channel's 5 s timeout, or its send fails and is retried)."""
        release = self._held[marker] = threading.Event()
        return release

    def of(self, key: str) -> list[ProviderRequest]:
        """The requests carrying one message (its idempotency key)."""
        with self._lock:
            return [r for r in self.requests if r.key == key]

    def _answer_for(self, text: str) -> tuple[int, str]:
        for marker, (code, error) in self._refuse.items():
            if marker in text:
                return code, error
        for marker, codes in self._script.items():
            if marker in text and codes:
                return codes.pop(0), "try again later"
        return 200, ""

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                with provider._lock:
                    code, error = provider._answer_for(body["text"])
                    key = body["idempotency_key"]
                    if code == 200:
                        # a repeated key is the same message: acknowledged, not delivered again
                        provider.delivered.setdefault(key, f"lp-{len(provider.delivered) + 1}")
                    provider.requests.append(ProviderRequest(self.path, key, body["to"], body["text"], code))
                    answer = {"id": provider.delivered[key]} if code == 200 else {"error": error}
                    held = [event for marker, event in provider._held.items() if marker in body["text"]]
                for release in held:
                    release.wait(timeout=30)
                self.send_json(code, json.dumps(answer).encode())

        return Handler
