"""The bot turn end to end: a customer message through the live server, the worker and the
knowledge base, to an answer, small talk or a handoff, and the trace it leaves."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from atende.engine import smalltalk
from atende.engine.messages import phrase
from tests.conftest import TEST_DATA, CompanyCtx, ask

STEPS = [
    "normalise",
    "detect_language",
    "small_talk",
    "handoff_signal",
    "follow_up",
    "retrieve",
    "answer",
    "decide",
]


async def conversation(client: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def traces(client: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/conversations/{conversation_id}/traces")
    assert r.status_code == 200, r.text
    return list(r.json())


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Oi", "greeting"),
        ("Olá, boa tarde!", "greeting"),
        ("BOM DIA, tudo bem?", "greeting"),
        ("hi there", "greeting"),
        ("¡Buenos días!", "greeting"),
        ("Obrigado!!!", "thanks"),
        ("oi, muito obrigada pela ajuda", "thanks"),
        ("Thanks a lot", "thanks"),
        ("gracias", "thanks"),
        ("oitenta reais?", None),
        ("Oi, qual o prazo?", None),
        ("ok", None),
        ("", None),
    ],
)
def test_small_talk_is_a_message_of_only_greetings_or_thanks(text: str, kind: str | None) -> None:
    assert smalltalk.classify(text) == kind


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Bom dia, tudo bem? Aceitam cartão?", "aceitam cartao"),
        ("Olá! Boa tarde. Qual o prazo?", "qual o prazo"),
        ("Hi there, how much is shipping?", "how much is shipping"),
        ("Qual o prazo?", "Qual o prazo?"),
        ("Oitenta reais de frete?", "Oitenta reais de frete?"),
    ],
)
def test_the_greeting_a_question_opens_with_is_not_looked_up(text: str, query: str) -> None:
    assert smalltalk.without_greeting(text) == query


@pytest.mark.parametrize(
    ("question", "sentence", "title", "section"),
    [
        (
            "Qual o prazo de entrega para o interior?",
            "Para o interior, o prazo de entrega é de 4 a 10 dias úteis.",
            "Entregas",
            "Entregas › Prazos de entrega",
        ),
        (
            "Em quantos dias posso devolver um produto?",
            "Você pode devolver qualquer produto em até 7 dias corridos após o recebimento",
            "Trocas e devoluções",
            "Trocas e devoluções › Prazo para devolução",
        ),
        (
            "Bom dia, tudo bem? Gostaria de saber se aceitam cartão.",
            "Aceitamos cartão de crédito (Visa, Mastercard, Elo e American Express), Pix e boleto bancário.",
            "Formas de pagamento",
            "Formas de pagamento › Meios aceitos",
        ),
        (
            "O Pix tem desconto?",
            "Pagamentos por Pix têm 5% de desconto e são confirmados na hora.",
            "Formas de pagamento",
            "Formas de pagamento › Pix e boleto",
        ),
    ],
)
async def test_a_portuguese_question_is_answered_from_the_portuguese_document_with_a_citation(
    kb_company: CompanyCtx, question: str, sentence: str, title: str, section: str
) -> None:
    body = await ask(kb_company.client, question)
    reply = body["reply"]
    assert sentence in reply["text"]
    assert reply["language"] == "pt"
    assert reply["meta"]["decision"] == "answer"
    [citation] = reply["meta"]["citations"]
    assert (citation["title"], citation["section"]) == (title, section)
    assert (await conversation(kb_company.client, body["conversation_id"]))["state"] == "bot"


@pytest.mark.parametrize(
    ("question", "sentence", "title", "section"),
    [
        (
            "How long does delivery to state capitals take?",
            "Delivery to state capitals takes 2 to 5 business days after payment is confirmed",
            "Shipping",
            "Shipping › Delivery times",
        ),
        (
            "What does the warranty not cover?",
            "The warranty does not cover misuse, drops, contact with liquids or normal wear.",
            "Warranty",
            "Warranty › How to claim the warranty",
        ),
        (
            "Hi there, how much is shipping?",
            "Shipping is free on orders over R$ 199.00 anywhere in Brazil.",
            "Shipping",
            "Shipping › Shipping costs",
        ),
        (
            "Can I pay in instalments with a credit card?",
            "With a credit card you can pay in up to 10 interest-free instalments on orders over R$ 100.00.",
            "Payment methods",
            "Payment methods › Accepted payment methods",
        ),
    ],
)
async def test_an_english_question_is_answered_from_the_english_document(
    kb_company: CompanyCtx, question: str, sentence: str, title: str, section: str
) -> None:
    reply = (await ask(kb_company.client, question))["reply"]
    assert sentence in reply["text"]
    assert reply["language"] == "en"
    [citation] = reply["meta"]["citations"]
    assert (citation["title"], citation["section"]) == (title, section)


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Vocês vendem geladeiras usadas com instalação inclusa?", "pt"),
        ("Do you sell refurbished laptops with Linux preinstalled?", "en"),
        ("¿Tienen una tienda física en Madrid para recoger mi pedido?", "es"),
    ],
)
async def test_a_question_the_knowledge_base_cannot_answer_is_handed_to_a_human_in_the_customers_language(
    kb_company: CompanyCtx, question: str, language: str
) -> None:
    body = await ask(kb_company.client, question)
    reply = body["reply"]
    assert reply["text"] == phrase("handoff", language)
    assert reply["language"] == language
    assert reply["meta"] == {"decision": "handoff", "ticket": False}  # open, no agents tracked
    detail = await conversation(kb_company.client, body["conversation_id"])
    assert detail["state"] == "waiting_human"
    assert detail["language"] == language
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert (handoff["from_state"], handoff["actor_type"]) == ("bot", "bot")
    assert handoff["reason"].startswith(("weak evidence", "no answer"))


async def test_a_knowledge_base_without_documents_hands_off(company: CompanyCtx) -> None:
    body = await ask(company.client, "Qual o prazo de entrega?")
    assert body["reply"]["text"] == phrase("handoff", "pt")
    assert (await conversation(company.client, body["conversation_id"]))["state"] == "waiting_human"


@pytest.mark.parametrize(
    ("first", "kind", "language"),
    [
        ("Oi, tudo bem?", "greeting", "pt"),
        ("Bom dia!", "greeting", "pt"),
        ("Muito obrigada pela ajuda!", "thanks", "pt"),
        ("Good morning", "greeting", "en"),
        ("Thank you very much!", "thanks", "en"),
        ("¡Muchas gracias!", "thanks", "es"),
    ],
)
async def test_greetings_and_thanks_get_small_talk_without_handoff(
    kb_company: CompanyCtx, first: str, kind: str, language: str
) -> None:
    body = await ask(kb_company.client, first)
    assert body["reply"]["text"] == phrase(kind, language)
    assert body["reply"]["meta"] == {"decision": "answer"}
    assert (await conversation(kb_company.client, body["conversation_id"]))["state"] == "bot"
    [trace] = await traces(kb_company.client, body["conversation_id"])
    assert (trace["decision"], trace["reason"], trace["answerer"]) == (
        "answer",
        f"small talk: {kind}",
        "smalltalk",
    )
    assert trace["retrieved"] == []


async def test_a_short_or_ambiguous_message_keeps_the_conversations_language(kb_company: CompanyCtx) -> None:
    contact = f"c-{uuid.uuid4().hex[:8]}"
    first = await ask(kb_company.client, "Hello! Do you accept Pix payments?", contact=contact)
    assert first["reply"]["language"] == "en"
    for text in ("thanks", "Pix?", "ok"):
        body = await ask(kb_company.client, text, contact=contact)
        assert body["conversation_id"] == first["conversation_id"]
        assert body["reply"]["language"] == "en", text
    assert body["reply"]["text"] == phrase("handoff", "en")
    assert (await conversation(kb_company.client, first["conversation_id"]))["language"] == "en"


async def test_the_first_short_message_uses_the_companys_language(kb_company: CompanyCtx) -> None:
    body = await ask(kb_company.client, "ok")
    assert body["reply"]["language"] == "pt"
    assert body["reply"]["text"] == phrase("handoff", "pt")


async def test_every_turn_leaves_a_trace_of_what_it_retrieved_and_why_it_decided(
    kb_company: CompanyCtx,
) -> None:
    contact = f"c-{uuid.uuid4().hex[:8]}"
    greeting = await ask(kb_company.client, "Olá!", contact=contact)
    answered = await ask(kb_company.client, "Qual o prazo de garantia dos eletrônicos?", contact=contact)
    handed_off = await ask(kb_company.client, "Vocês vendem geladeiras usadas?", contact=contact)
    cid = greeting["conversation_id"]
    assert answered["conversation_id"] == handed_off["conversation_id"] == cid

    small_talk, answer, handoff = await traces(kb_company.client, cid)
    for trace, body in ((small_talk, greeting), (answer, answered), (handoff, handed_off)):
        assert trace["conversation_id"] == cid
        assert trace["message_id"] == body["message"]["id"]
        assert trace["reply_message_id"] == body["reply"]["id"]
        assert trace["language"] == "pt"
        assert trace["retriever"] == "hybrid"
        assert [s["step"] for s in trace["steps"]] == STEPS
        assert all(s["ms"] >= 0 for s in trace["steps"])
        assert trace["total_ms"] >= sum(s["ms"] for s in trace["steps"])

    assert (small_talk["decision"], small_talk["answerer"]) == ("answer", "smalltalk")

    assert (answer["decision"], answer["answerer"]) == ("answer", "extractive")
    # what each step found: the text as read, the language and how sure, the answerer
    found = {s["step"]: s for s in answer["steps"]}
    assert found["normalise"]["text"] == "Qual o prazo de garantia dos eletrônicos?"
    assert found["detect_language"]["language"] == "pt" and 0 < found["detect_language"]["confidence"] <= 1
    assert found["small_talk"] == {
        "step": "small_talk",
        "ms": found["small_talk"]["ms"],
        "kind": None,
        "query": "Qual o prazo de garantia dos eletrônicos?",
    }
    assert found["retrieve"]["retriever"] == "hybrid" and found["retrieve"]["found"] == len(
        answer["retrieved"]
    )
    assert (found["answer"]["answerer"], found["answer"]["model"], found["answer"]["error"]) == (
        "extractive",
        None,
        None,
    )
    assert answer["reason"].startswith("answered from 'Garantia' (")  # its coverage or the re-ranker's p
    best = answer["retrieved"][0]
    assert (best["title"], best["section"], best["language"]) == (
        "Garantia",
        "Garantia › Prazo de garantia",
        "pt",
    )
    assert "12 meses" in best["text"]
    assert best["chunk_id"] == answered["reply"]["meta"]["citations"][0]["chunk_id"]
    assert 1 <= len(answer["retrieved"]) <= 5
    # each step's scores: BM25 and dense (with their ranks) where each found the chunk, the
    # fused score and rank, the re-ranker's score, probability and the rank the chunks are
    # ordered by, and the answerer's coverage
    fused = {
        "fused",
        "fused_rank",
        "learned",
        "rerank_p",
        "rerank_rank",
        "reranked",
        "reranked_rank",
        "coverage",
    }
    for rank, chunk in enumerate(answer["retrieved"], start=1):
        scores = chunk["scores"]
        assert fused <= set(scores) <= {"bm25", "bm25_rank", "dense", "dense_rank", *fused}
        assert scores["reranked_rank"] == rank
        assert "bm25" in scores or "dense" in scores
        assert 0 <= scores["coverage"] <= 1  # fused: a weighted sum of standard scores, any sign
    assert {"bm25", "bm25_rank", "dense", "dense_rank"} <= set(best["scores"])
    learned = [c["scores"]["learned"] for c in answer["retrieved"]]
    assert learned == sorted(learned, reverse=True)  # the re-ranker's order
    assert best["scores"]["coverage"] >= 0.6

    assert (handoff["decision"], handoff["answerer"]) == ("handoff", "extractive")
    assert handoff["reason"].startswith("weak evidence: best coverage")
    assert all(c["scores"]["coverage"] < 0.6 for c in handoff["retrieved"])


async def test_traces_of_another_companys_conversation_are_not_found(
    kb_company: CompanyCtx, other_company: CompanyCtx
) -> None:
    body = await ask(kb_company.client, "Olá!")
    r = await other_company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")
    assert r.status_code == 404
    assert (await other_company.client.get(f"/v1/conversations/{uuid.uuid4()}/traces")).status_code == 404


def xquad_sample(count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The first ``count`` English passages and one question for each (XQuAD, CC BY-SA 4.0)."""
    folder = TEST_DATA / "retrieval"
    passages = [json.loads(line) for line in (folder / "en.passages.jsonl").read_text().splitlines()[:count]]
    wanted = {p["passage_id"] for p in passages}
    questions: dict[str, dict[str, Any]] = {}
    for line in (folder / "en.questions.jsonl").read_text().splitlines():
        q = json.loads(line)
        if q["passage_id"] in wanted and q["passage_id"] not in questions:
            questions[q["passage_id"]] = q
    return passages, list(questions.values())


