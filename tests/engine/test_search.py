"""``POST /v1/search``: a question through the bot's real turn with nothing stored — each
retrieval stage with its scores and ranks, the answer the bot would give with its citations,
why it would answer or hand off; filters inside both retrieval statements; bad input refused."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from atende.conversations.models import Contact, Conversation, Message
from atende.engine.models import Trace
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx
from tests.tenancy.test_support_api import new_key

SHIPPING_PT = """# Entregas

## Prazos
Entregamos nas capitais em até 2 dias úteis e no interior em até 8 dias úteis.

## Frete
O frete é grátis nas compras acima de 200 reais.
"""

RETURNS_PT = """# Trocas e devoluções

## Arrependimento
Você tem 7 dias corridos após o recebimento para desistir da compra, sem custo.
"""

WARRANTY_EN = """# Warranty

## Electronics
Every electronic device carries a 12-month manufacturer warranty against defects.
"""


async def post(company: CompanyCtx, source: str, content: str, **extra: Any) -> dict[str, Any]:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": source, "content": content, **extra}
    )
    assert r.status_code == 201, r.text
    return dict(r.json()["document"])


@pytest.fixture
async def shop(company: CompanyCtx) -> dict[str, dict[str, Any]]:
    return {
        "shipping": await post(company, "entregas.md", SHIPPING_PT, language="pt"),
        "returns": await post(company, "trocas.md", RETURNS_PT, language="pt"),
        "warranty": await post(company, "warranty.md", WARRANTY_EN, language="en"),
    }


async def stored(runtime: Runtime, company_id: uuid.UUID) -> dict[str, int]:
    async with runtime.db.transaction(company_id) as session:
        return {
            model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Contact, Conversation, Message, Trace)
        }


async def search(company: CompanyCtx, **body: Any) -> dict[str, Any]:
    r = await company.client.post("/v1/search", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def stage(result: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [s for s in result["stages"] if s["name"] == name]
    return found


async def test_a_covered_question_shows_each_stage_and_the_cited_answer_and_stores_nothing(
    company: CompanyCtx, shop: dict[str, dict[str, Any]], runtime: Runtime
) -> None:
    before = await stored(runtime, company.id)
    result = await search(company, question="Em quantos dias vocês entregam no interior?")
    assert result["language"] == "pt" and result["language_detected"] is True
    assert result["retriever"] == "hybrid" and result["answerer"] == "extractive"
    assert [s["name"] for s in result["stages"]] == ["fulltext", "dense", "fused", "reranked"]
    fulltext, dense, fused, reranked = (stage(result, n) for n in ("fulltext", "dense", "fused", "reranked"))
    assert fulltext["candidates"][0]["section"] == "Entregas › Prazos"
    assert fulltext["candidates"][0]["scores"]["bm25_rank"] == 1
    assert [c["rank"] for c in dense["candidates"]] == list(range(1, dense["found"] + 1))
    assert all(
        c["score"] >= n["score"] for c, n in zip(dense["candidates"], dense["candidates"][1:], strict=False)
    )
    top = fused["candidates"][0]
    assert top["title"] == "Entregas" and "8 dias úteis" in top["snippet"]
    assert {"bm25", "bm25_rank", "dense", "dense_rank", "fused"} <= set(top["scores"])
    # the fused stage hands the re-ranker its candidates, the re-ranker the answerer its top 5
    assert (fulltext["kept"], fused["kept"], reranked["kept"]) == (None, 50, 5)
    assert reranked["candidates"][0]["title"] == "Entregas"
    assert {"fused_rank", "learned", "rerank_p", "reranked_rank"} <= set(reranked["candidates"][0]["scores"])
    answer = result["answer"]
    assert answer["decision"] == "answer" and answer["why"] == "answered"
    assert "8 dias úteis" in answer["text"]
    assert answer["citations"][0]["document_id"] == shop["shipping"]["id"]
    assert answer["confidence"] >= answer["needed"] > 0
    steps = [s["step"] for s in result["steps"]]
    assert steps == [
        "normalise",
        "detect_language",
        "small_talk",
        "handoff_signal",
        "follow_up",
        "retrieve",
        "answer",
        "decide",
    ]
    assert await stored(runtime, company.id) == before  # no contact, conversation, message or trace


async def test_a_question_the_knowledge_base_does_not_cover_would_be_handed_off_with_why(
    company: CompanyCtx, shop: dict[str, dict[str, Any]]
) -> None:
    result = await search(company, question="Vocês aceitam pagamento com criptomoedas?")
    answer = result["answer"]
    assert answer["decision"] == "handoff" and answer["text"] is None
    assert answer["why"] in ("weak_evidence", "nothing_found")
    assert answer["citations"] == []
    if answer["why"] == "weak_evidence":
        assert answer["confidence"] < answer["needed"]
    # asking for a person hands off before any search
    result = await search(company, question="Quero falar com um atendente humano")
    assert result["answer"]["why"] == "asked_for_person" and result["stages"] == []


async def test_the_language_given_is_used_and_answer_false_skips_the_answer(
    company: CompanyCtx, shop: dict[str, dict[str, Any]]
) -> None:
    result = await search(company, question="warranty", language="en", answer=False, limit=1)
    assert result["language"] == "en" and result["language_detected"] is False
    assert result["answer"] is None
    assert all(len(s["candidates"]) <= 1 for s in result["stages"])
    assert "answer" not in [s["step"] for s in result["steps"]]


async def test_filters_narrow_every_stage(company: CompanyCtx, shop: dict[str, dict[str, Any]]) -> None:
    result = await search(company, question="garantia prazo entrega", filters={"language": "en"})
    for s in result["stages"]:
        assert {c["document_id"] for c in s["candidates"]} <= {shop["warranty"]["id"]}, s["name"]
    returns = shop["returns"]["id"]
    result = await search(company, question="Qual o prazo de entrega?", filters={"documents": [returns]})
    for s in result["stages"]:
        assert {c["document_id"] for c in s["candidates"]} <= {returns}, s["name"]
    assert stage(result, "dense")["found"] == shop["returns"]["chunk_count"]
    # what the filter leaves out cannot be cited
    assert not result["answer"]["citations"] or result["answer"]["citations"][0]["document_id"] == returns


async def test_metadata_filters_keep_the_top_k_full_from_what_passes(company: CompanyCtx) -> None:
    # ten documents answer better than the two tagged ones; the filter still fills the list
    for n in range(10):
        await post(
            company, f"entregas-{n}.md", SHIPPING_PT.replace("Entregas", f"Entregas {n}"), language="pt"
        )
    tagged = {
        (
            await post(
                company, f"promo-{n}.md", f"# Promo {n}\n\nEntrega em {n + 3} dias.", language="pt", meta=meta
            )
        )["id"]
        for n, meta in enumerate(
            [{"tags": ["promo"], "product": "loja", "audience": "customers"}, {"tags": ["natal", "promo"]}]
        )
    }
    result = await search(
        company, question="prazo de entrega em dias", filters={"tags": ["promo"]}, answer=False
    )
    for name in ("fulltext", "dense", "fused"):
        assert {c["document_id"] for c in stage(result, name)["candidates"]} == tagged, name
    result = await search(
        company,
        question="prazo de entrega em dias",
        filters={"tags": ["promo"], "product": "loja", "audience": "customers"},
        answer=False,
    )
    assert len({c["document_id"] for c in stage(result, "fused")["candidates"]}) == 1
    result = await search(company, question="prazo de entrega", filters={"product": "outra"}, answer=False)
    assert all(s["found"] == 0 for s in result["stages"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"question": ""}, "question"),
        ({"question": "   "}, "the question is empty"),
        ({"question": "x" * 2001}, "question"),
        ({"question": "frete", "language": "fr"}, "language"),
        ({"question": "frete", "filters": {"language": "xx"}}, "language"),
        ({"question": "frete", "filters": {"color": "blue"}}, "color"),
        ({"question": "frete", "filters": {"documents": ["not-an-id"]}}, "documents"),
        ({"question": "frete", "limit": 0}, "limit"),
        ({"question": "frete", "extra": 1}, "extra"),
        ({"question": "frete", "filters": {"tags": ["a\x00"]}}, "cannot be stored"),
    ],
)
async def test_bad_input_is_refused_with_what_was_wrong(
    company: CompanyCtx, body: dict[str, Any], says: str
) -> None:
    r = await company.client.post("/v1/search", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert says in r.text


async def test_an_unknown_document_filter_is_404(company: CompanyCtx) -> None:
    r = await company.client.post(
        "/v1/search", json={"question": "frete", "filters": {"documents": [str(uuid.uuid4())]}}
    )
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_a_viewer_key_may_not_search(company: CompanyCtx, runtime: Runtime) -> None:
    async with company.with_key(await new_key(runtime, company, Role.viewer)) as viewer:
        r = await viewer.post("/v1/search", json={"question": "frete"})
    assert r.status_code == 403, r.text
