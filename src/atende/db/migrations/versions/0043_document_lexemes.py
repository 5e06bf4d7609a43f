"""Every lexeme of each document, one row per document: document_lexemes

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-07

The learned re-ranker's ``document_coverage`` feature asks which of the question's terms a
candidate's whole document holds. It read every chunk of the candidates' documents for it
(their ``tsv``): 1,000-1,350 buffers and about 10 ms of each re-ranking, several times in a
long e-mail's turn (``benchmarks/README.md``). The union of a document's chunks' lexemes is
now kept in one row, written with its chunks' postings (``knowledge.service``), so the
statement reads one row per candidate document. Backfilled from the chunks' tsvectors.
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
        "INSERT INTO document_lexemes (company_id, document_id, lexemes)"
        " SELECT c.company_id, c.document_id, array_agg(DISTINCT l.lexeme ORDER BY l.lexeme)"
        " FROM chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.tsv)) AS l(lexeme)"
        " GROUP BY c.company_id, c.document_id"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_document_lexemes_document_id"), table_name="document_lexemes")
    op.drop_table("document_lexemes")
