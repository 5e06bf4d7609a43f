"""Ingestion speed: PDF pages per second, parsed and indexed (BM25 postings included), and
chunks per second embedded by the offline e5 model.

Builds PDFs from real passages (read-only, ``../shared/data``, see its README): FaQuAD pt
(CC BY 4.0) and XQuAD en (CC BY-SA 4.0) paragraphs, one paragraph a page, written with
``fpdf2`` (a dev dependency); then times, per document, parsing alone
(``knowledge.parsing.parse``) and the whole ``knowledge.service.ingest`` (parse, chunk,
tsvector, postings, lexeme statistics) into a scratch company, without vectors; then embeds
``--embed-chunks`` of those chunks with the e5 model (batches of ``ATENDE_EMBED_BATCH_SIZE``,
its cache emptied first), as the indexing job does.

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


async def measure(url: str, docs: list[tuple[str, bytes, int]], embed_chunks: int) -> dict[str, Any]:
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
        embedder = E5Embedder(threads=settings.embed_threads, batch_size=settings.embed_batch_size)
        E5Embedder.clear_cache()
        await embedder.query("warm-up")  # maps the model in
        t0 = time.perf_counter()
        await embedder.passages(texts)
        embed_seconds = time.perf_counter() - t0
        async with db.transaction() as session:
            await tenancy.delete_company(session, company.id)
    finally:
        await db.dispose()
    pages = sum(p for _, _, p in docs)
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
        "embedded_chunks": len(texts),
        "embedded_mean_chars": sum(map(len, texts)) / len(texts) if texts else None,
        "embed_seconds": embed_seconds,
        "embed_chunks_per_second": len(texts) / embed_seconds if embed_seconds else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ingest",
        description="PDF pages per second through parsing and through the whole ingestion; chunks "
        "per second embedded by the offline e5 model.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--documents", type=int, default=20, help="PDFs to ingest")
    parser.add_argument("--pages", type=int, default=20, help="pages a PDF")
    parser.add_argument("--embed-chunks", type=int, default=96, help="chunks to embed (about 3 a second)")
    add_data_dir_argument(parser)
    parser.add_argument("--database-url", help="use this PostgreSQL instead of a throw-away embedded one")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    require_data(parser, args.data_dir, PDF_SOURCES)
    load_at_start = os.getloadavg()
    console.print(f"writing {args.documents} PDFs of {args.pages} pages …")
    docs = documents(args.data_dir, args.pages, args.documents)
    with postgres(args.database_url) as url:
        migrate.upgrade(url)
        result = asyncio.run(measure(url, docs, args.embed_chunks))
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
    rows.append(
        (
            f"embed (e5, {result['embedded_mean_chars']:.0f} chars a chunk)",
            "—",
            f"{result['embedded_chunks']:,}",
            "—",
            f"{result['embed_chunks_per_second']:,.1f}",
        )
    )
    console.print(result_table("Ingestion of PDFs", ("step", "pages", "chunks", "pages/s", "chunks/s"), rows))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
