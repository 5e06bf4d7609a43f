"""The offline extractive answerer: it answers only with sentences of retrieved passages.

Evidence is the share of the question's stemmed terms that the best passage contains
(its *coverage*), or, when the learned re-ranker ran, its calibrated probability that the
top passage is the right one (``scores["rerank_p"]``): a passage that clears either
threshold is answered from; otherwise there is no answer and the turn hands off. The second
gate answers long customer e-mails, whose many terms no single passage covers
(``docs/RANKER.md``). It never writes a word of its own: the answer is the passage's
sentences that share most terms with the question, cited by document title and section.

Across languages (a Spanish question, an English knowledge base) the words cannot match,
so coverage says nothing: there the evidence is the meaning, the best passage's dense
(embedding) similarity, with a threshold of its own (``cross_lingual``); the answer is the
passage's sentences, and the turn puts a notice in the customer's language before them.
"""

from __future__ import annotations

from collections.abc import Mapping

from atende.knowledge.passages import Passage
from atende.knowledge.text import sentences
from atende.llm.answerer import Answer, Lexer, Question

MAX_SENTENCES = 3
# the re-ranker's probability that its top passage answers, above which that passage is
# answered from whatever its coverage: calibrated on the development sets' half-out measure
# so that unanswerable questions are still handed off (docs/RANKER.md)
RERANK_THRESHOLD = 0.9
# A long message (a customer e-mail: a story, several questions; at least LONG_TERMS topic
# terms) is rarely covered by one passage, so coverage almost never answers it, and its
# unanswerable ones get low probabilities from the re-ranker: there the gate is lower. Short
# questions, which coverage answers well and whose unanswerable ones the re-ranker is more
# often wrongly sure of, keep RERANK_THRESHOLD (docs/RANKER.md, "The answer gate").
LONG_TERMS = 12
LONG_RERANK_THRESHOLD = 0.5


def coverage(question: Question, passage: Passage) -> float:
    terms = question.lexemes.get(passage.language, frozenset())
    if not terms:
        return 0.0
    return len(terms & passage.lexemes) / len(terms)


