"""The second stage of retrieval: a ``Reranker`` re-orders the fused candidates before the
answerer sees them (``docs/EVALUATION.md``).

The hybrid retriever hands a re-ranker its best ``candidates`` (fused, best first) and the
question's embedding when it has one; the re-ranker returns them re-ordered, each passage's
``score`` set to its new score and its ``scores`` gaining the re-ranker's (``scores[name]``
and ``scores["rerank_rank"]``), so the trace shows every candidate's scores before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.embedding import Vector
from atende.knowledge.passages import Passage


class Reranker(Protocol):
    name: str

    async def rerank(
        self,
        session: AsyncSession,
        query: str,
        language: str,
        candidates: Sequence[Passage],
        query_vector: Vector | None = None,
    ) -> list[Passage]:
        """``candidates`` (fused, best first) re-ordered best first."""
        ...
