"""Ingesting, listing and deleting documents. Services never commit.

A document version goes through ``submit`` (validated, stored in ``document_uploads``,
status ``queued``; the same bytes again change nothing) and ``index_pending`` (status
``indexing``: parse and chunk outside any transaction, then, in one transaction, replace
the document's chunks and postings: a question finds either the old version or the new
one, never neither; ``failed`` with the reason, the previous version still answering).

The ``knowledge:index_document`` job swaps the chunks in *before* embedding them
(``vectors_later``): the new version answers by full text (BM25) within seconds, status
``embedding``, and the company's ``knowledge:embed_documents`` job (``embed_waiting``,
``embed_document``) then stores its vectors a batch at a time, each batch in its own
transaction (``embedding_progress`` counts them; a retry resumes), then ``ready``. The
offline model embeds a few chunks a second on two cores: a 400-chunk manual would
otherwise answer nothing for over a minute, a 10,000-chunk help centre for half an hour.
A chunk whose title, headings and text did not change keeps its vector across versions.
The CLI, the demo, ``atende eval`` and ``wait=true`` call ``ingest``/``index_now``, which
embed first and swap chunks and vectors together (``ready`` at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import cast, delete, func, literal, literal_column, select, text, update
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from atende.audit import service as audit
from atende.db.scope import company_of, get_or_404
from atende.db.session import Database
from atende.errors import InvalidInput
from atende.jobs.queue import JobQueue
from atende.knowledge import language
from atende.knowledge.chunking import ChunkDraft, chunk_blocks
from atende.knowledge.embedding import Embedder, EmbeddingUnavailable, Vector, passage_text, to_sql
from atende.knowledge.models import Chunk, Document, DocumentUpload, DocumentVersion, LexemeStat
from atende.knowledge.parsing import content_type_for, parse
from atende.knowledge.text import TS_CONFIG, fold

log = structlog.get_logger(__name__)

INDEX_TASK = "knowledge:index_document"
# stores the vectors of a company's documents in status ``embedding``, one job at a time per
# company (whatever the number of documents sent at once, one worker slot embeds)
EMBED_DOCUMENTS_TASK = "knowledge:embed_documents"
# a document whose indexed version is its newest: its chunks answer (``embedding``: by full
# text while their vectors are being stored)
INDEXED = ("ready", "embedding")

# (what is happening, how many steps) -> advance(n): a CLI progress bar, or nothing
Progress = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class IngestResult:
    document: Document
    changed: bool


@dataclass(frozen=True)
class Metadata:
    """What a document is about and for whom, and when it holds (``Document``'s columns that
    retrieval filters on), with any other key/values (``custom``, the ``meta`` JSON)."""

    tags: tuple[str, ...] = ()
    product: str | None = None
    audience: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    custom: Mapping[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise InvalidInput("valid_until must not be before valid_from", field="valid_until")


METADATA_FIELDS = ("tags", "product", "audience", "valid_from", "valid_until")


def metadata_of(document: Document) -> Metadata:
    return Metadata(
        tags=tuple(document.tags or ()),
        product=document.product,
        audience=document.audience,
        valid_from=document.valid_from,
        valid_until=document.valid_until,
        custom=dict(document.meta or {}),
    )


def _apply_metadata(document: Document, meta: Metadata) -> bool:
    """Set the document's metadata; whether anything changed."""
    meta.check()
    if metadata_of(document) == meta:
        return False
    document.tags = list(meta.tags)
    document.product, document.audience = meta.product, meta.audience
    document.valid_from, document.valid_until = meta.valid_from, meta.valid_until
    document.meta = dict(meta.custom)
    document.updated_at = datetime.now(UTC)
    return True


