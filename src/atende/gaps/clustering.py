"""Topics from question vectors: threshold clustering around the densest questions.

No clustering library is a dependency (scikit-learn is not installed, and it would be a large
one for one function), so this is the small, well-known "community detection" used for
sentence embeddings (sentence-transformers' ``util.community_detection``), in numpy:

1. Normalise the vectors; the cosine similarity of every pair is one matrix product.
2. A question's neighbours are the questions at least ``threshold`` similar to it (itself
   included). The question with the most neighbours still unassigned is the most central
   of its topic: it becomes a topic's representative, and its unassigned neighbours its
   members. Repeat until every question is in a topic (the rest become topics of one).

Unlike single linkage (joining any two questions that are similar enough), a topic never
grows a chain of slightly different questions: every member is close to its representative,
which is also the natural label. The result depends only on the vectors (ties broken by
position), so the same questions always form the same topics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# multilingual-e5-small ("query: " vectors) puts paraphrases of one question at 0.90-0.97
# and different questions of one shop at 0.80-0.89 (measured on refunds, deliveries,
# payment questions in Portuguese and English: docs/DASHBOARD.md, "Knowledge gaps")
THRESHOLD = 0.9
MAX_QUESTIONS = 3000  # the most recent questions clustered per company (a 36 MB matrix)


@dataclass(frozen=True)
class Group:
    representative: int  # index of the most central question
    members: tuple[int, ...]  # indices, the representative first


def groups(vectors: Sequence[Sequence[float]], threshold: float = THRESHOLD) -> list[Group]:
    """The topics of ``vectors`` (one per question), largest first."""
    if len(vectors) == 0:
        return []
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
    close = (matrix @ matrix.T) >= threshold
    np.fill_diagonal(close, True)
    free = np.ones(len(matrix), dtype=bool)
    counts = close.sum(axis=1).astype(np.int64)  # each question's unassigned neighbours
    found: list[Group] = []
    while free.any():
        seed = int(np.argmax(np.where(free, counts, -1)))
        members = np.flatnonzero(close[seed] & free)
        free[members] = False
        counts -= close[:, members].sum(axis=1)  # O(n) per member: O(n^2) in all
        rest = tuple(int(m) for m in members if m != seed)
        found.append(Group(seed, (seed, *rest)))
    found.sort(key=lambda g: (-len(g.members), g.representative))
    return found
