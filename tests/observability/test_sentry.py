"""Sentry: the real ``sentry-sdk`` sends to a fake Sentry on 127.0.0.1.

An atende of its own (its own database, in-process worker and DSN: Sentry is process-wide)
gets a failing request and failing jobs (one on a SQL statement whose values hold a
customer's words); the envelopes that arrive carry the exception, the company and
conversation ids, release and environment, and no message text, statement value, e-mail
address, API key or cookie. Teardown closes the client, so no other test reports.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import procrastinate
import pytest
import sentry_sdk
import structlog
from fastapi import FastAPI, Request
from pydantic import SecretStr
from sentry_sdk.transport import HttpTransport
from sentry_sdk.utils import event_from_exception
from sqlalchemy import create_engine
from sqlalchemy import text as sql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from atende import bootstrap
from atende.app import create_app
from atende.config import Settings
from atende.db import migrate
from atende.db.url import sqlalchemy_url
from atende.observability import sentry
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.deps import ViewerTenant
from atende.tenancy.models import Role
from tests.conftest import free_port
from tests.fakes.sentry_server import FakeSentry, running_sentry
from tests.fixtures.servers import fresh_database, runtime_on, serving

CUSTOMER_TEXT = "Meu pedido 4471 não chegou, estou muito chateada"
EMAIL = "ana.cliente@example.com"
PHONE = "+55 11 98765-4321"
COOKIE = "sessao-secreta-0123456789"
# ASCII: the SDK writes JSON with non-ASCII characters escaped, so "não" is never found as is
ORDER_TEXT = "Oi, sou a Ana Souza, meu pedido 4471 veio quebrado"


def reached(private: str, sent: str) -> bool:
    """Whether ``private`` is in an envelope's JSON, as written or escaped."""
    return private in sent or json.dumps(private)[1:-1] in sent


# a statement that fails on PostgreSQL (1 / 0) with the customer's words among its values; the
# marker in a comment finds its event
FAILING_STATEMENT = "SELECT 1 / 0 /* {marker} */ WHERE CAST(:text AS text) IS NOT NULL"


def tasks() -> procrastinate.Blueprint:
    """Jobs of the test: one that fails (retried once, without waiting), one that is slow."""
    bp = procrastinate.Blueprint()

    @bp.task(name="fail", retry=procrastinate.RetryStrategy(max_attempts=1))
    async def fail(company_id: str, conversation_id: str, text: str, marker: str) -> None:
        raise RuntimeError(f"job {marker} failed for {EMAIL}")

    @bp.task(name="db_fail", pass_context=True)
    async def db_fail(context: procrastinate.JobContext, company_id: str, text: str, marker: str) -> None:
        runtime: Runtime = context.additional_context["runtime"]
        async with runtime.db.transaction() as session:
            await session.execute(sql(FAILING_STATEMENT.format(marker=marker)), {"text": text})

    @bp.task(name="slow")
    async def slow(company_id: str, seconds: float) -> None:
        await asyncio.sleep(seconds)

    return bp