def clean_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tags as stored: trimmed, blank ones dropped, each once (in the order given)."""
    seen: dict[str, None] = {}
    for given in tags:
        tag = " ".join(given.split())
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


@dataclass(frozen=True)
class Chunking:
    max_chars: int = 1200
    overlap_chars: int = 0


def _tsvector(title: str, section: str, body: str, lang: str) -> Any:
    cfg = cast(literal(TS_CONFIG[lang]), REGCONFIG)
    context = section if section.startswith(title) else f"{title} {section}"
    heading = func.setweight(func.to_tsvector(cfg, fold(context)), literal_column("'A'"))
    return heading.op("||")(func.setweight(func.to_tsvector(cfg, fold(body)), literal_column("'B'")))


TITLE_MAX = 500  # documents.title is varchar(500); a source may be 1000 characters


def source_title(source: str) -> str:
    """The title of a document that names none: the last part of its source
    ("faq/entregas.md" → "entregas.md"; "https://loja.com/ajuda/" → "ajuda")."""
    parts = [part for part in source.split("/") if part.strip()]
    return parts[-1] if parts else source


def fit_title(title: str) -> str:
    """A title on one line that fits its column: a longer one is cut at a word boundary
    (when there is one in its second half) and ends with an ellipsis."""
    title = " ".join(title.split())
    if len(title) <= TITLE_MAX:
        return title
    cut = title[: TITLE_MAX - 1]
    space = cut.rfind(" ")
    if space > TITLE_MAX // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


# SQLSTATEs a document's own content can cause, said in words (the raw message may quote values)
_STORAGE_PROBLEMS = {
    "22001": "a value is longer than its field allows",
    "22021": "the text holds a character the database cannot store",
    "22P05": "the text holds a character the database cannot store",
    "54000": "a passage is too large to index",
}


def retryable(exc: BaseException) -> bool:
    """A lost connection or a busy database: another attempt may pass (the job retries it)."""
    if isinstance(exc, PoolTimeout | OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def describe_failure(exc: BaseException) -> str:
    """Why indexing failed, in one line a tenant can read: atende's own messages as they are;
    a database error by what it means and its SQLSTATE (never its statement or parameters,
    which hold the document's text); anything else by its kind, details in the server log."""
    if isinstance(exc, InvalidInput | EmbeddingUnavailable):
        return " ".join(str(exc).split())
    if retryable(exc):
        return "the database was unavailable while the document was indexed; send it again"
    if isinstance(exc, DBAPIError):
        sqlstate = str(getattr(getattr(exc.orig, "diag", None), "sqlstate", None) or "")
        problem = _STORAGE_PROBLEMS.get(sqlstate, "the database refused it")
        return f"the document could not be stored: {problem} (SQLSTATE {sqlstate or 'unknown'})"
    return f"an internal error stopped the indexing ({type(exc).__name__}); the server log has the details"


def _prepare(
    data: bytes, kind: str, *, source: str, title: str | None, lang: str | None, chunking: Chunking
) -> tuple[str, str, list[ChunkDraft]]:
    """Parse, detect the language and chunk (pure, thread-safe): title, language, chunks."""
    parsed = parse(data, kind, fallback_title=title or source_title(source))
    doc_title = fit_title((title or parsed.title).strip() or source_title(source))
    full_text = "\n".join(b.text for b in parsed.blocks)
    doc_lang = lang or language.detect(full_text[:2000], fallback="pt")[0]
    return doc_title, doc_lang, chunk_blocks(parsed.blocks, chunking.max_chars, chunking.overlap_chars)


async def _lock_source(session: AsyncSession, source: str) -> None:
    # two first uploads of one source take turns (FOR UPDATE locks nothing before the row exists)
    lock_key = {"key": f"document:{company_of(session)}:{source}"}
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), lock_key)


async def submit(
    session: AsyncSession,
    *,
    source: str,
    data: bytes,
    max_bytes: int,
    title: str | None = None,
    content_type: str | None = None,
    lang: str | None = None,
    meta: Metadata | None = None,
    jobs: JobQueue | None = None,
    author_id: uuid.UUID | None = None,
    markdown: str | None = None,
) -> IngestResult:
    """Accept a document version for indexing (``queued``), or change nothing if it is the
    version already indexed or waiting. With ``jobs``, the indexing job is enqueued in the
    same transaction. Metadata applies at once (it is the document's, not a version's);
    ``None`` leaves a document's as they are. Each accepted version is recorded
    (``document_versions``: ``author_id``, an article's ``markdown``), keeping its bytes
    for a later re-index."""
    if len(data) > max_bytes:
        raise InvalidInput(f"the document is {len(data)} bytes; the limit is {max_bytes}")
    if lang is not None and lang not in TS_CONFIG:
        raise InvalidInput(f"language must be one of {', '.join(TS_CONFIG)}; got '{lang}'")
    kind = content_type_for(source, content_type)
    digest = hashlib.sha256(data).hexdigest()
    if meta is not None:
        meta.check()
    await _lock_source(session, source)
    # FOR NO KEY UPDATE (``get_or_404``'s ``no_key``): a new version changes the document's
    # columns, never its key, and must not wait for a job's key-share lock on it
    document = await session.scalar(
        select(Document).where(Document.source == source).with_for_update(key_share=True)
    )
    replaced = document is not None
    if document is not None:
        pending = await session.get(DocumentUpload, document.id, with_for_update=True)
        if pending is not None:
            same = pending.content_hash == digest and pending.content_type == kind
            same = same and pending.title == title and pending.language == lang
        else:
            # the same bytes read the same way change nothing; a new title, parser or language re-indexes
            same = document.status in INDEXED and document.content_hash == digest
            same = same and document.content_type == kind
            same = same and (title is None or title == document.title)
            same = same and (lang is None or lang == document.language)
        if same:
            meta_changed = meta is not None and _apply_metadata(document, meta)
            if meta_changed:
                audit.record(
                    session,
                    "document.edited",
                    ("document", document.id),
                    {"title": document.title, "fields": ["meta"]},
                )
            return IngestResult(document, changed=meta_changed)
        if pending is not None:
            await session.delete(pending)
            await session.flush()
    else:
        document = Document(
            id=uuid.uuid4(),
            source=source,
            title=fit_title(title or source_title(source)),
            content_type=kind,
            language=lang or "",
            content_hash="",
            chunk_count=0,
        )
        session.add(document)
    if meta is not None:
        _apply_metadata(document, meta)
    await session.flush()
    # a URL's query may carry a token: the log keeps the source without it
    audit.record(
        session,
        "document.uploaded",
        ("document", document.id),
        {"title": document.title, "source": source.split("?", maxsplit=1)[0], "new_version": replaced},
    )
    await _record_version(session, document, data, digest, kind, title, lang, author_id, markdown)
    await _queue(session, document, data, digest, kind, title, lang, jobs)
    return IngestResult(document, changed=True)


