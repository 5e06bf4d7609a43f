"""The FastAPI application: lifespan (database, migrations, worker), middleware, error
mapping and routers. It only wires things together."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from atende import __version__
from atende.audit.api import router as audit_router
from atende.bootstrap import open_runtime, run_worker, stop_task
from atende.channels import registry as channels
from atende.channels.accounts_api import router as channel_accounts_router
from atende.config import Settings, get_settings
from atende.conversations.api import router as conversations_router
from atende.dashboard import knowledge as knowledge_pages
from atende.dashboard.conversation import REPLY_PATH
from atende.dashboard.routes import PREFIX as DASHBOARD_PREFIX
from atende.dashboard.routes import router as dashboard_router
from atende.dashboard.web import too_large_page
from atende.db.embedded import EmbeddedDatabase
from atende.engine.api import router as engine_router
from atende.errors import HTTP_ERROR_CODES, AtendeError, RateLimited
from atende.feedback.api import router as feedback_router
from atende.feedback.ratings_api import router as ratings_router
from atende.jobs.api import router as jobs_router
from atende.knowledge.api import router as knowledge_router
from atende.media.api import UPLOAD_PATH
from atende.media.api import router as media_router
from atende.observability import metrics
from atende.observability.api import router as operations_router
from atende.observability.events_api import router as events_router
from atende.observability.logging import configure as configure_logging
from atende.observability.sentry import configure as configure_sentry
from atende.pages import SecurityHeaders, mount_docs
from atende.sla.api import router as sla_router
from atende.teams.api import routes as teams_router
from atende.tenancy.api import router as tenancy_router
from atende.webhooks.api import router as webhooks_router

log = structlog.get_logger(__name__)


class BodyTooLarge(HTTPException):
    """Raised while reading a body past the limit; an ``HTTPException`` so that FastAPI's
    body parsing passes it through instead of turning it into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than {limit} bytes")


# SQLSTATEs worth a retry: connection exceptions, transaction rollbacks (serialization,
# deadlock), lock not available, query canceled, admin or crash shutdown, cannot connect now
RETRYABLE_SQLSTATES = ("08", "40", "55P03", "57014", "57P01", "57P02", "57P03")

SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class RequestContext:
    """Request id, log context, body size limit and HTTP metrics, for every request.
    ``larger_bodies``: paths whose bodies may be larger (file uploads: the media limit), each
    a path or a pattern it matches whole (a route with an id in it)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        larger_bodies: Mapping[str | re.Pattern[str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.larger_bodies = {k: v for k, v in (larger_bodies or {}).items() if isinstance(k, str)}
        self.larger_patterns = [(k, v) for k, v in (larger_bodies or {}).items() if isinstance(k, re.Pattern)]

    def limit(self, path: str) -> int:
        found = self.larger_bodies.get(path)
        if found is None:
            found = next((v for k, v in self.larger_patterns if k.fullmatch(path)), self.max_body)
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = _request_id(headers.get(b"x-request-id", b""))
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        received = 0
        limit = self.limit(scope["path"])

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            length = headers.get(b"content-length", b"")
            if length.isdigit() and int(length) > limit:
                raise BodyTooLarge(limit)
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not status["sent"]:
                if scope["path"].startswith(DASHBOARD_PREFIX):
                    # a person's form or file: a page in their language saying so, not JSON
                    await too_large_page(Request(scope), limit)(scope, receive, tracking_send)
                else:
                    await self._too_large(tracking_send, limit)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope.get("method", "")
            seconds = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels(method, route, str(status["code"])).inc()
            metrics.HTTP_LATENCY.labels(method, route).observe(seconds)
            log.info(
                "http.request", method=method, route=route, status=status["code"], ms=round(seconds * 1000, 1)
            )

    async def _too_large(self, send: Send, limit: int) -> None:
        body = json.dumps({"detail": BodyTooLarge(limit).detail, "code": HTTP_ERROR_CODES[413]}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _report_worker_exit(task: asyncio.Task[None]) -> None:
    # the in-process worker ends only at shutdown; anything else means jobs stop running here
    if not task.cancelled() and task.exception() is not None:
        log.error("worker.crashed", exc_info=task.exception())


def _request_id(incoming: bytes) -> str:
    """The caller's id when it is a plain token (it goes into logs and headers), else a new one."""
    text = incoming.decode("latin-1")
    return text if SAFE_REQUEST_ID.fullmatch(text) else uuid.uuid4().hex


def _tags(routers: list[APIRouter]) -> list[str]:
    """The tags of the routers' documented routes, in order of first use (routers a router
    includes are FastAPI's ``_IncludedRouter`` entries, with the router as ``original_router``)."""
    tags: dict[str, None] = {}
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                tags.update((str(tag), None) for tag in route.tags)
            elif isinstance(included := getattr(route, "original_router", None), APIRouter):
                tags.update((tag, None) for tag in _tags([included]))
    return list(tags)


