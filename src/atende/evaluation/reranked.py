"""The retrievers ``atende eval`` compares re-ranking with: today's hybrid, and the same
hybrid with the learned re-ranker's stage (``knowledge.ranker``, ``knowledge.rerank``) over
its fused candidates, as the bot runs it.

Both are built here from the settings, as ``engine.tasks.retriever_for`` builds the bot's,
so the comparison holds whatever the bot's own retriever does. They share one embedder
that remembers the question's vector: embedding the question a second time would count in
the re-ranking's time. The time the re-ranker takes (its round trip and the model) is kept
per question, for the report; its stage has no budget to speak of here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.embedding import Embedder, Vector
from atende.knowledge.passages import Passage
from atende.knowledge.ranker import LearnedReranker
from atende.knowledge.rerank import Reranker, RerankStep
from atende.knowledge.retrieval import HybridRetriever
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


# the re-ranking stage's budget in ``atende eval``: a figure must not depend on how busy the
# machine was (the bot's budget, ATENDE_RERANK_BUDGET_MS, keeps the fused order when late)
EVAL_BUDGET_MS = 600_000.0


class TimedReranker:
    """A re-ranker that keeps the time of each of its calls: the report's added latency."""

    def __init__(self, inner: Reranker) -> None:
        self.inner = inner
        self.name = inner.name
        self.rerank_ms: list[float] = []

    async def rerank(
        self,
        session: AsyncSession,
        query: str,
        language: str,
        candidates: Sequence[Passage],
        query_vector: Vector | None = None,
    ) -> list[Passage]:
        started = time.perf_counter()
        try:
            return await self.inner.rerank(session, query, language, candidates, query_vector)
        finally:
            self.rerank_ms.append((time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class Reranking:
    """Today's hybrid (``plain``) and the same hybrid with the learned re-ranker's stage
    (``reranked``: ``HybridRetriever(rerank=[...])``, the bot's own stage), whose re-ranker
    keeps its times (``timed``)."""

    plain: HybridRetriever
    reranked: HybridRetriever
    timed: TimedReranker


def reranking_pair(runtime: Runtime, embedder: Embedder) -> Reranking:
    """Today's hybrid and the re-ranked one, over one remembering embedder."""
    remembering = RememberingEmbedder(embedder)
    learned = LearnedReranker(embedding_model=embedder.model)
    timed = TimedReranker(learned)
    step = RerankStep(timed, learned.model.candidates, EVAL_BUDGET_MS)
    settings = runtime.settings
    reranked = HybridRetriever(
        remembering,
        settings.fusion_dense_weights,
        candidates=settings.fusion_candidates,
        method=settings.fusion,
        query_chars=settings.embed_query_chars,
        rerank=[step],
        name=f"hybrid + {learned.name} re-ranker",
    )
    return Reranking(plain_hybrid(runtime, remembering), reranked, timed)