async def _record_version(
    session: AsyncSession,
    document: Document,
    data: bytes,
    digest: str,
    kind: str,
    title: str | None,
    lang: str | None,
    author_id: uuid.UUID | None,
    markdown: str | None,
) -> None:
    """The next version of the document; only the newest keeps its bytes."""
    latest = await session.scalar(
        select(func.max(DocumentVersion.version)).where(DocumentVersion.document_id == document.id)
    )
    if latest:
        await session.execute(
            update(DocumentVersion)
            .where(DocumentVersion.document_id == document.id, DocumentVersion.data.is_not(None))
            .values(data=None)
        )
    session.add(
        DocumentVersion(
            document_id=document.id,
            version=(latest or 0) + 1,
            content_hash=digest,
            content_type=kind,
            title=title,
            language=lang,
            author_id=author_id,
            markdown=markdown,
            data=data,
        )
    )
    await session.flush()


async def _queue(
    session: AsyncSession,
    document: Document,
    data: bytes,
    digest: str,
    kind: str,
    title: str | None,
    lang: str | None,
    jobs: JobQueue | None,
) -> None:
    """Put a version in ``document_uploads`` (``queued``) and, with ``jobs``, enqueue its indexing."""
    document.status = "queued"  # the status moves; updated_at marks changes of content or metadata
    document.error = None
    session.add(
        DocumentUpload(
            document_id=document.id,
            data=data,
            content_hash=digest,
            content_type=kind,
            title=title,
            language=lang,
            requested_at=datetime.now(UTC),
        )
    )
    await session.flush()
    if jobs is not None:
        await jobs.enqueue(
            session,
            INDEX_TASK,
            lock=f"document:{document.id}",
            company_id=str(company_of(session)),
            document_id=str(document.id),
        )


async def update_metadata(
    session: AsyncSession, document_id: uuid.UUID, changes: Mapping[str, Any]
) -> Document:
    """Change some of a document's metadata (``METADATA_FIELDS`` and ``custom``; a key not
    given keeps its value). Applies at once: metadata is not indexed text."""
    # FOR NO KEY UPDATE: it still waits for another edit of the document, but not for the
    # indexing and embedding jobs' key-share locks (their rows that reference the document):
    # waiting on those while a job waited to update the document was a deadlock (seen in CI)
    document = await get_or_404(session, Document, document_id, "document", for_update=True, no_key=True)
    current = metadata_of(document)
    values = {name: changes[name] for name in (*METADATA_FIELDS, "custom") if name in changes}
    if "tags" in values:
        values["tags"] = clean_tags(values["tags"] or ())
    merged = Metadata(**{**current.__dict__, **values})
    if _apply_metadata(document, merged):
        audit.record(
            session,
            "document.edited",
            ("document", document.id),
            {"title": document.title, "fields": sorted(values)},
        )
    await session.flush()
    return document


async def reindex(
    session: AsyncSession, document_id: uuid.UUID, jobs: JobQueue | None, *, lang: str | None = None
) -> Document:
    """Index the document's newest version again (``lang``: in that language, else as it was
    sent): its kept bytes are queued like a new upload."""
    if lang is not None and lang not in TS_CONFIG:
        raise InvalidInput(f"language must be one of {', '.join(TS_CONFIG)}; got '{lang}'", field="language")
    document = await get_or_404(session, Document, document_id, "document", for_update=True, no_key=True)
    version = await session.scalar(
        select(DocumentVersion)
        .where(DocumentVersion.document_id == document_id, DocumentVersion.data.is_not(None))
        .order_by(DocumentVersion.version.desc())
        .limit(1)
    )
    if version is None or version.data is None:
        raise InvalidInput(
            "this document's file was not kept (it was sent before versions were); send it again",
            field="file",
        )
    pending = await session.get(DocumentUpload, document_id, with_for_update=True)
    if pending is not None:
        await session.delete(pending)
        await session.flush()
    language_given = lang if lang is not None else version.language
    if lang is not None and lang != version.language:
        version.language = lang
    audit.record(session, "document.reindexed", ("document", document.id), {"title": document.title})
    await _queue(
        session,
        document,
        version.data,
        version.content_hash,
        version.content_type,
        version.title,
        language_given,
        jobs,
    )
    return document


