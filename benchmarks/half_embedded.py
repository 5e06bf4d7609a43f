"""Retrieval from a half-embedded knowledge base: while new documents are still being
embedded (status ``embedding``), their chunks answer by full text only. How does hybrid
retrieval rank them beside chunks that already have vectors?

Each passage of a retrieval set (``../shared/data/retrieval``, read-only) is one document of
a scratch company; every other document gets its vectors, the rest have none. The
questions are asked with BM25 alone, hybrid over the whole knowledge base embedded, and
hybrid over the half-embedded one fused three ways: as before (a chunk the dense side did
not return gets that list's lowest standard score, whether or not it has a vector), as
``HybridRetriever`` does now (a chunk without a vector gets the dense side's score of the
rank BM25 gave it) and with its BM25 score on both sides (measured worse).
Recall is split by whether the gold passage is in the embedded half.

Run from the project root: ``.venv/bin/python -m benchmarks.half_embedded --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import text

from atende.config import Settings
from atende.db import migrate
from atende.db.session import Database
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import E5Embedder
from atende.knowledge.passages import Passage
from atende.knowledge.retrieval import FullTextRetriever, _z_scores, dense_search, fuse, without_vector
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

CANDIDATES = 50  # as HybridRetriever


def fuse_as_bm25(
    lexical: Sequence[Passage], dense: Sequence[Passage], weight: float, missing: frozenset[uuid.UUID]
) -> list[Passage]:
    """A variant measured beside ``fuse``: a chunk without a vector gets its BM25 standard
    score on the dense side too (ranked as BM25 alone ranks it)."""
    lexical_norm, lexical_missing = _z_scores(lexical)
    dense_norm, dense_missing = _z_scores(dense)
    merged = {p.chunk_id: replace(p) for p in [*dense, *lexical]}
    for chunk_id, passage in merged.items():
        in_lexical = lexical_norm.get(chunk_id, lexical_missing)
        in_dense = in_lexical if chunk_id in missing else dense_norm.get(chunk_id, dense_missing)
        passage.score = weight * in_dense + (1 - weight) * in_lexical
    return sorted(merged.values(), key=lambda p: (-p.score, str(p.chunk_id)))[:10]


def recall(ranks: Sequence[int | None], at: int) -> float:
    return sum(1 for r in ranks if r is not None and r <= at) / len(ranks) if ranks else 0.0


def mrr(ranks: Sequence[int | None]) -> float:
    return sum(1 / r for r in ranks if r is not None and r <= 10) / len(ranks) if ranks else 0.0


async def measure(url: str, data_dir: Path, lang: str, limit: int, threads: int) -> dict[str, Any]:
    settings = Settings(database_url=url)
    db = Database(url, pool_size=2)
    passages = read_jsonl(data_dir / "retrieval" / f"{lang}.passages.jsonl")
    questions = read_jsonl(data_dir / "retrieval" / f"{lang}.questions.jsonl")[:limit]
    embedder = E5Embedder(threads=threads, query_threads=threads, batch_size=settings.embed_batch_size)
    weight = settings.fusion_dense_weights.get(lang, 0.5)
    ranks: dict[str, list[int | None]] = {}
    embedded_half: set[str] = set()
    try:
        slug = f"bench-half-{uuid.uuid4().hex[:8]}"
        async with db.transaction() as session:
            company = await tenancy.create_company(session, name=slug, slug=slug)
        for i, passage in enumerate(passages):
            await knowledge.ingest(
                db,
                company.id,
                source=passage["passage_id"],
                data=passage["text"].encode(),
                max_bytes=settings.max_document_bytes,
                chunking=knowledge.Chunking(settings.chunk_max_chars),
                embedder=None,
                title=passage.get("title"),
                content_type="text",
                lang=lang,
            )
            if i % 2 == 0:
                embedded_half.add(passage["passage_id"])
        console.print(f"embedding {len(passages)} passages …")
        await knowledge.embed_missing(db, company.id, embedder)
        async with db.transaction(company.id) as session:
            rows = await session.execute(
                text(
                    "SELECT c.id, d.source FROM chunks c JOIN documents d ON d.id = c.document_id"
                    " WHERE c.company_id = :c"
                ),
                {"c": company.id},
            )
            source_of = {r[0]: r[1] for r in rows}
        vectors = {q["question_id"]: await embedder.query(q["question"]) for q in questions}

        async def ask(name: str, flag: bool) -> None:
            found: list[int | None] = []
            for q in questions:
                async with db.transaction(company.id) as session:
                    lexical = await FullTextRetriever().retrieve(session, q["question"], CANDIDATES)
                    if name == "bm25":
                        ranked = lexical
                    else:
                        dense = await dense_search(
                            session, vectors[q["question_id"]], embedder.model, CANDIDATES
                        )
                        ids = [p.chunk_id for p in lexical]
                        missing = await without_vector(session, ids, embedder.model) if flag else frozenset()
                        if name.endswith("BM25 on both sides"):
                            ranked = fuse_as_bm25(lexical, dense, weight, missing)
                        else:
                            ranked = fuse(lexical, dense, weight, 10, without_vector=missing)
                sources = [source_of[p.chunk_id] for p in ranked[:10]]
                gold = q["passage_id"]
                found.append(sources.index(gold) + 1 if gold in sources else None)
            ranks[name] = found

        await ask("bm25", False)
        await ask("hybrid, all embedded", False)
        async with db.transaction(company.id) as session:
            await session.execute(
                text(
                    "DELETE FROM chunk_vectors v USING chunks c, documents d"
                    " WHERE v.chunk_id = c.id AND c.document_id = d.id AND v.company_id = :c"
                    " AND NOT (d.source = ANY(:kept))"
                ),
                {"c": company.id, "kept": sorted(embedded_half)},
            )
        await ask("hybrid, half embedded, before", False)
        await ask("hybrid, half embedded, now", True)
        await ask("hybrid, half embedded, BM25 on both sides", True)
        async with db.transaction() as session:
            await tenancy.delete_company(session, company.id)
    finally:
        await db.dispose()
    in_half = [q["passage_id"] in embedded_half for q in questions]
    results: dict[str, Any] = {}
    for name, found in ranks.items():
        with_vectors = [r for r, inside in zip(found, in_half, strict=True) if inside]
        without = [r for r, inside in zip(found, in_half, strict=True) if not inside]
        results[name] = {
            "r1": recall(found, 1),
            "r5": recall(found, 5),
            "mrr10": mrr(found),
            "r1_gold_embedded": recall(with_vectors, 1),
            "r1_gold_not_embedded": recall(without, 1),
            "r5_gold_not_embedded": recall(without, 5),
        }
    return {
        "language": lang,
        "questions": len(questions),
        "gold_not_embedded": in_half.count(False),
        "dense_weight": weight,
        "results": results,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.half_embedded",
        description="Recall of hybrid retrieval when half the documents have no vectors yet.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--lang", default="es", choices=("pt", "en", "es"))
    parser.add_argument("--limit", type=int, default=300, help="questions asked")
    parser.add_argument("--threads", type=int, default=1, help="e5 threads")
    add_data_dir_argument(parser)
    parser.add_argument("--database-url", help="use this PostgreSQL instead of a throw-away embedded one")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    names = [f"retrieval/{args.lang}.passages.jsonl", f"retrieval/{args.lang}.questions.jsonl"]
    require_data(parser, args.data_dir, names)
    load_at_start = os.getloadavg()
    with postgres(args.database_url) as url:
        migrate.upgrade(url)
        result = asyncio.run(measure(url, args.data_dir, args.lang, args.limit, args.threads))
    result["machine"] = machine(load_at_start)
    rows = [
        (
            name,
            f"{r['r1']:.3f}",
            f"{r['r5']:.3f}",
            f"{r['mrr10']:.3f}",
            f"{r['r1_gold_embedded']:.3f}",
            f"{r['r1_gold_not_embedded']:.3f}",
            f"{r['r5_gold_not_embedded']:.3f}",
        )
        for name, r in result["results"].items()
    ]
    title = (
        f"{result['language']}: {result['questions']} questions, "
        f"{result['gold_not_embedded']} of them about a document without vectors"
    )
    columns = ("retrieval", "R@1", "R@5", "MRR@10", "R@1 gold has vectors", "R@1 gold has none", "R@5 none")
    console.print(result_table(title, columns, rows))
    write_json(args.json, result)


if __name__ == "__main__":
    main()
