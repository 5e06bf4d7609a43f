"""BM25 postings: chunk_terms and chunks.token_count

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Retrieval ranks chunks by BM25 (term frequency, inverse document frequency from
``lexeme_stats``, length normalisation) by reading the postings of the question's terms;
``ts_rank_cd`` has no inverse document frequency and ranked the right chunk first far less
often (``docs/EVALUATION.md``). Backfilled from the chunks' tsvectors.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chunks", sa.Column("token_count", sa.Integer(), server_default="0", nullable=False))
    op.drop_index("ix_chunks_company_id", table_name="chunks")
    op.create_index("ix_chunks_company_tokens", "chunks", ["company_id", "token_count"])
    op.create_table(
        "chunk_terms",
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column("chunk_id", sa.UUID(), nullable=False),
        sa.Column("tf", sa.SmallInteger(), nullable=False),
        sa.Column("dl", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["chunk_id"], ["chunks.id"], name=op.f("fk_chunk_terms_chunk_id_chunks"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_chunk_terms_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("company_id", "lexeme", "chunk_id", name=op.f("pk_chunk_terms")),
    )
    op.create_index(op.f("ix_chunk_terms_chunk_id"), "chunk_terms", ["chunk_id"])
    op.execute(
        "UPDATE chunks SET token_count = (SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)"
        " FROM unnest(chunks.tsv) u)"
    )
    op.execute(
        "INSERT INTO chunk_terms (company_id, lexeme, chunk_id, tf, dl)"
        " SELECT c.company_id, u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1), c.token_count"
        " FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) u"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_chunk_terms_chunk_id"), table_name="chunk_terms")
    op.drop_table("chunk_terms")
    op.drop_index("ix_chunks_company_tokens", table_name="chunks")
    op.create_index("ix_chunks_company_id", "chunks", ["company_id"])
    op.drop_column("chunks", "token_count")
