"""An atende in demo mode (``atende demo``), for the demo page: the session's server is not
one, and must not serve it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from atende.app import create_app
from atende.config import Settings
from atende.db import migrate
from tests.conftest import free_port
from tests.fixtures.servers import fresh_database, serving


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
