"""A second atende server whose web chat limits are tight enough to reach in a test.

The session's server (``tests/conftest.py``) turns the per-address limits off: every test's
visitor comes from 127.0.0.1. This one (no worker of its own: the session's answers its bot
turns, over the same database) keeps them, small, and believes ``X-Forwarded-For`` from
127.0.0.1 as ``atende serve`` believes it from ``ATENDE_FORWARDED_ALLOW_IPS``, so that a
test gives each of its visitors an address of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atende.app import create_app
from atende.config import Settings
from tests.conftest import free_port
from tests.fixtures.servers import serving

LIMITS = {
    "webchat_visitor_rate": "4/4s",  # 4 at once, then one a second
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
