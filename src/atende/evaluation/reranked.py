"""The retrievers ``atende eval`` compares re-ranking with: today's hybrid, and the same
hybrid whose fused candidates the learned re-ranker re-orders (``knowledge.ranker``).

Both are built here from the settings, as ``engine.tasks.retriever_for`` builds the bot's,
so the comparison holds whatever the bot's own retriever does. They share one embedder
that remembers the question's vector: the re-ranker needs it, and embedding the question a
second time would count in the re-ranking's added time. The time the re-ranker takes (its
two round trips and the model) is kept per question, for the report.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.embedding import Embedder, Vector
from atende.knowledge.filters import NO_FILTERS, Filters
from atende.knowledge.passages import Passage
from atende.knowledge.ranker import LearnedReranker
from atende.knowledge.retrieval import HybridRetriever, Stage
from atende.runtime import Runtime

REMEMBERED = 64


class RememberingEmbedder:
    """An embedder that answers a question it embedded lately from memory."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model = inner.model
        self.memory: OrderedDict[str, Vector] = OrderedDict()

    async def passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[Vector]:
        return await self.inner.passages(texts, progress)

    async def query(self, text: str) -> Vector:
        if text in self.memory:
            self.memory.move_to_end(text)
            return self.memory[text]
        vector = await self.inner.query(text)
        self.memory[text] = vector
        while len(self.memory) > REMEMBERED:
            self.memory.popitem(last=False)
        return vector


def plain_hybrid(runtime: Runtime, embedder: Embedder) -> HybridRetriever:
    settings = runtime.settings
    return HybridRetriever(
        embedder,
        settings.fusion_dense_weights,
        candidates=settings.fusion_candidates,
        method=settings.fusion,
        query_chars=settings.embed_query_chars,
    )


class RerankedHybrid:
    """The hybrid retriever's fused candidates re-ordered by the learned re-ranker."""

    def __init__(self, hybrid: HybridRetriever, reranker: LearnedReranker, candidates: int) -> None:
        self.name = f"{hybrid.name} + {reranker.name} re-ranker"
        self.hybrid = hybrid
        self.reranker = reranker
        self.candidates = candidates
        self.rerank_ms: list[float] = []

    async def retrieve(
        self,
        session: AsyncSession,
        query: str,
        k: int,
        language: str | None = None,
        *,
        filters: Filters = NO_FILTERS,
        stages: list[Stage] | None = None,
    ) -> list[Passage]:
        fused = await self.hybrid.retrieve(
            session, query, self.candidates, language, filters=filters, stages=stages
        )
        vector = await self.hybrid.embedder.query(self.hybrid.embedded_part(query))
        started = time.perf_counter()
        ranked = await self.reranker.rerank(session, query, language or "", fused, vector)
        ms = (time.perf_counter() - started) * 1000
        self.rerank_ms.append(ms)
        if stages is not None:
            stages.append(Stage(f"rerank:{self.reranker.name}", ranked, round(ms, 3), kept=k))
        return ranked[:k]


def reranking_pair(runtime: Runtime, embedder: Embedder) -> tuple[HybridRetriever, RerankedHybrid]:
    """Today's hybrid and the re-ranked one, over one remembering embedder."""
    remembering = RememberingEmbedder(embedder)
    reranker = LearnedReranker(embedding_model=embedder.model)
    hybrid = plain_hybrid(runtime, remembering)
    return hybrid, RerankedHybrid(hybrid, reranker, reranker.model.candidates)
