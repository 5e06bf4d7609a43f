"""Retrieval filters apply inside both statements (BM25 postings, nearest vectors), not to
their results: asked for the top 2, a filter that removes almost every chunk still returns 2."""

from __future__ import annotations

import uuid

from atende.knowledge.embedding import embedder_for
from atende.knowledge.filters import Filters
from atende.knowledge.retrieval import FullTextRetriever, Stage, dense_search
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
