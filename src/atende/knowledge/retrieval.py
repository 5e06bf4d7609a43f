"""Retrieval: the ``Retriever`` port and its full-text implementation over PostgreSQL.

Chunks are indexed with their document's text-search configuration (Portuguese, English
or Spanish stemming) over accent-folded text; ingestion also writes each chunk's postings
(``chunk_terms``: lexeme, term frequency, chunk length) and the company's lexeme statistics
(in how many chunks each lexeme occurs). A question is stemmed under all three
configurations, and the chunks are ranked by **BM25** over its terms, in one statement
that reads only the postings of those terms: inverse document frequency from the
statistics, term frequency saturated by ``k1``, length normalised by ``b`` against the
company's average chunk. (``ts_rank_cd``, used before, has no inverse document frequency:
common words weighed as much as rare ones, and the right chunk came first far less often;
see ``docs/EVALUATION.md``.) Each hit also carries the chunk's lexemes, so the answerer can
measure how much of the question the passage covers (the evidence) with the same stemmer
that indexed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of
from atende.knowledge.text import TS_CONFIG, fold, topic_text


@dataclass
class Passage:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    section: str
    text: str
    language: str
    score: float
    lexemes: frozenset[str] = field(default_factory=frozenset)
    scores: dict[str, float] = field(default_factory=dict)


class Retriever(Protocol):
    name: str

    async def retrieve(self, session: AsyncSession, query: str, k: int) -> list[Passage]: ...


K1 = 1.2  # BM25 term-frequency saturation
B = 0.75  # BM25 length normalisation

# one round trip: idf from the lexeme statistics ('' counts the chunks), the postings of
# the question's terms, the top k, and the chunks' text
BM25_SQL = """
    WITH total AS (
        SELECT greatest(chunks, 1)::float8 AS n FROM lexeme_stats WHERE company_id = :company AND lexeme = ''
    ), q AS (
        SELECT s.lexeme, ln(1 + (total.n - s.chunks + 0.5) / (s.chunks + 0.5)) AS idf
          FROM lexeme_stats s CROSS JOIN total
         WHERE s.company_id = :company AND s.lexeme = ANY(CAST(:terms AS text[])) AND s.chunks > 0
    ), avgdl AS (
        SELECT greatest(avg(token_count), 1)::float8 AS v FROM chunks WHERE company_id = :company
    ), scored AS (
        SELECT t.chunk_id,
               sum(q.idf * t.tf * (:k1 + 1) / (t.tf + :k1 * (1 - :b + :b * t.dl / avgdl.v))) AS score
          FROM q JOIN chunk_terms t ON t.company_id = :company AND t.lexeme = q.lexeme
         CROSS JOIN avgdl
         GROUP BY t.chunk_id
         ORDER BY score DESC, t.chunk_id
         LIMIT :k
    )
    SELECT c.id, c.document_id, d.title, c.section, c.text, c.language, s.score, tsvector_to_array(c.tsv)
      FROM scored s
      JOIN chunks c ON c.id = s.chunk_id AND c.company_id = :company
      JOIN documents d ON d.id = c.document_id AND d.company_id = :company
     WHERE d.status = 'ready'
     ORDER BY s.score DESC, c.id
"""
_BM25 = text(BM25_SQL)


def query_terms(stems: dict[str, frozenset[str]]) -> list[str]:
    """The lexemes a question is ranked by: its stems under every language's configuration."""
    return sorted(frozenset().union(*stems.values()))


class FullTextRetriever:
    """PostgreSQL full-text search (per-language stemming, accent folding), ranked by BM25."""

    name = "fulltext"

    async def retrieve(self, session: AsyncSession, query: str, k: int) -> list[Passage]:
        terms = query_terms(await question_stems(session, query))
        if not terms:
            return []
        params = {"company": company_of(session), "terms": terms, "k1": K1, "b": B, "k": k}
        rows = (await session.execute(_BM25, params)).all()
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
                scores={"bm25": round(float(r[6]), 4)},
            )
            for r in rows
        ]


async def lexemes(session: AsyncSession, texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    """The stemmed lexemes of each ``(text, language)``, as the index would see them."""
    if not texts:
        return []
    rows = (
        await session.execute(
            text(
                "SELECT t.ord, tsvector_to_array(to_tsvector(t.cfg::regconfig, t.body))"
                " FROM unnest(CAST(:bodies AS text[]), CAST(:cfgs AS text[]))"
                " WITH ORDINALITY AS t(body, cfg, ord) ORDER BY t.ord"
            ),
            {
                "bodies": [fold(body) for body, _ in texts],
                "cfgs": [TS_CONFIG.get(lang, "simple") for _, lang in texts],
            },
        )
    ).all()
    return [frozenset(r[1]) for r in rows]


_STEMS_KEY = "atende.question_stems"


async def question_stems(session: AsyncSession, question: str) -> dict[str, frozenset[str]]:
    """The topic terms of ``question`` stemmed under each language's configuration.

    Retrieval and the answerer both need them in one turn: they are computed once per
    session (one round trip) and kept in ``session.info``.
    """
    cache: dict[str, dict[str, frozenset[str]]] = session.info.setdefault(_STEMS_KEY, {})
    topic = topic_text(question)
    if topic not in cache:
        languages = list(TS_CONFIG)
        stems = await lexemes(session, [(topic, lang) for lang in languages])
        cache[topic] = dict(zip(languages, stems, strict=True))
    return cache[topic]
