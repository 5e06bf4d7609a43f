"""message_lexeme_stats counts customers, not messages: ``messages`` becomes ``contacts``

Retrieval weighs a question's terms by how many of the company's recent customers wrote them
(``knowledge.message_terms``). Counting messages let one anonymous web chat visitor repeating
a word lower its weight for everyone (210 messages took "garantia" from 1.07 to the floor);
now each contact has one vote per term. The statistics counted under the old rule are
deleted: until the hourly job counts again (it does so at once for a company with any
customer message, since nothing is counted), every term weighs 1, as for a new company.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM message_lexeme_stats")
    op.alter_column("message_lexeme_stats", "messages", new_column_name="contacts")


def downgrade() -> None:
    op.execute("DELETE FROM message_lexeme_stats")
    op.alter_column("message_lexeme_stats", "contacts", new_column_name="messages")