async def list_versions(session: AsyncSession, document_id: uuid.UUID) -> list[DocumentVersion]:
    """A document's versions, newest first."""
    await get_document(session, document_id)
    return list(
        await session.scalars(
            select(DocumentVersion)
            .where(DocumentVersion.document_id == document_id)
            .order_by(DocumentVersion.version.desc())
            .options(defer(DocumentVersion.data, raiseload=True))  # the bytes stay in the database
        )
    )


ARTICLE_PREFIX = "article:"


def slugify(title: str) -> str:
    """An article's slug from its title ("Trocas e devoluções" → "trocas-e-devolucoes")."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", plain).strip("-")[:80] or "article"


async def save_article(
    session: AsyncSession,
    *,
    title: str,
    markdown: str,
    max_bytes: int,
    jobs: JobQueue | None,
    author_id: uuid.UUID | None,
    document_id: uuid.UUID | None = None,
    lang: str | None = None,
) -> IngestResult:
    """Write a new article (``document_id`` ``None``) or a new version of one: a Markdown
    document whose source is ``article:<slug>``, indexed by the same job as an upload."""
    title = " ".join(title.split())
    if not title:
        raise InvalidInput("an article needs a title", field="title")
    if not markdown.strip():
        raise InvalidInput("an article needs some text", field="body")
    if document_id is not None:
        document = await get_or_404(session, Document, document_id, "document")
        if not document.source.startswith(ARTICLE_PREFIX):
            raise InvalidInput("only articles written here can be edited here", field="document")
        source = document.source
    else:
        base = ARTICLE_PREFIX + slugify(title)
        taken = set(
            await session.scalars(
                select(Document.source).where(Document.source.startswith(base, autoescape=True))
            )
        )
        source, n = base, 2
        while source in taken:
            source, n = f"{base}-{n}", n + 1
    return await submit(
        session,
        source=source,
        data=markdown.encode(),
        max_bytes=max_bytes,
        title=title,
        content_type="markdown",
        lang=lang,
        jobs=jobs,
        author_id=author_id,
        markdown=markdown,
    )


async def article_markdown(session: AsyncSession, document_id: uuid.UUID) -> str:
    """The Markdown of an article's newest version (to edit it again)."""
    found = await session.scalar(
        select(DocumentVersion.markdown)
        .where(DocumentVersion.document_id == document_id, DocumentVersion.markdown.is_not(None))
        .order_by(DocumentVersion.version.desc())
        .limit(1)
    )
    return found or ""


# "about to expire": a document whose validity ends within this long is flagged
EXPIRING_WITHIN = timedelta(days=30)


async def index_pending(
    db: Database,
    company_id: uuid.UUID,
    document_id: uuid.UUID,
    *,
    chunking: Chunking,
    embedder: Embedder | None,
    progress: Progress | None = None,
    vectors_later: bool = False,
    jobs: JobQueue | None = None,
) -> Document | None:
    """Index the document's waiting version, if any: ``indexing``, then ``ready`` (its chunks
    replaced atomically) or ``failed`` with the reason. ``None`` if nothing was waiting or a
    newer version arrived meanwhile (its own job indexes that one). With ``vectors_later``
    the chunks are swapped in without embedding them: ``embedding`` (answering by full
    text; ``embed_document`` stores the vectors, in the company's
    ``knowledge:embed_documents`` job, enqueued with the swap when ``jobs`` is given), or
    ``ready`` if every chunk kept its vector.

    Any error ends in ``failed`` with a readable reason (``describe_failure``), except a lost
    connection or a busy database, which is raised for the indexing job to retry (its last
    attempt marks the version failed); a caller that does not retry uses ``index_now``."""
    async with db.transaction(company_id) as session:
        upload = await session.get(DocumentUpload, document_id)
        if upload is None:
            return None
        document = await get_or_404(session, Document, document_id, "document", for_update=True, no_key=True)
        document.status = "indexing"
        source, requested_at = document.source, upload.requested_at
        data, kind, title, lang = upload.data, upload.content_type, upload.title, upload.language
        digest = upload.content_hash
    try:
        # parsing and embedding are CPU work (seconds for a large file): off the event loop,
        # and outside any transaction
        doc_title, doc_lang, drafts = await asyncio.to_thread(
            _prepare, data, kind, source=source, title=title, lang=lang, chunking=chunking
        )
        vectors: list[Vector] | None = None
        if embedder is not None and drafts and not vectors_later:
            advance = progress(f"embedding {source}", len(drafts)) if progress else None
            texts = [passage_text(doc_title, d.section, d.text) for d in drafts]
            vectors = await embedder.passages(texts, advance)
    except Exception as exc:  # a parser's or embedder's failure: the same again next time
        if retryable(exc):
            raise
        _log_failure(document_id, exc)
        return await _finish_failed(db, company_id, document_id, requested_at, describe_failure(exc))
    try:
        async with db.transaction(company_id) as session:
            await _lock_source(session, source)
            upload = await session.get(
                DocumentUpload, document_id, with_for_update=True, populate_existing=True
            )
            if upload is None or upload.requested_at != requested_at:
                return None
            document = await get_or_404(
                session, Document, document_id, "document", for_update=True, no_key=True
            )
            model = embedder.model if embedder is not None else None
            kept = await _replace_chunks(session, document, doc_title, doc_lang, drafts, vectors, model)
            document.content_type = kind
            document.content_hash = digest
            waiting = vectors_later and model is not None and kept < len(drafts)
            document.status = "embedding" if waiting else "ready"
            document.error = None
            if waiting and jobs is not None:
                await queue_embedding(session, jobs)
            await session.delete(upload)
            return document
    except Exception as exc:  # rolled back: the previous version, if any, still answers
        if retryable(exc):
            raise
        _log_failure(document_id, exc)
        return await _finish_failed(db, company_id, document_id, requested_at, describe_failure(exc))


