"""Retrieval: the ``Retriever`` port and its full-text implementation over PostgreSQL.

Chunks are indexed with their document's text-search configuration (Portuguese, English
or Spanish stemming) over accent-folded text. A question is stemmed under all three
configurations; its terms are looked up in the company's lexeme statistics. The chunks
that contain one of the rare terms (those in at most a fifth of the chunks; at least the
three rarest, at most eight) are the candidates, ranked by ``ts_rank_cd`` over all the
question's terms. Matching on common terms would make most of the knowledge base a
candidate, and ranking cost a pass over it, for words that say nothing about which
passage answers. Each hit also carries the chunk's lexemes, so the answerer can measure
how much of the question the passage covers (the evidence) with the same stemmer that
indexed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import ColumnElement, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.models import Chunk, Document, LexemeStat
from atende.knowledge.text import TS_CONFIG, fold, lexeme_query, topic_text

COMMON_SHARE = 0.2  # a term in more than this share of the chunks is common
MIN_TERMS = 3
MAX_TERMS = 8


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


def search_terms(frequencies: dict[str, int], total: int) -> list[str]:
    """The query terms worth searching with, rarest first (pure; see the module docstring)."""
    present = sorted((n, lexeme) for lexeme, n in frequencies.items() if n > 0)
    rare = [lexeme for n, lexeme in present if n <= COMMON_SHARE * total]
    chosen = rare if len(rare) >= MIN_TERMS else [lexeme for _, lexeme in present[:MIN_TERMS]]
    return chosen[:MAX_TERMS]


class FullTextRetriever:
    """PostgreSQL full-text search with per-language stemming and accent folding."""

    name = "fulltext"

    async def terms(self, session: AsyncSession, query: str) -> tuple[list[str], list[str]]:
        """The lexemes to match candidates with (the rare ones) and to rank them with (all
        of the question's terms that occur in the knowledge base)."""
        stems = await question_stems(session, query)
        candidates = frozenset().union(*stems.values())
        if not candidates:
            return [], []
        stats = await session.execute(
            select(LexemeStat.lexeme, LexemeStat.chunks).where(LexemeStat.lexeme.in_([*candidates, ""]))
        )
        frequencies = {lexeme: int(n) for lexeme, n in stats}
        total = frequencies.pop("", 0)
        return search_terms(frequencies, total), sorted(lex for lex, n in frequencies.items() if n > 0)

    async def retrieve(self, session: AsyncSession, query: str, k: int) -> list[Passage]:
        match_terms, rank_terms = await self.terms(session, query)
        if not match_terms:
            return []
        simple: ColumnElement[Any] = literal_column("'simple'::regconfig")
        tsq = func.to_tsquery(simple, lexeme_query(match_terms))
        rank = func.ts_rank_cd(Chunk.tsv, func.to_tsquery(simple, lexeme_query(rank_terms))).label("rank")
        stmt = (
            select(
                Chunk.id,
                Chunk.document_id,
                Document.title,
                Chunk.section,
                Chunk.text,
                Chunk.language,
                rank,
                func.tsvector_to_array(Chunk.tsv),
            )
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.tsv.op("@@")(tsq), Document.status == "ready")
            .order_by(rank.desc(), Chunk.id)
            .limit(k)
        )
        rows = (await session.execute(stmt)).all()
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
                scores={"fulltext": float(r[6])},
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
