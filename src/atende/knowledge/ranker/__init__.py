"""The learned re-ranker: a small model over generic features of the fused candidates
(scores, ranks, the question's terms a passage covers), trained offline on the development
sets and shipped inside the package, so it needs no download (``docs/RANKER.md``).

``LearnedReranker`` implements ``knowledge.rerank.Reranker``: it re-orders the candidates
by the model's score and records on each passage ``scores["learned"]`` (its score),
``scores["rerank_rank"]`` and ``scores["rerank_p"]`` (the calibrated probability that it is
the passage that answers, which the extractive answerer's evidence gate reads).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from atende.config import Settings
from atende.knowledge.embedding import E5_MODEL, Vector
from atende.knowledge.passages import Passage
from atende.knowledge.ranker.features import candidate_features
from atende.knowledge.ranker.model import RankerModel, shipped
from atende.knowledge.rerank import Reranker

__all__ = ["LearnedReranker", "default_reranker"]


class LearnedReranker:
    """Re-orders fused candidates by the shipped model (or ``model``). Without the question's
    embedding (the dense stage failed) the features it was trained on are not there: the
    candidates keep their order, and get no ``rerank_p``."""

    name = "learned"

    def __init__(self, model: RankerModel | None = None, *, embedding_model: str | None = None) -> None:
        self.model = model or shipped()
        self.embedding_model = embedding_model

    async def rerank(
        self,
        session: AsyncSession,
        query: str,
        language: str,
        candidates: Sequence[Passage],
        query_vector: Vector | None = None,
    ) -> list[Passage]:
        if query_vector is None or not candidates:
            for rank, passage in enumerate(candidates, start=1):
                passage.scores["rerank_rank"] = rank
            return list(candidates)
        matrix = await candidate_features(
            session, query, language, candidates, query_vector, self.embedding_model
        )
        scores = self.model.scores(matrix)
        probabilities = self.model.probabilities(scores)
        for passage, score, p in zip(candidates, scores, probabilities, strict=True):
            passage.score = float(score)
            passage.scores["learned"] = round(float(score), 4)
            passage.scores["rerank_p"] = round(float(p), 4)
        ranked = sorted(
            zip(candidates, scores, strict=True), key=lambda pair: (-pair[1], str(pair[0].chunk_id))
        )
        for rank, (passage, _) in enumerate(ranked, start=1):
            passage.scores["rerank_rank"] = rank
        return [passage for passage, _ in ranked]


def default_reranker(settings: Settings, embedding_model: str) -> Reranker | None:
    """The re-ranker of the hybrid retriever (``engine.tasks.retriever_for``, the latency
    benchmark): the learned one (``knowledge.ranker``, ``docs/RANKER.md``) when
    ``ATENDE_RERANKER`` is ``learned`` and the company's vectors are e5's, the model its
    features were trained with (another embedder's similarities have another scale); else
    none, and the fused order goes to the answerer. One shared instance: it is asked for on
    every turn, and its model is loaded once."""
    if settings.reranker != "learned" or embedding_model != E5_MODEL:
        return None
    return _learned()


@functools.cache
def _learned() -> Reranker:
    return LearnedReranker(embedding_model=E5_MODEL)