def mount_test_routes(app: FastAPI) -> None:
    """Routes on this test's own app instance only (the session's app is not touched)."""

    @app.post("/tests/conversations/{conversation_id}/boom")
    async def boom(conversation_id: uuid.UUID, request: Request, tenant: ViewerTenant) -> None:
        body = await request.json()
        text = body["text"]  # a local variable holding the customer's words
        raise RuntimeError(f"boom {body['marker']} answering {EMAIL} about {len(text)} chars")

    @app.get("/tests/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.5)
        return {"status": "slow"}


@dataclass
class Reporting:
    fake: FakeSentry
    base_url: str
    runtime: Runtime  # on the app's database, in the test's event loop
    settings: Settings

    async def company(self) -> tuple[uuid.UUID, str]:
        async with self.runtime.db.transaction() as session:
            slug = f"co-{uuid.uuid4().hex[:10]}"
            company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
            _key, full = await tenancy.create_api_key(
                session, secret_key=self.runtime.secret_key, company_id=company.id, name="t", role=Role.admin
            )
            return company.id, full


def reset_sentry() -> None:
    """Back to no Sentry at all: the client closed, the process-wide scope cleared."""
    sentry_sdk.get_client().close(timeout=2)
    scope = sentry_sdk.get_global_scope()
    scope.set_client(None)
    scope.clear()


@pytest.fixture
def no_sentry_afterwards() -> Iterator[None]:
    yield
    reset_sentry()


@pytest.fixture
async def reporting(
    pg_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch, no_sentry_afterwards: None
) -> AsyncIterator[Reporting]:
    url = fresh_database(pg_url, "atende_sentry")
    await asyncio.to_thread(migrate.upgrade, url)
    monkeypatch.setitem(bootstrap.BLUEPRINTS, "tests", tasks)
    port = free_port()
    with running_sentry() as fake:
        own = settings.model_copy(
            update={
                "database_url": url,
                "port": port,
                "public_url": f"http://127.0.0.1:{port}",
                "sentry_dsn": SecretStr(fake.dsn()),
                "environment": "ci-sentry",
                "release": "atende@sentry-test",
                "sentry_traces_sample_rate": 1.0,
                "sentry_slow_transaction_seconds": 0.3,
            }
        )
        app = create_app(own)
        mount_test_routes(app)
        with serving(app, port) as base_url:
            async with runtime_on(url, own) as runtime:
                yield Reporting(fake, base_url, runtime, own)


def errors_with(marker: str) -> Any:
    return lambda fake: [e for e in fake.events() if marker in str(e.get("exception"))]


async def test_an_unhandled_request_error_is_reported_tagged_and_without_personal_data(
    reporting: Reporting,
) -> None:
    company_id, api_key = await reporting.company()
    conversation_id, marker = uuid.uuid4(), uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=reporting.base_url, timeout=10) as client:
        r = await client.post(
            f"/tests/conversations/{conversation_id}/boom",
            params={"email": EMAIL, "wait": "1"},
            json={"text": CUSTOMER_TEXT, "marker": marker, "email": EMAIL, "phone": PHONE},
            headers={"Authorization": f"Bearer {api_key}", "Cookie": f"session={COOKIE}"},
        )
    assert r.status_code == 500 and r.json()["code"] == "internal_error"

    [event] = await asyncio.to_thread(reporting.fake.wait_for, errors_with(marker))
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == f"boom {marker} answering [email] about {len(CUSTOMER_TEXT)} chars"
    assert exception["mechanism"]["handled"] is False
    assert event["level"] == "error"
    assert event["release"] == "atende@sentry-test"
    assert event["environment"] == "ci-sentry"
    assert event["transaction"] == "/tests/conversations/{conversation_id}/boom"
    tags = event["tags"]
    assert tags["company_id"] == str(company_id)
    assert tags["conversation_id"] == str(conversation_id)
    assert tags["request_id"] == r.headers["x-request-id"]
    assert tags["process"] == "serve"
    request = event["request"]
    assert request["method"] == "POST"
    assert "data" not in request and "cookies" not in request
    assert "email=%5BFiltered%5D" in request["query_string"]

    sent = reporting.fake.raw().decode()
    for private in (CUSTOMER_TEXT, EMAIL, PHONE, api_key, api_key.split("_", 2)[2], COOKIE):
        assert not reached(private, sent), f"{private!r} reached Sentry"
    assert '"vars"' not in sent  # no local variables of any frame


async def test_a_failing_job_is_reported_per_attempt_the_last_one_as_an_error(reporting: Reporting) -> None:
    company_id, _key = await reporting.company()
    conversation_id, marker = uuid.uuid4(), uuid.uuid4().hex
    async with reporting.runtime.db.transaction() as session:
        job_id = await reporting.runtime.jobs.enqueue(
            session,
            "tests:fail",
            company_id=str(company_id),
            conversation_id=str(conversation_id),
            text=f"{CUSTOMER_TEXT} ({EMAIL})",
            marker=marker,
        )

    events = await asyncio.to_thread(
        reporting.fake.wait_for,
        lambda fake: len(errors_with(marker)(fake)) >= 2 and errors_with(marker)(fake),
    )
    first, last = sorted(events, key=lambda e: int(e["tags"]["job_attempt"]))
    for event in (first, last):
        [exception] = event["exception"]["values"]
        assert (exception["type"], exception["value"]) == ("RuntimeError", f"job {marker} failed for [email]")
        assert exception["mechanism"] == {"type": "procrastinate", "handled": False}
        assert event["tags"]["company_id"] == str(company_id)
        assert event["tags"]["conversation_id"] == str(conversation_id)
        assert event["tags"]["job_task"] == "tests:fail"
        assert event["contexts"]["job"]["id"] == job_id
        assert (event["release"], event["environment"]) == ("atende@sentry-test", "ci-sentry")
    assert (first["level"], first["tags"]["job_final"], first["tags"]["job_attempt"]) == (
        "warning",
        "false",
        "1",
    )
    assert (last["level"], last["tags"]["job_final"], last["tags"]["job_attempt"]) == ("error", "true", "2")

    sent = reporting.fake.raw().decode()
    assert not reached(CUSTOMER_TEXT, sent) and not reached(EMAIL, sent)


