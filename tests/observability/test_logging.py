"""JSON logs: personal data and secrets redacted, request/company/conversation ids bound,
and an ``X-Request-Id`` on every response."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import structlog

from atende.app import create_app
from atende.bootstrap import BLUEPRINTS
from atende.config import Settings
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.jobs.queue import JobQueue
from atende.observability.logging import json_lines, redact
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask, free_port

HIDDEN = [
    # e-mail addresses
    ("write to ana.souza+pedidos@exemplo.com.br today", "write to [email] today"),
    ("<joao_99@mail.example.org>", "<[email]>"),
    # Brazilian phone numbers
    ("ligue +55 (11) 98765-4321 agora", "ligue [phone] agora"),
    ("meu celular é (11) 98765-4321", "meu celular é [phone]"),
    ("whatsapp 11987654321.", "whatsapp [phone]."),
    ("fixo 011 3456-7890", "fixo [phone]"),
    ("+5511987654321", "[phone]"),
    # international phone numbers
    ("call +1 (415) 555-2671", "call [phone]"),
    ("UK: +44 20 7946 0958", "UK: [phone]"),
    ("PT +351 912 345 678", "PT [phone]"),
    ("us +1-202-555-0143", "us [phone]"),
    # API keys keep their prefix, other secrets their kind
    ("key atd_ab12CD34_Zx9-yW8_vU7tS6rQ5pO4nM3l", "key atd_ab12CD34_[redacted]"),
    ("secret whsec_3f9a8b7c6d5e4f3a2b1c", "secret whsec_[redacted]"),
    # a Standard Webhooks secret is standard base64, "+" and "/" in the first characters too
    ("secret whsec_q+/9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqr=", "secret whsec_[redacted]"),
    ("widget wk_abcdef0123456789", "widget wk_[redacted]"),
    ("llm sk-proj-AbCdEf0123456789xyz", "llm sk-[redacted]"),
    ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "Authorization: Bearer [redacted]"),
    ("authorization: bearer atd_ab12CD34_secretpart", "authorization: bearer [redacted]"),
]

KEPT = [
    "listening on 127.0.0.1:8000",
    "http://127.0.0.1:8000/v1/conversations?limit=50",
    "client 192.168.100.200 port 54321",
    "conversation 3f2b6c1e-8d4a-4f7b-9c2e-1a5b6c7d8e9f",
    "message 00000000-0000-0000-0000-000000000007",
    "id 12345678-1234-1234-1234-123456789012",
    "at 2024-05-01T12:30:45.123456+00:00",
    "at 2024-05-01T12:30:45Z",
    "at 2024-05-01 12:30:45",
    "on 2024-05-01",
    "api key prefix atd_ab12CD34",
    "took 1234.5 ms, 3 chunks",
    "version 0.1.0",
]


@pytest.mark.parametrize(("raw", "redacted"), HIDDEN, ids=[raw for raw, _ in HIDDEN])
def test_redact_hides_personal_data_and_secrets(raw: str, redacted: str) -> None:
    assert redact(raw) == redacted


@pytest.mark.parametrize("text", KEPT)
def test_redact_leaves_addresses_ids_and_timestamps_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_is_idempotent() -> None:
    once = redact("ana@exemplo.com, +55 11 98765-4321, atd_ab12CD34_secret, Bearer abc")
    assert redact(once) == once


# --- the configured pipeline, as the live server writes it --------------------------------------


class JsonLines(logging.Handler):
    """Keeps every record as the configured structlog formatter renders it."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        parsed = [json.loads(line) for line in list(self.lines)]
        return [e for e in parsed if name is None or e.get("event") == name]


@contextmanager
def capturing_json_logs() -> Iterator[JsonLines]:
    """The root logger's lines, rendered by the formatter ``configure()`` installed last
    (``create_app`` installs a new one)."""
    root = logging.getLogger()
    formatters = [
        h.formatter for h in root.handlers if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    ]
    assert formatters, "atende's JSON formatter is not on the root logger"
    handler = JsonLines(formatters[0])
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture
def json_logs(live_server: str) -> Iterator[JsonLines]:
    with capturing_json_logs() as logs:
        yield logs


async def wait_for_event(logs: JsonLines, name: str, **fields: str) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        found = [e for e in logs.events(name) if all(e.get(k) == v for k, v in fields.items())]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no {name} {fields} in {logs.events()}"
        await asyncio.sleep(0.05)


def test_every_line_of_the_pipeline_is_json_with_redacted_values(json_logs: JsonLines) -> None:
    structlog.get_logger("atende.test").info(
        "test.event", note="cliente ana@exemplo.com ligou de +55 11 98765-4321", password="hunter2"
    )
    logging.getLogger("atende.stdlib").warning("token whsec_0123456789abcdef from joao@exemplo.com")
    structured, plain = json_logs.events("test.event")[-1], json_logs.lines[-1]
    assert structured["note"] == "cliente [email] ligou de [phone]"
    assert structured["password"] == "[redacted]"
    assert structured["level"] == "info" and structured["logger"] == "atende.test"
    assert structured["timestamp"].endswith("Z")
    assert json.loads(plain)["event"] == "token whsec_[redacted] from [email]"


async def test_a_request_logs_a_json_line_with_its_request_and_company_ids(
    company: CompanyCtx, json_logs: JsonLines
) -> None:
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    r = await company.client.get("/v1/conversations", headers={"X-Request-Id": request_id})
    assert r.status_code == 200
    line = await wait_for_event(json_logs, "http.request", request_id=request_id)
    assert line["company_id"] == str(company.id)
    assert line["route"] == "/v1/conversations"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert isinstance(line["ms"], float)


