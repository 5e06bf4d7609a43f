"""The FastAPI application: lifespan (database, migrations, worker), middleware, error
mapping and routers. It only wires things together."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende import __version__
from atende.bootstrap import open_runtime, run_worker, stop_task
from atende.channels.webchat.api import router as webchat_router
from atende.config import Settings, get_settings
from atende.conversations.api import router as conversations_router
from atende.engine.api import router as engine_router
from atende.errors import AtendeError
from atende.jobs.api import router as jobs_router
from atende.knowledge.api import router as knowledge_router
from atende.observability import metrics
from atende.observability.api import router as operations_router
from atende.observability.logging import configure as configure_logging
from atende.tenancy.api import router as tenancy_router
from atende.webhooks.api import router as webhooks_router

log = structlog.get_logger(__name__)


class BodyTooLarge(Exception):
    pass


class RequestContext:
    """Request id, log context, body size limit and HTTP metrics, for every request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:100] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            await self._too_large(send, request_id)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not status["sent"]:
                status["code"] = 413
                await self._too_large(send, request_id)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            metrics.HTTP_REQUESTS.labels(method, path, str(status["code"])).inc()
            metrics.HTTP_LATENCY.labels(method, path).observe(time.perf_counter() - started)

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = (
            f'{{"detail":"request body is larger than {self.max_body} bytes","code":"too_large"}}'
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _error(status: int, code: str, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status)


def create_app(settings: Settings | None = None, *, on_ready: Callable[[Any], None] | None = None) -> FastAPI:
    """The application; ``on_ready`` is called once started (with the demo info, if any)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            runtime = await stack.enter_async_context(open_runtime(settings))
            app.state.runtime = runtime
            if settings.demo:
                from atende.demo import seed

                info = await seed(runtime)
                app.state.demo = info
            worker: asyncio.Task[None] | None = None
            if settings.run_worker:
                worker = asyncio.create_task(run_worker(runtime, name="atende-serve"))
            log.info("atende.ready", version=__version__)
            if on_ready is not None:
                on_ready(getattr(app.state, "demo", None))
            try:
                yield
            finally:
                await stop_task(worker)

    app = FastAPI(
        title="atende",
        version=__version__,
        summary="Multi-tenant AI customer support: a grounded bot, human handoff, channels.",
        description=(
            "Authenticate `/v1` calls with a company API key: `Authorization: Bearer atd_...` "
            '(create one with `atende keys create`). Errors answer `{"detail": ..., "code": ...}`.'
        ),
        lifespan=lifespan,
    )

    @app.exception_handler(AtendeError)
    async def domain_error(_request: Request, exc: AtendeError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _error(422, "invalid_input", errors)

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("request.failed", exc_info=exc)
        return _error(500, "internal_error", "internal error; the request id is in the X-Request-Id header")

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/demo")

    for router in (
        operations_router,
        tenancy_router,
        conversations_router,
        engine_router,
        knowledge_router,
        webhooks_router,
        jobs_router,
        webchat_router,
    ):
        app.include_router(router)
    app.add_middleware(RequestContext, max_body_bytes=settings.max_body_bytes)
    return app