def _log_failure(document_id: uuid.UUID, exc: BaseException) -> None:
    """An unexpected failure, for the operators: a database error by its own message (not its
    parameters: the document's text), anything else with its traceback."""
    if isinstance(exc, InvalidInput | EmbeddingUnavailable):
        return
    if isinstance(exc, DBAPIError):
        diag = getattr(exc.orig, "diag", None)
        log.error(
            "knowledge.index_error",
            document_id=str(document_id),
            sqlstate=getattr(diag, "sqlstate", None),
            reason=getattr(diag, "message_primary", None),
        )
    else:
        log.error("knowledge.index_error", document_id=str(document_id), exc_info=exc)


async def index_now(
    db: Database,
    company_id: uuid.UUID,
    document_id: uuid.UUID,
    *,
    chunking: Chunking,
    embedder: Embedder | None,
    progress: Progress | None = None,
) -> Document | None:
    """``index_pending`` for a caller that waits for it (``wait=true``, the CLI, the demo):
    nothing will retry it, so an error a job would retry also marks the version ``failed``
    (when the database lets it), and is then raised; it never stays ``indexing``."""
    try:
        return await index_pending(
            db, company_id, document_id, chunking=chunking, embedder=embedder, progress=progress
        )
    except Exception as exc:
        try:
            await fail_pending(db, company_id, document_id, describe_failure(exc))
        except Exception as again:  # the database is still away: the caller hears of the first
            log.warning("knowledge.fail_pending_failed", document_id=str(document_id), error=repr(again))
        raise


async def _finish_failed(
    db: Database, company_id: uuid.UUID, document_id: uuid.UUID, requested_at: datetime | None, reason: str
) -> Document | None:
    """Mark the waiting version failed: the one sent at ``requested_at`` (``None``: whichever
    waits); nothing if it was replaced meanwhile."""
    async with db.transaction(company_id) as session:
        upload = await session.get(DocumentUpload, document_id, with_for_update=True, populate_existing=True)
        if upload is None or requested_at not in (None, upload.requested_at):
            return None
        document = await get_or_404(session, Document, document_id, "document", for_update=True, no_key=True)
        document.status = "failed"
        document.error = " ".join(reason.split())[:2000]  # one line
        await session.delete(upload)
        log.info("knowledge.index_failed", document_id=str(document_id), reason=reason)
        return document


async def fail_pending(db: Database, company_id: uuid.UUID, document_id: uuid.UUID, reason: str) -> None:
    """Mark a document's waiting version failed (the indexing job gave up on an error)."""
    await _finish_failed(db, company_id, document_id, None, reason)


async def withdraw_failed(session: AsyncSession, document_id: uuid.UUID) -> None:
    """Undo a version that failed while its sender waited: a document never indexed is
    deleted, one with an indexed version is ``ready`` again (unless another version came)."""
    document = await get_or_404(session, Document, document_id, "document", for_update=True)
    if document.status != "failed" or await session.get(DocumentUpload, document_id) is not None:
        return
    if not document.content_hash:
        await delete_document(session, document_id)
    else:
        document.status, document.error = "ready", None


