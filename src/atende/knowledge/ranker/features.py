"""The learned re-ranker's features: what it knows of each fused candidate.

Every feature is generic (scores, ranks, shares of the question's terms; no word is a
feature), so that a model trained on one knowledge base ranks another's: the held-out halves
of the development sets are other questions *and* other documents. They are computed from
what the hybrid retriever already has (each candidate's BM25 and cosine scores and ranks, its
fused score, its lexemes) plus one round trip (``gather``): the cosine of the candidates
only BM25 found (from their stored vectors), the rarity of the question's terms (the
company's lexeme statistics) and the stems of the candidates' headings and sentences. The pure part,
``feature_matrix``, is what the tests and the training script check.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of
from atende.knowledge.embedding import Vector, to_sql
from atende.knowledge.passages import Passage
from atende.knowledge.retrieval import question_stems
from atende.knowledge.text import TS_CONFIG, fold, sentences, subject_line

FEATURES = (
    "fused",  # the fused score (standard scores of BM25 and cosine, weighted)
    "fused_gap",  # the best candidate's fused score minus this one's
    "fused_rank",  # ln(rank) in the fused order
    "bm25_rel",  # BM25 score over the best BM25 score among the candidates (0: not found)
    "bm25_z",  # BM25 score in standard deviations from the candidates' mean
    "bm25_rank",  # ln(rank) in BM25's top 50 (ln 51: not found)
    "bm25_missing",  # BM25 did not find it
    "cosine",  # cosine of the question and the chunk
    "cosine_gap",  # the best candidate's cosine minus this one's
    "cosine_z",  # cosine in standard deviations from the candidates' mean
    "cosine_rank",  # ln(rank) by cosine among the candidates
    "dense_missing",  # the dense top 50 did not have it
    "coverage",  # share of the question's topic terms in the chunk (the answerer's evidence)
    "coverage_idf",  # the same, each term weighed by its idf
    "coverage_gap",  # the best candidate's idf-weighted coverage minus this one's
    "subject_coverage",  # share of the subject line's terms in the chunk (0: no subject)
    "heading_coverage",  # share of the question's terms in the title and section
    "sentence_coverage",  # idf-weighted share of the question's terms in the chunk's best sentence
    "length",  # ln(number of distinct lexemes of the chunk)
    "query_terms",  # ln(1 + the question's topic terms)
    "first_chunk",  # the chunk opens its document (ordinal 0)
    "document_coverage",  # idf-weighted share of the question's terms in the chunk's whole document
    "document_candidates",  # ln(candidates from the same document)
    "two_sentence_coverage",  # idf-weighted share of the question's terms in the chunk's best two sentences
)
MISSING_RANK = 51


@dataclass(frozen=True)
class Evidence:
    """What the round trips bring for one question and its candidates."""

    cosines: list[float]  # per candidate
    terms: frozenset[str]  # the question's topic stems in the candidates' language
    subject_terms: frozenset[str]
    idf: dict[str, float]
    headings: list[frozenset[str]]  # stems of each candidate's title and section
    sentence_stems: list[list[frozenset[str]]]  # stems of each candidate's sentences
    # each candidate's position in its document, and the question's terms its whole document
    # holds (empty: not read, e.g. a test's hand-built evidence; then first_chunk is 0 and
    # document_coverage the chunk's own)
    ordinals: list[int] = field(default_factory=list)
    documents: list[frozenset[str]] = field(default_factory=list)


def _z(values: np.ndarray) -> np.ndarray:
    spread = float(values.std())
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def _weight(terms: frozenset[str], idf: dict[str, float]) -> float:
    return sum(idf.get(t, 0.0) for t in terms)


def _share(terms: frozenset[str], found: frozenset[str], idf: dict[str, float]) -> float:
    total = sum(idf.get(t, 0.0) for t in terms)
    return sum(idf.get(t, 0.0) for t in terms & found) / total if total > 0 else 0.0


def _rank_among(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    return ranks


def feature_matrix(candidates: Sequence[Passage], evidence: Evidence) -> np.ndarray:
    """One row of ``FEATURES`` per candidate (fused order), pure arithmetic."""
    n = len(candidates)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    fused = np.array([p.scores.get("fused", p.score) for p in candidates], dtype=float)
    bm25 = np.array([p.scores.get("bm25", 0.0) for p in candidates], dtype=float)
    bm25_missing = np.array([0.0 if "bm25" in p.scores else 1.0 for p in candidates])
    bm25_rank = np.array([p.scores.get("bm25_rank", MISSING_RANK) for p in candidates], dtype=float)
    dense_missing = np.array([0.0 if "dense" in p.scores else 1.0 for p in candidates])
    cosine = np.array(evidence.cosines, dtype=float)
    terms, idf = evidence.terms, evidence.idf
    plain = dict.fromkeys(terms, 1.0)
    coverage = np.array([_share(terms, p.lexemes, plain) for p in candidates])
    coverage_idf = np.array([_share(terms, p.lexemes, idf) for p in candidates])
    subject = np.array(
        [
            _share(evidence.subject_terms, p.lexemes, plain) if evidence.subject_terms else 0.0
            for p in candidates
        ]
    )
    heading = np.array([_share(terms, h, plain) for h in evidence.headings])
    best_sentence = np.array(
        [max((_share(terms, s, idf) for s in stems), default=0.0) for stems in evidence.sentence_stems]
    )
    two_sentences = np.array(
        [
            sum(sorted((_weight(terms & s, idf) for s in stems), reverse=True)[:2]) / total
            if (total := _weight(terms, idf)) > 0
            else 0.0
            for stems in evidence.sentence_stems
        ]
    )
    first = np.array([1.0 if o == 0 else 0.0 for o in evidence.ordinals] if evidence.ordinals else [0.0] * n)
    documents = (
        np.array([_share(terms, d, idf) for d in evidence.documents]) if evidence.documents else coverage_idf
    )
    same = Counter(p.document_id for p in candidates)
    top_bm25 = bm25.max() if bm25.max() > 0 else 1.0
    columns = {
        "fused": fused,
        "fused_gap": fused.max() - fused,
        "fused_rank": np.log(np.arange(1, n + 1)),
        "bm25_rel": bm25 / top_bm25,
        "bm25_z": _z(bm25),
        "bm25_rank": np.log(bm25_rank),
        "bm25_missing": bm25_missing,
        "cosine": cosine,
        "cosine_gap": cosine.max() - cosine,
        "cosine_z": _z(cosine),
        "cosine_rank": np.log(_rank_among(cosine)),
        "dense_missing": dense_missing,
        "coverage": coverage,
        "coverage_idf": coverage_idf,
        "coverage_gap": coverage_idf.max() - coverage_idf,
        "subject_coverage": subject,
        "heading_coverage": heading,
        "sentence_coverage": best_sentence,
        "length": np.array([math.log(1 + len(p.lexemes)) for p in candidates]),
        "query_terms": np.full(n, math.log(1 + len(terms))),
        "first_chunk": first,
        "document_coverage": documents,
        "document_candidates": np.array([math.log(same[p.document_id]) for p in candidates]),
        "two_sentence_coverage": two_sentences,
    }
    return np.column_stack([columns[name] for name in FEATURES])


# The evidence of one question's candidates in one statement (one round trip): the rarity
# of the question's terms (kind 0: lexeme, idf), the cosine of the candidates only BM25 found
# from their stored vectors (kind 1: chunk id, cosine), and the stems of the candidates'
# headings and sentences not stemmed yet in this process (kind 2: the text's place, its
# stems; ``_STEMS`` keeps them: the message whole and each of its questions re-rank mostly the
# same candidates, and a knowledge base's popular passages come back turn after turn). Kind 3:
# each candidate's position in its document (chunk id, ordinal) for ``first_chunk``; kind 4:
# the question's terms each candidate's whole document holds (document id, terms) for
# ``document_coverage``, from the document's lexemes (``document_lexemes``, the union of its
# chunks' ``tsv``): one row per document; from its chunks when that row is missing or of
# other chunks (its ``first_chunk`` is not the document's: written by an older release).
# Read from every chunk of the candidates' documents
# it took 1,000-1,350 buffers and 11-15 ms of a long e-mail's re-ranking, from their
# postings (``chunk_terms``) 1,000-30,000 buffers and 11-42 ms (``benchmarks/README.md``).
_EVIDENCE = """
    WITH total AS (
        SELECT greatest(chunks, 1)::float8 AS n FROM lexeme_stats WHERE company_id = :company AND lexeme = ''
    )
    SELECT 0, s.lexeme, ln(1 + (total.n - s.chunks + 0.5) / (s.chunks + 0.5)), NULL::bigint, NULL::text[]
      FROM lexeme_stats s CROSS JOIN total
     WHERE s.company_id = :company AND s.lexeme = ANY(CAST(:terms AS text[])) AND s.chunks > 0
    UNION ALL
    SELECT 1, v.chunk_id::text, 1 - (v.embedding::vector({dim}) <=> CAST(:vector AS vector({dim}))),
           NULL, NULL
      FROM chunk_vectors v
     WHERE v.company_id = :company AND v.dim = {dim} AND v.chunk_id = ANY(CAST(:ids AS uuid[])){model}
    UNION ALL
    SELECT 2, NULL, NULL, t.ord, tsvector_to_array(to_tsvector(t.cfg::regconfig, t.body))
      FROM unnest(CAST(:bodies AS text[]), CAST(:cfgs AS text[])) WITH ORDINALITY AS t(body, cfg, ord)
    UNION ALL
    SELECT 3, c.id::text, c.ordinal, NULL, NULL
      FROM chunks c
     WHERE c.company_id = :company AND c.id = ANY(CAST(:candidates AS uuid[]))
    UNION ALL
    SELECT 4, d.id::text, NULL, NULL,
           CASE WHEN s.first_chunk = (SELECT c.id FROM chunks c
                                       WHERE c.company_id = :company AND c.document_id = d.id
                                       ORDER BY c.ordinal, c.id LIMIT 1)
                THEN ARRAY(SELECT l FROM unnest(s.lexemes) AS l WHERE l = ANY(CAST(:stemmed AS text[])))
                ELSE ARRAY(SELECT DISTINCT l FROM chunks c
                            CROSS JOIN LATERAL unnest(tsvector_to_array(c.tsv)) AS l
                            WHERE c.company_id = :company AND c.document_id = d.id
                              AND l = ANY(CAST(:stemmed AS text[]))) END
      FROM unnest(CAST(:documents AS uuid[])) AS d(id)
      LEFT JOIN document_lexemes s ON s.company_id = :company AND s.document_id = d.id
