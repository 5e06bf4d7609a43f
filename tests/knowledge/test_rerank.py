"""The re-ranking stage of hybrid retrieval (``knowledge.rerank``), through the real
``HybridRetriever`` on PostgreSQL with the offline e5 model: small deterministic re-rankers
written for these tests (one reverses, one sleeps past its budget, one waits on the database
past it, one raises, one loses a passage) show that the stage re-orders only the head of the
fused ranking, records every candidate's scores before and after, and that whatever goes
wrong the fused order reaches the answerer, with the reason, and the turn's session still
works. Which re-rankers a company gets (``engine.tasks.retriever_for``) is tested too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.engine.tasks import retriever_for
from atende.knowledge import ranker
from atende.knowledge.embedding import E5_MODEL, embedder_for
from atende.knowledge.passages import Passage
from atende.knowledge.ranker import LearnedReranker
from atende.knowledge.rerank import RerankStep
from atende.knowledge.retrieval import HybridRetriever, Stage
from atende.llm.rerank import LLMReranker
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import CompanyCtx
from tests.fakes.openai_server import running_openai

DELIVERY_PT = """# Entregas

## Capitais
A entrega nas capitais leva até 2 dias úteis.

## Interior
A entrega no interior leva até 8 dias úteis.

## Frete
A entrega é grátis nas compras acima de 200 reais.

## Rastreio
Cada entrega tem um código de rastreio enviado por e-mail.

## Atrasos
Se a entrega atrasar, avise-nos pelo chat.

