"""message_lexeme_stats: how often customers' messages use each lexeme

Retrieval weighs a question's BM25 terms by how rare they are among the company's recent
customer messages (``knowledge.message_terms``): on the support set, the words every
e-mail uses ranked the wrong answers first. A job fills the table; an empty one weighs
every term 1, as before. A partial index finds a company's latest customer messages
without reading the others (built in the migration's transaction: on a large ``messages``
table, run this upgrade in a quiet hour).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_lexeme_stats",
        sa.Column("lexeme", sa.Text(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("newest_seq", sa.BigInteger(), nullable=True),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_message_lexeme_stats_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "lexeme", name=op.f("pk_message_lexeme_stats")),
    )
    op.create_index(
        "ix_messages_company_customer_seq",
        "messages",
        ["company_id", "seq"],
        postgresql_where=sa.text("author = 'customer'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_company_customer_seq", table_name="messages")
    op.drop_table("message_lexeme_stats")
