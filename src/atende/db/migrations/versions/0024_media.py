"""Media: the ``media`` table describing each company's stored files

One row per file kept by the media store (WhatsApp media, e-mail attachments, uploads): its
type, size, the name it came with, its SHA-256 and the key its bytes are kept under. Rows
belong to one company like every other table (``company_id``, deleted with the company; the
bytes of a deleted company's files are left in the store).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media",
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name="fk_media_company_id_companies", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_media"),
    )
    op.create_index("ix_media_company_id", "media", ["company_id"])


def downgrade() -> None:
    op.drop_index("ix_media_company_id", table_name="media")
    op.drop_table("media")