"""


class _Stems:
    """Every stem of a heading or sentence, by (text, language): what ``to_tsvector`` of its
    folded text gives never changes. Bounded by entries and by the characters held (texts and
    stems: a knowledge base of long unpunctuated chunks has sentences a chunk long), least
    recently used first out; per process."""

    def __init__(self, size: int, chars: int) -> None:
        self.size = size
        self.chars = chars
        self.held = 0
        self.stems: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()

    @staticmethod
    def _weight(key: tuple[str, str], stems: frozenset[str]) -> int:
        return len(key[0]) + sum(map(len, stems))

    def get(self, key: tuple[str, str]) -> frozenset[str] | None:
        found = self.stems.get(key)
        if found is not None:
            self.stems.move_to_end(key)
        return found

    def put(self, key: tuple[str, str], stems: frozenset[str]) -> None:
        old = self.stems.pop(key, None)
        if old is not None:
            self.held -= self._weight(key, old)
        self.stems[key] = stems
        self.held += self._weight(key, stems)
        while len(self.stems) > self.size or (self.held > self.chars and len(self.stems) > 1):
            gone, its = self.stems.popitem(last=False)
            self.held -= self._weight(gone, its)

    def clear(self) -> None:
        self.stems.clear()
        self.held = 0


# ~400 texts a question's candidates hold: a few turns' worth, ~15 MB; and at most 4 million
# characters of texts and stems, whatever their length
_STEMS = _Stems(10_000, 4_000_000)

# characters that open (or fold to what opens) an XML tag, the one token of PostgreSQL's
# parser that may span a space: a sentence cut inside one is parsed otherwise than the text
_TAG_OPENERS = frozenset("<\ufe64\uff1c\u226e")


def _may_hold(candidate: Passage, terms: frozenset[str]) -> bool:
    """Whether any sentence of ``candidate`` may hold one of the question's ``terms``. Its
    lexemes (its indexed ``tsv``: its heading's and its text's stems) hold every stem of each
    of its sentences, sentences being cut at spaces, across which PostgreSQL's parser makes
    no token (but a tag's): without a term among them, every sentence's share is 0 and
    nothing need be stemmed (about half the candidates, found by meaning alone)."""
    return bool(candidate.lexemes & terms) or not _TAG_OPENERS.isdisjoint(candidate.text)


async def gather(
    session: AsyncSession,
    query: str,
    language: str,
    candidates: Sequence[Passage],
    vector: Vector,
    model: str | None = None,
) -> Evidence:
    """The evidence of one question's features in one round trip (the question's stems are
    usually cached in the session by the BM25 stage already). The candidates' headings and
    sentences are stemmed once per process (``_STEMS``) and carry only their stems among the
    question's ``terms``: every feature reads them through ``terms`` (a share of the
    question's terms), so the features are the same as with all their stems; a candidate
    none of whose sentences can hold a term (``_may_hold``) has no sentences (its best
    sentence's share is 0 either way)."""
    subject = subject_line(query)
    stems = await question_stems(session, query, also=subject)
    subject_stems = await question_stems(session, subject) if subject else {}
    # the candidates' language (a knowledge base is mostly in one): the stems they index with
    kb_language = candidates[0].language if candidates else language
    terms = stems.get(kb_language, frozenset())
    subject_terms = subject_stems.get(kb_language, frozenset())
    headings = [" ".join(part for part in (p.title, p.section) if part) for p in candidates]
    split = [sentences(p.text) if _may_hold(p, terms) else [] for p in candidates]
    texts = [(h, p.language) for h, p in zip(headings, candidates, strict=True)] + [
        (line, p.language) for lines, p in zip(split, candidates, strict=True) for line in lines
    ]
    # every stem of each text (those this process has not stemmed yet from the statement); a
    # question without terms needs none: every share of its terms is 0
    keys = texts if terms else []
    known = [_STEMS.get(key) for key in keys]
    unknown = list(dict.fromkeys(key for key, found in zip(keys, known, strict=True) if found is None))
    dim = len(vector)
    statement = _EVIDENCE.format(dim=dim, model=" AND v.model = :model" if model else "")
    params = {
        "company": company_of(session),
        "terms": sorted(terms | subject_terms),
        "stemmed": sorted(terms),
        "bodies": [fold(body) for body, _ in unknown],
        "cfgs": [TS_CONFIG.get(lang, "simple") for _, lang in unknown],
        "vector": to_sql(vector),
        "ids": [p.chunk_id for p in candidates if "dense" not in p.scores],
        "candidates": [p.chunk_id for p in candidates],
        "documents": sorted({p.document_id for p in candidates}),
        **({"model": model} if model else {}),
    }
    idf: dict[str, float] = {}
    stored: dict[str, float] = {}
    fresh: dict[tuple[str, str], frozenset[str]] = {}
    ordinal: dict[str, int] = {}
    held: dict[str, set[str]] = {}
    for kind, key, value, ord_, found in (await session.execute(text(statement), params)).all():
        if kind == 0:
            idf[key] = float(value)
        elif kind == 1:
            stored[key] = float(value)
        elif kind == 2:
            fresh[unknown[int(ord_) - 1]] = stems_of = frozenset(found)
            _STEMS.put(unknown[int(ord_) - 1], stems_of)
        elif kind == 3:  # a candidate's position in its document
            ordinal[key] = int(value)
        else:  # the question's terms a candidate's whole document holds
            held[key] = set(found)
    none: frozenset[str] = frozenset()
    # the features read a text's stems only through the question's terms: kept to those
    stemmed = [
        (found if found is not None else fresh.get(key, none)) & terms
        for key, found in zip(keys, known, strict=True)
    ]
    n = len(candidates)
    sentence_stems: list[list[frozenset[str]]] = []
    at = n
    for lines in split:
        sentence_stems.append(stemmed[at : at + len(lines)] if stemmed else [none] * len(lines))
        at += len(lines)
    return Evidence(
        cosines=[
            p.scores["dense"] if "dense" in p.scores else stored.get(str(p.chunk_id), 0.0) for p in candidates
        ],
        terms=terms,
        subject_terms=subject_terms,
        idf=idf,
        headings=stemmed[:n] if stemmed else [none] * n,
        sentence_stems=sentence_stems,
        ordinals=[ordinal.get(str(p.chunk_id), 1) for p in candidates],
        # the candidate's own terms too: a document whose lexemes are not stored (yet) still has its chunk's
        documents=[frozenset(held.get(str(p.document_id), ())) | (p.lexemes & terms) for p in candidates],
    )


async def candidate_features(
    session: AsyncSession,
    query: str,
    language: str,
    candidates: Sequence[Passage],
    vector: Vector,
    model: str | None = None,
) -> np.ndarray:
    """``feature_matrix`` of ``candidates`` for ``query``."""
    if not candidates:
        return feature_matrix(candidates, Evidence([], frozenset(), frozenset(), {}, [], []))
    return feature_matrix(candidates, await gather(session, query, language, candidates, vector, model))
