"""The intake baseline: a bare FastAPI endpoint that validates the same body as atende's
``POST /v1/messages`` and only inserts one row with asyncpg (no auth, no conversation, no job).

Served by ``benchmarks.intake`` as
``uvicorn benchmarks.baseline_app:create_app --factory`` with ``BENCH_BASELINE_DSN`` set to a
``postgresql://`` URL whose database has the table (``intake.BASELINE_TABLE``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

TABLE = "bench_baseline_messages"
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    message_id text UNIQUE,
    contact text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""


class ContactIn(BaseModel):
    external_id: str = Field(min_length=1, max_length=200)


class MessageIn(BaseModel):
    contact: ContactIn
    text: str = Field(min_length=1, max_length=20000)
    message_id: str | None = Field(default=None, max_length=255)


def create_app() -> FastAPI:
    dsn = os.environ["BENCH_BASELINE_DSN"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the same pool bounds as atende's SQLAlchemy engine (10 + 20 overflow)
        app.state.pool = await asyncpg.create_pool(dsn, min_size=10, max_size=30)
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="intake baseline", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/messages", status_code=201)
    async def post_message(body: MessageIn, request: Request) -> dict[str, Any]:
        pool: asyncpg.Pool = request.app.state.pool
        row_id = await pool.fetchval(
            f"INSERT INTO {TABLE} (message_id, contact, body) VALUES ($1, $2, $3) RETURNING id",
            body.message_id,
            body.contact.external_id,
            body.text,
        )
        return {"id": row_id, "message_id": body.message_id}

    return app
