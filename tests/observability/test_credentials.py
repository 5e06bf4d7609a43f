"""External credentials in ``/health/ready``: companies' LLM and embeddings keys, checked with
``GET /models`` against the fake OpenAI-compatible server, at most once per interval.

Each test has a database of its own, so that only its companies' credentials are checked.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY
from pydantic import SecretStr
from structlog.testing import capture_logs

from atende.app import create_app
from atende.config import Settings
from atende.db import migrate
from atende.observability import credentials
from atende.observability.credentials import Credential, Verdict
from atende.observability.health import as_json, readiness
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.crypto import encrypt_secret
from tests.conftest import free_port
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai, stall, status
from tests.fixtures.servers import fresh_database, runtime_on

KEY = "sk-company-key-0123456789"


class Clock:
    """The monitor's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


@asynccontextmanager
async def own_runtime(pg_url: str, settings: Settings, **overrides: Any) -> AsyncIterator[Runtime]:
    """A runtime on a database of its own (only this test's companies are checked)."""
    url = fresh_database(pg_url, "atende_credentials")
    await asyncio.to_thread(migrate.upgrade, url)
    own = settings.model_copy(
        update={
            "credential_check_interval_seconds": 60.0,
            "credential_check_timeout_seconds": 2.0,
            **overrides,
        }
    )
    async with runtime_on(url, own) as runtime:
        yield runtime


@pytest.fixture
async def runtime(pg_url: str, settings: Settings) -> AsyncIterator[Runtime]:
    async with own_runtime(pg_url, settings) as rt:
        yield rt


@pytest.fixture
def clock(runtime: Runtime) -> Clock:
    fixed = Clock()
    credentials.monitor_for(runtime).clock = fixed
    return fixed


async def company_with(
    runtime: Runtime, secret_key: str | None = None, **endpoints: dict[str, Any]
) -> uuid.UUID:
    """A company whose settings hold ``endpoints`` (``llm=``, ``embeddings=``), keys encrypted."""
    stored = {}
    for kind, endpoint in endpoints.items():
        stored[kind] = {k: v for k, v in endpoint.items() if k != "api_key"}
        if endpoint.get("api_key"):
            stored[kind]["api_key"] = encrypt_secret(secret_key or runtime.secret_key, endpoint["api_key"])
    async with runtime.db.transaction() as session:
        slug = f"co-{uuid.uuid4().hex[:10]}"
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
        company.settings = {**(company.settings or {}), **stored}
        return company.id


def endpoint(url: str, key: str | None = KEY) -> dict[str, Any]:
    return {"base_url": url, "model": "fake-model", "api_key": key}


def gauge(name: str, kind: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"kind": kind})


async def report(runtime: Runtime) -> dict[str, Any]:
    ok, checks = await readiness(runtime)
    return as_json(ok, checks)


async def test_a_rejected_key_degrades_readiness_names_the_company_and_is_checked_once_a_minute(
    runtime: Runtime, clock: Clock, fake: FakeOpenAI
) -> None:
    fake.models_script(answer(""), status(401))
    company_id = await company_with(runtime, llm=endpoint(fake.base_url))

    body = await report(runtime)
    assert body["status"] == "ok", body
    assert body["checks"]["credentials"] == {
        "ok": True,
        "detail": "1 checked 0s ago, 0 failing",
        "failures": [],
        "unlisted": [],
    }
    assert [h["authorization"] for h in fake.model_requests] == [f"Bearer {KEY}"]

    for _ in range(3):  # cached: readiness probes do not reach the endpoint
        await report(runtime)
    clock.now += 59
    body = await report(runtime)
    assert len(fake.model_requests) == 1
    assert body["checks"]["credentials"]["detail"] == "1 checked 59s ago, 0 failing"

    clock.now += 1  # a minute after the first check: checked again, and refused now
    with capture_logs() as logs:
        ok, checks = await readiness(runtime)
    body = as_json(ok, checks)
    assert len(fake.model_requests) == 2
    assert ok, body  # still ready: the load balancer keeps the instance
    assert (body["status"], body["failing"], body["degraded"]) == ("degraded", [], ["credentials"])
    assert body["checks"]["credentials"]["ok"] is False
    assert body["checks"]["credentials"]["failures"] == [
        {
            "kind": "llm",
            "company_id": str(company_id),
            "label": fake.origin.removeprefix("http://"),
            "reason": "the endpoint refused the API key (HTTP 401)",
        }
    ]
    for name in ("database", "migrations", "job_backlog"):
        assert body["checks"][name]["ok"], body
    assert body["checks"]["job_backlog"]["detail"] == "0 waiting, oldest 0.0s (limit 300s)"
    assert KEY not in json.dumps(body)
    [failing] = [e for e in logs if e["event"] == "credential.failing"]
    assert (failing["company_id"], failing["kind"], failing["log_level"]) == (
        str(company_id),
        "llm",
        "warning",
    )
    assert gauge("atende_credentials", "llm") == 1
    assert gauge("atende_credentials_failing", "llm") == 1

    fake.models_script(answer(""))
    clock.now += 60
    with capture_logs() as logs:
        body = await report(runtime)
    assert body["status"] == "ok"
    assert [e["event"] for e in logs if e["event"].startswith("credential.")] == ["credential.recovered"]
    assert gauge("atende_credentials_failing", "llm") == 0


