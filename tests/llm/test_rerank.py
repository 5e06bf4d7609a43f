"""LLM re-ranking through the real ``openai`` SDK against the loopback OpenAI-compatible
server: the prompt, the strict reading of the reply, the deadline, and falling back to the
order so far on any failure; then a company that turns it on sees the stage in
``POST /v1/search``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from atende.knowledge.passages import Passage
from atende.llm.grounded import MalformedReply
from atende.llm.rerank import LLMReranker, parse_order, rerank_messages
from atende.openai_compat import client_for
from tests.conftest import CompanyCtx, ask
from tests.db_probe import longest_idle_transaction
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai, stall, status


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


def passage(title: str, text: str) -> Passage:
    return Passage(
        uuid.uuid4(), uuid.uuid4(), title, f"{title} › Prazos", text, "pt", 1.0, scores={"fused": 1.0}
    )


PASSAGES = [
    passage("Pagamentos", "Aceitamos Pix, boleto e cartão."),
    passage("Entregas", "Entregamos no interior em até 8 dias úteis."),
    passage("Trocas", "Você tem 7 dias para desistir da compra."),
]
QUESTION = "Em quantos dias chega no interior?"


def reranker(fake: FakeOpenAI, *, timeout: float = 2.0, threshold: int = 5) -> LLMReranker:
    return LLMReranker(
        client_for(fake.base_url, "sk-test", timeout=30, max_retries=3),  # the reranker's own apply
        "fake-model",
        breakers=AsyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=30),
        circuit=f"rerank#{uuid.uuid4().hex[:6]}",
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("reply", "order"),
    [
        ("2, 1, 3", [1, 0, 2]),
        ("[3,1,2]", [2, 0, 1]),
        (" 2 3 1.\n", [1, 2, 0]),
        ("2", [1]),  # the ones it leaves out keep their order after it (LLMReranker)
    ],
)
def test_a_reply_that_lists_passage_numbers_gives_their_order(reply: str, order: list[int]) -> None:
    assert parse_order(reply, 3) == order


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("The best passage is 2.", "not a list of passage numbers"),
        ("", "not a list of passage numbers"),
        ("2, 4, 1", "names passage 4, not one of 1 to 3"),
        ("0, 1", "names passage 0"),
        ("2, 2, 1", "names a passage twice"),
        ("2; 1; 3", "not a list of passage numbers"),
    ],
)
def test_any_other_reply_is_refused(reply: str, why: str) -> None:
    with pytest.raises(MalformedReply, match=why):
        parse_order(reply, 3)


def test_the_prompt_numbers_the_passages_and_asks_for_numbers_only() -> None:
    system, user = rerank_messages(QUESTION, PASSAGES)
    assert "[1] to [3]" in system["content"] and "numbers only" in system["content"]
    assert "[2] Entregas — Entregas › Prazos\nEntregamos no interior" in user["content"]
    assert user["content"].endswith(f"Question: {QUESTION}")


async def test_the_llm_orders_the_passages_and_each_gets_its_place(fake: FakeOpenAI) -> None:
    fake.script(answer("2, 3"))
    given = [Passage(**{**p.__dict__, "scores": dict(p.scores)}) for p in PASSAGES]
    ranked = await reranker(fake).rerank(None, QUESTION, "pt", given)  # type: ignore[arg-type]
    assert [p.title for p in ranked] == ["Entregas", "Trocas", "Pagamentos"]
    assert [p.score for p in ranked] == pytest.approx([1.0, 0.6667, 0.3333])
    assert [p.scores.get("llm_rank") for p in ranked] == [1, 2, None]  # it did not rank the last
    request = fake.requests[-1]
    assert (request["model"], request["temperature"]) == ("fake-model", 0)


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (stall(5), TimeoutError),
        (status(500), Exception),
        (answer("Passage 2 answers it best."), MalformedReply),
    ],
)
async def test_a_slow_failing_or_rambling_llm_raises_and_is_asked_once(
    fake: FakeOpenAI, behaviour: Any, error: type[BaseException]
) -> None:
    fake.script(behaviour)
    with pytest.raises(error):
        await reranker(fake, timeout=0.5).rerank(None, QUESTION, "pt", PASSAGES)  # type: ignore[arg-type]
    assert len(fake.requests) == 1  # no retry: every second is the customer's


async def test_an_endpoint_that_keeps_failing_opens_the_circuit(fake: FakeOpenAI) -> None:
    fake.script(status(503))
    llm = reranker(fake, threshold=2)
    for _ in range(2):
        with pytest.raises(Exception, match="503"):
            await llm.rerank(None, QUESTION, "pt", PASSAGES)  # type: ignore[arg-type]
    with pytest.raises(OpenedState):
        await llm.rerank(None, QUESTION, "pt", PASSAGES)  # type: ignore[arg-type]
    assert len(fake.requests) == 2


SHIPPING_PT = """# Entregas

## Capitais
A entrega nas capitais leva até 2 dias úteis.

## Interior
A entrega no interior leva até 8 dias úteis.