async def _replace_chunks(
    session: AsyncSession,
    document: Document,
    title: str,
    lang: str,
    drafts: list[ChunkDraft],
    vectors: list[Vector] | None,
    model: str | None,
) -> int:
    """Swap the document's chunks (with postings, statistics and vectors of ``model``);
    how many of the new chunks have a vector. Without ``vectors``, a new chunk with the
    same title, headings and text as an old one keeps the old one's vector of ``model``."""
    reusable: dict[tuple[str, str], tuple[int, str]] = {}
    if document.content_hash:  # an indexed version: take it out of the statistics first
        if vectors is None and model is not None and document.title == title:
            reusable = await _vectors_by_text(session, document.id, model)
        await _count_lexemes(session, document.id, -1)
        await session.execute(delete(Chunk).where(Chunk.document_id == document.id))
    document.title = title
    document.language = lang
    document.chunk_count = len(drafts)
    document.updated_at = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in drafts]
    session.add_all(
        Chunk(
            id=chunk_id,
            document_id=document.id,
            ordinal=i,
            section=draft.section[:1000],
            text=draft.text,
            language=lang,
            tsv=_tsvector(title, draft.section, draft.text, lang),
        )
        for i, (chunk_id, draft) in enumerate(zip(ids, drafts, strict=True))
    )
    await session.flush()
    await _write_postings(session, document.id)
    await _count_lexemes(session, document.id, +1)
    if model is None:
        return 0
    if vectors is not None:
        await store_vectors(session, model, ids, vectors)
        return len(vectors)
    kept = [
        (chunk_id, found)
        for chunk_id, draft in zip(ids, drafts, strict=True)
        if (found := reusable.get((draft.section[:1000], draft.text))) is not None
    ]
    for dim in {found[0] for _, found in kept}:
        same = [(chunk_id, found[1]) for chunk_id, found in kept if found[0] == dim]
        await session.execute(
            _STORE_VECTORS,
            {
                "company": company_of(session),
                "model": model,
                "dim": dim,
                "ids": [chunk_id for chunk_id, _ in same],
                "vectors": [vector for _, vector in same],
            },
        )
    return len(kept)


async def _vectors_by_text(
    session: AsyncSession, document_id: uuid.UUID, model: str
) -> dict[tuple[str, str], tuple[int, str]]:
    """The document's chunks' vectors of ``model`` (dimension, pgvector text) by (headings, text)."""
    rows = await session.execute(
        text(
            "SELECT c.section, c.text, v.dim, CAST(v.embedding AS text) FROM chunks c"
            " JOIN chunk_vectors v ON v.chunk_id = c.id AND v.company_id = :company AND v.model = :model"
            " WHERE c.company_id = :company AND c.document_id = :document"
        ),
        {"company": company_of(session), "document": document_id, "model": model},
    )
    return {(r[0], r[1]): (int(r[2]), r[3]) for r in rows}


_STORE_VECTORS = text(
    """
    INSERT INTO chunk_vectors (company_id, chunk_id, model, dim, embedding)
    SELECT c.company_id, c.id, :model, :dim, CAST(x.v AS vector)
      FROM unnest(CAST(:ids AS uuid[]), CAST(:vectors AS text[])) AS x(id, v)
      JOIN chunks c ON c.id = x.id AND c.company_id = :company
    ON CONFLICT (chunk_id)
    DO UPDATE SET model = excluded.model, dim = excluded.dim, embedding = excluded.embedding
    """
)


async def store_vectors(
    session: AsyncSession, model: str, chunk_ids: list[uuid.UUID], vectors: list[Vector]
) -> None:
    """Store (or replace) chunks' embeddings; chunks deleted meanwhile are skipped."""
    if not vectors:
        return
    await session.execute(
        _STORE_VECTORS,
        {
            "company": company_of(session),
            "model": model,
            "dim": len(vectors[0]),
            "ids": chunk_ids,
            "vectors": [to_sql(v) for v in vectors],
        },
    )


_MISSING_VECTORS = text(
    """
    SELECT c.id, d.title, c.section, c.text
      FROM chunks c
      JOIN documents d ON d.id = c.document_id AND d.company_id = :company
      LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.company_id = :company AND v.model = :model
     WHERE c.company_id = :company AND v.chunk_id IS NULL
     ORDER BY c.id
     LIMIT :limit
    """
)
# one document's, from its start (the first sections answer first)
_DOCUMENT_MISSING_VECTORS = text(
    """
    SELECT c.id, d.title, c.section, c.text
      FROM chunks c
      JOIN documents d ON d.id = c.document_id AND d.company_id = :company
      LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.company_id = :company AND v.model = :model
     WHERE c.company_id = :company AND c.document_id = :document AND v.chunk_id IS NULL
     ORDER BY c.ordinal
     LIMIT :limit
    """
)

EMBED_BATCH = 32  # chunks embedded and stored per transaction by ``embed_document``


async def embed_document(
    db: Database,
    company_id: uuid.UUID,
    document_id: uuid.UUID,
    embedder: Embedder,
    *,
    batch: int = EMBED_BATCH,
    progress: Callable[[int], None] | None = None,
) -> Document | None:
    """Store the vectors of a document in status ``embedding`` (its chunks already answer by
    full text), ``batch`` chunks a transaction, then mark it ``ready``. Stops, leaving the
    status alone, once the document is no longer ``embedding`` (a newer version was sent:
    its own job takes over; or it was deleted). An embedder's failure marks it ``failed``
    with the reason (its chunks still answer by full text); a lost connection is raised,
    for the job to retry, which resumes where this stopped. The document, or ``None``."""
    while True:
        async with db.transaction(company_id) as session:
            document = await session.get(Document, document_id)
            if document is None or document.status != "embedding":
                return document
            params = {"company": company_id, "document": document_id, "model": embedder.model, "limit": batch}
            rows = (await session.execute(_DOCUMENT_MISSING_VECTORS, params)).all()
        if not rows:
            break
        try:
            vectors = await embedder.passages([passage_text(r[1], r[2], r[3]) for r in rows])
        except Exception as exc:
            if retryable(exc):
                raise
            _log_failure(document_id, exc)
            return await _end_embedding(db, company_id, document_id, describe_failure(exc))
        async with db.transaction(company_id) as session:
            await store_vectors(session, embedder.model, [r[0] for r in rows], vectors)
        if progress is not None:
            progress(len(rows))
    return await _end_embedding(db, company_id, document_id, None)


