"""Apply Alembic migrations, once, even when several processes start together.

The upgrade runs in one transaction that first takes a PostgreSQL advisory lock: a second
process waits for the first, then finds the schema at head and does nothing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

from atende.db.url import sqlalchemy_url

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 7_270_301  # arbitrary, constant: the advisory lock key of migrations


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def _revisions() -> tuple[str | None, frozenset[str]]:
    """This code's newest migration and every migration it ships (read once: the files do
    not change at run time)."""
    scripts = ScriptDirectory.from_config(_config())
    return scripts.get_current_head(), frozenset(script.revision for script in scripts.walk_revisions())


def head_revision() -> str | None:
    """The newest migration this code ships."""
    return _revisions()[0]


def is_known(revision: str | None) -> bool:
    """Whether ``revision`` is one of this code's migrations (``None``: an empty database)."""
    return revision is None or revision in _revisions()[1]


def _engine(url: str) -> Engine:
    # one connection, closed after use; an error's text never quotes a statement's values
    # (a data migration's may be customers' messages)
    return create_engine(sqlalchemy_url(url), poolclass=NullPool, hide_parameters=True)


def upgrade(url: str) -> str | None:
    """Bring the database at ``url`` to the newest migration (idempotent) and return the
    revision it is at. A database at a migration this code does not know was migrated by a
    newer release: it is left alone (a rollback runs the previous release on the newer,
    additive schema; see docs/DEPLOYMENT.md, "Upgrades and rollbacks")."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            current = current_revision(conn)
            if not is_known(current):
                log.warning("db.schema_newer_than_code", revision=current, head=head_revision())
                return current
            command.upgrade(_config(conn), "head")
            return head_revision()
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` back to ``revision`` (``"base"``: empty), under the same lock."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            command.downgrade(_config(conn), revision)
    finally:
        engine.dispose()


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()