## Frete
A entrega é grátis nas compras acima de 200 reais.
"""


async def test_a_company_that_turns_llm_re_ranking_on_sees_its_stage_in_a_search(
    company: CompanyCtx, fake: FakeOpenAI
) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "entregas.md", "content": SHIPPING_PT, "language": "pt"}
    )
    assert r.status_code == 201, r.text
    llm = {"base_url": fake.base_url, "model": "fake-model"}
    r = await company.client.put("/v1/company/assistant", json={"llm": llm, "rerank": {"llm": True}})
    assert r.status_code == 200 and r.json()["rerank"] == {"enabled": True, "llm": True}

    fake.script(answer("3, 1, 2"), answer("NO_ANSWER"))  # the re-ranking, then the answer
    r = await company.client.post("/v1/search", json={"question": "Quanto tempo leva a entrega no interior?"})
    assert r.status_code == 200, r.text
    stages = {s["name"]: s for s in r.json()["stages"]}
    assert list(stages) == ["fulltext", "dense", "fused", "reranked", "llm_reranked"]
    fused, reranked = stages["fused"], stages["llm_reranked"]
    assert reranked["error"] is None and reranked["kept"] == 5
    before = [c["chunk_id"] for c in fused["candidates"]]
    assert [c["chunk_id"] for c in reranked["candidates"]] == [before[2], before[0], before[1]]
    first = reranked["candidates"][0]["scores"]
    assert (first["fused_rank"], first["llm_reranked_rank"], first["llm_rank"]) == (3, 1, 1)
    assert "Question: Quanto tempo leva a entrega no interior?" in fake.requests[0]["messages"][1]["content"]

    # the LLM fails: the fused order stands, and the stage says why
    fake.script(status(400), answer("NO_ANSWER"))
    r = await company.client.post("/v1/search", json={"question": "Quanto tempo leva a entrega no interior?"})
    reranked = next(s for s in r.json()["stages"] if s["name"] == "llm_reranked")
    assert reranked["error"].startswith("llm failed: BadRequestError")
    assert [c["chunk_id"] for c in reranked["candidates"]] == before

    # turned off: no stage, no request
    r = await company.client.put("/v1/company/assistant", json={"llm": llm, "rerank": {"enabled": False}})
    fake.script(answer("NO_ANSWER"))
    r = await company.client.post("/v1/search", json={"question": "Quanto tempo leva a entrega no interior?"})
    assert [s["name"] for s in r.json()["stages"]] == ["fulltext", "dense", "fused"]
    assert len(fake.requests) == 1  # the answer's only


async def test_a_turn_holds_no_transaction_open_while_the_llm_re_ranks(
    company: CompanyCtx, fake: FakeOpenAI, db_url: str
) -> None:
    """The LLM's re-ranking may take seconds (ATENDE_RERANK_LLM_TIMEOUT_SECONDS): the turn asks
    for it after its reading transaction, so no connection sits idle in a transaction meanwhile;
    its stage is still in the trace."""
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "entregas.md", "content": SHIPPING_PT, "language": "pt"}
    )
    assert r.status_code == 201, r.text
    llm = {"base_url": fake.base_url, "model": "fake-model"}
    r = await company.client.put("/v1/company/assistant", json={"llm": llm, "rerank": {"llm": True}})
    assert r.status_code == 200, r.text
    fake.script(answer("2, 1, 3", after=1.5), answer("No interior, até 8 dias úteis [1]."))
    stop = asyncio.Event()
    watching = asyncio.create_task(longest_idle_transaction(db_url, 6, stop))
    body = await ask(company.client, "Quanto tempo leva a entrega no interior?")
    stop.set()
    assert await watching < 1.0  # the LLM took 1.5 s: before, the reading transaction waited for it
    assert len(fake.requests) == 2 and fake.requests[0]["max_tokens"] == 60  # the re-ranking's request
    traces = (await company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    steps = {s["step"]: s for s in traces[-1]["steps"]}
    assert steps["rerank"]["ms"] >= 1400 and "fallbacks" not in steps["rerank"]
    assert any("llm_reranked" in p["scores"] for p in traces[-1]["retrieved"])


async def test_a_turns_trace_keeps_why_a_re_ranking_stage_kept_the_order_before_it(
    company: CompanyCtx, fake: FakeOpenAI
) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "entregas.md", "content": SHIPPING_PT, "language": "pt"}
    )
    assert r.status_code == 201, r.text
    llm = {"base_url": fake.base_url, "model": "fake-model"}
    r = await company.client.put("/v1/company/assistant", json={"llm": llm, "rerank": {"llm": True}})
    assert r.status_code == 200, r.text
    fake.script(status(400), answer("No interior, até 8 dias úteis [1]."))
    body = await ask(company.client, "Quanto tempo leva a entrega no interior?")
    traces = (await company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    steps = {s["step"]: s for s in traces[-1]["steps"]}
    [fell] = steps["rerank"]["fallbacks"]
    assert fell["stage"] == "llm_reranked" and fell["error"].startswith("llm failed: BadRequestError")