async def test_a_job_failing_on_a_statement_reports_it_without_the_statements_values(
    reporting: Reporting,
) -> None:
    company_id, _key = await reporting.company()
    marker = uuid.uuid4().hex
    async with reporting.runtime.db.transaction() as session:
        await reporting.runtime.jobs.enqueue(
            session, "tests:db_fail", company_id=str(company_id), text=ORDER_TEXT, marker=marker
        )

    [event] = await asyncio.to_thread(reporting.fake.wait_for, errors_with(marker))
    *_cause, exception = event["exception"]["values"]
    assert exception["type"] == "DataError"
    assert exception["value"].startswith("(psycopg.errors.DivisionByZero) division by zero")
    assert "[SQL parameters hidden due to hide_parameters=True]" in exception["value"]
    assert event["level"] == "error"
    sent = reporting.fake.raw().decode()
    assert not reached(ORDER_TEXT, sent), "the statement's values reached Sentry"


async def test_slow_requests_and_jobs_are_sent_as_transactions_fast_ones_are_not(
    reporting: Reporting,
) -> None:
    company_id, _key = await reporting.company()
    async with httpx.AsyncClient(base_url=reporting.base_url, timeout=10) as client:
        assert (await client.get("/tests/slow")).status_code == 200
        assert (await client.get("/health/live")).status_code == 200
    async with reporting.runtime.db.transaction() as session:
        await reporting.runtime.jobs.enqueue(session, "tests:slow", company_id=str(company_id), seconds=0.4)

    def named(name: str) -> Any:
        return lambda fake: [t for t in fake.transactions() if t["transaction"] == name]

    [request] = await asyncio.to_thread(reporting.fake.wait_for, named("/tests/slow"))
    assert request["contexts"]["trace"]["op"] == "http.server"
    assert request["tags"]["process"] == "serve"
    assert (request["release"], request["environment"]) == ("atende@sentry-test", "ci-sentry")
    [job] = await asyncio.to_thread(reporting.fake.wait_for, named("tests:slow"))
    assert job["contexts"]["trace"]["op"] == "queue.process"
    assert job["tags"]["company_id"] == str(company_id)
    assert sentry_sdk.flush(timeout=5) is None
    assert named("/health/live")(reporting.fake) == []  # fast: dropped before sending


async def test_a_sentry_that_does_not_answer_slows_no_request(reporting: Reporting) -> None:
    transport = sentry_sdk.get_client().transport
    assert isinstance(transport, HttpTransport)
    assert 0 < transport.TIMEOUT <= 30  # each send's total deadline, on the SDK's own thread
    _company_id, api_key = await reporting.company()
    marker = uuid.uuid4().hex

    async def boom() -> float:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=reporting.base_url, timeout=10) as client:
            r = await client.post(
                f"/tests/conversations/{uuid.uuid4()}/boom",
                json={"text": "x", "marker": marker},
                headers={"Authorization": f"Bearer {api_key}"},
            )
        assert r.status_code == 500
        return time.monotonic() - started

    # the process's first failed request pays for what is done once (the key's lookup, the
    # SDK's first event): on a busy machine that alone took seconds, so it comes first
    await boom()
    stall = reporting.fake.stall_seconds = 3.0
    took = [await boom() for _ in range(3)]
    # the SDK sends from its own thread: no request waits for the stalled Sentry (one that
    # did would take the whole stall); bounded per request, so a busy machine's slower
    # requests do not add up against it
    assert max(took) < stall * 0.9, took
    reporting.fake.stall_seconds = 0.0


