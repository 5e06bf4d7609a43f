"""Every lexeme of each document, one row per document: document_lexemes

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07

The learned re-ranker's ``document_coverage`` feature asks which of the question's terms a
candidate's whole document holds. It read every chunk of the candidates' documents for it
(their ``tsv``): 1,000-1,350 buffers and about 10 ms of each re-ranking, several times in a
long e-mail's turn (``benchmarks/README.md``). The union of a document's chunks' lexemes is
now kept in one row, written with its chunks' postings (``knowledge.service``), so the
statement reads one row per candidate document. The row names the document's first chunk
(``first_chunk``): chunks are new rows at every re-index, so a row written for other chunks
(by a release before this one, during an upgrade or a rollback) is seen to be stale, and the
statement then reads that document's chunks, as before. Backfilled from the chunks' tsvectors.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_lexemes",
        sa.Column("document_id", sa.UUID(), nullable=False),
        sa.Column("first_chunk", sa.UUID(), nullable=False),
        sa.Column("lexemes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_lexemes_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_document_lexemes_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "document_id", name=op.f("pk_document_lexemes")),
    )
    op.create_index(op.f("ix_document_lexemes_document_id"), "document_lexemes", ["document_id"])
    op.execute(
        "INSERT INTO document_lexemes (company_id, document_id, first_chunk, lexemes)"
        " SELECT c.company_id, c.document_id,"
        " (array_agg(c.id ORDER BY c.ordinal, c.id))[1],"
        " ARRAY(SELECT DISTINCT l FROM chunks k CROSS JOIN LATERAL unnest(tsvector_to_array(k.tsv)) AS l"
        " WHERE k.company_id = c.company_id AND k.document_id = c.document_id ORDER BY l)"
        " FROM chunks c GROUP BY c.company_id, c.document_id"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_document_lexemes_document_id"), table_name="document_lexemes")
    op.drop_table("document_lexemes")
