"""Ingestion speed: PDF pages per second, parsed and indexed (BM25 postings included);
chunks per second embedded by the offline e5 model, before and after; and how long a new
document takes to be answerable (by full text) and fully embedded, before and after.

Builds PDFs from real passages (read-only, ``../shared/data``, see its README): FaQuAD pt
(CC BY 4.0) and XQuAD en (CC BY-SA 4.0) paragraphs, one paragraph a page, written with
``fpdf2`` (a dev dependency); then times, per document, parsing alone
(``knowledge.parsing.parse``) and the whole ``knowledge.service.ingest`` (parse, chunk,
tsvector, postings, lexeme statistics) into a scratch company, without vectors.

Embedding: ``--embed-chunks`` of those chunks embedded with e5 (its cache emptied each
time) in batches of ``--before-batch`` (the setting before, 16) and of
``ATENDE_EMBED_BATCH_SIZE`` (after), alternately over ``--rounds`` rounds in the same run,
so that a busy machine weighs on both alike.

Onboarding: a new ``--onboard-pages`` PDF goes through the indexing job's steps. Before:
parse, embed every chunk, then swap chunks and vectors in (the document answered nothing
until all of it was embedded). After (``vectors_later``): parse and swap the chunks in
(status ``embedding``: a full-text question finds it), then ``embed_document`` stores the
vectors (``ready``). Timed from the start of the job to the first full-text answer and to
``ready``.

Run from the project root: ``.venv/bin/python -m benchmarks.ingest --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from fpdf import FPDF
from sqlalchemy import text

from atende.config import Settings
from atende.db import migrate
from atende.db.session import Database
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import E5_MODEL, E5Embedder, passage_text
from atende.knowledge.parsing import parse
from atende.knowledge.retrieval import FullTextRetriever
from atende.tenancy import service as tenancy
from benchmarks.common import (
    add_data_dir_argument,
    console,
    machine,
    postgres,
    read_jsonl,
    require_data,
    result_table,
    write_json,
)

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def make_pdf(paragraphs: list[str], title: str) -> bytes:
    pdf = FPDF()
    pdf.set_title(title)
    if FONT.exists():
        pdf.add_font("DejaVu", fname=str(FONT))
        pdf.set_font("DejaVu", size=11)
    else:
        pdf.set_font("Helvetica", size=11)
    for paragraph in paragraphs:
        pdf.add_page()
        text = paragraph if FONT.exists() else paragraph.encode("latin-1", "replace").decode("latin-1")
        pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


PDF_SOURCES = ("retrieval/pt.passages.jsonl", "retrieval/en.passages.jsonl")


def documents(data_dir: Path, pages: int, count: int) -> list[tuple[str, bytes, int]]:
    found = [data_dir / name for name in PDF_SOURCES if (data_dir / name).is_file()]
    passages = [row["text"] for path in found for row in read_jsonl(path)]
    built = []
    for i in range(count):
        chosen = [passages[(i * pages + j) % len(passages)] for j in range(pages)]
        built.append((f"manual-{i:03d}.pdf", make_pdf(chosen, f"Manual {i}"), pages))
    return built


async def embed_rate(texts: list[str], threads: int, batch_size: int) -> float:
    """Seconds to embed ``texts`` (the cache emptied first)."""
    E5Embedder.clear_cache()
    embedder = E5Embedder(threads=threads, batch_size=batch_size)
    t0 = time.perf_counter()
    await embedder.passages(texts)
    return time.perf_counter() - t0


async def onboard(
    db: Database, company_id: uuid.UUID, settings: Settings, doc: tuple[str, bytes, int], *, later: bool
) -> dict[str, Any]:
    """A new document through the indexing job's steps; seconds to the first full-text
    answer and to ``ready``."""
    name, data, pages = doc
    E5Embedder.clear_cache()
    embedder = E5Embedder(threads=settings.embed_threads, batch_size=settings.embed_batch_size)
    chunking = knowledge.Chunking(settings.chunk_max_chars)
    t0 = time.perf_counter()
    async with db.transaction(company_id) as session:
        submitted = await knowledge.submit(
            session, source=name, data=data, max_bytes=settings.max_document_bytes, lang="pt"
        )
    document_id = submitted.document.id
    document = await knowledge.index_pending(
        db, company_id, document_id, chunking=chunking, embedder=embedder, vectors_later=later
    )
    if document is None or document.status not in ("embedding", "ready"):
        raise RuntimeError(f"{name} did not index: {document and document.error}")
    async with db.transaction(company_id) as session:
        first = await session.scalar(
            text(
                "SELECT text FROM chunks WHERE company_id = :c AND document_id = :d ORDER BY ordinal LIMIT 1"
            ),
            {"c": company_id, "d": document_id},
        )
        question = " ".join(str(first).split()[:12])
        found = await FullTextRetriever().retrieve(session, question, 5)
    if not any(p.document_id == document_id for p in found):
        raise RuntimeError(f"{name} did not answer by full text")
    answerable = time.perf_counter() - t0
    if later:
        document = await knowledge.embed_document(db, company_id, document_id, embedder)
    ready = time.perf_counter() - t0
    if document is None or document.status != "ready":
        raise RuntimeError(f"{name} was not embedded: {document and document.error}")
    return {
        "pages": pages,
        "chunks": document.chunk_count,
        "first_answerable_seconds": answerable,
        "ready_seconds": ready,
    }


async def measure(
    url: str,
    docs: list[tuple[str, bytes, int]],
    onboarding: list[tuple[str, bytes, int]],
    embed_chunks: int,
    before_batch: int,
    rounds: int,
) -> dict[str, Any]:
    settings = Settings(database_url=url)
    db = Database(url, pool_size=2)
    parse_seconds = ingest_seconds = 0.0
    chunks = 0
    try:
        slug = f"bench-ingest-{uuid.uuid4().hex[:8]}"
        async with db.transaction() as session:
            company = await tenancy.create_company(session, name=slug, slug=slug)
        for name, data, _pages in docs:
            t0 = time.perf_counter()
            parse(data, "pdf", name)
            parse_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            result = await knowledge.ingest(
                db,
                company.id,
                source=name,
                data=data,
                max_bytes=settings.max_document_bytes,
                chunking=knowledge.Chunking(settings.chunk_max_chars),
                embedder=None,
                lang="pt",
            )
            chunks += result.document.chunk_count
            ingest_seconds += time.perf_counter() - t0
        async with db.transaction(company.id) as session:
            rows = await session.execute(
                text(
                    "SELECT d.title, c.section, c.text FROM chunks c JOIN documents d ON d.id = c.document_id"
                    " WHERE c.company_id = :c ORDER BY d.source, c.ordinal LIMIT :n"
                ),
                {"c": company.id, "n": embed_chunks},
            )
            texts = [passage_text(*row) for row in rows]
        await E5Embedder(threads=settings.embed_threads).query("warm-up")  # maps the model in
        before_batch_seconds = after_batch_seconds = 0.0
        for round_ in range(rounds):  # alternately, so that the machine's load weighs on both
            first_before = round_ % 2 == 0
            for is_before in (first_before, not first_before):
                batch = before_batch if is_before else settings.embed_batch_size
                seconds = await embed_rate(texts, settings.embed_threads, batch)
                if is_before:
                    before_batch_seconds += seconds
                else:
                    after_batch_seconds += seconds
        onboarded = {
            "before": await onboard(db, company.id, settings, onboarding[0], later=False),
            "after": await onboard(db, company.id, settings, onboarding[1], later=True),
        }
        async with db.transaction() as session:
            await tenancy.delete_company(session, company.id)
    finally:
        await db.dispose()
    pages = sum(p for _, _, p in docs)
    embedded = len(texts) * rounds
    return {
        "documents": len(docs),
        "pages": pages,
        "chunks": chunks,
        "parse_pages_per_second": pages / parse_seconds if parse_seconds else None,
        "ingest_pages_per_second": pages / ingest_seconds if ingest_seconds else None,
        "ingest_chunks_per_second": chunks / ingest_seconds if ingest_seconds else None,
        "parse_seconds": parse_seconds,
        "ingest_seconds": ingest_seconds,
        "embedding_model": E5_MODEL,
        "embed_threads": settings.embed_threads,
        "embedded_chunks": len(texts),
        "embedded_mean_chars": sum(map(len, texts)) / len(texts) if texts else None,
        "rounds": rounds,
        "before_batch_size": before_batch,
        "after_batch_size": settings.embed_batch_size,
        "embed_chunks_per_second_before": embedded / before_batch_seconds if before_batch_seconds else None,
        "embed_chunks_per_second_after": embedded / after_batch_seconds if after_batch_seconds else None,
        "onboarding": onboarded,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description="PDF pages per second through parsing and through the whole ingestion; chunks "
        "per second embedded by the offline e5 model, before and after; seconds until a new "
        "document answers by full text and until it is fully embedded, before and after.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--documents", type=int, default=20, help="PDFs to ingest")
    parser.add_argument("--pages", type=int, default=20, help="pages a PDF")
    parser.add_argument("--embed-chunks", type=int, default=48, help="chunks embedded each round and way")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of embedding before and after")
    parser.add_argument("--before-batch", type=int, default=16, help="the batch size before")
    parser.add_argument("--onboard-pages", type=int, default=60, help="pages of the onboarded PDF")
    add_data_dir_argument(parser)
    parser.add_argument("--database-url", help="use this PostgreSQL instead of a throw-away embedded one")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    require_data(parser, args.data_dir, PDF_SOURCES)
    load_at_start = os.getloadavg()
    console.print(f"writing {args.documents} PDFs of {args.pages} pages …")
    docs = documents(args.data_dir, args.pages, args.documents)
    # the same PDF both ways (its vectors not cached), under two sources
    pages = [row["text"] for path in PDF_SOURCES for row in read_jsonl(args.data_dir / path)]
    onboard_pdf = make_pdf(pages[: args.onboard_pages], "Onboarding")
    onboarding = [(f"onboard-{when}.pdf", onboard_pdf, args.onboard_pages) for when in ("before", "after")]
    with postgres(args.database_url) as url:
        migrate.upgrade(url)
        result = asyncio.run(
            measure(url, docs, onboarding, args.embed_chunks, args.before_batch, args.rounds)
        )
    result["machine"] = machine(load_at_start)
    rows = [
        ("parse (pypdf)", f"{result['pages']:,}", "—", f"{result['parse_pages_per_second']:,.1f}", "—"),
        (
            "ingest (parse, chunk, index, postings)",
            f"{result['pages']:,}",
            f"{result['chunks']:,}",
            f"{result['ingest_pages_per_second']:,.1f}",
            f"{result['ingest_chunks_per_second']:,.1f}",
        ),
    ]
    for when in ("before", "after"):
        rows.append(
            (
                f"embed {when} (e5, {result['embed_threads']} threads, batches of "
                f"{result[when + '_batch_size']}, {result['embedded_mean_chars']:.0f} chars a chunk)",
                "—",
                f"{result['embedded_chunks'] * result['rounds']:,}",
                "—",
                f"{result['embed_chunks_per_second_' + when]:,.2f}",
            )
        )
    console.print(result_table("Ingestion of PDFs", ("step", "pages", "chunks", "pages/s", "chunks/s"), rows))
    onboard_rows = [
        (
            label,
            f"{result['onboarding'][when]['chunks']:,}",
            f"{result['onboarding'][when]['first_answerable_seconds']:,.1f}",
            f"{result['onboarding'][when]['ready_seconds']:,.1f}",
        )
        for when, label in (
            ("before", "before: embed, then swap chunks and vectors in"),
            ("after", "after: chunks first (embedding), vectors in the background"),
        )
    ]
    console.print(
        result_table(
            f"A new {args.onboard_pages}-page PDF through the indexing job",
            ("indexing", "chunks", "first answerable (s)", "fully embedded (s)"),
            onboard_rows,
        )
    )
    write_json(args.json, result)


if __name__ == "__main__":
    main()
