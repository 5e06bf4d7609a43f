"""What the application's connections are doing, seen from PostgreSQL (``pg_stat_activity``):
for tests that a slow outside call (an LLM) is made with no transaction held open."""

from __future__ import annotations

import asyncio
import time

import psycopg

from atende.db.url import libpq_url


async def longest_idle_transaction(db_url: str, seconds: float, stop: asyncio.Event) -> float:
    """Watch the database for up to ``seconds`` (or until ``stop``): the longest any other
    connection sat idle inside an open transaction, in seconds."""
    longest = 0.0
    deadline = time.monotonic() + seconds
    async with await psycopg.AsyncConnection.connect(libpq_url(db_url), autocommit=True) as probe:
        while time.monotonic() < deadline and not stop.is_set():
            cur = await probe.execute(
                "SELECT coalesce(max(extract(epoch FROM now() - state_change)), 0)::float8"
                " FROM pg_stat_activity WHERE state = 'idle in transaction' AND pid <> pg_backend_pid()"
                " AND datname = current_database()"
            )
            row = await cur.fetchone()
            longest = max(longest, float(row[0]) if row else 0.0)
            await asyncio.sleep(0.05)
    return longest
