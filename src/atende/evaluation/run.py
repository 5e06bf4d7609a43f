"""``atende eval``: ingest a QA set into scratch companies and measure retrieval and answers.

Per language: every document goes into one scratch company (and is embedded, when an
embedder is configured); each question runs the bot's read-only pipeline
(``engine.turn.think``: the answer it would give, with its citation) and atende's
full-text, dense and hybrid retrievers for the top 10 (recall@1/5/10, MRR@10), beside a
plain BM25 over the same chunks. Spanish questions are also asked of the English
knowledge base (cross-lingual). Then every other document is deleted: questions about the
left-out half should be handed off, the others answered. The scratch companies are
deleted at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from atende.engine.tasks import ports_for
from atende.engine.turn import Ports, Turn, normalised, think
from atende.errors import InvalidInput
from atende.evaluation.baseline import BM25Baseline
from atende.evaluation.datasets import QAQuestion, QASet, available_languages, cross_lingual, load
from atende.evaluation.followups import KINDS, follow_up_pairs
from atende.evaluation.followups import measure as measure_follow_ups
from atende.evaluation.reranked import Reranking, reranking_pair
from atende.evaluation.scoring import Retrieved, comes_from, figures, first_hit, is_hit
from atende.evaluation.vectors import SavedVectors
from atende.knowledge import message_terms
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import Embedder, embedder_for
from atende.knowledge.models import Chunk, Document
from atende.knowledge.retrieval import DenseRetriever, FullTextRetriever, Retriever
from atende.knowledge.tasks import chunking
from atende.runtime import Runtime
from atende.tenancy import service as tenancy

T = TypeVar("T")
RANKS = 10
FOLLOW_UPS = " follow-ups"  # the name of a language's follow-up figures: "en follow-ups"
CONCURRENCY = 4
CROSS_LINGUAL = (("es", "en"),)

# progress reporting: (phase description, total) -> advance(n)
Progress = Callable[[str, int], Callable[[int], None]]


def no_progress(_description: str, _total: int) -> Callable[[int], None]:
    return lambda _n: None


@dataclass
class Scratch:
    """A scratch company holding some of a set's documents."""

    company_id: uuid.UUID
    qa: QASet
    documents: dict[uuid.UUID, str]  # atende document id -> the set's doc_id
    chunk_texts: list[str]
    chunk_docs: list[str]


@dataclass
class Outcome:
    """What the bot did with one question."""

    answered: bool
    cited_gold: bool
    query: str
    ranked: dict[str, list[Retrieved]]  # retriever label -> its top 10


def _labelled(progress: Progress, label: str) -> Progress:
    return lambda description, total: progress(f"{label}: {description}", total)


async def _build(
    runtime: Runtime,
    qa: QASet,
    doc_ids: Sequence[str],
    label: str,
    progress: Progress,
    embedder: Embedder | None,
) -> Scratch:
    slug = f"eval-{label}-{uuid.uuid4().hex[:8]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language=qa.language)
    advance = progress(f"{label}: ingesting {len(doc_ids)} documents", len(doc_ids))
    documents: dict[uuid.UUID, str] = {}
    chunks = chunking(runtime)
    for doc_id in doc_ids:
        result = await knowledge.ingest(
            runtime.db,
            company.id,
            source=f"{doc_id}.txt",
            data=qa.document_text(doc_id).encode(),
            max_bytes=runtime.settings.max_document_bytes,
            chunking=chunks,
            embedder=None,  # embedded below, all chunks in full batches
            title=qa.document_title(doc_id),
            lang=qa.language,
        )
        documents[result.document.id] = doc_id
        advance(1)
    if embedder is not None:
        await knowledge.embed_missing(runtime.db, company.id, embedder, progress=_labelled(progress, label))
    async with runtime.db.transaction(company.id) as session:
        rows = (
            await session.execute(
                select(Document.title, Chunk.section, Chunk.text, Chunk.document_id)
                .join(Document, Document.id == Chunk.document_id)
                .order_by(Chunk.document_id, Chunk.ordinal)
            )
        ).all()
    return Scratch(
        company.id,
        qa,
        documents,
        chunk_texts=[
            " ".join(part for part in (title, section, text) if part) for title, section, text, _ in rows
        ],
        chunk_docs=[documents[doc] for *_, doc in rows],
    )


async def _drop(runtime: Runtime, scratch: Scratch) -> None:
    async with runtime.db.transaction() as session:
        await tenancy.delete_company(session, scratch.company_id)


