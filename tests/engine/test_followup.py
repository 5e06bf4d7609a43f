"""Follow-up questions resolved against the conversation: the offline rewrite (pure), the
company LLM's rewrite through the real SDK against the fake OpenAI server (and its
fallbacks), and whole turns on the live server, their traces showing what was looked up."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from purgatory import AsyncCircuitBreakerFactory

from atende.engine.followup import is_follow_up, resolve, resolve_offline
from atende.llm.rewrite import LLMRewriter
from atende.openai_compat import client_for
from tests.conftest import CompanyCtx, ask
from tests.db_probe import longest_idle_transaction
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai, stall, status

DELIVERY = (("customer", "Qual o prazo de entrega para as capitais?"), ("bot", "De 2 a 5 dias úteis."))


@pytest.mark.parametrize(
    ("message", "history", "looked_up"),
    [
        ("e para o Nordeste?", DELIVERY, "e para o Nordeste? prazo entrega capitais"),
        ("E o frete?", DELIVERY, "E o frete? prazo entrega capitais"),
        ("E quanto custa isso?", DELIVERY, "E quanto custa isso? prazo entrega capitais"),
        (
            "what about returns?",
            (("customer", "How long does delivery take?"),),
            "what about returns? delivery",
        ),
        (
            "¿y el envío?",
            (("customer", "¿Aceptan tarjeta de crédito?"),),
            "¿y el envío? aceptan tarjeta credito",
        ),
        ("Does it come with a warranty?", (("customer", "Do you sell the X200 phone?"),), None),
    ],
)
def test_an_elliptical_follow_up_looks_up_the_previous_questions_topic(
    message: str, history: tuple[tuple[str, str], ...], looked_up: str | None
) -> None:
    resolution = resolve_offline(message, history)
    if looked_up is None:  # a pronoun pointing back: the previous topic follows its own words
        assert resolution.how == "offline"
        assert resolution.query.startswith(message) and "x200 phone" in resolution.query
    else:
        assert (resolution.how, resolution.query) == ("offline", looked_up)


@pytest.mark.parametrize(
    "message",
    [
        "Aceitam Pix?",  # a topic of its own
        "ok",
        "Pix?",  # short, but no cue and no pronoun
        "How long does it take to ship?",  # "it" points at nothing
        "Quanto tempo demora a devolução de um produto com defeito comprado no site?",
        "And how many tackles did Luke Kuechly register in the regular season of 2015?",
    ],
)
def test_a_standalone_message_is_looked_up_as_it_came(message: str) -> None:
    resolution = resolve_offline(message, DELIVERY)
    assert (resolution.how, resolution.query) == ("standalone", message)


def test_without_an_earlier_question_nothing_is_rewritten() -> None:
    greeted = (("customer", "Bom dia!"), ("bot", "Olá! Como posso ajudar?"))
    assert resolve_offline("E o frete?", greeted).how == "no_history"
    assert resolve_offline("E o frete?", ()).query == "E o frete?"


def test_a_chain_of_follow_ups_keeps_the_first_topic() -> None:
    history = (*DELIVERY, ("customer", "e para o Nordeste?"), ("bot", "De 4 a 10 dias úteis."))
    resolution = resolve_offline("e o frete?", history)
    assert resolution.how == "offline"
    assert {"nordeste", "prazo", "entrega"} <= set(resolution.query.split())


@given(
    st.lists(st.sampled_from(["garantia", "produto", "defeito", "fabricação", "nota", "fiscal"]), min_size=6)
)
def test_a_message_with_many_topic_words_is_never_rewritten(topic: list[str]) -> None:
    extra = ["eletrônicos", "importados", "manual", "loja", "site", "cliente"]
    message = "E " + " ".join(dict.fromkeys(topic + extra))
    assert not is_follow_up(message)
    assert resolve_offline(message, DELIVERY).query == message


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


def rewriter(fake: FakeOpenAI, deadline: float = 2.0) -> LLMRewriter:
    return LLMRewriter(
        client_for(fake.base_url, "sk-test", timeout=5, max_retries=0),
        "fake-model",
        breakers=AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30),
        circuit=f"rewrite-{uuid.uuid4().hex[:6]}",
        deadline=deadline,
    )


async def test_the_llm_rewrites_a_follow_up_from_the_conversation(fake: FakeOpenAI) -> None:
    fake.script(answer("Qual o prazo de entrega para o Nordeste?"))
    resolution = await resolve("e para o Nordeste?", "pt", DELIVERY, rewriter(fake))
    assert (resolution.how, resolution.query) == ("llm", "Qual o prazo de entrega para o Nordeste?")
    [request] = fake.requests
    assert request["model"] == "fake-model" and request["temperature"] == 0
    system, user = request["messages"]
    assert "standalone question" in system["content"] and "Brazilian Portuguese" in system["content"]
    assert "Customer: Qual o prazo de entrega para as capitais?" in user["content"]
    assert "Assistant: De 2 a 5 dias úteis." in user["content"]
    assert user["content"].endswith("Last message: e para o Nordeste?")


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [(stall(1.5), "TimeoutError"), (status(500), "InternalServerError"), (answer(""), "empty")],
)
async def test_when_the_llm_fails_the_offline_rewrite_is_used(
    fake: FakeOpenAI, behaviour: object, error: str
) -> None:
    fake.script(behaviour)  # type: ignore[arg-type]
    resolution = await resolve("e para o Nordeste?", "pt", DELIVERY, rewriter(fake, deadline=0.5))
    assert resolution.how == "llm_failed"
    assert resolution.query == "e para o Nordeste? prazo entrega capitais"
    assert resolution.error is not None and error in resolution.error


async def test_the_llm_is_not_asked_about_a_long_standalone_question(fake: FakeOpenAI) -> None:
    fake.script(answer("never asked"))
    message = "Quanto tempo demora a devolução de um produto com defeito comprado no site?"
    resolution = await resolve(message, "pt", DELIVERY, rewriter(fake))
    assert (resolution.how, resolution.query) == ("standalone", message)
    assert fake.requests == []


async def test_a_follow_up_in_a_conversation_is_answered_from_the_topic_it_continues(
    kb_company: CompanyCtx,
) -> None:
    contact = f"c-{uuid.uuid4().hex[:8]}"
    first = await ask(kb_company.client, "Como faço para devolver um produto?", contact=contact)
    assert first["reply"]["meta"]["citations"][0]["title"] == "Trocas e devoluções"
    body = await ask(kb_company.client, "E qual é o prazo?", contact=contact)
    assert body["conversation_id"] == first["conversation_id"]
    reply = body["reply"]
    assert "7 dias corridos" in reply["text"]
    [citation] = reply["meta"]["citations"]
    assert citation["section"] == "Trocas e devoluções › Prazo para devolução"
    traces = (await kb_company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    steps = {s["step"]: s for s in traces[-1]["steps"]}
    assert list(steps)[3:6] == ["handoff_signal", "follow_up", "retrieve"]
    resolved = steps["follow_up"]
    assert (resolved["how"], resolved["original"], resolved["error"]) == (
        "offline",
        "E qual é o prazo?",
        None,
    )
    assert resolved["query"].startswith("E qual é o prazo?") and "devolver" in resolved["query"]


async def test_a_new_question_in_the_same_conversation_is_looked_up_as_asked(kb_company: CompanyCtx) -> None:
    contact = f"c-{uuid.uuid4().hex[:8]}"
    await ask(kb_company.client, "Como faço para devolver um produto?", contact=contact)
    body = await ask(kb_company.client, "Vocês aceitam boleto bancário?", contact=contact)
    assert body["reply"]["meta"]["citations"][0]["title"] == "Formas de pagamento"
    traces = (await kb_company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    [resolved] = [s for s in traces[-1]["steps"] if s["step"] == "follow_up"]
    assert (resolved["how"], resolved["query"]) == ("standalone", "Vocês aceitam boleto bancário?")


async def test_with_the_companys_llm_a_follow_up_is_looked_up_as_the_llm_rewrote_it(
    kb_company: CompanyCtx, fake: FakeOpenAI
) -> None:
    r = await kb_company.client.put(
        "/v1/company/assistant",
        json={
            "instructions": "",
            "llm": {"base_url": fake.base_url, "model": "fake-model", "api_key": "sk-x"},
        },
    )
    assert r.status_code == 200, r.text
    contact = f"c-{uuid.uuid4().hex[:8]}"
    fake.script(answer("Para devolver, acesse Minha Conta › Meus Pedidos [1]."))
    await ask(kb_company.client, "Como faço para devolver um produto?", contact=contact)
    fake.script(
        answer("Qual o prazo para devolver um produto?"),  # the rewrite
        answer("Você pode devolver em até 7 dias corridos [1]."),  # the answer
    )
    body = await ask(kb_company.client, "E qual é o prazo?", contact=contact)
    assert body["reply"]["text"] == "Você pode devolver em até 7 dias corridos."
    rewrite, answered = fake.requests
    assert rewrite["messages"][1]["content"].endswith("Last message: E qual é o prazo?")
    assert answered["messages"][-1] == {"role": "user", "content": "E qual é o prazo?"}  # as written
    traces = (await kb_company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    [resolved] = [s for s in traces[-1]["steps"] if s["step"] == "follow_up"]
    assert (resolved["how"], resolved["query"]) == ("llm", "Qual o prazo para devolver um produto?")
    # the passage the answer cites is the one the rewritten question found
    assert "7 dias corridos" in traces[-1]["retrieved"][0]["text"]


async def test_a_turn_holds_no_transaction_open_while_the_llm_rewrites_a_follow_up(
    kb_company: CompanyCtx, fake: FakeOpenAI, db_url: str
) -> None:
    """The LLM's rewrite has a deadline of seconds (ATENDE_LLM_REWRITE_SECONDS): the turn asks
    for it between two short reading transactions, so no connection sits idle in a
    transaction meanwhile."""
    llm = {"base_url": fake.base_url, "model": "fake-model", "api_key": "sk-x"}
    r = await kb_company.client.put("/v1/company/assistant", json={"instructions": "", "llm": llm})
    assert r.status_code == 200, r.text
    contact = f"c-{uuid.uuid4().hex[:8]}"
    fake.script(answer("Para devolver, acesse Minha Conta › Meus Pedidos [1]."))
    await ask(kb_company.client, "Como faço para devolver um produto?", contact=contact)
    fake.script(
        answer("Qual o prazo para devolver um produto?", after=1.5),  # the rewrite, slow
        answer("Você pode devolver em até 7 dias corridos [1]."),
    )
    stop = asyncio.Event()
    watching = asyncio.create_task(longest_idle_transaction(db_url, 6, stop))
    body = await ask(kb_company.client, "E qual é o prazo?", contact=contact)
    stop.set()
    assert await watching < 1.0  # the LLM took 1.5 s: before, the reading transaction waited for it
    traces = (await kb_company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    [resolved] = [s for s in traces[-1]["steps"] if s["step"] == "follow_up"]
    assert (resolved["how"], resolved["query"]) == ("llm", "Qual o prazo para devolver um produto?")
    assert resolved["llm_ms"] >= 1400
