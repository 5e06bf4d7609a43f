"""Error and performance reports to Sentry, when ``ATENDE_SENTRY_DSN`` (or ``SENTRY_DSN``) is set.

``configure`` initialises the real ``sentry-sdk`` once per process: ``atende serve`` (the
FastAPI/Starlette integration: unhandled request errors and request transactions) and
``atende worker``; both run jobs through ``report_job``, a procrastinate worker middleware
that reports a job's failure and times the job as a transaction. Unset DSN: nothing is
initialised and nothing leaves the process. A DSN the SDK refuses is logged
(``sentry.disabled``) and atende runs on without Sentry: reporting never stops a start.

What is sent:
- Unhandled exceptions of requests (a 500) and of jobs. Every failed job attempt is
  reported: one that procrastinate will retry at level ``warning`` with tag
  ``job_final:false``, the last one (the job becomes a dead letter) at level ``error`` with
  ``job_final:true`` (alert on that). Aborted jobs are not errors. Logs are breadcrumbs only,
  never events: the structlog pipeline turns a traceback into text before the standard
  library sees it, so a logged error would arrive as a second, stackless copy.
- Transactions of requests and jobs, sampled at ``ATENDE_SENTRY_TRACES_SAMPLE_RATE`` and kept
  only when slower than ``ATENDE_SENTRY_SLOW_TRANSACTION_SECONDS``; server-sent event streams
  (open for minutes by design) are never traced. Incoming ``sentry-trace`` headers do not
  decide sampling, and no trace header is added to outbound calls (they go to companies'
  and customers' servers).
- Tags: ``release``, ``environment``, ``process`` (serve or worker) and, where known,
  ``company_id``, ``conversation_id``, ``message_id``, ``document_id``, ``request_id``: a
  request's come from the ids bound to its logs (the API key's company, the request id)
  and from its route (``/v1/conversations/{conversation_id}``), a job's from its arguments.

What is not (PII): ``send_default_pii=False`` (no users, IP addresses, cookies, auth
headers), no request bodies, no local variables of stack frames; an ``EventScrubber``
with a longer denylist (message ``text``/``body``/``content``, e-mail, phone, widget and
visitor tokens...) and, in ``before_send``, e-mail addresses, phone numbers and tokens
redacted from every remaining string a person could have typed (exception messages, URLs,
query strings, breadcrumbs, span descriptions). A failed SQL statement's values (message
texts, replies) are never in an error's text: atende's engines hide them
(``hide_parameters``), and a ``[parameters: …]`` line from any other is dropped too.
Breadcrumbs come from atende's own logs (written with ids, never texts) and SQL statements
(without their values) only: other libraries' log lines may quote arguments
(procrastinate's quote every job's). A message text quoted inside an exception message
cannot be told from other text: write exception messages without it.

Delivery never slows a request or a job: the SDK sends from a background thread through a
bounded queue (100 envelopes; more are dropped), each send with a 30 s total timeout
(urllib3), and waits at most ``SHUTDOWN_SECONDS`` at exit.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit

import procrastinate
import sentry_sdk
import structlog
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.tracing import TransactionSource
from sentry_sdk.utils import event_from_exception

from atende import __version__
from atende.config import Settings
from atende.observability.logging import redact

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

log = structlog.get_logger(__name__)

FILTERED = "[Filtered]"
SHUTDOWN_SECONDS = 2.0
BREADCRUMB_CHARS = 512
# ids worth a tag: bound to a request's logs, in a route, or among a job's arguments
IDS = ("company_id", "conversation_id", "message_id", "document_id", "request_id")
# keys whose values are dropped wherever the scrubber meets them: customer and agent text,
# contact details, credentials (Sentry's defaults) and atende's own tokens
DENYLIST = [
    *DEFAULT_DENYLIST,
    "text",
    "body",
    "content",
    "message_text",
    "email",
    "phone",
    "phone_number",
    "cookies",
    "x-api-key",
    "api-key",
    "x-visitor-token",
    "x_visitor_token",
    "visitor_token",
    "widget_key",
    "secret_key",
    "dsn",
    "db.params",
]
_DENIED = {key.lower() for key in DENYLIST}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
# the values SQLAlchemy quotes after a failed statement (``[parameters: ('Meu pedido...',)]``,
# one line): atende's engines hide them, this catches any other engine's
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")


def configure(settings: Settings, *, process: str) -> bool:
    """Initialise Sentry for this process when a DSN is set; ``True`` if it now reports."""
    dsn = settings.sentry_dsn.get_secret_value().strip() if settings.sentry_dsn else ""
    if not dsn:
        return False
    release = settings.release or f"atende@{__version__}"
    try:
        with warnings.catch_warnings():
            # sentry-sdk 2.75 deprecates send_default_pii for ``data_collection``, which
            # switches the EventScrubber off; until that settles, the flag and the scrubber stay
            warnings.filterwarnings("ignore", "The send_default_pii option", DeprecationWarning)
            sentry_sdk.init(**_options(settings, dsn=dsn, release=release))
    except Exception as exc:  # a bad DSN (BadDsn) or anything else: run without Sentry
        log.error(
            "sentry.disabled",
            reason=redact(f"{type(exc).__name__}: {exc}"),
            hint="ATENDE_SENTRY_DSN must look like https://<public key>@<host>/<project id>; "
            "atende runs without Sentry until it is fixed",
        )
        return False
    sentry_sdk.get_global_scope().set_tag("process", process)
    log.info("sentry.enabled", environment=settings.environment, release=release, process=process)
    return True


def _options(settings: Settings, *, dsn: str, release: str) -> dict[str, Any]:
    return {
        "dsn": dsn,
        "release": release,
        "environment": settings.environment,
        "send_default_pii": False,
        "include_local_variables": False,
        "max_request_body_size": "never",
        "event_scrubber": EventScrubber(denylist=list(DENYLIST), recursive=True),
        "before_send": before_send,
        "before_send_transaction": keep_slow(settings.sentry_slow_transaction_seconds),
        "traces_sampler": sampler(settings.sentry_traces_sample_rate),
        "trace_propagation_targets": [],
        # only what atende wires: the auto-enabled OpenAI integration, for one, would report
        # an LLM failure the answerer already handles (it falls back to the extractive one)
        "auto_enabling_integrations": False,
        "integrations": [
            StarletteIntegration(transaction_style="url"),
            FastApiIntegration(transaction_style="url"),
            SqlalchemyIntegration(),  # queries as spans and breadcrumbs (statements, no values)
            LoggingIntegration(level=logging.INFO, event_level=None),
        ],
        "shutdown_timeout": SHUTDOWN_SECONDS,
    }


def sampler(rate: float) -> Callable[[dict[str, Any]], float]:
    """The traces sampler: ``rate`` for everything but event streams (long by design). A
    caller's sampling decision (``sentry-trace`` header) is ignored: clients are public."""

    def sample(context: dict[str, Any]) -> float:
        asgi_scope = context.get("asgi_scope") or {}
        for name, value in asgi_scope.get("headers") or ():
            if name == b"accept" and b"text/event-stream" in value:
                return 0.0
        return rate

    return sample


