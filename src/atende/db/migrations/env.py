"""Alembic environment: runs on the connection handed over by ``atende.db.migrate``."""

from alembic import context

import atende.schema  # noqa: F401  (registers every table on Base.metadata)
from atende.db.base import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    compare_type=True,
    include_schemas=False,
    include_name=lambda name, type_, _parent: not (name or "").startswith("procrastinate"),
)
with context.begin_transaction():
    context.run_migrations()
