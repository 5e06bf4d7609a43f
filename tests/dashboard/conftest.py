"""Fixtures of the dashboard's tests: a company with a member of each role (``team``) and
another (``rival``), for the live server of ``tests/conftest.py``; a server with small
sign-in limits (``limited_server``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atende.app import create_app
from atende.config import Settings
from atende.runtime import Runtime
from tests.conftest import free_port
from tests.fixtures.dashboard import Team, make_team
from tests.fixtures.servers import serving

LIMITS = {"login_account_rate": "3/60s", "login_address_rate": "6/60s"}  # one more every 20 s, 10 s


@pytest.fixture
async def team(runtime: Runtime, live_server: str) -> Team:
    return await make_team(runtime, name="Loja da Olga")


@pytest.fixture
async def rival(runtime: Runtime, live_server: str) -> Team:
    return await make_team(runtime, name="Rival Shop", language="en")


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