async def _ask_all(
    runtime: Runtime,
    ports: Ports,
    scratch: Scratch,
    questions: Sequence[QAQuestion],
    gold_set: QASet,
    *,
    retrievers: dict[str, Retriever],
    advance: Callable[[int], None],
) -> list[Outcome]:
    """Every question through the bot's pipeline (and each retriever's top 10), in two
    passes: the 1st, 3rd, 5th… questions while the company's customer-message statistics are
    those of the others, then the other way round. That is how the bot meets a message: the
    statistics come from earlier messages, never from the one being answered
    (``knowledge.message_terms``)."""
    outcomes: list[Outcome | None] = [None] * len(questions)
    for first in (0, 1):
        asked = list(range(first, len(questions), 2))
        seen = [normalised(q.question) for q in questions[1 - first :: 2]]
        async with runtime.db.transaction(scratch.company_id) as session:
            await message_terms.learn(session, [[question] for question in seen])  # one customer each
        pass_questions = [questions[i] for i in asked]
        found = await _ask_pass(
            runtime, ports, scratch, pass_questions, gold_set, retrievers=retrievers, advance=advance
        )
        for i, outcome in zip(asked, found, strict=True):
            outcomes[i] = outcome
    return [o for o in outcomes if o is not None]


async def _ask_pass(
    runtime: Runtime,
    ports: Ports,
    scratch: Scratch,
    questions: Sequence[QAQuestion],
    gold_set: QASet,
    *,
    retrievers: dict[str, Retriever],
    advance: Callable[[int], None],
) -> list[Outcome]:
    passage_level = gold_set.passage_level
    limit = asyncio.Semaphore(CONCURRENCY)

    async def ask(question: QAQuestion) -> Outcome:
        async with limit, runtime.db.transaction(scratch.company_id) as session:
            turn = await think(
                session,
                Turn(scratch.company_id, question.question, default_language=scratch.qa.language),
                ports,
            )
            ranked: dict[str, list[Retrieved]] = {}
            for label, retriever in retrievers.items():
                passages = await retriever.retrieve(session, turn.query, RANKS, turn.language)
                ranked[label] = [Retrieved(scratch.documents[p.document_id], p.text) for p in passages]
        gold = gold_set.passages[question.passage_id]
        answered = turn.decision == "answer" and turn.answer is not None and not turn.small_talk
        cited = turn.answer.citations if answered and turn.answer else []
        # the answer cites a chunk of the gold passage (its words are the passage's own)
        cited_gold = any(
            comes_from(
                Retrieved(scratch.documents[uuid.UUID(c["document_id"])], _chunk_text(turn, c["chunk_id"])),
                gold,
                whole_document=passage_level,
            )
            for c in cited
        )
        advance(1)
        return Outcome(answered, cited_gold, turn.query, ranked)

    return list(await asyncio.gather(*(ask(q) for q in questions)))


def _chunk_text(turn: Turn, chunk_id: str) -> str:
    return next((p.text for p in turn.retrieved() if str(p.chunk_id) == chunk_id), "")


def _retrieval(
    scratch: Scratch, outcomes: Sequence[Outcome], questions: Sequence[QAQuestion], gold_set: QASet
) -> dict[str, dict[str, float | int]]:
    passage_level = gold_set.passage_level
    rows: dict[str, dict[str, float | int]] = {}
    for label in outcomes[0].ranked if outcomes else ():
        ranks = [
            first_hit(
                [
                    is_hit(r, q, gold_set.passages[q.passage_id], passage_level=passage_level)
                    for r in o.ranked[label]
                ]
            )
            for q, o in zip(questions, outcomes, strict=True)
        ]
        rows[label] = figures(ranks).as_dict()
    bm25 = BM25Baseline(scratch.chunk_texts, scratch.qa.language)
    found = bm25.search([q.question for q in questions], RANKS)
    bm25_ranks = [
        first_hit(
            [
                is_hit(
                    Retrieved(scratch.chunk_docs[i], scratch.chunk_texts[i]),
                    q,
                    gold_set.passages[q.passage_id],
                    passage_level=passage_level,
                )
                for i in ids
            ]
        )
        for q, ids in zip(questions, found, strict=True)
    ]
    rows["BM25 baseline (bm25s)"] = figures(bm25_ranks).as_dict()
    return rows


def _share(flags: Iterable[bool]) -> float | None:
    values = list(flags)
    return round(sum(values) / len(values), 4) if values else None


def sample(questions: Sequence[T], limit: int | None) -> list[T]:
    """``limit`` questions spread evenly over the set (its documents come in order), or all."""
    if limit is None or limit >= len(questions):
        return list(questions)
    step = len(questions) / limit
    return [questions[int(i * step)] for i in range(limit)]