async def _end_embedding(
    db: Database, company_id: uuid.UUID, document_id: uuid.UUID, failure: str | None
) -> Document | None:
    """A document still ``embedding``: ``ready``, or ``failed`` with ``failure``."""
    async with db.transaction(company_id) as session:
        document = await session.get(
            Document, document_id, with_for_update={"key_share": True}, populate_existing=True
        )
        if document is not None and document.status == "embedding":
            document.status = "failed" if failure else "ready"
            document.error = " ".join(failure.split())[:2000] if failure else None
            log.info("knowledge.embedded_document", document_id=str(document_id), status=document.status)
        return document


async def queue_embedding(session: AsyncSession, jobs: JobQueue) -> None:
    """Enqueue the company's ``knowledge:embed_documents`` job, unless one waits already (it
    runs under the lock of the company's re-embedding, so the two never embed at once)."""
    company = company_of(session)
    await jobs.enqueue(
        session,
        EMBED_DOCUMENTS_TASK,
        lock=f"embed:{company}",
        queueing_lock=f"embed-documents:{company}",
        company_id=str(company),
    )


async def _next_embedding(db: Database, company_id: uuid.UUID) -> uuid.UUID | None:
    """The company's document in status ``embedding`` that has waited longest."""
    async with db.transaction(company_id) as session:
        return await session.scalar(
            select(Document.id)
            .where(Document.status == "embedding")
            .order_by(Document.updated_at, Document.id)
            .limit(1)
        )


async def fail_embedding(db: Database, company_id: uuid.UUID, reason: str) -> None:
    """Mark failed the document ``embed_waiting`` was embedding (its job gave up on an error)."""
    document_id = await _next_embedding(db, company_id)
    if document_id is not None:
        await _end_embedding(db, company_id, document_id, reason)


async def embed_waiting(db: Database, company_id: uuid.UUID, embedder: Embedder | None) -> int:
    """Store the vectors of every document of the company in status ``embedding``, the
    longest waiting first (``embed_document``); how many documents were finished. Without
    an embedder (the deployment's is ``none``), they are ``ready`` as they are."""
    finished = 0
    while True:
        document_id = await _next_embedding(db, company_id)
        if document_id is None:
            return finished
        if embedder is None:
            await _end_embedding(db, company_id, document_id, None)
        else:
            await embed_document(db, company_id, document_id, embedder)
        finished += 1


_EMBEDDED_COUNTS = text(
    """
    SELECT c.document_id, count(v.chunk_id)
      FROM chunks c
      JOIN chunk_vectors v ON v.chunk_id = c.id AND v.company_id = :company
     WHERE c.company_id = :company AND c.document_id = ANY(CAST(:documents AS uuid[]))
     GROUP BY c.document_id
    """
)


async def embedding_progress(session: AsyncSession, documents: list[Document]) -> dict[uuid.UUID, int]:
    """How many chunks of each of these documents in status ``embedding`` have their vector
    stored (the others are left out): ``120`` of its ``chunk_count`` 400."""
    waiting = [d.id for d in documents if d.status == "embedding"]
    if not waiting:
        return {}
    params = {"company": company_of(session), "documents": waiting}
    counts = {row[0]: int(row[1]) for row in await session.execute(_EMBEDDED_COUNTS, params)}
    return {document_id: counts.get(document_id, 0) for document_id in waiting}


async def embed_missing(
    db: Database,
    company_id: uuid.UUID,
    embedder: Embedder,
    *,
    batch: int = 64,
    progress: Progress | None = None,
) -> int:
    """Embed every chunk of the company that has no vector of ``embedder``'s model (after a
    model change, or chunks indexed without an embedder); returns how many."""
    async with db.transaction(company_id) as session:
        total = await session.scalar(
            text(
                "SELECT count(*) FROM chunks c LEFT JOIN chunk_vectors v ON v.chunk_id = c.id"
                " AND v.company_id = :company AND v.model = :model"
                " WHERE c.company_id = :company AND v.chunk_id IS NULL"
            ),
            {"company": company_id, "model": embedder.model},
        )
    advance = progress("embedding chunks", int(total or 0)) if progress else None
    done = 0
    while True:
        async with db.transaction(company_id) as session:
            params = {"company": company_id, "model": embedder.model, "limit": batch}
            rows = (await session.execute(_MISSING_VECTORS, params)).all()
        if not rows:
            return done
        vectors = await embedder.passages([passage_text(r[1], r[2], r[3]) for r in rows])
        async with db.transaction(company_id) as session:
            await store_vectors(session, embedder.model, [r[0] for r in rows], vectors)
        done += len(vectors)
        if advance is not None:
            advance(len(vectors))


