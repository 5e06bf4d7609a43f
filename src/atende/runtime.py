"""The infrastructure one process holds: settings, database, job queue, live listener.

Built by ``atende.app`` or ``atende.cli`` and handed to request handlers (``app.state``)
and jobs (the worker's context). It imports no domain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from atende.config import Settings
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.jobs.queue import JobQueue

# keys of ``Runtime.extras`` shared between modules
LLM_CIRCUITS = (
    "llm_circuits"  # circuit name -> state ("closed", ...): written by the breakers, read by /health/ready
)
LLM_CLIENTS = "llm_clients"  # OpenAI SDK clients by endpoint and key (LLM and embeddings endpoints)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    jobs: JobQueue
    listener: Listener
    extras: dict[str, Any] = field(default_factory=dict)
    # "now" for business hours and handoff decisions; tests set a fixed instant
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @property
    def secret_key(self) -> str:
        return self.settings.secret_key.get_secret_value()
