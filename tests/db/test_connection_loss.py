"""Losing PostgreSQL (down, restarting) fails requests the way a client can retry: the intake
path's driver connections raise SQLAlchemy's ``OperationalError`` (the app's 503, not a 500),
and a live stream ends cleanly so the browser's ``EventSource`` reconnects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from sqlalchemy.exc import OperationalError

from atende.db.pubsub import until_database_lost
from atende.db.session import Database
from tests.conftest import free_port


async def test_a_driver_connection_to_a_database_that_is_down_raises_sqlalchemys_operational_error() -> None:
    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/atende", pool_size=1)
    try:
        with pytest.raises(OperationalError) as raised:
            async with db.driver_autocommit():
                pass  # not reached
        assert "connection failed" in str(raised.value.orig) or "refused" in str(raised.value.orig)
    finally:
        await db.dispose()


async def test_a_live_stream_ends_cleanly_when_the_database_is_lost_under_it() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"event": "message", "data": "1"}
        lost = psycopg.OperationalError("terminating connection due to administrator command")
        raise OperationalError("SELECT 1", None, lost)

    seen = [event async for event in until_database_lost(events(), "test")]
    assert seen == [{"event": "message", "data": "1"}]


async def test_other_errors_of_a_live_stream_are_not_hidden() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"event": "message", "data": "1"}
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        [event async for event in until_database_lost(events(), "test")]
