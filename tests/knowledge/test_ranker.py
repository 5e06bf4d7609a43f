"""The learned re-ranker: its features, its shipped model, and what it does to a ranking.

The features and the model are checked on hand-built passages; the re-ranker itself on a
real knowledge base (the XQuAD sample shipped in tests/data, ingested and embedded with the
offline e5 model) retrieved by the real hybrid retriever.
"""

from __future__ import annotations

import fnmatch
import json
import math
import tomllib
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of
from atende.engine.tasks import retriever_for
from atende.knowledge.embedding import Vector, embedder_for, to_sql
from atende.knowledge.passages import Passage
from atende.knowledge.ranker import LearnedReranker, features
from atende.knowledge.ranker.features import FEATURES, Evidence, candidate_features, feature_matrix, gather
from atende.knowledge.ranker.model import MODEL_FILE, ModelMismatch, calibration_inputs, parse, shipped
from atende.knowledge.retrieval import lexemes, question_stems
from atende.knowledge.text import sentences, subject_line
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests/data/retrieval"


def candidate(name: str, lexemes: set[str], **scores: float) -> Passage:
    return Passage(
        chunk_id=uuid.uuid5(uuid.NAMESPACE_URL, name),
        document_id=uuid.uuid4(),
        title=name,
        section="",
        text=name,
        language="en",
        score=scores.get("fused", 0.0),
        lexemes=frozenset(lexemes),
        scores=dict(scores),
    )


def column(matrix: np.ndarray, name: str) -> list[float]:
    return [round(float(v), 4) for v in matrix[:, FEATURES.index(name)]]


def test_features_measure_scores_ranks_and_the_questions_terms_each_candidate_covers() -> None:
    found_by_both = candidate(
        "a", {"warranty", "device", "month"}, bm25=8.0, bm25_rank=1, dense=0.8, dense_rank=2, fused=1.0
    )
    dense_only = candidate("b", {"device"}, dense=0.9, dense_rank=1, fused=0.2)
    evidence = Evidence(
        cosines=[0.8, 0.9],
        terms=frozenset({"warranty", "device"}),
        subject_terms=frozenset(),
        idf={"warranty": 3.0, "device": 1.0},
        headings=[frozenset({"warranty"}), frozenset()],
        sentence_stems=[[frozenset({"warranty"}), frozenset({"device", "month"})], [frozenset({"device"})]],
    )
    matrix = feature_matrix([found_by_both, dense_only], evidence)
    assert matrix.shape == (2, len(FEATURES))
    assert column(matrix, "coverage") == [1.0, 0.5]
    assert column(matrix, "coverage_idf") == [1.0, 0.25]  # the rare term weighs three times more
    assert column(matrix, "sentence_coverage") == [0.75, 0.25]  # its best sentence holds "warranty"
    assert column(matrix, "heading_coverage") == [0.5, 0.0]
    assert column(matrix, "bm25_missing") == [0.0, 1.0]
    assert column(matrix, "bm25_rank") == [0.0, round(math.log(51), 4)]
    assert column(matrix, "cosine_rank") == [round(math.log(2), 4), 0.0]
    assert column(matrix, "cosine_gap") == [0.1, 0.0]
    assert column(matrix, "fused_gap") == [0.0, 0.8]
    assert column(matrix, "subject_coverage") == [0.0, 0.0]  # no subject line
    assert feature_matrix([], evidence).shape == (0, len(FEATURES))
    # hand-built evidence without the documents' statement: no chunk is taken for its
    # document's first, and a document holds what its chunk holds
    assert column(matrix, "first_chunk") == [0.0, 0.0]
    assert column(matrix, "document_coverage") == column(matrix, "coverage_idf")