async def test_the_ready_endpoint_answers_200_degraded_and_metrics_count_failures_by_kind(
    runtime: Runtime, fake: FakeOpenAI
) -> None:
    fake.models_script(status(403))
    company_id = await company_with(runtime, embeddings=endpoint(fake.base_url))
    app = create_app(runtime.settings)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://atende", timeout=20) as client:
        ready = await client.get("/health/ready")
        scraped = (await client.get("/metrics")).text
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "degraded"
    [failure] = body["checks"]["credentials"]["failures"]
    assert (failure["kind"], failure["company_id"]) == ("embeddings", str(company_id))
    assert failure["reason"] == "the API key may not use the endpoint (HTTP 403)"
    assert 'atende_credentials_failing{kind="embeddings"} 1.0' in scraped
    assert len(fake.model_requests) == 1  # /metrics reused the result


async def test_each_way_a_credential_fails_is_said(pg_url: str, settings: Settings, fake: FakeOpenAI) -> None:
    """The deployment's own endpoint, one that is down, one whose key cannot be decrypted,
    one that stalls, and a key two companies share (checked once)."""
    with running_openai() as slow, running_openai() as shared:
        slow.models_script(stall(5))
        async with own_runtime(
            pg_url,
            settings,
            llm_base_url=fake.base_url,
            llm_api_key=SecretStr("sk-deployment"),
            credential_check_timeout_seconds=1.0,
        ) as runtime:
            stale = await company_with(runtime, secret_key="another-secret", llm=endpoint(fake.base_url))
            down = await company_with(runtime, llm=endpoint(f"http://127.0.0.1:{free_port()}/v1"))
            stalled = await company_with(runtime, embeddings=endpoint(slow.base_url))
            twins = [
                await company_with(runtime, llm=endpoint(shared.base_url, "sk-shared")) for _ in range(2)
            ]
            await credentials.monitor_for(runtime).snapshot(wait=10)  # the stalled check takes 1 s
            body = await report(runtime)
            states = credentials.monitor_for(runtime).last.states
    reasons = {f["company_id"]: f["reason"] for f in body["checks"]["credentials"]["failures"]}
    assert reasons == {
        str(stale): "the stored key cannot be decrypted: was ATENDE_SECRET_KEY changed?",
        str(down): reasons[str(down)],
        str(stalled): "no answer within 1s",
    }
    assert reasons[str(down)].startswith("unreachable (")
    assert body["checks"]["credentials"]["detail"].startswith("6 checked")
    assert [h["authorization"] for h in fake.model_requests] == ["Bearer sk-deployment"]
    assert states[0].credential.company_id is None and states[0].verdict.ok  # the deployment's
    assert len(shared.model_requests) == 1  # one key at one place: one call for both companies
    assert all(s.verdict.ok for s in states if s.credential.company_id in twins)