def retrievers_of(
    ports: Ports, embedder: Embedder | None, query_chars: int, reranked: Reranking | None = None
) -> dict[str, Retriever]:
    """The retrievers measured: full-text, and with an embedder dense and the hybrid without
    and with the learned re-ranker (``reranked``, whose hybrid is the one without)."""
    measured: dict[str, Retriever] = {"atende full-text": FullTextRetriever()}
    if embedder is not None:
        measured["atende dense"] = DenseRetriever(embedder, query_chars=query_chars)
        if reranked is None:
            measured[f"atende {ports.retriever.name}"] = ports.retriever
        else:
            measured[f"atende {reranked.plain.name}"] = reranked.plain
            measured[f"atende {reranked.reranked.name}"] = reranked.reranked
    return measured


def _latency(reranked: Reranking | None) -> dict[str, float] | None:
    """The re-ranker's added time per question since the last call (ms), and forget it."""
    if reranked is None or not reranked.timed.rerank_ms:
        return None
    times = sorted(reranked.timed.rerank_ms)
    reranked.timed.rerank_ms.clear()
    return {
        "calls": len(times),
        "mean_ms": round(sum(times) / len(times), 2),
        "p50_ms": round(times[len(times) // 2], 2),
        "p95_ms": round(times[min(len(times) - 1, int(len(times) * 0.95))], 2),
    }


async def _evaluate_language(
    runtime: Runtime,
    ports: Ports,
    embedder: Embedder | None,
    qa: QASet,
    questions: Sequence[QAQuestion],
    progress: Progress,
    cross_from: Sequence[tuple[QASet, int | None]] = (),
    follow_ups: int | None = 0,
    reranked: Reranking | None = None,
) -> dict[str, dict[str, Any]]:
    """The language's figures (and those of questions in other languages asked of its
    knowledge base, and of follow-ups: ``follow_ups`` pairs, ``None`` all, 0 none); the
    half-left-out measure deletes every other document of the same scratch company (no
    second ingestion, no second embedding)."""
    doc_ids = sorted(qa.documents)
    full = await _build(runtime, qa, doc_ids, qa.language, progress, embedder)
    try:
        retrievers = retrievers_of(ports, embedder, runtime.settings.embed_query_chars, reranked)
        advance = progress(f"{qa.language}: asking {len(questions)} questions", len(questions))
        _latency(reranked)
        outcomes = await _ask_all(runtime, ports, full, questions, qa, retrievers=retrievers, advance=advance)
        latency = _latency(reranked)
        results: dict[str, dict[str, Any]] = {}
        crossed: list[tuple[str, list[QAQuestion]]] = []
        for source, limit in cross_from:
            cross_questions = sample(cross_lingual(source, full.qa), limit)
            cross = await _evaluate_cross(
                runtime, ports, retrievers, source.language, full, cross_questions, progress
            )
            if cross:
                cross["rerank_latency"] = _latency(reranked)
                results[f"{source.language}->{qa.language}"] = cross
                crossed.append((f"{source.language}->{qa.language}", cross_questions))
        if follow_ups != 0:
            pairs = follow_up_pairs(qa)
            pairs = [p for kind in KINDS for p in sample([p for p in pairs if p.kind == kind], follow_ups)]
            advance = progress(f"{qa.language}: asking {len(pairs)} follow-up pairs", len(pairs))
            results[qa.language + FOLLOW_UPS] = await measure_follow_ups(
                runtime, ports, full.company_id, full.documents, qa, pairs, advance
            )
        kept = doc_ids[::2]
        kept_set = set(kept)
        async with runtime.db.transaction(full.company_id) as session:
            for document_id, doc_id in full.documents.items():
                if doc_id not in kept_set:
                    await knowledge.delete_document(session, document_id)
        advance = progress(f"{qa.language}: half the documents left out", len(questions))
        half_outcomes = await _ask_all(runtime, ports, full, questions, qa, retrievers={}, advance=advance)
        for name, cross_questions in crossed:
            advance = progress(f"{name}: half the documents left out", len(cross_questions))
            cross_half = await _ask_all(
                runtime, ports, full, cross_questions, qa, retrievers={}, advance=advance
            )
            results[name]["half_left_out"] = _half_left_out(cross_questions, cross_half, kept_set)
    finally:
        await _drop(runtime, full)
    result = {
        "questions": len(questions),
        "documents": len(doc_ids),
        "chunks": len(full.chunk_texts),
        "hit_rule": "passage" if qa.passage_level else "passage + answer span",
        "retrieval": _retrieval(full, outcomes, questions, qa),
        "rerank_latency": latency,
        "answers": {
            "answered": _share(o.answered for o in outcomes),
            "cited_gold": _share(o.cited_gold for o in outcomes),
        },
        "half_left_out": _half_left_out(questions, half_outcomes, kept_set),
    }
    return {qa.language: result, **results}


def _half_left_out(
    questions: Sequence[QAQuestion], outcomes: Sequence[Outcome], kept: set[str]
) -> dict[str, Any]:
    """Answers once every other document is deleted: questions about a kept document should
    be answered citing it, the others handed off."""
    answerable = [o for q, o in zip(questions, outcomes, strict=True) if q.doc_id in kept]
    unanswerable = [o for q, o in zip(questions, outcomes, strict=True) if q.doc_id not in kept]
    return {
        "documents_kept": len(kept),
        "answerable_questions": len(answerable),
        "unanswerable_questions": len(unanswerable),
        "answered_answerable": _share(o.answered for o in answerable),
        "cited_gold_answerable": _share(o.cited_gold for o in answerable),
        "handoff_unanswerable": _share(not o.answered for o in unanswerable),
    }


async def _evaluate_cross(
    runtime: Runtime,
    ports: Ports,
    retrievers: dict[str, Retriever],
    source_language: str,
    target: Scratch,
    questions: Sequence[QAQuestion],
    progress: Progress,
) -> dict[str, Any] | None:
    """Questions in another language asked of ``target``'s knowledge base (the half-left-out
    figures are added once the documents are halved)."""
    if not questions:
        return None
    advance = progress(
        f"{source_language}→{target.qa.language}: asking {len(questions)} questions", len(questions)
    )
    outcomes = await _ask_all(
        runtime, ports, target, questions, target.qa, retrievers=retrievers, advance=advance
    )
    return {
        "questions": len(questions),
        "hit_rule": "passage (answers are in the other language)",
        "retrieval": _retrieval(target, outcomes, questions, target.qa),
        "answers": {
            "answered": _share(o.answered for o in outcomes),
            "cited_gold": _share(o.cited_gold for o in outcomes),
        },
    }


async def evaluate(
    runtime: Runtime,
    directory: Path,
    languages: Sequence[str] | None = None,
    *,
    limit: int | None = None,
    progress: Progress = no_progress,
    on_language: Callable[[str, dict[str, Any]], Awaitable[None] | None] | None = None,
    follow_ups: bool = False,
    rerank: bool = True,
    vectors: Path | None = None,
) -> dict[str, Any]:
    """Measure retrieval and answers on the QA set in ``directory`` (see the module docstring).

    With an embedder, the hybrid retriever is measured without and with the learned
    re-ranker, and the bot's pipeline retrieves with it when ``rerank`` (else without).
    ``vectors``: a folder of chunk vectors saved earlier (``evaluation.vectors``)."""
    found = available_languages(directory)
    chosen = list(languages) if languages else found
    missing = [lang for lang in chosen if lang not in found]
    if missing:
        raise InvalidInput(
            f"{directory} has no {', '.join(missing)} set; it has: {', '.join(found) or 'none'}"
        )
    ports = ports_for(runtime)
    embedder = embedder_for(runtime, None)
    if embedder is not None and vectors is not None:
        embedder = SavedVectors(embedder, vectors)
    reranked: Reranking | None = None
    if embedder is not None:
        reranked = reranking_pair(runtime, embedder)
        ports = replace(ports, retriever=reranked.reranked if rerank else reranked.plain)
    sets = {lang: load(directory, lang) for lang in chosen}
    results: dict[str, Any] = {}
    follow_up_results: dict[str, Any] = {}
    for lang, qa in sets.items():
        cross_from = [
            (sets[source], limit) for source, target in CROSS_LINGUAL if target == lang and source in sets
        ]
        questions = sample(qa.questions, limit)
        measured = await _evaluate_language(
            runtime,
            ports,
            embedder,
            qa,
            questions,
            progress,
            cross_from,
            limit if follow_ups else 0,
            reranked,
        )
        for name, figures_ in measured.items():
            if name.endswith(FOLLOW_UPS):
                follow_up_results[name.removesuffix(FOLLOW_UPS)] = figures_
                continue
            results[name] = figures_
            if on_language:
                await _maybe_await(on_language(name, figures_))
    return {
        "dataset": str(directory),
        "settings": {
            "retriever": ports.retriever.name,
            "rerank": rerank and reranked is not None,
            "embedder": embedder.model if embedder else None,
            "fusion": runtime.settings.fusion,
            "embed_query_chars": runtime.settings.embed_query_chars,
            "fusion_dense_weights": runtime.settings.fusion_dense_weights,
            "answerer": ports.answerer.name,
            "top_k": ports.top_k,
            "evidence_threshold": runtime.settings.evidence_threshold,
            "evidence_thresholds": runtime.settings.evidence_thresholds,
            "chunk_max_chars": runtime.settings.chunk_max_chars,
            "questions_per_language": limit,
        },
        "results": results,
        **({"follow_ups": follow_up_results} if follow_ups else {}),
    }


async def _maybe_await(value: Awaitable[None] | None) -> None:
    if value is not None:
        await value