async def ingest(
    db: Database,
    company_id: uuid.UUID,
    *,
    source: str,
    data: bytes,
    max_bytes: int,
    chunking: Chunking,
    embedder: Embedder | None,
    title: str | None = None,
    content_type: str | None = None,
    lang: str | None = None,
    meta: Metadata | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Submit and index a document at once (the CLI, the demo, ``atende eval``). A document
    that cannot be read raises ``InvalidInput`` (and is left ``failed``, with the reason)."""
    async with db.transaction(company_id) as session:
        submitted = await submit(
            session,
            source=source,
            data=data,
            max_bytes=max_bytes,
            title=title,
            content_type=content_type,
            lang=lang,
            meta=meta,
        )
    if not submitted.changed or submitted.document.status != "queued":
        return submitted
    document = await index_now(
        db, company_id, submitted.document.id, chunking=chunking, embedder=embedder, progress=progress
    )
    if document is None:
        raise InvalidInput(f"'{source}' was replaced by a newer version while it was indexed")
    if document.status == "failed":
        raise InvalidInput(document.error or "the document could not be indexed")
    return IngestResult(document, changed=True)


async def list_documents(
    session: AsyncSession,
    *,
    status: str | None = None,
    expiry: str | None = None,
    articles: bool | None = None,
    now: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Document]:
    """The company's documents by title; ``expiry`` ``expired`` (valid until a past instant)
    or ``expiring`` (within ``EXPIRING_WITHIN``, not yet expired); ``articles`` True: only
    those written in the dashboard; a page of them with ``limit`` and ``offset``."""
    query = select(Document).order_by(Document.title, Document.id).limit(limit).offset(offset)
    if status:
        query = query.where(Document.status == status)
    moment = now or datetime.now(UTC)
    if expiry == "expired":
        query = query.where(Document.valid_until < moment)
    elif expiry == "expiring":
        query = query.where(Document.valid_until >= moment, Document.valid_until < moment + EXPIRING_WITHIN)
    if articles is not None:
        is_article = Document.source.startswith(ARTICLE_PREFIX, autoescape=True)
        query = query.where(is_article if articles else ~is_article)
    return list(await session.scalars(query))


async def expiry_counts(session: AsyncSession, now: datetime) -> tuple[int, int]:
    """How many of the company's documents are expired, and how many expire within
    ``EXPIRING_WITHIN`` (from the ``(company_id, valid_until)`` index)."""
    row = (
        await session.execute(
            select(
                func.count().filter(Document.valid_until < now),
                func.count().filter(
                    Document.valid_until >= now, Document.valid_until < now + EXPIRING_WITHIN
                ),
            ).where(Document.valid_until < now + EXPIRING_WITHIN)
        )
    ).one()
    return int(row[0]), int(row[1])


async def get_document(session: AsyncSession, document_id: uuid.UUID) -> Document:
    return await get_or_404(session, Document, document_id, "document")


async def get_documents(session: AsyncSession, document_ids: list[uuid.UUID]) -> list[Document]:
    """Those of these documents the company has (another's ids, or deleted ones, are left out)."""
    return list(await session.scalars(select(Document).where(Document.id.in_(document_ids))))


async def list_chunks(session: AsyncSession, document_id: uuid.UUID, limit: int | None = None) -> list[Chunk]:
    """A document's chunks in order (the first ``limit``)."""
    await get_document(session, document_id)
    return list(
        await session.scalars(
            select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.ordinal).limit(limit)
        )
    )


async def delete_document(session: AsyncSession, document_id: uuid.UUID) -> None:
    document = await get_document(session, document_id)
    audit.record(session, "document.deleted", ("document", document.id), {"title": document.title})
    await _count_lexemes(session, document.id, -1)
    await session.delete(document)


# a document's chunks: their lengths and postings (the rows BM25 ranking reads), and the
# document's lexemes
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
    # every lexeme of the whole document, the learned re-ranker's document_coverage, with its
    # first chunk (a document without chunks has no row)
    text("DELETE FROM document_lexemes WHERE company_id = :company AND document_id = :document"),
    text(
        "INSERT INTO document_lexemes (company_id, document_id, first_chunk, lexemes)"
        " SELECT :company, :document, f.id, ARRAY(SELECT DISTINCT l FROM chunks c"
        " CROSS JOIN LATERAL unnest(tsvector_to_array(c.tsv)) AS l"
        " WHERE c.company_id = :company AND c.document_id = :document ORDER BY l)"
        " FROM (SELECT id FROM chunks WHERE company_id = :company AND document_id = :document"
        " ORDER BY ordinal, id LIMIT 1) f"
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
    """The new chunks' lengths and postings (removed chunks take theirs along, by cascade),
    and the document's lexemes (``DocumentLexemes``)."""
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
