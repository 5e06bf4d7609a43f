"""The learned re-ranker's offline study (``docs/RANKER.md``): build, collect, train.

    build DIR LANG     ingest a QA set's language into a study company kept in the database
                       (reused by later runs), embed its chunks (or restore their vectors from
                       /work/cache/vectors/), and cache the vectors keyed by chunk text
    collect DIR LANG   ask every question of the study company as ``atende eval`` does (the
                       customer-message statistics of the other half of the questions), take
                       the hybrid retriever's candidates (top 50 of BM25 and of the dense
                       model, fused), compute the re-ranker's features on them exactly as
                       production does, label them with ``atende eval``'s hit rule, and write
                       them to /work/cache/ranker/; once with the whole knowledge base and once
                       with every other document left out (a filter: the half-out measure)
    augment DIR LANG   recompute the features of the cached candidates (the same chunks, from
                       the study company) when features were added whose inputs the cache
                       lacks, keeping the retrieval scores collected before; the new
                       columns come from the production code (``knowledge.ranker.features``)

Run from a worktree with ``PYTHONPATH=$PWD/src:$PWD`` and ``ATENDE_DATA_DIR`` set;
training (``scripts/ranker_train.py``) reads only the cached files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, text

from atende.bootstrap import open_runtime
from atende.config import get_settings
from atende.engine import smalltalk
from atende.engine.turn import normalised
from atende.evaluation.datasets import load
from atende.evaluation.reranked import RememberingEmbedder
from atende.evaluation.scoring import Retrieved, is_hit
from atende.evaluation.vectors import text_key
from atende.knowledge import message_terms
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import embedder_for, passage_text
from atende.knowledge.filters import Filters
from atende.knowledge.models import Chunk, Document
from atende.knowledge.retrieval import HybridRetriever, Stage
from atende.knowledge.tasks import chunking
from atende.runtime import Runtime
from atende.tenancy import service as tenancy

CACHE = Path("/work/cache")
STUDY = CACHE / "ranker"
VECTORS = CACHE / "vectors"
CANDIDATES = 50


_key = text_key


def _set_name(directory: Path) -> str:
    return directory.name


def _state_path(directory: Path, lang: str) -> Path:
    return STUDY / f"{_set_name(directory)}-{lang}.company.json"


async def build(runtime: Runtime, directory: Path, lang: str) -> None:
    qa = load(directory, lang)
    state = _state_path(directory, lang)
    if state.exists():
        company_id = uuid.UUID(json.loads(state.read_text())["company_id"])
        async with runtime.db.transaction() as session:
            exists = await session.scalar(
                text("SELECT count(*) FROM companies WHERE id = :id"), {"id": company_id}
            )
        if exists:
            print(f"{state} exists: company {company_id}")
            return
    slug = f"study-{_set_name(directory)}-{lang}-{uuid.uuid4().hex[:6]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language=qa.language)
    documents: dict[str, str] = {}
    chunks = chunking(runtime)
    started = time.perf_counter()
    for doc_id in sorted(qa.documents):
        result = await knowledge.ingest(
            runtime.db,
            company.id,
            source=f"{doc_id}.txt",
            data=qa.document_text(doc_id).encode(),
            max_bytes=runtime.settings.max_document_bytes,
            chunking=chunks,
            embedder=None,
            title=qa.document_title(doc_id),
            lang=qa.language,
        )
        documents[str(result.document.id)] = doc_id
    print(f"ingested {len(documents)} documents in {time.perf_counter() - started:.0f} s", flush=True)
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    cached = VECTORS / f"{_set_name(directory)}-{lang}.npz"
    async with runtime.db.transaction(company.id) as session:
        rows = (
            await session.execute(
                select(Chunk.id, Document.title, Chunk.section, Chunk.text).join(
                    Document, Document.id == Chunk.document_id
                )
            )
        ).all()
    restored = 0
    if cached.exists():
        saved = np.load(cached)
        index = {k: i for i, k in enumerate(saved["keys"].tolist())}
        ids, vectors = [], []
        for chunk_id, title, section, body in rows:
            i = index.get(_key(passage_text(title, section, body)))
            if i is not None:
                ids.append(chunk_id)
                vectors.append(saved["vectors"][i].tolist())
        async with runtime.db.transaction(company.id) as session:
            for start in range(0, len(ids), 256):
                await knowledge.store_vectors(
                    session, embedder.model, ids[start : start + 256], vectors[start : start + 256]
                )
        restored = len(ids)
    started = time.perf_counter()
    embedded = await knowledge.embed_missing(runtime.db, company.id, embedder)
    print(f"restored {restored} vectors, embedded {embedded} in {time.perf_counter() - started:.0f} s")
    await _export_vectors(runtime, company.id, embedder.model, cached)
    state.write_text(json.dumps({"company_id": str(company.id), "documents": documents}))
    print(f"study company {company.id} -> {state}")


async def _export_vectors(runtime: Runtime, company_id: uuid.UUID, model: str, path: Path) -> None:
    async with runtime.db.transaction(company_id) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT d.title, c.section, c.text, v.embedding::text FROM chunk_vectors v"
                    " JOIN chunks c ON c.id = v.chunk_id JOIN documents d ON d.id = c.document_id"
                    " WHERE v.company_id = :company AND v.model = :model"
                ),
                {"company": company_id, "model": model},
            )
        ).all()
    texts = [passage_text(r[0], r[1], r[2]) for r in rows]
    vectors = np.array([json.loads(r[3]) for r in rows], dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, keys=np.array([_key(t) for t in texts]), texts=np.array(texts), vectors=vectors, model=model
    )
    print(f"{len(texts)} vectors -> {path}")


async def collect(runtime: Runtime, directory: Path, lang: str, limit: int | None) -> None:
    from atende.knowledge.ranker.features import FEATURES, candidate_features

    qa = load(directory, lang)
    state = json.loads(_state_path(directory, lang).read_text())
    company_id = uuid.UUID(state["company_id"])
    documents = {uuid.UUID(k): v for k, v in state["documents"].items()}
    doc_ids = sorted(qa.documents)
    kept = set(doc_ids[::2])
    kept_filter = Filters(documents=tuple(d for d, doc in documents.items() if doc in kept))
    model = embedder_for(runtime, None)
    assert model is not None
    embedder = RememberingEmbedder(model)  # the question is embedded once, not once a stage
    settings = runtime.settings
    retriever = HybridRetriever(
        embedder,
        settings.fusion_dense_weights,
        candidates=CANDIDATES,
        method=settings.fusion,
        query_chars=settings.embed_query_chars,
    )
    questions = qa.questions if limit is None else qa.questions[:: max(1, len(qa.questions) // limit)]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for first in (0, 1):
        asked = list(range(first, len(questions), 2))
        seen = [normalised(q.question) for q in questions[1 - first :: 2]]
        async with runtime.db.transaction(company_id) as session:
            await message_terms.learn(session, [[question] for question in seen])
        for n, i in enumerate(asked):
            question = questions[i]
            for half, filters in (("full", Filters()), ("half", kept_filter)):
                async with runtime.db.transaction(company_id) as session:
                    # the query as the turn ranks it (normalised, an opening greeting removed)
                    query = smalltalk.without_greeting(normalised(question.question))
                    stages: list[Stage] = []
                    t0 = time.perf_counter()
                    fused = await retriever.retrieve(
                        session, query, CANDIDATES, qa.language, filters=filters, stages=stages
                    )
                    retrieve_ms = (time.perf_counter() - t0) * 1000
                    vector = await embedder.query(retriever.embedded_part(query))
                    t0 = time.perf_counter()
                    matrix = await candidate_features(session, query, qa.language, fused, vector, model.model)
                    feature_ms = (time.perf_counter() - t0) * 1000
                gold = qa.passages[question.passage_id]
                labels = [
                    is_hit(
                        Retrieved(documents[p.document_id], p.text),
                        question,
                        gold,
                        passage_level=qa.passage_level,
                    )
                    for p in fused
                ]
                rows.append(
                    {
                        "q": i,
                        "qid": question.question_id,
                        "half": half,
                        "answerable": half == "full" or question.doc_id in kept,
                        "features": matrix.round(5).tolist(),
                        "labels": labels,
                        "chunks": [str(p.chunk_id) for p in fused],
                        "retrieve_ms": round(retrieve_ms, 2),
                        "feature_ms": round(feature_ms, 2),
                    }
                )
            if n % 100 == 0:
                print(f"pass {first}: {n}/{len(asked)} in {time.perf_counter() - started:.0f} s", flush=True)
    out = STUDY / f"{_set_name(directory)}-{lang}.candidates.jsonl"
    with out.open("w") as handle:
        handle.write(json.dumps({"features": list(FEATURES)}) + "\n")
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    print(f"{len(rows)} rows -> {out} in {time.perf_counter() - started:.0f} s")


async def augment(runtime: Runtime, directory: Path, lang: str) -> None:
    """Add the columns of ``FEATURES`` the cached rows lack, from the study company's chunks:
    each row's candidates rebuilt as the retriever gave them (the cached cosines standing in
    for the dense scores, so no question is embedded again) and their features computed by
    ``candidate_features`` itself; the columns already cached are kept (checked against the
    recomputed ones where they do not depend on retrieval's scores)."""
    from atende.knowledge.passages import Passage
    from atende.knowledge.ranker.features import FEATURES, candidate_features

    qa = load(directory, lang)
    state = json.loads(_state_path(directory, lang).read_text())
    company_id = uuid.UUID(state["company_id"])
    path = STUDY / f"{_set_name(directory)}-{lang}.candidates.jsonl"
    lines = path.read_text().splitlines()
    old = list(json.loads(lines[0])["features"])
    added = [name for name in FEATURES if name not in old]
    if not added:
        print(f"{path}: nothing to add")
        return
    async with runtime.db.transaction(company_id) as session:
        chunk_rows = (
            await session.execute(
                text(
                    "SELECT c.id, c.document_id, d.title, c.section, c.text, c.language,"
                    " tsvector_to_array(c.tsv) FROM chunks c JOIN documents d ON d.id = c.document_id"
                )
            )
        ).all()
    chunks = {str(r[0]): r for r in chunk_rows}
    cosine = old.index("cosine")
    out = [json.dumps({"features": list(FEATURES)})]
    started = time.perf_counter()
    costs: list[float] = []
    for n, line in enumerate(lines[1:]):
        row = json.loads(line)
        question = qa.questions[row["q"]]
        query = smalltalk.without_greeting(normalised(question.question))
        cached = np.array(row["features"], dtype=float).reshape(len(row["chunks"]), len(old))
        passages = [
            Passage(
                chunk_id=chunks[c][0],
                document_id=chunks[c][1],
                title=chunks[c][2],
                section=chunks[c][3],
                text=chunks[c][4],
                language=chunks[c][5],
                score=0.0,
                lexemes=frozenset(chunks[c][6]),
                scores={"dense": float(cached[j, cosine])},
            )
            for j, c in enumerate(row["chunks"])
        ]
        if passages:
            async with runtime.db.transaction(company_id) as session:
                t0 = time.perf_counter()
                fresh = await candidate_features(session, query, qa.language, passages, [0.0])
                costs.append((time.perf_counter() - t0) * 1000)
            for name in ("coverage", "coverage_idf", "sentence_coverage", "length"):
                a, b = cached[:, old.index(name)], fresh[:, FEATURES.index(name)]
                assert np.allclose(a, b, atol=1e-3), (row["qid"], name, a[:5], b[:5])
            merged = np.column_stack(
                [cached[:, old.index(f)] if f in old else fresh[:, FEATURES.index(f)] for f in FEATURES]
            )
        else:
            merged = np.zeros((0, len(FEATURES)))
        row["features"] = merged.round(5).tolist()
        out.append(json.dumps(row))
        if n % 500 == 0:
            print(f"{n}/{len(lines) - 1} in {time.perf_counter() - started:.0f} s", flush=True)
    path.write_text("\n".join(out) + "\n")
    p50, p99 = np.percentile(costs, [50, 99]) if costs else (0.0, 0.0)
    print(f"added {added} to {len(out) - 1} rows -> {path}; features ms p50 {p50:.1f} p99 {p99:.1f}")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("phase", choices=["build", "collect", "augment"])
    parser.add_argument("directory", type=Path)
    parser.add_argument("lang")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(argv)
    STUDY.mkdir(parents=True, exist_ok=True)
    async with open_runtime(get_settings(), listen=False) as runtime:
        if args.phase == "build":
            await build(runtime, args.directory, args.lang)
        elif args.phase == "augment":
            await augment(runtime, args.directory, args.lang)
        else:
            await collect(runtime, args.directory, args.lang, args.limit)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
