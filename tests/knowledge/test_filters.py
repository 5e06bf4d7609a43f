"""Retrieval filters apply inside both statements (BM25 postings, nearest vectors), not to
their results: asked for the top 2, a filter that removes almost every chunk still returns 2."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from atende.knowledge.embedding import embedder_for
from atende.knowledge.filters import NO_FILTERS, Filters, Match, chunk_clause
from atende.knowledge.retrieval import FullTextRetriever, Stage, bm25_statement, dense_search, narrowing
from atende.knowledge.service import Chunking, Metadata, ingest, store_vectors
from atende.runtime import Runtime
from tests.conftest import CompanyCtx
from tests.knowledge.test_hybrid import post

QUESTION = "prazo de entrega das compras em dias úteis"
SHIPPING = "# Entregas {n}\n\n## Prazos\nO prazo de entrega das compras é de {n} dias úteis em todo o país."


async def test_a_filter_that_leaves_few_chunks_still_fills_the_top_k(
    runtime: Runtime, company: CompanyCtx
) -> None:
    for n in range(12):
        await post(company, f"entregas-{n}.md", SHIPPING.format(n=n + 2), language="pt")
    promo = {
        uuid.UUID((await post(company, f"promo-{n}.md", body, language="pt", meta={"tags": ["promo"]}))["id"])
        for n, body in enumerate(["# Promoção\n\nFrete grátis na entrega.", "# Natal\n\nEntregas no Natal."])
    }
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    vector = await embedder.query(QUESTION)
    only_promo = Filters(tags=("promo",))
    async with runtime.db.transaction(company.id) as session:
        stages: list[Stage] = []
        unfiltered = await FullTextRetriever().retrieve(session, QUESTION, 2)
        lexical = await FullTextRetriever().retrieve(session, QUESTION, 2, filters=only_promo, stages=stages)
        nearest = await dense_search(session, vector, embedder.model, 2)
        dense = await dense_search(session, vector, embedder.model, 2, only_promo)
    # unfiltered, the twelve shipping documents fill the top 2; filtered, the promotions do
    assert not {p.document_id for p in unfiltered + nearest} & promo
    assert {p.document_id for p in lexical} == promo
    assert {p.document_id for p in dense} == promo
    assert [(s.name, len(s.passages)) for s in stages] == [("fulltext", 2)]


# 1,000 chunks: 100 documents of 10 sections; one document (10 chunks, 1 %) is product "pro"
# in the south region, one is internal, one an expired promotion
SECTIONS = 10
DOCUMENTS = 100
SYNTHETIC_MODEL = "synthetic-384"


def _document(n: int, *, long: bool) -> bytes:
    # the chosen document's passages are longer: BM25 ranks them below every other
    padding = " Vale para todas as lojas, todos os dias, em todas as cidades do país." if long else ""
    parts = [
        f"## Parte {i}\n\nO prazo de entrega das compras é de {n % 9 + 1} dias úteis.{padding}\n"
        for i in range(SECTIONS)
    ]
    return (f"# Entregas {n}\n\n" + "\n".join(parts)).encode()


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


async def _thousand_chunks(runtime: Runtime, company: CompanyCtx) -> dict[str, uuid.UUID]:
    """The corpus, with synthetic vectors (the offline model would take minutes): every chunk
    near the question's vector, those of the "pro" document farther than all the others."""
    special = {
        0: ("pro", Metadata(product="pro", custom={"region": "south"})),
        1: ("internal", Metadata(audience="internal")),
        2: ("expired", Metadata(tags=("promo",), valid_until=datetime.now(UTC) - timedelta(days=1))),
    }
    ids: dict[str, uuid.UUID] = {}
    for n in range(DOCUMENTS):
        name, meta = special.get(n, (f"doc-{n}", None))
        result = await ingest(
            runtime.db,
            company.id,
            source=f"entregas-{n}.md",
            data=_document(n, long=n == 0),
            max_bytes=1_000_000,
            chunking=Chunking(),
            embedder=None,
            lang="pt",
            meta=meta,
        )
        ids[name] = result.document.id
    rng = random.Random(7)
    async with runtime.db.transaction(company.id) as session:
        rows = (
            await session.execute(
                text("SELECT id, document_id FROM chunks WHERE company_id = :c ORDER BY id"),
                {"c": company.id},
            )
        ).all()
        vectors = []
        for _chunk, document in rows:
            far = 0.6 if document == ids["pro"] else 0.1  # the "pro" chunks point elsewhere
            vectors.append(_unit([1.0, far, *(rng.uniform(-0.01, 0.01) for _ in range(382))]))
        await store_vectors(session, SYNTHETIC_MODEL, [r[0] for r in rows], vectors)
    assert len(rows) == SECTIONS * DOCUMENTS
    return ids


