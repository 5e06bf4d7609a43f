"""Servers of the web chat's own tests, beside the session's (``tests/conftest.py``).

- ``limited_server``: web chat limits tight enough to reach in a test. The session's server
  turns the per-address limits off: every test's visitor comes from 127.0.0.1. This one (no
  worker of its own: the session's answers its bot turns, over the same database) keeps
  them, small, and believes ``X-Forwarded-For`` from 127.0.0.1 as ``atende serve`` believes
  it from ``ATENDE_FORWARDED_ALLOW_IPS``, so that a test gives each of its visitors an
  address of its own.
- ``demo_server``: atende in demo mode (``atende demo``), for the demo page: the session's
  server is not one, and must not serve it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atende.app import create_app
from atende.config import Settings
from atende.db import migrate
from tests.conftest import free_port
from tests.fixtures.servers import fresh_database, serving

LIMITS = {
    "webchat_visitor_rate": "4/28s",  # 4 at once, then one every 7 s (slow enough for a busy machine)
    "webchat_address_rate": "8/60s",
    "webchat_address_conversations_rate": "3/60s",
    "webchat_widget_rate": "20/60s",
}


def limited_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(
        update={"port": port, "public_url": f"http://127.0.0.1:{port}", "run_worker": False, **LIMITS}
    )


@pytest.fixture(scope="module")
def limited_server(settings: Settings, live_server: str) -> Iterator[str]:
    """atende with the tight ``LIMITS``, its counters fresh for each test module."""
    port = free_port()
    with serving(create_app(limited_settings(settings, port)), port) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def demo_server(pg_url: str, settings: Settings) -> Iterator[str]:
    """atende with ``ATENDE_DEMO=true`` on a database of its own, the demo shop seeded."""
    url = fresh_database(pg_url, "atende_demo")
    migrate.upgrade(url)
    port = free_port()
    own = settings.model_copy(
        update={"database_url": url, "port": port, "public_url": f"http://127.0.0.1:{port}", "demo": True}
    )
    with serving(create_app(own), port) as base_url:
        yield base_url