def _error(status: int, code: str, detail: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


def _http_error_detail(request: Request, exc: HTTPException) -> str:
    """The framework's terse messages, made to say what was wrong."""
    if exc.status_code == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        return f"there is no {request.url.path}; the API is described at /docs"
    if exc.status_code == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    if isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI raises it ``from`` the decode error
        return "the request body is not valid UTF-8; send JSON encoded as UTF-8"
    return str(exc.detail)


def create_app(
    settings: Settings | None = None,
    *,
    on_ready: Callable[[Any], None] | None = None,
    embedded: EmbeddedDatabase | None = None,
    interactive: bool = False,
) -> FastAPI:
    """The application; ``on_ready`` is called once started (with the demo info, if any).
    ``embedded``: the embedded PostgreSQL the caller started for it (and stops);
    ``interactive``: a person watches its log (``atende demo``), see ``json_lines``."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json, interactive=interactive)
    configure_sentry(settings, process="serve")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            runtime = await stack.enter_async_context(open_runtime(settings, embedded=embedded))
            app.state.runtime = runtime
            if settings.demo:
                from atende.demo import seed

                info = await seed(runtime)
                app.state.demo = info
            worker: asyncio.Task[None] | None = None
            if settings.run_worker:
                worker = asyncio.create_task(run_worker(runtime, name="atende-serve"))
                worker.add_done_callback(_report_worker_exit)
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
        docs_url=None,  # mount_docs serves /docs and /redoc, each with its security policy
        redoc_url=None,
    )
    mount_docs(app)

    @app.exception_handler(AtendeError)
    async def domain_error(_request: Request, exc: AtendeError) -> JSONResponse:
        body: dict[str, Any] = {"detail": exc.message, "code": exc.code}
        if exc.field is not None:
            body["field"] = exc.field
        headers = None
        if isinstance(exc, RateLimited):
            body["retry_after"] = exc.retry_after
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _error(422, "invalid_input", errors)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, _http_error_detail(request, exc), exc.headers)

    @app.exception_handler(DataError)
    async def unstorable_value(_request: Request, exc: DataError) -> JSONResponse:
        # SQLSTATE class 22: a value PostgreSQL cannot hold (a NUL byte, \u0000 in JSON); the
        # transaction was rolled back, so nothing was stored
        diag = getattr(exc.orig, "diag", None)
        reasons = [diag.message_primary, diag.message_detail] if diag and diag.message_primary else []
        reason = "; ".join(r for r in reasons if r) or str(exc.orig).splitlines()[0]
        log.info("request.unstorable_value", reason=reason)
        return _error(422, "invalid_input", f"a value cannot be stored: {reason}")

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # a lost connection (the pool renews itself) or a transaction PostgreSQL asks to retry
        # (serialization failure, deadlock, lock or statement timeout, shutting down): 503;
        # anything else (disk full, a limit exceeded) will not pass on retry: a 500
        diag = getattr(exc.orig, "diag", None)
        sqlstate = str(getattr(diag, "sqlstate", None) or "")
        # no SQLSTATE: the server was never reached (refused, reset): unavailable too
        if sqlstate and not (exc.connection_invalidated or sqlstate.startswith(RETRYABLE_SQLSTATES)):
            return await unexpected(request, exc)
        log.warning(
            "request.database_unavailable",
            error=str(exc.orig).splitlines()[0] if exc.orig else "",
            sqlstate=sqlstate or None,
            detail=getattr(diag, "message_detail", None),
        )
        return _error(
            503, "database_unavailable", "the database is unavailable; retry shortly", {"Retry-After": "1"}
        )

    @app.exception_handler(PoolTimeout)
    async def database_busy(_request: Request, _exc: PoolTimeout) -> JSONResponse:
        log.warning("request.database_busy")
        return _error(
            503, "database_busy", "every database connection is busy; retry shortly", {"Retry-After": "1"}
        )

    @app.exception_handler(UnicodeEncodeError)
    async def not_unicode(_request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        # JSON may escape lone UTF-16 surrogates (\ud800) that no database text can hold
        return _error(422, "invalid_input", f"a value is not valid Unicode text: {exc.reason}")

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("request.failed", exc_info=exc)
        # this answer is sent from outside RequestContext and SecurityHeaders, which add these
        # headers to all others
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        headers = {"X-Content-Type-Options": "nosniff"}
        if request_id:
            headers["X-Request-Id"] = request_id
        return _error(
            500, "internal_error", "internal error; the request id is in the X-Request-Id header", headers
        )

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        # the demo page exists in demo mode only
        return RedirectResponse("/demo" if settings.demo else "/docs")

    routers = [
        operations_router,
        tenancy_router,
        teams_router,
        conversations_router,
        ratings_router,
        engine_router,
        knowledge_router,
        media_router,
        webhooks_router,
        feedback_router,
        jobs_router,
        events_router,
        channel_accounts_router,
        audit_router,
        sla_router,
        dashboard_router,
    ]
    # the channels registered in atende.bootstrap.CHANNELS
    channel_routers = [r for c in channels.channels() if (r := c.router()) is not None]
    # A request is matched against the routes in the order they were included: the channels'
    # go first (the API channel's first), as POST /v1/messages (intake, the busiest route) was
    # tried last of ~60, a sixth of its CPU; no two routes share a path. /docs keeps its
    # groups in reading order.
    for router in channel_routers + routers:
        app.include_router(router)
    app.openapi_tags = [{"name": tag} for tag in _tags(routers + channel_routers)]
    for channel in channels.channels():
        for middleware in channel.middleware():
            app.add_middleware(middleware)
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        # an uploaded file may be as large as the media store takes (it counts the bytes too)
        # (the conversation page's reply, with its file and text)
        larger_bodies={
            UPLOAD_PATH: max(settings.media_max_bytes, settings.max_body_bytes),
            REPLY_PATH: settings.media_max_bytes + settings.max_body_bytes,
            # the knowledge base's upload form, with several documents at once
            knowledge_pages.UPLOAD_PATH: knowledge_pages.MAX_FILES * settings.max_document_bytes
            + settings.max_body_bytes,
            # a channel's webhooks that post whole messages with their files (e-mail providers)
            **{
                re.compile(re.escape(prefix) + ".*"): max(limit, settings.max_body_bytes)
                for channel in channels.channels()
                for prefix, limit in channel.large_bodies.items()
            },
        },
    )
    # outermost: RequestContext's own answers (a 413 page or JSON) get the headers too
    app.add_middleware(SecurityHeaders)
    return app