def test_document_features_see_the_whole_document_and_the_chunks_place_in_it() -> None:
    opening = candidate("a", {"warranty"}, fused=1.0)
    # a later chunk of the same document, and a chunk of another one
    later = Passage(**{**candidate("b", {"month"}, fused=0.8).__dict__, "document_id": opening.document_id})
    other = candidate("c", {"device"}, fused=0.5)
    evidence = Evidence(
        cosines=[0.8, 0.7, 0.6],
        terms=frozenset({"warranty", "device", "month"}),
        subject_terms=frozenset(),
        idf={"warranty": 2.0, "device": 1.0, "month": 1.0},
        headings=[frozenset()] * 3,
        sentence_stems=[
            [frozenset({"warranty"})],
            [frozenset({"month"}), frozenset({"device"}), frozenset()],
            [frozenset({"device"})],
        ],
        ordinals=[0, 3, 2],
        documents=[frozenset({"warranty", "month"}), frozenset({"warranty", "month"}), frozenset({"device"})],
    )
    matrix = feature_matrix([opening, later, other], evidence)
    assert column(matrix, "first_chunk") == [1.0, 0.0, 0.0]
    assert column(matrix, "document_coverage") == [0.75, 0.75, 0.25]  # the chunks' document holds 3 of 4
    assert column(matrix, "document_candidates") == [round(math.log(2), 4)] * 2 + [0.0]
    assert column(matrix, "two_sentence_coverage") == [0.5, 0.5, 0.25]  # "month" and "device"


def test_the_shipped_model_loads_from_the_package_and_scores_every_candidate() -> None:
    model = shipped()
    assert model.features == FEATURES
    assert model.candidates == 50
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(7, len(FEATURES)))
    scores = model.scores(matrix)
    probabilities = model.probabilities(scores)
    assert scores.shape == probabilities.shape == (7,)
    assert ((probabilities > 0) & (probabilities < 1)).all()
    # the best-scored candidate is the likeliest
    assert int(np.argmax(probabilities)) == int(np.argmax(scores))


def test_the_model_file_is_package_data() -> None:
    # `pip install atende` (not only a checkout) must carry the model file
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["atende"]
    assert any(fnmatch.fnmatch(f"knowledge/ranker/{MODEL_FILE}", p) for p in patterns)


def test_a_model_trained_on_other_features_is_refused() -> None:
    data: dict[str, Any] = json.loads((ROOT / "src/atende/knowledge/ranker" / MODEL_FILE).read_text())
    data["features"] = ["bm25", *data["features"][1:]]
    with pytest.raises(ModelMismatch, match="trained on features"):
        parse(data)


def test_calibration_inputs_give_the_top_its_margin_over_the_runner_up() -> None:
    inputs = calibration_inputs(np.array([2.0, 0.5, 1.0]))
    assert inputs[:, 1].tolist() == [1.0, -1.5, -1.0]
    assert inputs[:, 2].sum() == pytest.approx(1.0)
    assert calibration_inputs(np.array([])).shape == (0, 3)


