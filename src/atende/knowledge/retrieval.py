"""Retrieval: the ``Retriever`` port and its full-text implementation over PostgreSQL.

Chunks are indexed with their document's text-search configuration (Portuguese, English
or Spanish stemming) over accent-folded text; ingestion also writes each chunk's postings
(``chunk_terms``: lexeme, term frequency, chunk length) and the company's lexeme statistics
(in how many chunks each lexeme occurs). A question is stemmed under all three
configurations, and the chunks are ranked by **BM25** over its terms, in one statement
that reads only the postings of those terms: inverse document frequency from the
statistics, term frequency saturated by ``k1``, length normalised by ``b`` against the
company's average chunk; each term's weight is also scaled down by how common it is in the
company's customer messages (``knowledge.message_terms``). (``ts_rank_cd``, used before,
has no inverse document frequency: common words weighed as much as rare ones, and the right
chunk came first far less often; see ``docs/EVALUATION.md``.) Each hit also carries the
chunk's lexemes, so the answerer can measure how much of the question the passage covers
(the evidence) with the same stemmer that indexed it.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of
from atende.knowledge.embedding import Embedder, EmbeddingUnavailable, Vector, to_sql
from atende.knowledge.filters import NO_FILTERS, Filters, chunk_clause, failing_documents_sql
from atende.knowledge.passages import Passage
from atende.knowledge.rerank import RerankStep, rerank
from atende.knowledge.text import TS_CONFIG, fold, subject_line, topic_text

log = structlog.get_logger(__name__)


@dataclass
class Stage:
    """What one stage of retrieval returned, best first: ``fulltext`` (BM25), ``dense``
    (nearest vectors), ``fused`` (their fusion), then each re-ranking stage (``reranked``,
    ``llm_reranked``: the whole ranking after it). ``kept``: how many of them go on to the
    next stage or the answerer (``None``: all); ``error``: why the stage returned nothing (its
    retrieval was unavailable), or why a re-ranking stage kept the order before it."""

    name: str
    passages: list[Passage]
    ms: float
    kept: int | None = None
    error: str | None = None


class Retriever(Protocol):
    """Finds the ``k`` best passages for ``query`` among the chunks that pass ``filters``;
    when given ``stages``, appends what each of its stages returned (the dashboard's "try
    a question" and ``POST /v1/search`` show them; a turn keeps them in its trace). A
    retriever that compares vectors looks up ``vector`` when given one (its embedder's
    embedding of ``query``, started by the caller) instead of embedding ``query`` itself: a
    message of several questions has its embedding started before its lookup
    (``engine.turn.embed_early``)."""

    name: str

    async def retrieve(
        self,
        session: AsyncSession,
        query: str,
        k: int,
        language: str | None = None,
        *,
        filters: Filters = NO_FILTERS,
        stages: list[Stage] | None = None,
        vector: Awaitable[Vector] | None = None,
    ) -> list[Passage]: ...


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


K1 = 1.2  # BM25 term-frequency saturation
# BM25 length normalisation: 0.9 rather than the usual 0.75, a long answer that mentions a
# customer's words in passing ranks lower (support set recall@5 +0.008, docs/EVALUATION.md)
B = 0.9
# a long e-mail is ranked by its weightiest lexemes only (the rarest, a subject's first):
# the common ones add little to BM25 and their long postings were most of the statement's
# time (docs/EVALUATION.md)
MAX_TERMS = 48
# the terms of an e-mail's subject line weigh more: it names the topic the body wanders
# around (support set recall@5 +0.01, docs/EVALUATION.md)
SUBJECT_WEIGHT = 1.5
# a term's weight also falls with how many of the company's recent customers (contacts, one
# vote each) wrote it, once at least CONTACTS_MIN were counted, down to MESSAGES_FLOOR
# (``knowledge.message_terms``)
CONTACTS_MIN = 200
MESSAGES_FLOOR = 0.2

# one round trip: idf from the lexeme statistics ('' counts the chunks) times the term's
# weight in the question (subject line), the rarest such terms (short postings: rarity in the
# knowledge base decides what is read), each weighed by its rarity in customers' messages,
# their postings, the top k, and the chunks' text
BM25_TEMPLATE = """
    WITH total AS (
        SELECT greatest(chunks, 1)::float8 AS n FROM lexeme_stats WHERE company_id = :company AND lexeme = ''
    ), asked AS (
        SELECT contacts::float8 AS n FROM message_lexeme_stats
         WHERE company_id = :company AND lexeme = '' AND contacts >= :min_contacts
    ), rarest AS (
        SELECT s.lexeme,
               CASE WHEN s.lexeme = ANY(CAST(:subject_terms AS text[])) THEN :subject_weight ELSE 1 END
               * ln(1 + (total.n - s.chunks + 0.5) / (s.chunks + 0.5)) AS idf
          FROM lexeme_stats s CROSS JOIN total
         WHERE s.company_id = :company AND s.lexeme = ANY(CAST(:terms AS text[])) AND s.chunks > 0
         ORDER BY idf DESC, s.lexeme
         LIMIT :max_terms
    ), q AS (
        SELECT r.lexeme,
               r.idf * CASE WHEN asked.n IS NULL THEN 1 ELSE greatest(
                   :floor, ln((asked.n + 1) / (coalesce(m.contacts, 0) + 1)) / ln(asked.n + 1)) END AS idf
          FROM rarest r LEFT JOIN asked ON true
          LEFT JOIN message_lexeme_stats m ON m.company_id = :company AND m.lexeme = r.lexeme
    ), avgdl AS (
        SELECT greatest(avg(token_count), 1)::float8 AS v FROM chunks WHERE company_id = :company
    ), scored AS (
        SELECT t.chunk_id,
               sum(q.idf * t.tf * (:k1 + 1) / (t.tf + :k1 * (1 - :b + :b * t.dl / avgdl.v))) AS score
          FROM q JOIN chunk_terms t ON t.company_id = :company AND t.lexeme = q.lexeme
         CROSS JOIN avgdl
         WHERE true{filter}
         GROUP BY t.chunk_id
         ORDER BY score DESC, t.chunk_id
         LIMIT :k
    )
    SELECT c.id, c.document_id, d.title, c.section, c.text, c.language, s.score, tsvector_to_array(c.tsv)
      FROM scored s
      JOIN chunks c ON c.id = s.chunk_id AND c.company_id = :company
      JOIN documents d ON d.id = c.document_id AND d.company_id = :company
     ORDER BY s.score DESC, c.id
"""
BM25_SQL = BM25_TEMPLATE.format(filter="")
_BM25 = text(BM25_SQL)


_NARROWS_KEY = "atende.filters_narrow"


async def narrowing(session: AsyncSession, filters: Filters) -> Filters:
    """``filters`` if some document of the company fails them, else ``NO_FILTERS``: the
    rules a customer's turn always carries (no internal document, none out of date) leave
    the statements exactly as unfiltered when no document is internal or out of date. One
    short query on the company's documents, once per filters and session."""
    if not filters:
        return NO_FILTERS
    known: dict[Filters, bool] = session.info.setdefault(_NARROWS_KEY, {})
    if filters not in known:
        sql, params = failing_documents_sql(filters)
        known[filters] = bool(await session.scalar(text(sql), {"company": company_of(session), **params}))
    return filters if known[filters] else NO_FILTERS


async def stems_and_narrowing(session: AsyncSession, query: str, filters: Filters) -> None:
    """Stem ``query`` (and its subject line) and learn whether ``filters`` narrow anything, in
    one round trip when both are still unknown to the session (``question_stems`` and
    ``narrowing`` then answer from its cache): a customer's turn always carries the company's
    rules, so their check would be a statement of its own on every turn."""
    subject = subject_line(query)
    cache: dict[str, dict[str, frozenset[str]]] = session.info.setdefault(_STEMS_KEY, {})
    known: dict[Filters, bool] = session.info.setdefault(_NARROWS_KEY, {})
    topics = dict.fromkeys([topic_text(query), *([topic_text(subject)] if subject else [])])
    missing = [t for t in topics if t not in cache]
    if not filters or filters in known or not missing:
        return
    sql, params = failing_documents_sql(filters)
    languages = list(TS_CONFIG)
    texts = [(t, lang) for t in missing for lang in languages]
    stems, narrows = await _lexemes_and(session, texts, sql, {"company": company_of(session), **params})
    known[filters] = bool(narrows)
    for i, topic in enumerate(missing):
        cache[topic] = dict(zip(languages, stems[i * len(languages) : (i + 1) * len(languages)], strict=True))


def bm25_statement(filters: Filters) -> tuple[Any, dict[str, Any]]:
    """The BM25 statement with ``filters`` applied to the postings it reads (before the top k)."""
    if not filters:
        return _BM25, {}
    clause, params = chunk_clause(filters, "t.chunk_id", hashed=True)
    return text(BM25_TEMPLATE.format(filter=clause)), params


def query_terms(stems: dict[str, frozenset[str]]) -> list[str]:
    """The lexemes a question is ranked by: its stems under every language's configuration."""
    return sorted(frozenset().union(*stems.values()))


async def bm25_params(session: AsyncSession, query: str, k: int) -> dict[str, Any]:
    """The BM25 statement's parameters for ``query``: its terms, each weighted 1, or
    ``SUBJECT_WEIGHT`` when it is also in the message's subject line (and, in the
    statement, by its rarity in the company's customer messages)."""
    subject = subject_line(query)
    stems = await question_stems(session, query, also=subject)
    terms = query_terms(stems)
    in_subject = query_terms(await question_stems(session, subject)) if subject else []
    return {
        "company": company_of(session),
        "terms": terms,
        "subject_terms": in_subject,
        "subject_weight": SUBJECT_WEIGHT,
        "min_contacts": CONTACTS_MIN,
        "floor": MESSAGES_FLOOR,
        "max_terms": MAX_TERMS,
        "k1": K1,
        "b": B,
        "k": k,
    }


class FullTextRetriever:
    """PostgreSQL full-text search (per-language stemming, accent folding), ranked by BM25."""

    name = "fulltext"

    async def retrieve(
        self,
        session: AsyncSession,
        query: str,
        k: int,
        language: str | None = None,
        *,
        filters: Filters = NO_FILTERS,
        stages: list[Stage] | None = None,
        vector: Awaitable[Vector] | None = None,
    ) -> list[Passage]:
        started = time.perf_counter()
        await stems_and_narrowing(session, query, filters)
        params = await bm25_params(session, query, k)
        found: list[Passage] = []
        if params["terms"]:
            statement, filtered = bm25_statement(await narrowing(session, filters))
            found = _passages((await session.execute(statement, params | filtered)).all(), "bm25")
        if stages is not None:
            stages.append(Stage("fulltext", found, _ms(started)))
        return found


def _passages(rows: Sequence[Any], kind: str) -> list[Passage]:
    return [
        Passage(
            chunk_id=r[0],
            document_id=r[1],
            title=r[2],
            section=r[3],
            text=r[4],
            language=r[5],
            score=float(r[6]),
            lexemes=frozenset(r[7]),
            scores={kind: round(float(r[6]), 4), f"{kind}_rank": rank},
        )
        for rank, r in enumerate(rows, start=1)
    ]


def dense_sql(dim: int, filter_clause: str = "") -> str:
    """Nearest chunks by cosine distance among one model's vectors of one company. The
    vectors are cast to their dimension so that, for the offline model's 384, the partial
    HNSW index answers (iterative scan: filtering by company, or by ``filter_clause``'s
    documents, never leaves it short)."""
    dim = int(dim)
    return f"""
    WITH nearest AS MATERIALIZED (
        SELECT v.chunk_id, v.embedding::vector({dim}) <=> CAST(:vector AS vector({dim})) AS distance
          FROM chunk_vectors v
         WHERE v.company_id = :company AND v.model = :model AND v.dim = {dim}{filter_clause}
         ORDER BY v.embedding::vector({dim}) <=> CAST(:vector AS vector({dim}))
         LIMIT :k
    )
    SELECT c.id, c.document_id, d.title, c.section, c.text, c.language, 1 - n.distance,
           tsvector_to_array(c.tsv)
      FROM nearest n
      JOIN chunks c ON c.id = n.chunk_id AND c.company_id = :company
      JOIN documents d ON d.id = c.document_id AND d.company_id = :company
     ORDER BY n.distance, c.id
    """


MAX_EF_SEARCH = 1000  # pgvector's limit; the iterative scan goes on past it for a larger k
# HNSW search settings for this transaction: enough candidates for the fusion, and an
# iterative scan so that rows of other companies filtered out never leave the top short
_HNSW_SETTINGS = text(
    "SELECT set_config('hnsw.ef_search', CAST(:ef AS text), true),"
    " set_config('hnsw.iterative_scan', 'relaxed_order', true)"
)


# the same, and which of some chunks have no vector of a model yet (``without_vector``)
_HNSW_SETTINGS_AND_UNEMBEDDED = text(
    """
    SELECT set_config('hnsw.ef_search', CAST(:ef AS text), true),
           set_config('hnsw.iterative_scan', 'relaxed_order', true),
           ARRAY(SELECT x.id FROM unnest(CAST(:ids AS uuid[])) AS x(id) WHERE NOT EXISTS (
               SELECT 1 FROM chunk_vectors v
                WHERE v.chunk_id = x.id AND v.company_id = :company AND v.model = :model))
    """
)


async def dense_search(
    session: AsyncSession, vector: Vector, model: str, k: int, filters: Filters = NO_FILTERS
) -> list[Passage]:
    """The ``k`` chunks nearest to ``vector`` among the company's vectors of ``model`` (of
    the documents that pass ``filters``)."""
    return (await dense_search_and_unembedded(session, vector, model, k, filters))[0]


async def dense_search_and_unembedded(
    session: AsyncSession,
    vector: Vector,
    model: str,
    k: int,
    filters: Filters = NO_FILTERS,
    chunk_ids: Sequence[uuid.UUID] = (),
) -> tuple[list[Passage], frozenset[uuid.UUID]]:
    """``dense_search``, and which of ``chunk_ids`` have no vector of ``model`` yet
    (``without_vector``), found by the statement that sets up the vector search: the
    hybrid retriever asks it on every turn, for BM25's candidates, and it costs no round
    trip of its own."""
    ef = min(MAX_EF_SEARCH, max(40, 2 * k))
    company = company_of(session)
    unembedded: frozenset[uuid.UUID] = frozenset()
    if chunk_ids:
        settings = {"ef": ef, "ids": list(chunk_ids), "company": company, "model": model}
        row = (await session.execute(_HNSW_SETTINGS_AND_UNEMBEDDED, settings)).one()
        unembedded = frozenset(row[2])
    else:
        await session.execute(_HNSW_SETTINGS, {"ef": ef})
    clause, filtered = chunk_clause(await narrowing(session, filters), "v.chunk_id")
    params = {"company": company, "vector": to_sql(vector), "model": model, "k": k}
    rows = (await session.execute(text(dense_sql(len(vector), clause)), params | filtered)).all()
    return _passages(rows, "dense"), unembedded


def embedded_part(query: str, chars: int) -> str:
    """The start of ``query`` that is embedded: at most ``chars``, cut between words."""
    if len(query) <= chars:
        return query
    cut = query[: chars + 1]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut[:chars]


class DenseRetriever:
    """Nearest neighbours of the question's embedding (pgvector)."""

    name = "dense"

    def __init__(self, embedder: Embedder, *, query_chars: int = 300) -> None:
        self.embedder = embedder
        self.query_chars = query_chars

    async def retrieve(
        self,
        session: AsyncSession,
        query: str,
        k: int,
        language: str | None = None,
        *,
        filters: Filters = NO_FILTERS,
        stages: list[Stage] | None = None,
        vector: Awaitable[Vector] | None = None,
    ) -> list[Passage]:
        started = time.perf_counter()
        if vector is None:
            vector = self.embedder.query(embedded_part(query, self.query_chars))
        found = await dense_search(session, await vector, self.embedder.model, k, filters)
        if stages is not None:
            stages.append(Stage("dense", found, _ms(started)))
        return found


# a normaliser maps a ranking to each chunk's normalised score, and gives the score of a
# chunk missing from that ranking
Normalised = tuple[dict[uuid.UUID, float], float]


def _min_max(passages: Sequence[Passage]) -> Normalised:
    """Scores scaled to 0..1; a chunk the ranking did not find scores 0."""
    if not passages:
        return {}, 0.0
    scores = [p.score for p in passages]
    low, high = min(scores), max(scores)
    span = high - low
    return {p.chunk_id: (p.score - low) / span if span > 0 else 1.0 for p in passages}, 0.0


def _z_scores(passages: Sequence[Passage]) -> Normalised:
    """Standard scores; a chunk the ranking did not find gets its lowest. A ranking of one
    score (one chunk, or ties only) has no spread to measure: as in min-max, its chunks
    score 1 and the others 0, so that finding a chunk still counts."""
    scores = [p.score for p in passages]
    spread = statistics.pstdev(scores) if len(scores) > 1 else 0.0
    if spread == 0:
        return {p.chunk_id: 1.0 for p in passages}, 0.0
    mean = statistics.fmean(scores)
    normalised = {p.chunk_id: (p.score - mean) / spread for p in passages}
    return normalised, min(normalised.values())


NORMALISERS = {"weighted": _min_max, "zscore": _z_scores}


def fuse(
    lexical: Sequence[Passage],
    dense: Sequence[Passage],
    dense_weight: float,
    k: int,
    *,
    method: str = "zscore",
    without_vector: frozenset[uuid.UUID] = frozenset(),
) -> list[Passage]:
    """Weighted fusion of normalised scores: standard scores (``zscore``: how far above its
    list's mean, in standard deviations; a chunk missing from one list gets that list's
    lowest) or min-max (``weighted``, measured a little worse: one outlier at the top
    squashes the rest of its list; a missing chunk scores 0). Reciprocal rank fusion was
    measured worse still: it weighs a weak dense hit as much as a strong lexical one
    (``docs/EVALUATION.md``); the weight is calibrated per language.

    A chunk in ``without_vector`` has no vector yet (its document is still being embedded):
    the dense side cannot have found it, and that list's lowest score would bury it (a
    question about such a document found it first 1 % of the time instead of 93 %). It
    gets instead the dense side's score of the rank BM25 gave it (BM25's first: the dense
    side's best score), as if the two agreed about it, on the dense side's own scale; its
    BM25 score alone on both sides measured worse (``docs/EVALUATION.md``, "A knowledge
    base still being embedded")."""
    normalise = NORMALISERS[method]
    (lexical_norm, lexical_missing), (dense_norm, dense_missing) = normalise(lexical), normalise(dense)
    dense_by_rank = sorted(dense_norm.values(), reverse=True)
    lexical_rank = {p.chunk_id: rank for rank, p in enumerate(lexical)}
    merged: dict[uuid.UUID, Passage] = {}
    for passage in [*lexical, *dense]:
        if passage.chunk_id in merged:
            merged[passage.chunk_id].scores.update(passage.scores)
        else:
            merged[passage.chunk_id] = replace(passage, scores=dict(passage.scores))
    for chunk_id, passage in merged.items():
        in_lexical = lexical_norm.get(chunk_id, lexical_missing)
        in_dense = dense_norm.get(chunk_id, dense_missing)
        if chunk_id in without_vector and lexical_rank.get(chunk_id, len(dense_by_rank)) < len(dense_by_rank):
            in_dense = dense_by_rank[lexical_rank[chunk_id]]
        passage.score = dense_weight * in_dense + (1 - dense_weight) * in_lexical
        passage.scores["fused"] = round(passage.score, 4)
    return sorted(merged.values(), key=lambda p: (-p.score, str(p.chunk_id)))[:k]


_WITHOUT_VECTOR = text(
    """
    SELECT x.id FROM unnest(CAST(:ids AS uuid[])) AS x(id)
     WHERE NOT EXISTS (
        SELECT 1 FROM chunk_vectors v
         WHERE v.chunk_id = x.id AND v.company_id = :company AND v.model = :model
     )
    """
)


async def without_vector(
    session: AsyncSession, chunk_ids: list[uuid.UUID], model: str
) -> frozenset[uuid.UUID]:
    """Those of these chunks that have no vector of ``model`` yet (a document whose vectors
    are still being stored: it answers by full text meanwhile); one look-up by key each."""
    if not chunk_ids:
        return frozenset()
    params = {"company": company_of(session), "ids": chunk_ids, "model": model}
    return frozenset((await session.scalars(_WITHOUT_VECTOR, params)).all())


RRF_K = 60


def fuse_rrf(lexical: Sequence[Passage], dense: Sequence[Passage], k: int) -> list[Passage]:
    """Reciprocal rank fusion, Σ 1/(60 + rank): kept to compare with (``ATENDE_FUSION=rrf``)."""
    merged: dict[uuid.UUID, Passage] = {}
    for ranking in (lexical, dense):
        for rank, passage in enumerate(ranking, start=1):
            if passage.chunk_id not in merged:
                merged[passage.chunk_id] = replace(passage, scores=dict(passage.scores), score=0.0)
            else:
                merged[passage.chunk_id].scores.update(passage.scores)
            merged[passage.chunk_id].score += 1 / (RRF_K + rank)
    for passage in merged.values():
        passage.scores["fused"] = round(passage.score, 6)
    return sorted(merged.values(), key=lambda p: (-p.score, str(p.chunk_id)))[:k]


class HybridRetriever:
    """BM25 and dense candidates, fused with a per-language weight. The question is embedded
    (in a thread) while PostgreSQL ranks by BM25; if embedding fails, BM25 alone answers.
    Only the first ``query_chars`` of a long message are embedded (the model's time grows
    with its length: a 1,500-character e-mail takes 300 ms); BM25 reads all of it. Each
    ``rerank`` step then re-orders the head of the ranking so far, within its time budget
    (``knowledge.rerank``), before the top ``k`` go to the answerer."""

    name = "hybrid"

    def __init__(
        self,
        embedder: Embedder,
        weights: dict[str, float],
        *,
        candidates: int = 50,
        default_weight: float = 0.5,
        method: str = "zscore",
        query_chars: int = 300,
        rerank: Sequence[RerankStep] = (),
        name: str | None = None,
    ) -> None:
        self.name = name or self.name  # e.g. "hybrid + learned re-ranker" in ``atende eval``
        self.rerank = tuple(rerank)
        self.method = method
        self.query_chars = query_chars
        self.embedder = embedder
        self.weights = weights
        self.candidates = candidates
        self.default_weight = default_weight
        self.fulltext = FullTextRetriever()

    def embedded_part(self, query: str) -> str:
        return embedded_part(query, self.query_chars)

    async def retrieve(
        self,
        session: AsyncSession,
        query: str,
        k: int,
        language: str | None = None,
        *,
        filters: Filters = NO_FILTERS,
        stages: list[Stage] | None = None,
        vector: Awaitable[Vector] | None = None,
    ) -> list[Passage]:
        seen: list[Stage] = []
        started = time.perf_counter()
        if vector is None:
            vector = self.embedder.query(self.embedded_part(query))
        embedding = asyncio.ensure_future(vector)
        try:
            lexical = await self.fulltext.retrieve(
                session, query, self.candidates, filters=filters, stages=seen
            )
        except BaseException:
            embedding.cancel()
            raise
        try:
            looked_up = await embedding
        except EmbeddingUnavailable as exc:
            log.warning("retrieval.dense_unavailable", error=str(exc))
            seen.append(Stage("dense", [], _ms(started), error=str(exc)))
            ranked = await self._reranked(session, query, language, seen[0], None, seen, k)
            if stages is not None:
                stages.extend(seen)
            return ranked[:k]
        # the dense stage's time includes embedding the question, which ran beside BM25
        dense, unembedded = await dense_search_and_unembedded(
            session, looked_up, self.embedder.model, self.candidates, filters, [p.chunk_id for p in lexical]
        )
        seen.append(Stage("dense", dense, _ms(started)))
        started = time.perf_counter()
        every = len(lexical) + len(dense)  # all of them ranked, for the stages; the top k go on
        if self.method == "rrf":
            fused = fuse_rrf(lexical, dense, every)
        else:
            weight = self.weights.get(language or "", self.default_weight)
            fused = fuse(lexical, dense, weight, every, method=self.method, without_vector=unembedded)
        for rank, passage in enumerate(fused, start=1):
            passage.scores["fused_rank"] = rank
        seen.append(Stage("fused", fused, _ms(started)))
        ranked = await self._reranked(session, query, language, seen[-1], looked_up, seen, k)
        if stages is not None:
            stages.extend(seen)
        return ranked[:k]

    async def _reranked(
        self,
        session: AsyncSession,
        query: str,
        language: str | None,
        stage: Stage,
        vector: Vector | None,
        seen: list[Stage],
        k: int,
    ) -> list[Passage]:
        """The ranking of ``stage`` after each re-ranking step, each appended to ``seen``;
        every stage before a step keeps as many as go on past it (the ones it re-orders, at
        least ``k``), the last keeps ``k``."""
        ranked = stage.passages
        for step in self.rerank:
            stage.kept = max(k, step.candidates)
            done = await rerank(session, step, query, language, ranked, vector)
            ranked = done.passages
            stage = Stage(step.stage, ranked, done.ms, error=done.error)
            seen.append(stage)
        stage.kept = k
        return ranked


async def lexemes(session: AsyncSession, texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    """The stemmed lexemes of each ``(text, language)``, as the index would see them."""
    if not texts:
        return []
    return (await _lexemes_and(session, texts))[0]


async def _lexemes_and(
    session: AsyncSession, texts: list[tuple[str, str]], scalar: str = "SELECT NULL", params: Any = None
) -> tuple[list[frozenset[str]], Any]:
    """``lexemes`` of ``texts`` (at least one), and the value of the one-value statement
    ``scalar`` (with ``params``) in the same round trip."""
    rows = (
        await session.execute(
            text(
                f"SELECT t.ord, tsvector_to_array(to_tsvector(t.cfg::regconfig, t.body)), ({scalar})"
                " FROM unnest(CAST(:bodies AS text[]), CAST(:cfgs AS text[]))"
                " WITH ORDINALITY AS t(body, cfg, ord) ORDER BY t.ord"
            ),
            {
                **(params or {}),
                "bodies": [fold(body) for body, _ in texts],
                "cfgs": [TS_CONFIG.get(lang, "simple") for _, lang in texts],
            },
        )
    ).all()
    return [frozenset(r[1]) for r in rows], rows[0][2]


_STEMS_KEY = "atende.question_stems"


async def question_stems(
    session: AsyncSession, question: str, *, also: str = ""
) -> dict[str, frozenset[str]]:
    """The topic terms of ``question`` stemmed under each language's configuration.

    Retrieval and the answerer both need them in one turn: they are computed once per
    session and kept in ``session.info``; ``also`` (e.g. the subject line) is stemmed in
    the same round trip, for a later call.
    """
    cache: dict[str, dict[str, frozenset[str]]] = session.info.setdefault(_STEMS_KEY, {})
    topic = topic_text(question)
    wanted = dict.fromkeys([topic, *([topic_text(also)] if also else [])])
    missing = [t for t in wanted if t not in cache]
    cache.update(zip(missing, await topic_stems(session, missing), strict=True))
    return cache[topic]


async def topic_stems(session: AsyncSession, topics: Sequence[str]) -> list[dict[str, frozenset[str]]]:
    """Each text (already reduced to its topic, ``text.topic_text``) stemmed under each
    language's configuration, in one round trip."""
    if not topics:
        return []
    languages = list(TS_CONFIG)
    stems = await lexemes(session, [(t, lang) for t in topics for lang in languages])
    return [
        dict(zip(languages, stems[i * len(languages) : (i + 1) * len(languages)], strict=True))
        for i in range(len(topics))
    ]