def citation(passage: Passage) -> dict[str, str]:
    return {
        "title": passage.title,
        "section": passage.section,
        "document_id": str(passage.document_id),
        "chunk_id": str(passage.chunk_id),
    }


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(
        self,
        threshold: float,
        per_language: Mapping[str, float] | None = None,
        cross_lingual_evidence: float | None = None,
        *,
        rerank_threshold: float | None = RERANK_THRESHOLD,
        long_rerank_threshold: float | None = LONG_RERANK_THRESHOLD,
        long_terms: int = LONG_TERMS,
    ) -> None:
        self.threshold = threshold
        self.per_language = dict(per_language or {})
        self.cross_lingual_evidence = cross_lingual_evidence  # None: never across languages
        self.rerank_threshold = rerank_threshold  # None: coverage alone decides
        # for questions of at least ``long_terms`` topic terms (None: rerank_threshold)
        self.long_rerank_threshold = long_rerank_threshold
        self.long_terms = long_terms

    def threshold_for(self, language: str) -> float:
        """The evidence a passage in ``language`` needs (coverage is measured with that
        language's stemmer and question words, so its scale differs by language)."""
        return self.per_language.get(language, self.threshold)

    async def answer(self, question: Question, passages: list[Passage], lexer: Lexer) -> Answer:
        scored = [(coverage(question, p), p) for p in passages]
        for cov, p in scored:
            p.scores["coverage"] = round(cov, 4)
        strong = [(cov, p) for cov, p in scored if cov >= self.threshold_for(p.language)]
        trusted = self.trusted(question, passages)
        if trusted is not None and (gate := self.rerank_gate(question)) is not None:
            sure = trusted.scores["rerank_p"]
            reason = f"answered from '{trusted.title}' (re-ranker p {sure:.2f})"
            return await self._extract(question, trusted, reason, lexer, sure, gate)
        if not strong and (
            crossed := await cross_lingual(question, passages, lexer, self.cross_lingual_evidence)
        ):
            return crossed
        if not strong:
            top_coverage, top_language = max(
                ((cov, p.language) for cov, p in scored), default=(0.0, question.language)
            )
            needed = self.threshold_for(top_language)
            return Answer(
                None,
                reason=f"weak evidence: best coverage {top_coverage:.2f} < threshold {needed:.2f}",
                confidence=top_coverage,
                needed=needed,
            )
        cov, best = max(strong, key=lambda cp: (cp[1].language == question.language, cp[0], cp[1].score))
        reason = f"answered from '{best.title}' (coverage {cov:.2f})"
        return await self._extract(question, best, reason, lexer, cov, self.threshold_for(best.language))

    def rerank_gate(self, question: Question) -> float | None:
        """The ``rerank_p`` a passage needs to be answered from whatever its coverage: lower
        for a long message (at least ``long_terms`` topic terms in its language); ``None``
        when the gate is off."""
        if self.rerank_threshold is None:
            return None
        terms = len(question.lexemes.get(question.language, frozenset()))
        if self.long_rerank_threshold is not None and terms >= self.long_terms:
            return min(self.long_rerank_threshold, self.rerank_threshold)
        return self.rerank_threshold

    def trusted(self, question: Question, passages: list[Passage]) -> Passage | None:
        """The passage the re-ranker is confident enough in (the highest ``rerank_p``, if at
        least the threshold), among those in the question's language: the re-ranker learnt
        from questions and passages in one language, and across languages its probability
        was seen to vouch for unrelated passages (a question on a shop in Madrid answered
        with one on tracking orders); there ``cross_lingual`` decides."""
        gate = self.rerank_gate(question)
        if gate is None:
            return None
        ranked = [p for p in passages if "rerank_p" in p.scores and p.language == question.language]
        best = max(ranked, key=lambda p: p.scores["rerank_p"], default=None)
        return best if best is not None and best.scores["rerank_p"] >= gate else None

    async def _extract(
        self, question: Question, best: Passage, reason: str, lexer: Lexer, confidence: float, needed: float
    ) -> Answer:
        return Answer(
            await quoted(question, best, lexer),
            reason=reason,
            confidence=confidence,
            citations=[citation(best)],
            needed=needed,
            quoted_language=best.language if best.language != question.language else None,
        )


async def quoted(question: Question, passage: Passage, lexer: Lexer) -> str:
    """The passage's sentences that share most of the question's terms (the first two when
    none does), in the passage's order."""
    lines = sentences(passage.text)
    terms = question.lexemes.get(passage.language, frozenset())
    stems = await lexer([(line, passage.language) for line in lines])
    hits = [len(terms & s) for s in stems]
    top = max(hits, default=0)
    if top == 0:
        chosen = list(range(min(2, len(lines))))
    else:
        ranked = sorted(range(len(lines)), key=lambda i: (-hits[i], i))
        chosen = sorted(i for i in ranked[:MAX_SENTENCES] if hits[i] * 2 >= top)
    picked = [lines[i] for i in chosen]
    separator = "\n" if any(line.startswith("- ") for line in picked) else " "
    return separator.join(picked)


MEANING = "dense"  # the score that measures a passage's meaning against the question's


async def cross_lingual(
    question: Question, passages: list[Passage], lexer: Lexer, evidence: float | None
) -> Answer | None:
    """An answer from the best passage when it is in another language than the question and
    close enough in meaning (its dense similarity at least ``evidence``, calibrated with
    ``atende eval``'s es→en measurement); ``None`` otherwise. Names and numbers are the
    words two languages share, so they still choose the sentences; a passage sharing none
    gives its first ones. The answer is marked with the passage's language
    (``quoted_language``): the turn tells the customer which language it quotes."""
    if evidence is None or evidence >= 1 or not passages or passages[0].language == question.language:
        return None
    best = passages[0]
    meaning = best.scores.get(MEANING)
    if meaning is None or meaning < evidence:
        return None
    return Answer(
        await quoted(question, best, lexer),
        reason=f"answered across languages from '{best.title}' ({best.language}; {MEANING} {meaning:.3f})",
        confidence=meaning,
        citations=[citation(best)],
        needed=evidence,
        quoted_language=best.language,
    )
