"""Webhook endpoints sign the Standard Webhooks way, and their secrets rotate with a grace period

Each endpoint gets a ``signature_scheme``: ``standard`` (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``, the default of endpoints registered from now
on) or ``atende`` (the ``X-Atende-Signature`` of before). The endpoints that exist now keep
``atende``, so their receivers go on verifying as they do, until an admin rotates their
secret (``POST /v1/webhooks/{id}/rotate-secret``), which moves them to ``standard``.

A rotation keeps the replaced secret (encrypted, as the current one) and the scheme it signed
with, until ``previous_secret_expires_at``: until then deliveries are signed with both.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # the endpoints registered until now keep the signature their receivers check ...
    op.add_column(
        "webhook_endpoints",
        sa.Column("signature_scheme", sa.String(length=20), server_default="atende", nullable=False),
    )
    # ... and new ones sign the standard way
    op.alter_column("webhook_endpoints", "signature_scheme", server_default="standard")
    op.add_column("webhook_endpoints", sa.Column("previous_secret_encrypted", sa.Text(), nullable=True))
    op.add_column(
        "webhook_endpoints", sa.Column("previous_signature_scheme", sa.String(length=20), nullable=True)
    )
    op.add_column(
        "webhook_endpoints",
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    # atende before 0013 signs every endpoint with X-Atende-Signature, keyed with the text of
    # its current secret: receivers of endpoints moved to the standard scheme stop verifying
    op.drop_column("webhook_endpoints", "previous_secret_expires_at")
    op.drop_column("webhook_endpoints", "previous_signature_scheme")
    op.drop_column("webhook_endpoints", "previous_secret_encrypted")
    op.drop_column("webhook_endpoints", "signature_scheme")