def before_send(event: Event, hint: Hint) -> Event | None:
    """Tag and scrub an error event (see the module's docstring)."""
    data = cast(dict[str, Any], event)
    _tag_ids(data)
    _scrub(data)
    return event


def keep_slow(seconds: float) -> Callable[[Event, Hint], Event | None]:
    """``before_send_transaction``: drop transactions faster than ``seconds``; tag and
    scrub the others."""

    def keep(event: Event, hint: Hint) -> Event | None:
        data = cast(dict[str, Any], event)
        duration = _duration(data)
        if duration is not None and duration < seconds:
            return None
        _tag_ids(data)
        _scrub(data)
        return event

    return keep


async def report_job(
    call_next: Callable[[], Awaitable[Any]], context: procrastinate.JobContext, worker: Any
) -> Any:
    """Worker middleware: each job runs in its own Sentry scope, tagged with its task and
    the ids among its arguments, timed as a transaction; a failure is reported (see the
    module's docstring for levels) and raised again for procrastinate to retry or bury."""
    if not sentry_sdk.get_client().is_active():
        return await call_next()
    job = context.job
    with sentry_sdk.isolation_scope() as scope:
        scope.set_tag("job_task", job.task_name)
        scope.set_tag("job_attempt", str(job.attempts + 1))
        for key in IDS:
            value = job.task_kwargs.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                scope.set_tag(key, str(value))
        scope.set_context("job", {"id": job.id, "task": job.task_name, "queue": job.queue})
        with sentry_sdk.start_transaction(
            op="queue.process", name=job.task_name, source=TransactionSource.TASK
        ) as transaction:
            try:
                result = await call_next()
            except procrastinate.exceptions.JobAborted:
                transaction.set_status("cancelled")
                raise
            except Exception as exc:
                transaction.set_status("internal_error")
                final = _last_attempt(context, exc)
                scope.set_tag("job_final", "true" if final else "false")
                event, hint = event_from_exception(
                    exc,
                    client_options=sentry_sdk.get_client().options,
                    mechanism={"type": "procrastinate", "handled": False},
                )
                event["level"] = "error" if final else "warning"
                sentry_sdk.capture_event(event, hint=hint)
                raise
            transaction.set_status("ok")
            return result


