"""Ingesting, listing and deleting documents. Services never commit.

Ingestion is idempotent per ``source``: the same bytes again change nothing; new bytes
replace the document's chunks in the caller's transaction, so a question finds either
the old version or the new one, never neither.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import cast, delete, func, literal, literal_column, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of, get_or_404
from atende.errors import InvalidInput
from atende.knowledge import language
from atende.knowledge.chunking import ChunkDraft, chunk_blocks
from atende.knowledge.models import Chunk, Document, LexemeStat
from atende.knowledge.parsing import content_type_for, parse
from atende.knowledge.text import TS_CONFIG, fold


@dataclass(frozen=True)
class IngestResult:
    document: Document
    changed: bool


def _tsvector(title: str, section: str, body: str, lang: str) -> Any:
    cfg = cast(literal(TS_CONFIG[lang]), REGCONFIG)
    context = section if section.startswith(title) else f"{title} {section}"
    heading = func.setweight(func.to_tsvector(cfg, fold(context)), literal_column("'A'"))
    return heading.op("||")(func.setweight(func.to_tsvector(cfg, fold(body)), literal_column("'B'")))


def _prepare(
    data: bytes, kind: str, *, source: str, title: str | None, lang: str | None, chunk_max_chars: int
) -> tuple[str, str, list[ChunkDraft]]:
    """Parse, detect the language and chunk (pure, thread-safe): title, language, chunks."""
    parsed = parse(data, kind, fallback_title=title or source.rsplit("/", 1)[-1])
    doc_title = (title or parsed.title).strip()[:500] or source
    full_text = "\n".join(b.text for b in parsed.blocks)
    doc_lang = lang or language.detect(full_text[:2000], fallback="pt")[0]
    return doc_title, doc_lang, chunk_blocks(parsed.blocks, chunk_max_chars)


async def ingest(
    session: AsyncSession,
    *,
    source: str,
    data: bytes,
    max_bytes: int,
    chunk_max_chars: int,
    title: str | None = None,
    content_type: str | None = None,
    lang: str | None = None,
    meta: dict[str, Any] | None = None,
) -> IngestResult:
    """Parse, chunk and index one document (create, replace or leave unchanged)."""
    if len(data) > max_bytes:
        raise InvalidInput(f"the document is {len(data)} bytes; the limit is {max_bytes}")
    if lang is not None and lang not in TS_CONFIG:
        raise InvalidInput(f"language must be one of {', '.join(TS_CONFIG)}; got '{lang}'")
    kind = content_type_for(source, content_type)
    digest = hashlib.sha256(data).hexdigest()
    # two first uploads of one source take turns (FOR UPDATE locks nothing before the row exists)
    lock_key = {"key": f"document:{company_of(session)}:{source}"}
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), lock_key)
    existing = await session.scalar(select(Document).where(Document.source == source).with_for_update())
    # the same bytes read the same way change nothing; a new title, parser or language re-indexes
    if (
        existing is not None
        and existing.content_hash == digest
        and existing.content_type == kind
        and (title is None or title == existing.title)
        and (lang is None or lang == existing.language)
    ):
        return IngestResult(existing, changed=False)

    # parsing is CPU work (seconds for a large page): keep it off the event loop
    doc_title, doc_lang, drafts = await asyncio.to_thread(
        _prepare, data, kind, source=source, title=title, lang=lang, chunk_max_chars=chunk_max_chars
    )

    if existing is None:
        document = Document(id=uuid.uuid4(), source=source)
        session.add(document)
    else:
        document = existing
        await _count_lexemes(session, document.id, -1)
        await session.execute(delete(Chunk).where(Chunk.document_id == document.id))
    document.title = doc_title
    document.content_type = kind
    document.language = doc_lang
    document.content_hash = digest
    document.status = "ready"
    document.error = None
    document.chunk_count = len(drafts)
    document.meta = meta or {}
    document.updated_at = datetime.now(UTC)
    await session.flush()
    session.add_all(
        Chunk(
            document_id=document.id,
            ordinal=i,
            section=draft.section[:1000],
            text=draft.text,
            language=doc_lang,
            tsv=_tsvector(doc_title, draft.section, draft.text, doc_lang),
        )
        for i, draft in enumerate(drafts)
    )
    await session.flush()
    await _write_postings(session, document.id)
    await _count_lexemes(session, document.id, +1)
    return IngestResult(document, changed=True)


async def list_documents(session: AsyncSession) -> list[Document]:
    return list(await session.scalars(select(Document).order_by(Document.title)))


async def get_document(session: AsyncSession, document_id: uuid.UUID) -> Document:
    return await get_or_404(session, Document, document_id, "document")


async def list_chunks(session: AsyncSession, document_id: uuid.UUID) -> list[Chunk]:
    await get_document(session, document_id)
    return list(
        await session.scalars(select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.ordinal))
    )


async def delete_document(session: AsyncSession, document_id: uuid.UUID) -> None:
    document = await get_document(session, document_id)
    await _count_lexemes(session, document.id, -1)
    await session.delete(document)


# a document's chunks: their lengths and postings (the rows BM25 ranking reads)
_POSTINGS = (
    text(
        "UPDATE chunks SET token_count = (SELECT coalesce(sum(coalesce(array_length(u.positions, 1), 1)), 0)"
        " FROM unnest(chunks.tsv) u) WHERE company_id = :company AND document_id = :document"
    ),
    text(
        "INSERT INTO chunk_terms (company_id, lexeme, chunk_id, tf, dl)"
        " SELECT c.company_id, u.lexeme, c.id, coalesce(array_length(u.positions, 1), 1), c.token_count"
        " FROM chunks c CROSS JOIN LATERAL unnest(c.tsv) u"
        " WHERE c.company_id = :company AND c.document_id = :document"
    ),
)

_COUNT_LEXEMES = text(
    """
    INSERT INTO lexeme_stats (company_id, lexeme, chunks)
    SELECT :company, lexeme, :sign * n FROM (
        SELECT l.lexeme, count(*) AS n
        FROM chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.tsv)) AS l(lexeme)
        WHERE c.company_id = :company AND c.document_id = :document
        GROUP BY l.lexeme
        UNION ALL
        SELECT '', count(*) FROM chunks c WHERE c.company_id = :company AND c.document_id = :document
    ) counts
    ORDER BY lexeme
    ON CONFLICT (company_id, lexeme) DO UPDATE SET chunks = lexeme_stats.chunks + excluded.chunks
    """
)


async def _write_postings(session: AsyncSession, document_id: uuid.UUID) -> None:
    """The new chunks' lengths and postings (removed chunks take theirs along, by cascade)."""
    params = {"company": company_of(session), "document": document_id}
    for statement in _POSTINGS:
        await session.execute(statement, params)


async def _count_lexemes(session: AsyncSession, document_id: uuid.UUID, sign: int) -> None:
    """Add (``+1``) or remove (``-1``) a document's chunks from the lexeme statistics.

    Ingests of one company take turns here (an advisory lock), so two of them never update
    the same statistics rows in different orders.
    """
    company_id = company_of(session)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"lexemes:{company_id}"}
    )
    params = {"company": company_id, "document": document_id, "sign": sign}
    await session.execute(_COUNT_LEXEMES, params)
    if sign < 0:
        await session.execute(delete(LexemeStat).where(LexemeStat.chunks <= 0))
