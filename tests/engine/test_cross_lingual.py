"""A question in one language answered from a knowledge base in another: offline, the cited
passage as it is, after a notice in the customer's language; unanswerable ones still go to a
person (the live server, its worker, e5 and PostgreSQL)."""

from __future__ import annotations

import pytest

from atende.engine.messages import found_in, phrase
from tests.conftest import DEMO_KB, CompanyCtx, ask


@pytest.fixture
async def english_kb(company: CompanyCtx) -> CompanyCtx:
    """A company whose knowledge base is the demo shop's English half only."""
    for path in sorted((DEMO_KB / "en").glob("*.md")):
        r = await company.client.post(
            "/v1/documents?wait=true",
            json={"source": f"en/{path.name}", "content": path.read_text(), "language": "en"},
        )
        assert r.status_code == 201, r.text
    return company


def test_the_notice_names_the_passages_language_in_the_customers() -> None:
    assert found_in("en", "pt") == "Encontrei esta resposta em inglês:"
    assert found_in("en", "es") == "Encontré esta respuesta en inglés:"
    assert found_in("es", "en") == "I found this answer in Spanish:"


async def test_a_spanish_question_is_answered_from_an_english_passage_with_a_notice(
    english_kb: CompanyCtx,
) -> None:
    body = await ask(english_kb.client, "¿Aceptan pagos con tarjeta de crédito en cuotas?")
    reply = body["reply"]
    assert reply["language"] == "es"
    notice, quoted = reply["text"].split("\n", 1)
    assert notice == "Encontré esta respuesta en inglés:"
    assert "credit card" in quoted  # the passage's own words, untranslated
    assert reply["meta"]["decision"] == "answer"
    assert reply["meta"]["citations"][0]["title"] == "Payment methods"
    traces = (await english_kb.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    assert traces[-1]["reason"].startswith("answered across languages from 'Payment methods' (en; dense ")


@pytest.mark.parametrize(
    "question",
    [
        # near in meaning to a shop's passages (dense 0.79-0.82 with e5), yet unanswered by them
        "¿Tienen una tienda física en Madrid para recoger mi pedido?",
        "¿Trabajan con criptomonedas como bitcoin?",
        "¿Tienen programa de puntos o fidelidad?",
    ],
)
async def test_a_spanish_question_the_english_knowledge_base_cannot_answer_is_handed_off(
    english_kb: CompanyCtx, question: str
) -> None:
    body = await ask(english_kb.client, question)
    assert body["reply"]["text"] == phrase("handoff", "es")
