"""A message that asks several questions, through the live server, the worker and the demo
knowledge base: each question answered from its own document with its own citation, and
a question the knowledge base cannot answer left for a person while the others are sent."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.session import Database
from atende.engine.messages import phrase
from atende.engine.tasks import ports_for
from atende.engine.turn import GATHER, QUESTION_LOOKUPS_AT_ONCE, Turn, all_or_none, think
from atende.knowledge.embedding import E5Embedder, _E5Model
from atende.knowledge.ranker import LearnedReranker, features
from atende.knowledge.rerank import RerankStep
from atende.knowledge.retrieval import HybridRetriever
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask


async def _conversation(client: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def _trace(client: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/conversations/{conversation_id}/traces")
    assert r.status_code == 200, r.text
    [trace] = r.json()
    return dict(trace)


async def test_two_questions_from_two_documents_are_answered_each_with_its_own_citation(
    kb_company: CompanyCtx,
) -> None:
    body = await ask(
        kb_company.client,
        "Bom dia! Comprei um fone de ouvido semana passada e ainda estou esperando. "
        "Qual o prazo de entrega para o interior? E o Pix tem desconto?\nObrigada, Ana",
    )
    reply = body["reply"]
    assert reply["meta"]["decision"] == "answer"
    first, second = reply["text"].split("\n\n")
    assert first.startswith("Sobre “Qual o prazo de entrega para o interior?”:")
    assert "Para o interior, o prazo de entrega é de 4 a 10 dias úteis." in first
    assert second.startswith("Sobre “E o Pix tem desconto?”:")
    assert "Pagamentos por Pix têm 5% de desconto" in second
    delivery, pix = reply["meta"]["citations"]
    assert (delivery["title"], delivery["question"]) == (
        "Entregas",
        "Qual o prazo de entrega para o interior?",
    )
    assert (pix["title"], pix["question"]) == ("Formas de pagamento", "E o Pix tem desconto?")
    assert (await _conversation(kb_company.client, body["conversation_id"]))["state"] == "bot"

    # the trace shows what was looked up for each question, and each one's answer
    trace = await _trace(kb_company.client, body["conversation_id"])
    steps = {s["step"]: s for s in trace["steps"]}
    looked_up = steps["retrieve"]["questions"]
    assert [q["question"] for q in looked_up] == [
        "Qual o prazo de entrega para o interior?",
        "E o Pix tem desconto?",
    ]
    assert looked_up[0]["found"][0]["title"] == "Entregas"
    assert any(found["title"] == "Formas de pagamento" for found in looked_up[1]["found"])
    assert [q["answered"] for q in steps["answer"]["questions"]] == [True, True]
    cited = {c["chunk_id"] for c in reply["meta"]["citations"]}
    assert cited <= {p["chunk_id"] for p in trace["retrieved"]}


async def test_a_question_the_knowledge_base_cannot_answer_is_handed_off_while_the_other_is_answered(
    kb_company: CompanyCtx,
) -> None:
    body = await ask(
        kb_company.client,
        "Hello! How long does delivery to state capitals take? "
        "Do you sell refurbished laptops with Linux preinstalled?",
    )
    reply = body["reply"]
    assert reply["language"] == "en"
    assert reply["meta"]["decision"] == "handoff"
    answered, handed_off = reply["text"].split("\n\n")
    assert answered.startswith("About “How long does delivery to state capitals take?”:")
    assert "Delivery to state capitals takes 2 to 5 business days" in answered
    assert handed_off == (
        "About “Do you sell refurbished laptops with Linux preinstalled?”, I couldn't find the answer "
        f"in our knowledge base. {phrase('next:open', 'en')}"
    )
    [citation] = reply["meta"]["citations"]
    assert (citation["title"], citation["section"]) == ("Shipping", "Shipping › Delivery times")

    detail = await _conversation(kb_company.client, body["conversation_id"])
    assert detail["state"] == "waiting_human"  # a person answers the rest
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert handoff["reason"].startswith("partly answered 1 of 2 questions")
    trace = await _trace(kb_company.client, body["conversation_id"])
    assert trace["decision"] == "handoff"
    assert [q["answered"] for q in {s["step"]: s for s in trace["steps"]}["answer"]["questions"]] == [
        True,
        False,
    ]


async def test_a_search_says_which_questions_it_would_answer_and_which_it_would_leave_for_a_person(
    kb_company: CompanyCtx,
) -> None:
    r = await kb_company.client.post(
        "/v1/search",
        json={
            "question": "Hello! How long does delivery to state capitals take? "
            "Do you sell refurbished laptops with Linux preinstalled?"
        },
    )
    assert r.status_code == 200, r.text
    would = r.json()["answer"]
    assert (would["decision"], would["why"]) == ("handoff", "partly_answered")
    answered, left = would["questions"]
    assert (answered["question"], answered["answered"]) == (
        "How long does delivery to state capitals take?",
        True,
    )
    [citation] = answered["citations"]
    assert (citation["title"], citation["section"]) == ("Shipping", "Shipping › Delivery times")
    assert "2 to 5 business days" in citation["snippet"]  # the question's own passage, shown
    assert left["question"] == "Do you sell refurbished laptops with Linux preinstalled?"
    assert (left["answered"], left["citations"]) == (False, [])
    assert left["reason"]

    # one question: answered or handed off whole, no list
    r = await kb_company.client.post(
        "/v1/search", json={"question": "How long does delivery to capitals take?"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["answer"]["why"], r.json()["answer"]["questions"]) == ("answered", [])


async def test_a_search_shows_what_each_stage_found_for_each_question_even_without_answering(
    kb_company: CompanyCtx,
) -> None:
    message = (
        "Hello! How long does delivery to state capitals take? "
        "Do you sell refurbished laptops with Linux preinstalled?"
    )
    r = await kb_company.client.post("/v1/search", json={"question": message, "answer": False})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["answer"] is None
    delivery, laptops = found["questions"]
    assert delivery["question"] == "How long does delivery to state capitals take?"
    assert laptops["question"] == "Do you sell refurbished laptops with Linux preinstalled?"
    assert "delivery" in delivery["looked_up_as"]
    stages = {s["name"]: s for s in delivery["stages"]}
    assert {"fulltext", "fused"} <= stages.keys()
    # the question's own lookup puts its passage first, whatever the message whole found
    assert stages["fused"]["candidates"][0]["section"] == "Shipping › Delivery times"

    # one question: looked up whole, no list
    r = await kb_company.client.post(
        "/v1/search", json={"question": "How long does delivery to capitals take?", "answer": False}
    )
    assert r.status_code == 200, r.text
    assert r.json()["questions"] == []


def _counted_model_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every call of the e5 model from now on, (kind, text or texts); the cache emptied."""
    calls: list[tuple[str, Any]] = []
    encode = _E5Model.encode.__func__  # type: ignore[attr-defined]

    def counted(cls: type[_E5Model], kind: str, texts: Any, threads: int, **kw: Any) -> Any:
        calls.append((kind, texts))
        return encode(cls, kind, texts, threads, **kw)

    monkeypatch.setattr(_E5Model, "encode", classmethod(counted))
    E5Embedder.clear_cache()
    return calls


