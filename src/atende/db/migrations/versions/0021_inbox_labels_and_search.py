"""The inbox: labels, conversations' indexes per view, and text search over messages

``labels`` is a company's own set of labels (a name unique whatever its case, an optional
colour); ``conversation_labels`` puts them on conversations (indexed by company and label for
the label filter; deleting a label or a conversation deletes its rows).

The inbox lists a company's conversations most recent activity first, one keyset page at a
time, per view. Each view reads an index in that order, company first: open conversations
(every state but ``resolved``), unassigned ones (waiting for a person, nobody assigned), by
assignee, by team; ``ix_conversations_company_updated`` already serves "all".

Text search: a GIN index of ``atende_message_search_v1(company_id, text)``, each message's
words under the ``simple`` configuration (no stemming: customers mix Portuguese, English and
Spanish, and a message's language is often unknown; a search term matches as a prefix
instead, so "pedido" finds "pedidos"), lower-cased and accents folded (the embedded server
ships neither ``unaccent`` nor ``pg_trgm``), plus one lexeme naming the company
(``atendecompany`` and its id's hex digits). A search ANDs that lexeme with its terms
(``atende_message_query_v1``), so the index itself answers for one company: a word common in
other companies' messages costs this one little (GIN skips through the longer list).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# the accented letters of Portuguese and Spanish and their plain forms: what
# ``knowledge.text.fold`` does for these languages, in SQL an index can use. Only these:
# ``translate`` compares each character with each of them, and every message goes through it
ACCENTED = "áàâãéêíóôõúüçñ"
PLAIN = "aaaaeeiooouucn"

# The functions call nothing of the public schema: PostgreSQL builds and maintains an index
# with a search path of pg_catalog alone, where a function of ours would not be found. The
# company's lexeme is parsed with the text (one parse: adding a second tsvector to the first
# cost every message a third more)
COMPANY_LEXEME = "'atendecompany' || replace(p_company::text, '-', '')"


def folded(argument: str) -> str:
    return f"translate(lower({argument}), '{ACCENTED}', '{PLAIN}')"


FUNCTIONS = f"""
CREATE FUNCTION atende_message_search_v1(p_company uuid, p_text text) RETURNS tsvector
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT to_tsvector('simple'::regconfig, {COMPANY_LEXEME} || ' ' || {folded("p_text")}) $$;

-- the words of a search as the index holds them
CREATE FUNCTION atende_search_words_v1(p_search text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT tsvector_to_array(to_tsvector('simple'::regconfig, {folded("p_search")})) $$;

-- the words of a search, each a prefix from three letters on, all of them required, and the
-- company's lexeme; NULL (matches nothing) when the search has no word
CREATE FUNCTION atende_message_query_v1(p_company uuid, p_search text) RETURNS tsquery
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CAST(string_agg(quoted || CASE WHEN length(lexeme) >= 3 THEN ':*' ELSE '' END, ' & ')
                || ' & ' || {COMPANY_LEXEME} AS tsquery)
      FROM unnest(tsvector_to_array(to_tsvector('simple'::regconfig, {folded("p_search")})))
           AS t(lexeme)
     CROSS JOIN LATERAL (
           SELECT '''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''' AS quoted
     ) AS q
$$;
"""

CONVERSATION_INDEXES = (
    ("ix_conversations_open_updated", ["company_id", "updated_at", "id"], "state <> 'resolved'"),
    (
        "ix_conversations_unassigned_updated",
        ["company_id", "updated_at", "id"],
        "state = 'waiting_human' AND assignee_id IS NULL",
    ),
    (
        "ix_conversations_assignee_updated",
        ["company_id", "assignee_id", "updated_at", "id"],
        "assignee_id IS NOT NULL",
    ),
    ("ix_conversations_team_updated", ["company_id", "team_id", "updated_at", "id"], "team_id IS NOT NULL"),
)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_labels_company_id_companies"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
    )
    op.create_index("uq_labels_company_name", "labels", ["company_id", sa.text("lower(name)")], unique=True)
    op.create_table(
        "conversation_labels",
        sa.Column("conversation_id", sa.UUID(), nullable=False),
        sa.Column("label_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("company_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_conversation_labels_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_labels_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"], ["labels.id"], name=op.f("fk_conversation_labels_label_id_labels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("conversation_id", "label_id", name=op.f("pk_conversation_labels")),
    )
    op.create_index(
        "ix_conversation_labels_company_label",
        "conversation_labels",
        ["company_id", "label_id", "conversation_id"],
    )
    for name, columns, where in CONVERSATION_INDEXES:
        op.create_index(name, "conversations", columns, postgresql_where=sa.text(where))
    op.execute(FUNCTIONS)
    op.create_index(
        "ix_messages_search",
        "messages",
        [sa.text("atende_message_search_v1(company_id, text)")],
        postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_index("ix_messages_search", table_name="messages")
    for function in (
        "atende_message_query_v1(uuid, text)",
        "atende_search_words_v1(text)",
        "atende_message_search_v1(uuid, text)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    for name, _columns, _where in reversed(CONVERSATION_INDEXES):
        op.drop_index(name, table_name="conversations")
    op.drop_index("ix_conversation_labels_company_label", table_name="conversation_labels")
    op.drop_table("conversation_labels")
    op.drop_index("uq_labels_company_name", table_name="labels")
    op.drop_table("labels")