def sample(language: str, documents: int) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The first ``documents`` articles of the shipped sample: their text, their questions."""
    passages = [json.loads(line) for line in (SAMPLE / f"{language}.passages.jsonl").read_text().splitlines()]
    kept = list(dict.fromkeys(p["doc_id"] for p in passages))[:documents]
    texts = {d: "\n\n".join(p["text"] for p in passages if p["doc_id"] == d) for d in kept}
    questions = [
        json.loads(line) for line in (SAMPLE / f"{language}.questions.jsonl").read_text().splitlines()
    ]
    return texts, [q for q in questions if q["doc_id"] in texts]


async def test_the_reranker_reorders_the_candidates_records_its_scores_and_moves_right_answers_up(
    runtime: Runtime, company: CompanyCtx
) -> None:
    texts, questions = sample("en", 3)
    titles: dict[str, str] = {}
    for doc_id, body in texts.items():
        r = await company.client.post(
            "/v1/documents?wait=true",
            json={"source": f"{doc_id}.txt", "content": body, "language": "en", "title": doc_id},
        )
        assert r.status_code == 201, r.text
        titles[r.json()["document"]["id"]] = doc_id
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    hybrid = retriever_for(runtime, None)
    reranker = LearnedReranker(embedding_model=embedder.model)
    before: list[int] = []
    after: list[int] = []

    def rank_of(ranked: list[Passage], q: dict[str, Any]) -> int:
        for i, p in enumerate(ranked, start=1):
            if titles[str(p.document_id)] == q["doc_id"] and any(a in p.text for a in q["answers"]):
                return i
        return len(ranked) + 1

    for q in questions[::4]:
        async with runtime.db.transaction(company.id) as session:
            fused = await hybrid.retrieve(session, q["question"], 50, "en")
            vector = await embedder.query(q["question"])
            ranked = await reranker.rerank(session, q["question"], "en", fused, vector)
        assert {p.chunk_id for p in ranked} == {p.chunk_id for p in fused}
        assert [p.scores["rerank_rank"] for p in ranked] == list(range(1, len(ranked) + 1))
        learned = [p.scores["learned"] for p in ranked]
        assert learned == sorted(learned, reverse=True)
        assert all(0 <= p.scores["rerank_p"] <= 1 for p in ranked)
        assert ranked[0].score == pytest.approx(learned[0], abs=1e-3)
        assert {"fused", "learned", "rerank_p"} <= set(ranked[-1].scores)  # before and after, side by side
        async with runtime.db.transaction(company.id) as session:
            terms = frozenset((await question_stems(session, q["question"]))["en"])
            evidence = await gather(session, q["question"], "en", fused, vector)
            ordinals, held = evidence.ordinals, evidence.documents
            # the question's terms each whole document holds, read from all its chunks
            whole = {
                r[0]: frozenset(r[1])
                for r in await session.execute(
                    text(
                        "SELECT c.document_id, array_agg(DISTINCT l) FROM chunks c"
                        " CROSS JOIN LATERAL unnest(tsvector_to_array(c.tsv)) AS l"
                        " WHERE c.company_id = :company AND l = ANY(:terms) GROUP BY c.document_id"
                    ),
                    {"company": company.id, "terms": sorted(terms)},
                )
            }
        assert held == [whole.get(p.document_id, frozenset()) for p in fused]
        # every article is one document of several chunks: its first is at 0, and each
        # chunk's document holds at least the question's terms the chunk holds
        assert 0 in ordinals and max(ordinals) > 0
        assert all(terms & p.lexemes <= found for p, found in zip(fused, held, strict=True))
        before.append(rank_of(fused, q))
        after.append(rank_of(ranked, q))
    # the right passage comes first more often after re-ranking, and on average no lower
    assert sum(r == 1 for r in after) >= sum(r == 1 for r in before)
    assert sum(1 / r for r in after) >= sum(1 / r for r in before)


async def test_a_documents_lexemes_follow_its_versions_and_go_with_it(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """What ``document_coverage`` reads: every lexeme of the document's current chunks,
    rewritten with each version, deleted with the document."""

    async def stored(document_id: str) -> list[list[str]]:
        async with runtime.db.transaction(company.id) as session:
            rows = await session.execute(
                text("SELECT lexemes FROM document_lexemes WHERE document_id = :d"), {"d": document_id}
            )
            return [list(r[0]) for r in rows]

    body = {"source": "returns.md", "language": "en", "title": "Returns"}
    content = "# Returns\n\nParcels come back within thirty days.\n\n" + "Refunds follow. " * 200
    first = {**body, "content": content}
    r = await company.client.post("/v1/documents?wait=true", json=first)
    assert r.status_code == 201, r.text
    document_id = r.json()["document"]["id"]
    assert r.json()["document"]["chunk_count"] > 1
    [lexemes_] = await stored(document_id)
    assert {"parcel", "thirti", "refund"} <= set(lexemes_) and lexemes_ == sorted(set(lexemes_))
    r = await company.client.post(
        "/v1/documents?wait=true", json={**body, "content": "# Returns\n\nWarranty claims take a week."}
    )
    assert r.status_code in (200, 201), r.text
    [lexemes_] = await stored(document_id)
    assert "warranti" in lexemes_ and "parcel" not in lexemes_ and "refund" not in lexemes_
    assert (await company.client.delete(f"/v1/documents/{document_id}")).status_code == 204
    assert await stored(document_id) == []


async def test_a_document_re_indexed_by_an_older_release_is_read_from_its_chunks(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """A release before migration 0043 re-indexing a document writes new chunks and leaves
    its ``document_lexemes`` row as it was: the row names another first chunk, so the
    document's terms are read from its chunks, not from the stale row."""
    r = await company.client.post(
        "/v1/documents?wait=true",
        json={"source": "r.md", "language": "en", "title": "Returns", "content": "Parcels come back."},
    )
    assert r.status_code == 201, r.text
    document_id = uuid.UUID(r.json()["document"]["id"])
    chunk_id = uuid.uuid4()
    body = "Warranty claims take a week."
    async with runtime.db.transaction(company.id) as session:
        await session.execute(text("DELETE FROM chunks WHERE document_id = :d"), {"d": document_id})
        await session.execute(
            text(
                "INSERT INTO chunks (id, created_at, company_id, document_id, ordinal, section, text,"
                " language, tsv) VALUES (:id, now(), :c, :d, 0, '', :t, 'en', to_tsvector('english', :t))"
            ),
            {"id": chunk_id, "c": company.id, "d": document_id, "t": body},
        )
    passage = Passage(
        chunk_id=chunk_id,
        document_id=document_id,
        title="Returns",
        section="",
        text=body,
        language="en",
        score=1.0,
        lexemes=frozenset({"warranti", "claim", "take", "week"}),
        scores={"bm25": 1.0, "fused": 1.0},
    )
    async with runtime.db.transaction(company.id) as session:
        stale = await session.scalar(
            text("SELECT lexemes FROM document_lexemes WHERE document_id = :d"), {"d": document_id}
        )
        evidence = await gather(session, "warranty or parcel?", "en", [passage], [0.1] * 384)
    assert "parcel" in stale  # the row is the old version's
    assert evidence.documents == [frozenset({"warranti"})]