def _embedded(calls: list[tuple[str, Any]]) -> list[str]:
    return [
        text
        for kind, texts in calls
        if kind == "query"
        for text in ([texts] if isinstance(texts, str) else texts)
    ]


async def test_a_messages_questions_are_embedded_once_in_one_batch(
    kb_company: CompanyCtx, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The message whole, then its questions' queries (the subject line, then the question)
    in one call of the model, compared with each other while the message whole is looked
    up; each kept question's lookup finds its query's vector cached: no text is embedded
    twice, and nothing after the batch."""
    calls = _counted_model_calls(monkeypatch)
    turn = Turn(
        kb_company.id,
        "Pedido atrasado\nBom dia! Comprei um fone de ouvido semana passada e ainda estou esperando. "
        "Qual o prazo de entrega para o interior? E o Pix tem desconto?\nObrigada, Ana",
    )
    async with runtime.db.transaction(kb_company.id) as session:
        await think(session, turn, ports_for(runtime), GATHER)
    assert [p.asked.text for p in turn.parts] == [
        "Qual o prazo de entrega para o interior?",
        "E o Pix tem desconto?",
    ]
    assert [p.asked.query for p in turn.parts] == [
        "Pedido atrasado\nQual o prazo de entrega para o interior?",
        "Pedido atrasado\nE o Pix tem desconto?",
    ]
    questions = [texts for kind, texts in calls if kind == "query"]
    assert len(questions) == 2, questions  # the message whole, then the questions' batch
    assert questions[1] == [p.asked.query for p in turn.parts], questions
    embedded = _embedded(calls)
    assert len(embedded) == len(set(embedded)), embedded


async def test_a_long_e_mail_embeds_one_text_per_question_and_the_message_whole(
    kb_company: CompanyCtx, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long e-mail with a subject line that asks four questions (three kept, the cap):
    five texts embedded in all, the message whole and each question's query, in two calls
    of the model; the questions kept are looked up with the vectors they were compared by."""
    calls = _counted_model_calls(monkeypatch)
    turn = Turn(
        kb_company.id,
        "Dúvidas sobre minha compra\nBoa tarde! Comprei um fone de ouvido e um carregador na "
        "loja de vocês há duas semanas, pelo site, e até agora nada chegou na minha casa. "
        "Qual o prazo de entrega para o interior? O Pix tem desconto? Posso parcelar no cartão? "
        "Como faço para trocar um produto com defeito?\nObrigada, Ana",
    )
    async with runtime.db.transaction(kb_company.id) as session:
        await think(session, turn, ports_for(runtime), GATHER)
    assert len(turn.parts) == 3
    embedded = _embedded(calls)
    assert len(embedded) == 5, embedded
    assert len(set(embedded)) == 5, embedded
    assert len([kind for kind, _ in calls if kind == "query"]) == 2, calls
    assert {p.asked.query for p in turn.parts} <= set(embedded)


async def test_each_question_finds_what_it_finds_looked_up_on_its_own(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    """The turn embeds a message's questions while the message whole is looked up, and the
    re-ranker keeps the stems of the candidates it has seen: each question's candidates, their
    order and scores (re-ranked) are what the question looked up alone, in a fresh process'
    state (nothing embedded or stemmed yet), finds."""
    message = (
        "Pedido atrasado\nBom dia! Comprei um fone de ouvido semana passada e ainda estou esperando. "
        "Qual o prazo de entrega para o interior? E o Pix tem desconto? Posso parcelar no cartão?"
        "\nObrigada, Ana"
    )
    ports = ports_for(runtime)
    assert any(step.reads for step in getattr(ports.retriever, "rerank", ())), "re-ranking is on"
    E5Embedder.clear_cache()
    features._STEMS.clear()
    turn = Turn(kb_company.id, message)
    async with runtime.db.transaction(kb_company.id) as session:
        await think(session, turn, ports, GATHER)
    assert len(turn.parts) == 3
    for part in turn.parts:
        E5Embedder.clear_cache()
        features._STEMS.clear()
        async with runtime.db.transaction(kb_company.id) as session:
            alone = await ports.retriever.retrieve(session, part.asked.query, ports.fetched, "pt")
        assert [p.chunk_id for p in part.passages] == [p.chunk_id for p in alone], part.asked.text
        for mine, its in zip(part.passages, alone, strict=True):
            assert mine.scores.keys() == its.scores.keys()
            assert mine.scores == pytest.approx(its.scores, abs=1e-4), part.asked.text


async def test_a_messages_questions_are_looked_up_at_once_two_at_a_time_each_on_its_own_connection(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    """Three questions: looked up two at a time (``QUESTION_LOOKUPS_AT_ONCE``), each in a
    transaction of its own (its own database backend), and kept in the message's order."""
    ports = ports_for(runtime)
    retriever = ports.retriever
    in_flight, peak, backends = 0, 0, []
    message_session: list[AsyncSession] = []

    class Watched:
        name = retriever.name

        def __getattr__(self, name: str) -> Any:
            return getattr(retriever, name)

        async def retrieve(self, session: AsyncSession, query: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal in_flight, peak
            if not message_session:  # the message whole comes first, in the turn's transaction
                message_session.append(session)
                return await retriever.retrieve(session, query, *args, **kwargs)
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                backends.append(await session.scalar(text("SELECT pg_backend_pid()")))
                await asyncio.sleep(0.05)  # long enough for the next lookup to start beside it
                return await retriever.retrieve(session, query, *args, **kwargs)
            finally:
                in_flight -= 1

    turn = Turn(
        kb_company.id,
        "Pedido atrasado\nBom dia! Qual o prazo de entrega para o interior? E o Pix tem desconto? "
        "Posso parcelar no cartão?\nObrigada, Ana",
    )
    async with runtime.db.transaction(kb_company.id) as session:
        await think(session, turn, dataclasses.replace(ports, retriever=Watched()), GATHER)
        turn_backend = await session.scalar(text("SELECT pg_backend_pid()"))
    assert [p.asked.text for p in turn.parts] == [
        "Qual o prazo de entrega para o interior?",
        "E o Pix tem desconto?",
        "Posso parcelar no cartão?",
    ]
    assert peak == QUESTION_LOOKUPS_AT_ONCE == 2
    assert len(set(backends[:2])) == 2 and turn_backend not in backends


async def test_turns_that_fill_the_pool_still_look_up_and_re_rank_every_question(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    """Two turns of three questions at once on a pool of three connections: each turn holds
    one, its questions' lookups take the third in turn. A question's lookup re-ranks on the
    connection it holds: had it waited for one more (the re-ranker's own, as the message
    whole's takes), both would wait on a full pool until the re-ranker gave up, and the
    questions would keep the fused order."""
    ports = ports_for(runtime)
    retriever = ports.retriever
    assert isinstance(retriever, HybridRetriever)
    step = RerankStep(LearnedReranker(embedding_model=retriever.embedder.model), 50, 30_000)
    patient = HybridRetriever(  # a budget no wait for a connection can exhaust unnoticed
        retriever.embedder,
        retriever.weights,
        candidates=retriever.candidates,
        method=retriever.method,
        query_chars=retriever.query_chars,
        rerank=[step],
    )
    ports = dataclasses.replace(ports, retriever=patient)
    small = Database(runtime.db.url, pool_size=3, pool_timeout=5)
    messages = [
        "Pedido atrasado\nBom dia! Qual o prazo de entrega para o interior? E o Pix tem desconto? "
        "Posso parcelar no cartão?\nObrigada, Ana",
        "Dúvidas\nOlá! Como faço para trocar um produto com defeito? Qual o prazo de entrega para "
        "as capitais? Vocês aceitam boleto?\nAbraço, João",
    ]

    async def one(message: str) -> Turn:
        turn = Turn(kb_company.id, message)
        async with small.transaction(kb_company.id) as session:
            await think(session, turn, ports, GATHER)
        return turn

    try:
        turns = await asyncio.wait_for(asyncio.gather(*(one(m) for m in messages)), timeout=60)
    finally:
        await small.dispose()
    for turn in turns:
        assert len(turn.parts) == 3
        for part in turn.parts:
            reranked = [stage for stage in part.stages if stage.name == "reranked"]
            assert reranked and reranked[0].error is None, part.asked.text
            assert all("reranked_rank" in p.scores for p in part.passages)


async def test_with_no_connection_to_spare_the_questions_are_looked_up_in_the_turns_own(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    """A pool whose every connection is held (here its one, by the turn): the questions'
    lookups wait ``SPARE_CONNECTION_WAIT`` for another, then run in the turn's transaction
    one at a time, as before; nothing waits out the pool's timeout."""
    small = Database(runtime.db.url, pool_size=1, pool_timeout=20)
    turn = Turn(
        kb_company.id,
        "Pedido atrasado\nBom dia! Qual o prazo de entrega para o interior? E o Pix tem desconto? "
        "Posso parcelar no cartão?\nObrigada, Ana",
    )
    try:
        async with small.transaction(kb_company.id) as session:
            started = asyncio.get_running_loop().time()
            await think(session, turn, ports_for(runtime), GATHER)
            took = asyncio.get_running_loop().time() - started
    finally:
        await small.dispose()
    assert [len(p.passages) > 0 for p in turn.parts] == [True, True, True]
    assert took < 15, took  # well short of the pool's 20 s timeout


async def test_when_one_lookup_fails_the_others_are_cancelled_and_its_error_goes_on() -> None:
    """The other lookups are cancelled, and have ended (their transactions closed), by the
    time the failure's own error reaches the turn."""
    cancelled: list[str] = []

    async def slow(name: str) -> Any:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise

    async def failing() -> Any:
        await asyncio.sleep(0.01)
        raise LookupError("the database went away")

    with pytest.raises(LookupError, match="went away"):
        await asyncio.wait_for(all_or_none([slow("a"), failing(), slow("b")]), timeout=2)
    assert cancelled == ["a", "b"]
