"""The learned re-ranker: a small model over generic features of the fused candidates
(scores, ranks, the question's terms a passage covers), trained offline on the development
sets and shipped inside the package, so it needs no download (``docs/RANKER.md``).

``LearnedReranker`` implements ``knowledge.rerank.Reranker``: it re-orders the candidates
by the model's score and records on each passage ``scores["learned"]`` (its score),
``scores["rerank_rank"]`` and ``scores["rerank_p"]`` (the calibrated probability that it is
the passage that answers, which the extractive answerer's evidence gate reads).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.embedding import Vector
from atende.knowledge.passages import Passage
from atende.knowledge.ranker.features import candidate_features
from atende.knowledge.ranker.model import RankerModel, shipped

__all__ = ["LearnedReranker"]


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
