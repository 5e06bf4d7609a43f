"""Fixtures of the dashboard's tests: a company with a member of each role (``team``) and
another (``rival``), for the live server of ``tests/conftest.py``; a server with small
sign-in limits (``limited_server``); Chromium and its browser profiles (``open_context``); a
fake Graph API for the WhatsApp pages (``graph``) and a readiness monitor that checks on every
view (``checks_every_view``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from atende.app import create_app
from atende.config import Settings
from atende.observability import credentials
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import TOKEN as WHATSAPP_TOKEN
from tests.conftest import free_port
from tests.dashboard.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, OpenContext
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.loopback import running
from tests.fixtures.dashboard import Team, make_team, new_address
from tests.fixtures.servers import serving

LIMITS = {"login_account_rate": "3/60s", "login_address_rate": "6/60s"}  # one more every 20 s, 10 s


@pytest.fixture
async def team(runtime: Runtime, live_server: str) -> Team:
    return await make_team(runtime, name="Loja da Olga")


@pytest.fixture
async def rival(runtime: Runtime, live_server: str) -> Team:
    return await make_team(runtime, name="Rival Shop", language="en")


@pytest.fixture
def checks_every_view(live_app: FastAPI) -> Iterator[None]:
    """The live server's readiness monitor checks again on every view (not once a minute)."""
    monitor = credentials.monitor_for(live_app.state.runtime)
    interval = monitor.interval
    monitor.interval = 0
    yield
    monitor.interval = interval


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    """A fake Graph API of the test's own that takes ``WHATSAPP_TOKEN`` (the WhatsApp pages'
    tests)."""
    with running(FakeGraphApi({WHATSAPP_TOKEN})) as fake:
        yield fake


@pytest.fixture(scope="module")
def limited_server(settings: Settings, live_server: str) -> Iterator[str]:
    """atende with sign-in limits small enough to reach quickly (the session's server runs
    the defaults; argon2 makes each attempt take a noticeable time), fresh for each module;
    its jobs (e-mails) run on the session's server, over the same database."""
    port = free_port()
    limited = settings.model_copy(
        update={
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "run_worker": False,
            **LIMITS,
        }
    )
    with serving(create_app(limited), port) as base_url:
        yield base_url


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        await browser.close()


@pytest.fixture
async def open_context(chromium: Browser) -> AsyncIterator[OpenContext]:
    """Opens browser profiles (one per person), each from an address of its own; at the end,
    no page may have broken its Content-Security-Policy (an inline style or script)."""
    contexts: list[BrowserContext] = []
    violations: list[str] = []

    async def open_one(language: str = "en", base_url: str | None = None) -> BrowserContext:
        context = await chromium.new_context(
            locale=language,
            extra_http_headers={"X-Forwarded-For": new_address()},
            viewport={"width": 1280, "height": 800},
            base_url=base_url,
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.on(
            "console",
            lambda message: (
                violations.append(f"{message.text} at {message.location}")
                if "Content Security Policy" in message.text or "Refused to" in message.text
                else None
            ),
        )
        contexts.append(context)
        return context

    expect.set_options(timeout=TIMEOUT_MS)
    yield open_one
    for context in contexts:
        await context.close()
    assert violations == [], violations
