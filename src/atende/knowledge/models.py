"""Tables of the knowledge domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    cast,
    column,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BYTEA, JSONB, TSVECTOR, UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin, utcnow


class Document(IdMixin, CompanyOwned, Base):
    """A knowledge-base document. ``status`` is that of its latest submitted version
    (``queued → indexing → embedding → ready | failed``, ``error`` says why; ``embedding``:
    its chunks answer by full text while their vectors are stored); its chunks are those of
    the last version that indexed (``content_hash``), so a re-ingest in progress, or one that
    failed, leaves the previous version answering questions.

    What it is about and for whom (``tags``, ``product``, ``audience``) and when it holds
    (``valid_from``/``valid_until``, either open) are columns, so that retrieval can filter
    on them in its SQL (``tags`` has a GIN index for ``&&``/``@>``); ``meta`` keeps any
    other key/values. An article written in the dashboard is a document too (``source``
    ``article:<slug>``, Markdown), indexed the same way."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("company_id", "source"),
        Index("ix_documents_tags", "tags", postgresql_using="gin"),
        # the expiring and expired documents of a company, from the index
        Index("ix_documents_company_valid_until", "company_id", "valid_until"),
    )

    title: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(1000))
    content_type: Mapped[str] = mapped_column(String(20))  # markdown | html | text | csv | pdf | docx
    language: Mapped[str] = mapped_column(String(5))  # '' until the first version is indexed
    content_hash: Mapped[str] = mapped_column(String(64))  # of the indexed version ('' before)
    status: Mapped[str] = mapped_column(String(20), default="ready")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    product: Mapped[str | None] = mapped_column(String(200), nullable=True)
    audience: Mapped[str | None] = mapped_column(String(100), nullable=True)
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class DocumentVersion(IdMixin, CompanyOwned, Base):
    """One submitted version of a document: its number (1, 2, …), the hash of its bytes,
    who sent it (``None``: an API key, the CLI, or a user since removed) and, for an
    article written in the dashboard, its Markdown, so that it can be edited again. The
    newest version keeps its bytes (``data``, emptied when a newer one arrives): re-indexing
    (after a language change, or on request) reads them."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "version"),)

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(500), nullable=True)
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)  # as given, else detected
    markdown: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[bytes | None] = mapped_column(BYTEA, nullable=True)


class Chunk(IdMixin, CompanyOwned, Base):
    __tablename__ = "chunks"
    __table_args__ = (
        Index("ix_chunks_tsv", "tsv", postgresql_using="gin"),
        # the average chunk length for BM25, read from the index alone
        Index("ix_chunks_company_tokens", "company_id", "token_count"),
    )
    company_index_in_table_args = True

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    ordinal: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(String(1000), default="")
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(5))
    tsv: Mapped[Any] = mapped_column(TSVECTOR)
    # indexed words (positions in ``tsv``): the length BM25 normalises by
    token_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ChunkTerm(CompanyOwned, Base):
    """One lexeme of one chunk and how often it occurs there: the postings that BM25
    ranking reads (``knowledge.retrieval``), a row per distinct lexeme of a chunk."""

    __tablename__ = "chunk_terms"
    # tf and dl ride in the key's index: BM25 reads postings with an index-only scan
    __table_args__ = (
        PrimaryKeyConstraint("company_id", "lexeme", "chunk_id", postgresql_include=["tf", "dl"]),
    )
    company_index_in_table_args = True

    lexeme: Mapped[str] = mapped_column(Text)
    chunk_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chunks.id", ondelete="CASCADE"), index=True
    )
    tf: Mapped[int] = mapped_column(SmallInteger)  # occurrences of the lexeme in the chunk
    dl: Mapped[int] = mapped_column(Integer)  # the chunk's token_count, kept beside tf


class DocumentLexemes(CompanyOwned, Base):
    """Every lexeme of a document's chunks (the union of their ``tsv``), one row per document,
    rewritten with its chunks' postings (``knowledge.service``): what the learned re-ranker's
    ``document_coverage`` reads of a candidate's whole document, one row instead of all its
    chunks (migration 0043)."""

    __tablename__ = "document_lexemes"
    __table_args__ = (PrimaryKeyConstraint("company_id", "document_id"),)
    company_index_in_table_args = True

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    # the document's first chunk when the row was written: chunks are new rows at every
    # re-index, so a row of other chunks (written by an older release) is seen to be stale
    first_chunk: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    lexemes: Mapped[list[str]] = mapped_column(ARRAY(Text))


class LexemeStat(CompanyOwned, Base):
    """In how many of a company's chunks each indexed lexeme occurs (``''``: all chunks).

    Retrieval looks up a question's terms here and searches with the rare ones: a common
    word matches most of the knowledge base, costs a rank computation per match and tells
    nothing about which passage answers.
    """

    __tablename__ = "lexeme_stats"
    __table_args__ = (PrimaryKeyConstraint("company_id", "lexeme"),)

    lexeme: Mapped[str] = mapped_column(Text)
    chunks: Mapped[int] = mapped_column(Integer)


class ChunkVector(CompanyOwned, Base):
    """A chunk's embedding, with the model that made it (vectors of different models are
    never compared; a model change re-embeds). The HNSW index covers the offline model's
    384 dimensions; other models' vectors are searched exactly, per company."""

    __tablename__ = "chunk_vectors"
    company_index_in_table_args = True
    __table_args__ = (
        Index("ix_chunk_vectors_company_model", "company_id", "model"),
        Index(
            "ix_chunk_vectors_hnsw_384",
            cast(column("embedding"), VECTOR(384)).label("embedding_384"),
            postgresql_using="hnsw",
            postgresql_ops={"embedding_384": "vector_cosine_ops"},
            postgresql_where=text("dim = 384"),
        ),
    )

    chunk_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(200))
    dim: Mapped[int] = mapped_column(SmallInteger)
    embedding: Mapped[Any] = mapped_column(VECTOR())


class DocumentUpload(CompanyOwned, Base):
    """A submitted document version waiting for (or in) the indexing job: its bytes and how
    to read them. Deleted when indexing ends, either way."""

    __tablename__ = "document_uploads"

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(BYTEA)
    content_hash: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(20))
    title: Mapped[str | None] = mapped_column(String(500), nullable=True)
    language: Mapped[str | None] = mapped_column(String(5), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class MessageLexemeStat(CompanyOwned, Base):
    """How many of a company's recent customers (contacts) wrote each lexeme, one vote per
    customer however often they wrote it (``''``: how many customers were counted).

    Retrieval weighs a question's terms by how rare they are among what customers write:
    words most messages use ("tenho", "information", "gostaria de saber", the products
    everyone asks about) say less about *which* passage answers than the words of this one
    message (``knowledge.message_terms``)."""

    __tablename__ = "message_lexeme_stats"
    company_index_in_table_args = True
    __table_args__ = (PrimaryKeyConstraint("company_id", "lexeme"),)

    lexeme: Mapped[str] = mapped_column(Text)
    contacts: Mapped[int] = mapped_column(Integer)
    # on the '' row: the newest customer message counted (``seq``), so that the hourly job
    # skips a company with nothing new; NULL when counted from texts given (``atende eval``)
    newest_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
