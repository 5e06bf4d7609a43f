"""When a retrieved chunk counts as a hit, and the retrieval figures (pure functions).

A chunk is a hit for a question when it comes from the gold passage (its document is the
gold document and one of its sentences is in the gold passage's text; chunks are smaller
than passages, or may hold two short ones) **and** it contains one of the question's
answers. In a passage-level set (one passage a document, as ``support/``) and across
languages, coming from the gold passage is enough.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from atende.evaluation.datasets import QAPassage, QAQuestion, normalise
from atende.knowledge.text import sentences

MIN_SENTENCE = 20  # shorter sentences ("Yes.") are too common to place a chunk


@dataclass(frozen=True)
class Retrieved:
    """A retrieved chunk, as the scoring needs it."""

    doc_id: str
    text: str


def comes_from(chunk: Retrieved, passage: QAPassage, *, whole_document: bool) -> bool:
    if chunk.doc_id != passage.doc_id:
        return False
    if whole_document:
        return True
    body = normalise(passage.text)
    parts = [normalise(s) for s in sentences(chunk.text)]
    long_parts = [p for p in parts if len(p) >= MIN_SENTENCE] or [normalise(chunk.text)]
    return any(part in body for part in long_parts)


def is_hit(chunk: Retrieved, question: QAQuestion, gold: QAPassage, *, passage_level: bool) -> bool:
    if not comes_from(chunk, gold, whole_document=passage_level):
        return False
    if passage_level or not question.answers:
        return True
    text = normalise(chunk.text)
    return any(normalise(answer) in text for answer in question.answers)


def first_hit(ranked: Sequence[bool]) -> int | None:
    """The 1-based rank of the first hit, if any."""
    return next((i + 1 for i, hit in enumerate(ranked) if hit), None)


@dataclass(frozen=True)
class RetrievalFigures:
    questions: int
    recall_at_1: float
    recall_at_5: float
    recall_at_10: float
    mrr_at_10: float

    def as_dict(self) -> dict[str, float | int]:
        return {
            "questions": self.questions,
            "recall@1": round(self.recall_at_1, 4),
            "recall@5": round(self.recall_at_5, 4),
            "recall@10": round(self.recall_at_10, 4),
            "mrr@10": round(self.mrr_at_10, 4),
        }


def figures(ranks: Sequence[int | None]) -> RetrievalFigures:
    """Recall@1/5/10 and MRR@10 from each question's first-hit rank."""
    n = len(ranks)
    if n == 0:
        return RetrievalFigures(0, 0.0, 0.0, 0.0, 0.0)

    def recall(k: int) -> float:
        return sum(1 for r in ranks if r is not None and r <= k) / n

    mrr = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    return RetrievalFigures(n, recall(1), recall(5), recall(10), mrr)


@dataclass(frozen=True)
class Classification:
    """How a yes/no detector did on labelled examples (e.g. "asks for a person")."""

    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positives + self.false_negatives
        return self.true_positives / wanted if wanted else 1.0

    @property
    def total(self) -> int:
        return self.true_positives + self.false_positives + self.false_negatives + self.true_negatives


def classification(pairs: Iterable[tuple[bool, bool]]) -> Classification:
    """Counts over (predicted, expected) pairs."""
    counts = Counter(pairs)
    return Classification(
        counts[(True, True)], counts[(True, False)], counts[(False, True)], counts[(False, False)]
    )