async def test_a_customer_message_leaves_no_email_or_phone_in_the_logs(
    company: CompanyCtx, json_logs: JsonLines
) -> None:
    email, phone = "maria.silva@exemplo.com.br", "+55 21 99876-5432"
    body = await ask(
        company.client,
        f"Meu e-mail é {email} e meu telefone {phone}, podem me ligar?",
        contact=email,
    )
    conversation_id = body["conversation_id"]
    turn = await wait_for_event(json_logs, "turn.done", conversation_id=conversation_id)
    assert turn["company_id"] == str(company.id)
    request = await wait_for_event(json_logs, "http.request", route="/v1/messages")
    assert request["company_id"] == str(company.id)
    everything = "\n".join(json_logs.lines)
    for raw in (email, phone, "99876-5432", company.api_key):
        assert raw not in everything


async def test_every_response_carries_a_request_id(company: CompanyCtx, live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as anonymous:
        responses = [
            await company.client.get("/v1/company"),
            await anonymous.get("/health/live"),
            await anonymous.get("/v1/conversations"),  # 401
            await anonymous.get("/no/such/page"),  # 404
            await company.client.post(
                "/v1/messages", content=b"{", headers={"content-type": "application/json"}
            ),
            await company.client.post("/v1/messages", content=b"x" * 70_000),  # 413
        ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(ids), [(r.status_code, r.headers) for r in responses]
    assert len(set(ids)) == len(ids)


async def test_an_incoming_request_id_is_echoed(company: CompanyCtx) -> None:
    r = await company.client.get("/v1/company", headers={"X-Request-Id": "edge-7f3a.42_b"})
    assert r.headers["x-request-id"] == "edge-7f3a.42_b"
    r = await company.client.post("/v1/messages", content=b"x" * 70_000, headers={"X-Request-Id": "big-1"})
    assert r.status_code == 413
    assert r.headers["x-request-id"] == "big-1"


@pytest.mark.parametrize(
    "incoming", ["a b c", "x" * 101, "<script>", "ação"], ids=["spaces", "long", "markup", "non-ascii"]
)
async def test_an_unsafe_incoming_request_id_is_replaced(company: CompanyCtx, incoming: str) -> None:
    r = await company.client.get("/v1/company", headers={"X-Request-Id": incoming.encode()})
    echoed = r.headers["x-request-id"]
    assert echoed != incoming
    assert len(echoed) == 32 and echoed.isalnum()


async def test_a_database_outage_answers_503_with_the_request_id_and_no_stack_trace(
    settings: Settings,
) -> None:
    """The database is unreachable mid-request: the client is told to retry (503 with
    Retry-After), the answer names the request id, and the key never reaches the logs."""
    down = settings.model_copy(update={"database_url": f"postgresql://atende@127.0.0.1:{free_port()}/atende"})
    app = create_app(down)
    db = Database(down.database_url or "", pool_size=1, max_overflow=0)
    app.state.runtime = Runtime(
        settings=down, db=db, jobs=JobQueue(db.url, BLUEPRINTS), listener=Listener(db.url)
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": "Bearer atd_ab12CD34_secret", "X-Request-Id": "r-503"}
    try:
        with capturing_json_logs() as logs:
            async with httpx.AsyncClient(transport=transport, base_url="http://atende", timeout=20) as client:
                r = await client.get("/v1/company", headers=headers)
    finally:
        await db.dispose()
    assert r.status_code == 503
    assert r.headers["x-request-id"] == "r-503"
    assert r.headers["retry-after"] == "1"
    assert r.json() == {
        "detail": "the database is unavailable; retry shortly",
        "code": "database_unavailable",
    }
    await wait_for_event(logs, "request.database_unavailable", request_id="r-503")
    served = await wait_for_event(logs, "http.request", request_id="r-503")
    assert served["status"] == 503
    assert served["route"] == "/v1/company"
    assert "Traceback" not in "\n".join(logs.lines)
    assert "atd_ab12CD34_secret" not in "\n".join(logs.lines)


async def test_a_server_error_carries_the_request_id_and_no_stack_trace(
    settings: Settings, runtime: Runtime
) -> None:
    """An unexpected error: the 500 is answered from outside the middleware, and still names
    the request id the error was logged under; the client sees no stack trace."""
    app = create_app(settings)
    app.state.runtime = runtime

    async def broken() -> None:
        raise RuntimeError("a bug with a secret atd_ab12CD34_secret in its message")

    app.add_api_route("/v1/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with capturing_json_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://atende", timeout=20) as client:
            r = await client.get("/v1/broken", headers={"X-Request-Id": "r-500"})
    assert r.status_code == 500
    assert r.headers["x-request-id"] == "r-500"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json() == {
        "detail": "internal error; the request id is in the X-Request-Id header",
        "code": "internal_error",
    }
    failed = await wait_for_event(logs, "request.failed", request_id="r-500")
    assert "RuntimeError" in failed["exception"]
    served = await wait_for_event(logs, "http.request", request_id="r-500")
    assert served["status"] == 500
    assert served["route"] == "/v1/broken"
    assert "atd_ab12CD34_secret" not in "\n".join(logs.lines)


@pytest.mark.parametrize(
    ("setting", "interactive", "terminal", "json_expected"),
    [
        (None, False, True, True),  # serve, worker: JSON for the log collector, even on a terminal
        (None, False, False, True),
        (None, True, True, False),  # demo, the admin commands, on a terminal: readable lines
        (None, True, False, True),  # ... redirected to a file or a pipe: JSON again
        (True, True, True, True),  # ATENDE_LOG_JSON decides when set
        (False, False, False, False),
    ],
)
def test_who_writes_json_lines(
    setting: bool | None, interactive: bool, terminal: bool, json_expected: bool
) -> None:
    assert json_lines(setting, interactive=interactive, terminal=terminal) is json_expected