async def test_a_company_endpoint_on_a_private_address_is_refused(
    pg_url: str, settings: Settings, fake: FakeOpenAI
) -> None:
    async with own_runtime(pg_url, settings, llm_allow_private_networks=False) as runtime:
        company_id = await company_with(runtime, llm=endpoint(fake.base_url))
        body = await report(runtime)
    [failure] = body["checks"]["credentials"]["failures"]
    assert failure["company_id"] == str(company_id)
    assert "is not a public address" in failure["reason"]
    assert fake.model_requests == []  # never called


async def test_a_channel_registers_its_own_credentials_and_a_slow_round_never_holds_readiness(
    runtime: Runtime, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's interface, as a WhatsApp channel would use it."""
    monkeypatch.setattr(credentials, "WAIT_SECONDS", 0.2)
    company_id = await company_with(runtime)
    answer_now = asyncio.Event()

    async def token_check() -> Verdict:
        await answer_now.wait()
        return Verdict(False, "Meta says the token expired (code 190)")

    async def broken_check() -> Verdict:
        raise RuntimeError("the checker itself failed")

    async def whatsapp(rt: Runtime) -> list[Credential]:
        return [
            Credential("whatsapp", company_id, "phone number 1055", "wa-token-1", token_check),
            Credential("whatsapp", company_id, "phone number 1056", "wa-token-2", broken_check),
        ]

    async def unlistable(rt: Runtime) -> list[Credential]:
        raise ConnectionError("the channel's table is gone")

    credentials.register("whatsapp", whatsapp)
    credentials.register("email", unlistable)
    try:
        body = await report(runtime)  # the round waits on the token check: readiness does not
        assert body["status"] == "ok"
        assert body["checks"]["credentials"]["detail"] == "the first check is still running"
        answer_now.set()
        await asyncio.sleep(0.05)
        body = await report(runtime)
    finally:
        credentials.unregister("whatsapp")
        credentials.unregister("email")
    failures = body["checks"]["credentials"]["failures"]
    assert {(f["label"], f["reason"]) for f in failures} == {
        ("phone number 1055", "Meta says the token expired (code 190)"),
        ("phone number 1056", "RuntimeError: the checker itself failed"),
    }
    assert body["checks"]["credentials"]["unlisted"] == [
        "email: ConnectionError: the channel's table is gone"
    ]
    assert body["status"] == "degraded"
    assert gauge("atende_credentials_failing", "whatsapp") == 2


async def test_a_round_that_fails_as_a_whole_degrades_readiness_instead_of_a_500(
    runtime: Runtime, clock: Clock
) -> None:
    """A source whose listing is not one (a bug): the round itself fails. The probe answers
    degraded naming credentials, the failure is logged, and the round, which outlives the
    request that started it, carries none of its context (request id)."""
    seen: list[dict[str, Any]] = []

    async def malformed(rt: Runtime) -> list[Credential]:
        seen.append(structlog.contextvars.get_contextvars())
        return [cast(Credential, None)]

    credentials.register("malformed", malformed)
    app = create_app(runtime.settings)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    try:
        with capture_logs() as logs:
            async with httpx.AsyncClient(transport=transport, base_url="http://atende", timeout=20) as client:
                ready = await client.get("/health/ready")
                scraped = await client.get("/metrics")
    finally:
        credentials.unregister("malformed")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert (body["status"], body["failing"], body["degraded"]) == ("degraded", [], ["credentials"])
    assert body["checks"]["credentials"]["ok"] is False
    assert body["checks"]["credentials"]["detail"] == (
        "the last check failed: AttributeError: 'NoneType' object has no attribute 'fingerprint'"
    )
    assert scraped.status_code == 200
    [failed] = [e for e in logs if e["event"] == "credential.round_failed"]
    assert failed["log_level"] == "error"
    assert failed["error"].startswith("AttributeError")
    assert seen and all("request_id" not in bound for bound in seen)


async def test_the_monitors_own_failure_is_a_degraded_check_too(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_snapshot(wait: float | None = None) -> credentials.Snapshot:
        raise RuntimeError("the monitor broke")

    monkeypatch.setattr(credentials.monitor_for(runtime), "snapshot", broken_snapshot)
    body = await report(runtime)
    assert (body["status"], body["degraded"]) == ("degraded", ["credentials"])
    assert body["checks"]["credentials"]["detail"] == "the check failed: RuntimeError: the monitor broke"