async def test_answers_on_real_passages_are_grounded_in_the_gold_passage(company: CompanyCtx) -> None:
    """Grounding on XQuAD (google-deepmind/xquad, English SQuAD v1.1 paragraphs, CC BY-SA 4.0),
    from the sample in tests/data/retrieval: each passage is its own document; most questions must be
    answered with a sentence holding a gold answer span, citing the gold passage's document."""
    passages, questions = xquad_sample(20)
    document_of: dict[str, str] = {}
    for p in passages:
        r = await company.client.post(
            "/v1/documents?wait=true",
            json={
                "source": f"xquad/{p['passage_id']}.txt",
                "title": p["title"],
                "content": p["text"],
                "language": "en",
            },
        )
        assert r.status_code == 201, r.text
        document_of[p["passage_id"]] = r.json()["document"]["id"]

    grounded, cited, wrong = 0, 0, []
    for q in questions:
        reply = (await ask(company.client, q["question"]))["reply"]
        citations = reply["meta"].get("citations", [])
        if citations and citations[0]["document_id"] == document_of[q["passage_id"]]:
            cited += 1
            grounded += any(a.lower() in reply["text"].lower() for a in q["answers"])
        elif citations:
            wrong.append(q["question"])
    assert len(questions) == 20
    assert cited >= 14, (cited, wrong)
    assert grounded >= 14, grounded
    assert len(wrong) <= 2, wrong  # answering from an unrelated passage is the worst outcome