async def test_a_filter_that_keeps_1_percent_of_1000_chunks_fills_the_top_k_in_both_paths(
    runtime: Runtime, company: CompanyCtx
) -> None:
    ids = await _thousand_chunks(runtime, company)
    question_vector = _unit([1.0, 0.0, *([0.0] * 382)])
    k = SECTIONS
    pro = ids["pro"]
    kept = {
        "product": Filters(product="pro"),
        "attribute, any of": Filters(matches=(Match("region", ("north", "south")),)),
        "product or unset, with the validity window": Filters(
            valid_at=datetime.now(UTC), matches=(Match("product", ("pro",), or_unset=False),)
        ),
        "two filters combined": Filters(product="pro") & Filters(matches=(Match("region", ("south",)),)),
    }
    async with runtime.db.transaction(company.id) as session:
        lexical = await FullTextRetriever().retrieve(session, QUESTION, k)
        nearest = await dense_search(session, question_vector, SYNTHETIC_MODEL, k)
        # unfiltered, the other 99 % fill both top tens
        assert len(lexical) == len(nearest) == k
        assert pro not in {p.document_id for p in lexical + nearest}
        for name, filters in kept.items():
            lexical = await FullTextRetriever().retrieve(session, QUESTION, k, filters=filters)
            nearest = await dense_search(session, question_vector, SYNTHETIC_MODEL, k, filters)
            assert [p.document_id for p in lexical] == [pro] * k, name
            assert [p.document_id for p in nearest] == [pro] * k, name
        # the negative forms: the audience (any case) and an expired promotion's window
        everything = DOCUMENTS * SECTIONS
        customer = Filters(
            valid_at=datetime.now(UTC),
            windowed_tags=("promo",),
            matches=(Match("audience", ("INTERNAL",), negate=True),),
        )
        lexical = await FullTextRetriever().retrieve(session, QUESTION, everything, filters=customer)
        nearest = await dense_search(session, question_vector, SYNTHETIC_MODEL, everything, customer)
        for found in (lexical, nearest):
            assert len(found) == everything - 2 * SECTIONS
            assert not {p.document_id for p in found} & {ids["internal"], ids["expired"]}
        # rules that no document fails leave both statements unfiltered (nothing to hash)
        no_one = Filters(matches=(Match("audience", ("nobody",), negate=True),))
        assert await narrowing(session, no_one) is NO_FILTERS
        assert await narrowing(session, customer) is customer
        nothing = await dense_search(
            session, question_vector, SYNTHETIC_MODEL, k, Filters(product="pro") & Filters(product="basic")
        )
        assert nothing == []


def test_no_filter_leaves_both_statements_as_they_were() -> None:
    assert chunk_clause(NO_FILTERS, "t.chunk_id") == ("", {})
    assert chunk_clause(NO_FILTERS & NO_FILTERS, "t.chunk_id") == ("", {})
    assert bm25_statement(NO_FILTERS)[0] is bm25_statement(Filters())[0]
    both = Filters(product="a") & Filters(product="b") & Filters(tags=("x",))
    for hashed in (False, True):
        clause, _ = chunk_clause(both, "v.chunk_id", hashed=hashed)
        assert clause.count("SELECT") == 1 and clause.count("fd.product =") == 2
