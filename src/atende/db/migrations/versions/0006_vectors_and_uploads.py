"""Dense retrieval (chunk_vectors, pgvector HNSW) and asynchronous indexing (document_uploads)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25

``chunk_vectors`` holds one embedding per chunk with the model that made it and its
dimension (``vector`` without a fixed size: a company may use its own embeddings endpoint);
the HNSW index is partial, over the offline model's 384 dimensions. ``document_uploads``
keeps a submitted document version's bytes until the indexing job has read them.
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import VECTOR
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "chunk_vectors",
        sa.Column("chunk_id", sa.UUID(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("dim", sa.SmallInteger(), nullable=False),
        sa.Column("embedding", VECTOR(), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["chunks.id"], name=op.f("fk_chunk_vectors_chunk_id_chunks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_chunk_vectors_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chunk_id", name=op.f("pk_chunk_vectors")),
    )
    op.create_index("ix_chunk_vectors_company_model", "chunk_vectors", ["company_id", "model"])
    op.execute(
        "CREATE INDEX ix_chunk_vectors_hnsw_384 ON chunk_vectors"
        " USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dim = 384"
    )
    op.create_table(
        "document_uploads",
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("data", postgresql.BYTEA(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("language", sa.String(length=5), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_document_uploads_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_uploads_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_document_uploads")),
    )
    op.create_index(op.f("ix_document_uploads_company_id"), "document_uploads", ["company_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_document_uploads_company_id"), table_name="document_uploads")
    op.drop_table("document_uploads")
    op.execute("DROP INDEX IF EXISTS ix_chunk_vectors_hnsw_384")
    op.drop_index("ix_chunk_vectors_company_model", table_name="chunk_vectors")
    op.drop_table("chunk_vectors")
