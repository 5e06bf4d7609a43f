"""The driver connections of the intake path fail the way SQLAlchemy's do, so the app answers
503 (retry) and not 500 while PostgreSQL is down or restarting."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

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