## Retirada
Você pode retirar a entrega numa loja sem custo.
"""

QUESTION = "Quanto tempo leva a entrega?"


class Reverse:
    """Puts the candidates it is given in reverse order, and notes what it was given."""

    name = "reverse"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []

    async def rerank(
        self,
        session: AsyncSession,
        query: str,
        language: str,
        candidates: Sequence[Passage],
        query_vector: list[float] | None = None,
    ) -> list[Passage]:
        self.calls.append((language, len(candidates), None if query_vector is None else len(query_vector)))
        reversed_ = list(reversed(candidates))
        for place, passage in enumerate(reversed_):
            passage.score = float(len(reversed_) - place)
        return reversed_


class Sleeps:
    """Takes five seconds, in the event loop (``asyncio.sleep``) or in the database."""

    def __init__(self, where: str) -> None:
        self.name = f"sleeps-in-{where}"
        self.where = where

    async def rerank(
        self, session: AsyncSession, query: str, language: str, candidates: Sequence[Passage], *_: Any
    ) -> list[Passage]:
        if self.where == "database":
            await session.execute(text("SELECT pg_sleep(5)"))
        else:
            await asyncio.sleep(5)
        return list(candidates)


class Raises:
    name = "raises"

    async def rerank(self, *_: Any) -> list[Passage]:
        raise RuntimeError("the model file is missing")


class LosesOne:
    name = "loses-one"

    async def rerank(
        self, session: AsyncSession, query: str, language: str, candidates: Sequence[Passage], *_: Any
    ) -> list[Passage]:
        return list(candidates)[1:]


async def post(company: CompanyCtx, source: str, content: str) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": source, "content": content, "language": "pt"}
    )
    assert r.status_code == 201, r.text


def hybrid(runtime: Runtime, *steps: RerankStep) -> HybridRetriever:
    embedder = embedder_for(runtime, None)
    assert embedder is not None
    return HybridRetriever(embedder, runtime.settings.fusion_dense_weights, candidates=20, rerank=steps)


async def stages_of(
    runtime: Runtime, company: CompanyCtx, retriever: HybridRetriever, k: int = 3
) -> tuple[list[Passage], dict[str, Stage]]:
    seen: list[Stage] = []
    async with runtime.db.transaction(company.id) as session:
        found = await retriever.retrieve(session, QUESTION, k, "pt", stages=seen)
        # the turn's session still works after the re-ranking stage, whatever it did
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
    return found, {s.name: s for s in seen}


def ids(passages: Sequence[Passage]) -> list[Any]:
    return [p.chunk_id for p in passages]


async def test_the_re_ranker_reorders_the_best_fused_candidates_and_the_stage_shows_before_and_after(
    runtime: Runtime, company: CompanyCtx
) -> None:
    await post(company, "entregas.md", DELIVERY_PT)
    reverse = Reverse()
    found, stages = await stages_of(runtime, company, hybrid(runtime, RerankStep(reverse, 4, 5000)))
    assert list(stages) == ["fulltext", "dense", "fused", "reranked"]
    fused, reranked = stages["fused"].passages, stages["reranked"].passages
    assert len(fused) >= 6
    # the first four fused candidates, reversed; the rest as fused; the top 3 go to the answerer
    assert ids(reranked) == ids(fused[:4])[::-1] + ids(fused[4:])
    assert ids(found) == ids(reranked[:3])
    assert (stages["fused"].kept, stages["reranked"].kept) == (4, 3)
    assert stages["reranked"].error is None and stages["reranked"].ms > 0
    # each re-ranked candidate keeps its scores before (BM25, dense, fused, their ranks) and gains
    # the re-ranker's score and its new rank; the fused stage's passages are left as they were
    first = reranked[0]
    assert first.scores["fused_rank"] == 4 and first.scores["reranked_rank"] == 1
    assert first.scores["reranked"] == 4.0 and first.score == 4.0
    assert {"bm25", "bm25_rank", "dense", "dense_rank", "fused"} <= set(first.scores)
    assert [p.scores["reranked_rank"] for p in reranked[:4]] == [1, 2, 3, 4]
    assert all("reranked" not in p.scores for p in [*fused, *reranked[4:]])
    # it was given the question's language and its embedding (e5: 384 numbers), computed once
    assert reverse.calls == [("pt", 4, 384)]


@pytest.mark.parametrize(
    ("reranker", "budget_ms", "why"),
    [
        (Sleeps("event loop"), 100, "sleeps-in-event loop took longer than its 100 ms budget"),
        (Sleeps("database"), 100, "sleeps-in-database took longer than its 100 ms budget"),
        (Raises(), 5000, "raises failed: RuntimeError: the model file is missing"),
        (LosesOne(), 5000, "loses-one: it returned 3 passages that are not the 4 candidates re-ordered"),
    ],
)
async def test_a_re_ranker_that_is_late_fails_or_loses_a_passage_leaves_the_fused_order_and_says_why(
    runtime: Runtime, company: CompanyCtx, reranker: Any, budget_ms: float, why: str
) -> None:
    await post(company, "entregas.md", DELIVERY_PT)
    started = time.perf_counter()
    found, stages = await stages_of(runtime, company, hybrid(runtime, RerankStep(reranker, 4, budget_ms)))
    assert time.perf_counter() - started < 4  # cut off at its budget, not after its five seconds
    reranked = stages["reranked"]
    assert reranked.error == why
    assert ids(reranked.passages) == ids(stages["fused"].passages)
    assert ids(found) == ids(stages["fused"].passages[:3])
    assert all("reranked" not in p.scores for p in reranked.passages)
    if budget_ms == 100:
        assert 100 <= reranked.ms < 1000


async def test_a_second_step_re_orders_the_first_few_of_the_first(
    runtime: Runtime, company: CompanyCtx
) -> None:
    await post(company, "entregas.md", DELIVERY_PT)
    retriever = hybrid(runtime, RerankStep(Reverse(), 6, 5000), RerankStep(Reverse(), 2, 5000, stage="again"))
    found, stages = await stages_of(runtime, company, retriever, k=3)
    assert list(stages)[-2:] == ["reranked", "again"]
    first, second = stages["reranked"].passages, stages["again"].passages
    assert ids(second) == [first[1].chunk_id, first[0].chunk_id, *ids(first[2:])]
    assert (stages["fused"].kept, stages["reranked"].kept, stages["again"].kept) == (6, 3, 3)
    assert second[0].scores["reranked_rank"] == 2 and second[0].scores["again_rank"] == 1
    assert ids(found) == ids(second[:3])


async def test_which_re_rankers_a_company_gets(
    runtime: Runtime, company: CompanyCtx, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def retriever_of() -> HybridRetriever:
        async with runtime.db.transaction() as session:
            retriever = retriever_for(runtime, await tenancy.get_company(session, str(company.id)))
        assert isinstance(retriever, HybridRetriever)
        return retriever

    async def choose(**assistant: Any) -> None:
        r = await company.client.put("/v1/company/assistant", json=assistant)
        assert r.status_code == 200, r.text

    # the learned re-ranker over e5's vectors; another embedder's, or none asked for: the fused order
    learned = ranker.default_reranker(runtime.settings, E5_MODEL)
    assert isinstance(learned, LearnedReranker) and learned is ranker.default_reranker(
        runtime.settings, E5_MODEL
    )
    assert ranker.default_reranker(runtime.settings, "text-embedding-3-small") is None
    assert ranker.default_reranker(runtime.settings.model_copy(update={"reranker": "none"}), E5_MODEL) is None
    first = Reverse()
    monkeypatch.setattr(ranker, "default_reranker", lambda settings, model: first)
    [step] = (await retriever_of()).rerank
    assert (step.reranker, step.candidates, step.budget_ms, step.stage) == (
        first,
        runtime.settings.rerank_candidates,
        runtime.settings.rerank_budget_ms,
        "reranked",
    )
    # LLM re-ranking needs an LLM: asked for without one, nothing more
    await choose(rerank={"enabled": True, "llm": True})
    assert [s.stage for s in (await retriever_of()).rerank] == ["reranked"]
    with running_openai() as fake:
        llm = {"base_url": fake.base_url, "model": "fake-model"}
        await choose(llm=llm, rerank={"enabled": True, "llm": True})
        steps = (await retriever_of()).rerank
        assert [s.stage for s in steps] == ["reranked", "llm_reranked"]
        assert isinstance(steps[1].reranker, LLMReranker)
        assert steps[1].candidates == runtime.settings.rerank_llm_top
        # the company turns re-ranking off: neither runs
        await choose(llm=llm, rerank={"enabled": False, "llm": True})
        assert (await retriever_of()).rerank == ()