def _last_attempt(context: procrastinate.JobContext, exc: Exception) -> bool:
    """Whether procrastinate will bury the job instead of retrying it after ``exc``."""
    task = context.app.tasks.get(context.job.task_name)
    return task is None or task.get_retry_exception(exception=exc, job=context.job) is None


def _duration(event: dict[str, Any]) -> float | None:
    def instant(value: Any) -> float | None:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                return None
        return None

    start, end = instant(event.get("start_timestamp")), instant(event.get("timestamp"))
    return end - start if start is not None and end is not None else None


def _tag_ids(event: dict[str, Any]) -> None:
    """Tags for the ids the event does not have yet: those bound to the logs of the request
    (or job) that raised it, and those in its route's path."""
    tags = event.get("tags")
    if not isinstance(tags, dict):
        tags = event["tags"] = {}
    found = {k: v for k, v in structlog.contextvars.get_contextvars().items() if k in IDS}
    request = event.get("request")
    if isinstance(request, dict) and isinstance(event.get("transaction"), str):
        found.update(_route_ids(event["transaction"], urlsplit(str(request.get("url", ""))).path))
    for key, value in found.items():
        if value is not None:
            tags.setdefault(key, str(value))


def _route_ids(template: str, path: str) -> dict[str, str]:
    """The ids among a route's path parameters: ``/v1/conversations/{conversation_id}``
    against ``/v1/conversations/5f0c...`` gives ``{"conversation_id": "5f0c..."}``."""
    names, parts = template.strip("/").split("/"), path.strip("/").split("/")
    if len(names) != len(parts):
        return {}
    return {
        match.group(1): part
        for name, part in zip(names, parts, strict=True)
        if (match := _PARAM.fullmatch(name)) and match.group(1) in IDS
    }


def _scrub(event: dict[str, Any]) -> None:
    """Drop what may hold personal data; redact e-mails, phones and tokens in what is left."""
    event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "env"):
            request.pop(key, None)
        if isinstance(request.get("url"), str):
            request["url"] = redact(request["url"])
        if isinstance(request.get("query_string"), str):
            request["query_string"] = _scrub_query(request["query_string"])
        if isinstance(request.get("headers"), dict):
            request["headers"] = _scrub_value(request["headers"])
    for key in ("message", "logentry", "extra"):
        if key in event:
            event[key] = _scrub_value(event[key])
    for exception in _values(event.get("exception")):
        if isinstance(exception.get("value"), str):
            exception["value"] = _scrub_text(exception["value"])
        stacktrace = exception.get("stacktrace")
        frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
        for frame in frames or ():
            if isinstance(frame, dict):
                frame.pop("vars", None)
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict):
        # other libraries' log lines may quote arguments (procrastinate logs each job's
        # call with its arguments, message text included): only atende's own logs, which
        # are written to carry ids and never text, become breadcrumbs
        breadcrumbs["values"] = [
            crumb
            for crumb in _values(breadcrumbs)
            if crumb.get("type") != "log" or str(crumb.get("category", "")).startswith("atende")
        ]
        for crumb in breadcrumbs["values"]:
            for key in ("message", "data"):
                if key in crumb:
                    crumb[key] = _scrub_value(crumb[key])
            if crumb.get("type") == "log" and isinstance(crumb.get("message"), str):
                # a log line's ids come first; a traceback at its end repeats the event's own
                crumb["message"] = crumb["message"][:BREADCRUMB_CHARS]
    for span in event.get("spans") or ():
        if isinstance(span, dict):
            for key in ("description", "data"):
                if key in span:
                    span[key] = _scrub_value(span[key])


def _values(container: Any) -> list[dict[str, Any]]:
    values = container.get("values") if isinstance(container, dict) else None
    return [v for v in values or () if isinstance(v, dict)]


def _scrub_value(value: Any, key: str = "") -> Any:
    if key.lower() in _DENIED:
        return FILTERED
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    return value


def _scrub_text(text: str) -> str:
    """``text`` without a failed statement's values and with e-mails, phones and tokens redacted."""
    return redact(_SQL_PARAMETERS.sub(f"[parameters: {FILTERED}]", text))


def _scrub_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, FILTERED if k.lower() in _DENIED else redact(v)) for k, v in pairs])
