"""Retrieval: the ``Retriever`` port and its full-text implementation over PostgreSQL.

Chunks are indexed with their document's text-search configuration (Portuguese, English
or Spanish stemming) over accent-folded text. A question is matched as an OR of its
words under all three configurations, ranked by ``ts_rank_cd``. For each hit we also
return the chunk's lexemes, so the answerer can measure how much of the question the
passage really covers (the evidence) with the same stemmer that indexed it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import cast, func, literal, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG
from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.models import Chunk, Document
from atende.knowledge.text import TS_CONFIG, fold, or_query


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


def _tsquery(query: str) -> object:
    source = or_query(query)
    parts = [func.to_tsquery(cast(literal(cfg), REGCONFIG), source) for cfg in TS_CONFIG.values()]
    return parts[0].op("||")(parts[1]).op("||")(parts[2])


class FullTextRetriever:
    """PostgreSQL full-text search with per-language stemming and accent folding."""

    name = "fulltext"

    async def retrieve(self, session: AsyncSession, query: str, k: int) -> list[Passage]:
        if not or_query(query):
            return []
        tsq = _tsquery(query)
        rank = func.ts_rank_cd(Chunk.tsv, tsq).label("rank")
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