async def test_without_the_questions_embedding_the_candidates_keep_their_order(
    runtime: Runtime, company: CompanyCtx
) -> None:
    fused = [candidate("a", {"x"}, fused=1.0), candidate("b", {"y"}, fused=0.5)]
    async with runtime.db.transaction(company.id) as session:
        kept = await LearnedReranker().rerank(session, "x", "en", fused, None)
    assert [p.title for p in kept] == ["a", "b"]
    assert [p.scores["rerank_rank"] for p in kept] == [1, 2]
    assert all("rerank_p" not in p.scores for p in kept)


async def every_stem_evidence(
    session: AsyncSession, query: str, candidates: list[Passage], vector: Vector, model: str
) -> Evidence:
    """The features' evidence as first computed, a round trip each: every stem of every
    candidate's heading and sentences, the idf and the stored cosines on their own."""
    subject = subject_line(query)
    language = candidates[0].language  # the knowledge base's
    terms = (await question_stems(session, query)).get(language, frozenset())
    subject_terms = frozenset()
    if subject:
        subject_terms = (await question_stems(session, subject)).get(language, frozenset())
    company = company_of(session)
    idf = {
        r[0]: float(r[1])
        for r in await session.execute(
            text(
                "WITH total AS (SELECT greatest(chunks, 1)::float8 AS n FROM lexeme_stats"
                " WHERE company_id = :c AND lexeme = '')"
                " SELECT s.lexeme, ln(1 + (total.n - s.chunks + 0.5) / (s.chunks + 0.5))"
                " FROM lexeme_stats s CROSS JOIN total WHERE s.company_id = :c"
                " AND s.lexeme = ANY(CAST(:terms AS text[])) AND s.chunks > 0"
            ),
            {"c": company, "terms": sorted(terms | subject_terms)},
        )
    }
    stored = {
        r[0]: float(r[1])
        for r in await session.execute(
            text(
                "SELECT chunk_id, 1 - (embedding::vector(384) <=> CAST(:v AS vector(384))) FROM chunk_vectors"
                " WHERE company_id = :c AND model = :m AND chunk_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"c": company, "v": to_sql(vector), "m": model, "ids": [p.chunk_id for p in candidates]},
        )
    }
    titles = [" ".join(x for x in (p.title, p.section) if x) for p in candidates]
    headings = await lexemes(session, [(t, p.language) for t, p in zip(titles, candidates, strict=True)])
    split = [sentences(p.text) for p in candidates]
    stemmed = await lexemes(
        session, [(line, p.language) for lines, p in zip(split, candidates, strict=True) for line in lines]
    )
    sentence_stems, at = [], 0
    for lines in split:
        sentence_stems.append(stemmed[at : at + len(lines)])
        at += len(lines)
    rows = (
        await session.execute(
            text(
                "SELECT c.id, c.document_id, c.ordinal, ARRAY(SELECT t.lexeme FROM chunk_terms t"
                " WHERE t.company_id = c.company_id AND t.chunk_id = c.id"
                " AND t.lexeme = ANY(CAST(:terms AS text[])))"
                " FROM chunks c WHERE c.company_id = :c AND c.document_id = ANY(CAST(:docs AS uuid[]))"
            ),
            {"c": company, "terms": sorted(terms), "docs": sorted({p.document_id for p in candidates})},
        )
    ).all()
    ordinal = {r[0]: int(r[2]) for r in rows}
    held: dict[Any, set[str]] = {}
    for r in rows:
        held.setdefault(r[1], set()).update(r[3])
    return Evidence(
        cosines=[p.scores.get("dense", stored.get(p.chunk_id, 0.0)) for p in candidates],
        terms=terms,
        subject_terms=subject_terms,
        idf=idf,
        headings=headings,
        sentence_stems=sentence_stems,
        ordinals=[ordinal.get(p.chunk_id, 1) for p in candidates],
        documents=[frozenset(held.get(p.document_id, ())) for p in candidates],
    )


async def test_the_features_come_in_one_round_trip_and_equal_those_of_every_stem(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """The re-ranker reads its evidence in one statement, keeping of the candidates' heading
    and sentence stems only the question's terms: the features are exactly those computed
    from all their stems (the model was trained on them). The stems are kept for the process:
    the same candidates again (a message's questions re-rank mostly its own candidates) are
    stemmed by nobody and get the same features."""
    features._STEMS.clear()
    texts, questions = sample("en", 3)
    for doc_id, body in texts.items():
        r = await company.client.post(
            "/v1/documents?wait=true",
            json={"source": f"{doc_id}.txt", "content": body, "language": "en", "title": doc_id},
        )
        assert r.status_code == 201, r.text
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    hybrid = retriever_for(runtime, None)
    asked = [q["question"] for q in questions[:6]]
    asked.append(f"Warranty question\n{asked[0]}")  # a subject line
    statements: list[str] = []
    bodies: list[list[str]] = []

    def count(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        statements.append(statement)
        bodies.append(list(parameters.get("bodies", ())) if isinstance(parameters, dict) else [])

    for query in asked:
        async with runtime.db.transaction(company.id) as session:
            fused = await hybrid.retrieve(session, query, 50, "en")
            for p in fused[1::2]:  # as if only BM25 had found these: their cosine from their vector
                p.scores.pop("dense", None)
            vector = await embedder.query(query)
            reference = feature_matrix(
                fused, await every_stem_evidence(session, query, fused, vector, embedder.model)
            )
            sync = (await session.connection()).sync_connection
            assert sync is not None
            statements.clear()
            bodies.clear()
            event.listen(sync, "before_cursor_execute", count)
            try:
                matrix = await candidate_features(session, query, "en", fused, vector, embedder.model)
                again = await candidate_features(session, query, "en", fused, vector, embedder.model)
            finally:
                event.remove(sync, "before_cursor_execute", count)
        assert len(statements) == 2, statements  # one round trip each
        assert bodies[1] == [], "the second time, nothing is stemmed again"
        assert np.array_equal(again, matrix), query
        # equal but for the order a share's idf weights are summed in (a set's, which Python's
        # per-process string hashing already varied from one process to the next)
        assert np.allclose(matrix, reference, rtol=0, atol=1e-12), query


def test_the_stem_cache_is_bounded_by_the_characters_it_holds() -> None:
    """Long unpunctuated sentences (a chunk long) fill the cache by size before its count."""
    cache = features._Stems(10_000, chars=10_000)
    for n in range(20):
        cache.put((f"{n} " + "palavra " * 250, "pt"), frozenset({"palavr", f"n{n}"}))
    assert cache.held <= 10_000 and 1 <= len(cache.stems) < 20
    assert cache.get(("19 " + "palavra " * 250, "pt")) is not None  # the latest kept
    assert cache.get(("0 " + "palavra " * 250, "pt")) is None  # the oldest out
    cache.clear()
    assert (cache.held, len(cache.stems)) == (0, 0)