def test_a_bad_dsn_is_logged_and_atende_starts_without_sentry(
    settings: Settings, no_sentry_afterwards: None
) -> None:
    bad = settings.model_copy(update={"sentry_dsn": SecretStr("https://sentry.example.com/not-a-project")})
    with structlog.testing.capture_logs() as logs:
        assert sentry.configure(bad, process="serve") is False
        app = create_app(bad)  # the app is still built
    assert isinstance(app, FastAPI)
    [disabled, *_] = [e for e in logs if e["event"] == "sentry.disabled"]
    assert disabled["log_level"] == "error"
    assert disabled["reason"].startswith("BadDsn")
    assert "ATENDE_SENTRY_DSN" in disabled["hint"]
    assert not sentry_sdk.get_client().is_active()


def test_without_a_dsn_nothing_is_initialised(settings: Settings) -> None:
    assert settings.sentry_dsn is None
    assert sentry.configure(settings, process="serve") is False
    assert not sentry_sdk.get_client().is_active()


def test_the_dsn_environment_and_release_are_read_from_sentry_names_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTRY_DSN", "https://key@sentry.example.com/7")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    monkeypatch.setenv("ATENDE_RELEASE", "atende@abc123")
    read = Settings(_env_file=None)  # type: ignore[call-arg]
    assert read.sentry_dsn is not None
    assert read.sentry_dsn.get_secret_value() == "https://key@sentry.example.com/7"
    assert (read.environment, read.release) == ("staging", "atende@abc123")
    monkeypatch.setenv("ATENDE_SENTRY_DSN", "https://other@sentry.example.com/8")
    assert Settings(_env_file=None).sentry_dsn.get_secret_value().endswith("/8")  # type: ignore[call-arg,union-attr]


def test_an_engine_that_quotes_a_statements_values_still_sends_none_of_them(db_url: str) -> None:
    """The safety net: an engine made without ``hide_parameters`` (not atende's)."""
    engine = create_engine(sqlalchemy_url(db_url), poolclass=NullPool)
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
            conn.execute(sql(FAILING_STATEMENT.format(marker="net")), {"text": ORDER_TEXT})
    finally:
        engine.dispose()
    assert ORDER_TEXT in str(raised.value)  # what SQLAlchemy writes by default
    event, hint = event_from_exception(raised.value)
    event["message"] = str(raised.value)
    event["breadcrumbs"] = {"values": [{"type": "log", "category": "atende.x", "message": str(raised.value)}]}

    sent = sentry.before_send(event, hint)

    assert sent is not None
    assert not reached(ORDER_TEXT, json.dumps(sent))
    *_cause, exception = sent["exception"]["values"]
    assert exception["value"].startswith("(psycopg.errors.DivisionByZero) division by zero")
    assert "[parameters: [Filtered]]" in exception["value"]
    assert "/* net */" in exception["value"]  # the statement itself is kept: it holds no value


# --- the pure parts ------------------------------------------------------------------------------


def test_route_ids_come_from_the_route_template() -> None:
    cid = str(uuid.uuid4())
    assert sentry._route_ids(
        "/v1/conversations/{conversation_id}/messages", f"/v1/conversations/{cid}/messages"
    ) == {"conversation_id": cid}
    assert sentry._route_ids("/widget/v1/{widget_key}/conversations", "/widget/v1/wk_x/conversations") == {}
    assert sentry._route_ids("/files/{path:path}", "/files/a/b") == {}


def test_query_strings_keep_their_shape_without_secrets_or_addresses() -> None:
    query = urlencode({"wait": 5, "token": "abc", "email": EMAIL, "q": f"ligue {PHONE}"})
    scrubbed = sentry._scrub_query(query)
    assert scrubbed == "wait=5&token=%5BFiltered%5D&email=%5BFiltered%5D&q=ligue+%5Bphone%5D"


def test_fast_transactions_are_dropped_slow_ones_kept() -> None:
    keep = sentry.keep_slow(1.0)
    fast = {
        "type": "transaction",
        "start_timestamp": "2026-01-01T00:00:00.000000Z",
        "timestamp": "2026-01-01T00:00:00.500000Z",
    }
    slow = {**fast, "timestamp": "2026-01-01T00:00:01.200000Z"}
    assert keep(fast, {}) is None  # type: ignore[arg-type]
    assert keep(slow, {}) is slow  # type: ignore[arg-type]


def test_event_streams_are_never_traced() -> None:
    sample = sentry.sampler(0.5)
    stream = {"asgi_scope": {"headers": [(b"accept", b"text/event-stream")]}}
    assert sample(stream) == 0.0
    assert sample({"asgi_scope": {"headers": [(b"accept", b"application/json")]}}) == 0.5
    assert sample({}) == 0.5
