"""Knowledge base: document metadata as columns, and ``document_versions``

A document's ``tags``, ``product``, ``audience``, ``valid_from`` and ``valid_until`` were keys
of its ``meta`` JSON; they become columns (``tags`` a ``text[]`` with a GIN index, the
validity instants ``timestamptz``) so that retrieval can filter on them inside its SQL, and
the expiring documents are found by an index. Values already stored move over (a date
``valid_from`` starts at midnight UTC, a date ``valid_until`` ends at the last instant of
its day); ``meta`` keeps any other key. The downgrade moves them back (as dates).

``document_versions`` remembers every version a document was sent in: its number, hash,
author and, for an article written in the dashboard, its Markdown; the newest keeps its bytes
for re-indexing. Existing documents get their indexed version as version 1 (without bytes:
they were not kept).

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_KEYS = "ARRAY['tags', 'product', 'audience', 'valid_from', 'valid_until']"


def upgrade() -> None:
    op.add_column(
        "documents", sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False)
    )
    op.add_column("documents", sa.Column("product", sa.String(length=200), nullable=True))
    op.add_column("documents", sa.Column("audience", sa.String(length=100), nullable=True))
    op.add_column("documents", sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True))
    op.add_column("documents", sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        f"""
        UPDATE documents SET
            tags = coalesce(
                ARRAY(SELECT jsonb_array_elements_text(CASE jsonb_typeof(meta->'tags')
                      WHEN 'array' THEN meta->'tags' ELSE '[]'::jsonb END)), '{{}}'),
            product = left(meta->>'product', 200),
            audience = left(meta->>'audience', 100),
            valid_from = (meta->>'valid_from')::date::timestamp AT TIME ZONE 'UTC',
            valid_until = ((meta->>'valid_until')::date + 1)::timestamp AT TIME ZONE 'UTC'
                          - interval '1 microsecond',
            meta = meta - {_KEYS}
        WHERE meta ?| {_KEYS}
        """
    )
    op.create_index("ix_documents_tags", "documents", ["tags"], postgresql_using="gin")
    op.create_index("ix_documents_company_valid_until", "documents", ["company_id", "valid_until"])
    op.create_table(
        "document_versions",
        sa.Column("document_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("author_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("markdown", sa.Text(), nullable=True),
        sa.Column("data", postgresql.BYTEA(), nullable=True),
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name="fk_document_versions_author_id_users", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name="fk_document_versions_company_id_companies",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name="fk_document_versions_document_id_documents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_document_versions"),
        sa.UniqueConstraint("document_id", "version", name="uq_document_versions_document_id"),
    )
    op.create_index("ix_document_versions_company_id", "document_versions", ["company_id"])
    op.execute(
        """
        INSERT INTO document_versions (id, company_id, document_id, version, content_hash, content_type,
                                       title, created_at)
        SELECT gen_random_uuid(), company_id, id, 1, content_hash, content_type, title, updated_at
          FROM documents WHERE content_hash <> ''
        """
    )


def downgrade() -> None:
    op.drop_index("ix_document_versions_company_id", table_name="document_versions")
    op.drop_table("document_versions")
    op.execute(
        """
        UPDATE documents SET meta = meta || jsonb_strip_nulls(jsonb_build_object(
            'tags', CASE WHEN cardinality(tags) > 0 THEN to_jsonb(tags) END,
            'product', product,
            'audience', audience,
            'valid_from', to_char(valid_from AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
            'valid_until', to_char(valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD')))
        """
    )
    op.drop_index("ix_documents_company_valid_until", table_name="documents")
    op.drop_index("ix_documents_tags", table_name="documents", postgresql_using="gin")
    op.drop_column("documents", "valid_until")
    op.drop_column("documents", "valid_from")
    op.drop_column("documents", "audience")
    op.drop_column("documents", "product")
    op.drop_column("documents", "tags")
