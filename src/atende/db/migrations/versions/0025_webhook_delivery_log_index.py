"""The webhook delivery log reads its page from an index: ``(endpoint_id, created_at, id)``

An endpoint's log (``webhooks.service.list_deliveries``: ``GET /app/settings/webhooks/{id}``,
``/v1/webhooks/{id}/deliveries``) is newest first, a page at a time by the keyset
``(created_at, id) < (…)``. With only ``endpoint_id`` indexed PostgreSQL read every delivery of
the table (all companies'), then sorted: ``benchmarks.dashboard`` measured the log of an
endpoint with 50,000 deliveries at 24–29 ms of the query alone and 73 ms (first page) and
107 ms (halfway down) for the page, growing with the table. With this index the page's
deliveries are its first 26 entries, read backwards (0.3 ms), at any depth. It also serves
what the ``endpoint_id`` index served (an endpoint's deletion cascading to its deliveries),
which is dropped: one index fewer to write for every delivery queued.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_webhook_deliveries_endpoint_created", "webhook_deliveries", ["endpoint_id", "created_at", "id"]
    )
    op.drop_index("ix_webhook_deliveries_endpoint_id", table_name="webhook_deliveries")


def downgrade() -> None:
    op.create_index("ix_webhook_deliveries_endpoint_id", "webhook_deliveries", ["endpoint_id"])
    op.drop_index("ix_webhook_deliveries_endpoint_created", table_name="webhook_deliveries")
