"""The LLM answerer through the real ``openai`` SDK against a loopback OpenAI-compatible
server: the grounded prompt, the citation guard, timeouts, retries and the circuit breaker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from purgatory import AsyncCircuitBreakerFactory

from atende.knowledge.passages import Passage
from atende.llm.answerer import Question
from atende.llm.extractive import ExtractiveAnswerer
from atende.llm.grounded import NO_ANSWER, LLMAnswerer, build_messages, check_citations
from atende.openai_compat import client_for
from tests.fakes.openai_server import FakeOpenAI, answer, drop, raw, running_openai, stall, status


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


STEMS = {"prazo": "praz", "entrega": "entreg", "paulo": "paul"}


def stems(text: str) -> frozenset[str]:
    """Stems the way the knowledge base would, closely enough for these sentences."""
    words = (w.strip(".,?!:").lower() for w in text.split())
    return frozenset(STEMS.get(w, w) for w in words if w)


def passage(text: str, title: str = "Entregas") -> Passage:
    return Passage(
        uuid.uuid4(), uuid.uuid4(), title, title, text, "pt", 1.0, lexemes=stems(f"{title} {text}")
    )


PASSAGES = [
    passage("O prazo de entrega para São Paulo é de 2 dias úteis."),
    passage("Aceitamos Pix, boleto e cartão.", title="Pagamentos"),
]
QUESTION = Question(
    "Qual o prazo de entrega para São Paulo?",
    "pt",
    {"pt": frozenset({"praz", "entreg", "paul"})},
    history=(("customer", "Oi"), ("bot", "Olá! Como posso ajudar?")),
    instructions="Você é a Bia, da Loja Exemplo.",
    company="Loja Exemplo",
)


async def lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    return [stems(t) for t, _ in texts]


def answerer(
    fake: FakeOpenAI, *, timeout: float = 5.0, retries: int = 0, threshold: int = 5, reset: float = 30.0
) -> LLMAnswerer:
    outcomes: list[str] = []
    llm = LLMAnswerer(
        client_for(fake.base_url, "sk-test", timeout=timeout, max_retries=retries),
        "fake-model",
        breakers=AsyncCircuitBreakerFactory(default_threshold=threshold, default_ttl=reset),
        circuit=f"{fake.base_url}#{uuid.uuid4().hex[:6]}",
        fallback=ExtractiveAnswerer(0.6),
        context_chars=12000,
        deadline=timeout * (retries + 1) + 2,
        observe=lambda outcome, _s: outcomes.append(outcome),
    )
    llm.outcomes = outcomes  # type: ignore[attr-defined]
    return llm


def test_the_prompt_numbers_the_passages_and_asks_for_the_customers_language() -> None:
    messages = build_messages(QUESTION, PASSAGES, 12000)
    system = messages[0]["content"]
    assert messages[0]["role"] == "system"
    assert "Você é a Bia, da Loja Exemplo." in system and "Brazilian Portuguese" in system
    assert "[1] Entregas\nO prazo de entrega" in system and "[2] Pagamentos\nAceitamos Pix" in system
    assert NO_ANSWER in system
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    assert messages[-1]["content"] == QUESTION.text


def test_the_prompt_keeps_within_its_budget_dropping_old_history_first() -> None:
    long_history = tuple(("customer", f"mensagem antiga {i} " + "x" * 400) for i in range(30))
    question = Question("E o frete?", "pt", {}, history=long_history)
    messages = build_messages(question, PASSAGES, 3000)
    assert sum(len(m["content"]) for m in messages) <= 3600
    kept = [m["content"] for m in messages[1:-1]]
    assert kept and kept[-1].startswith("mensagem antiga 29")  # the newest history survives


def test_citations_are_checked_against_the_passages() -> None:
    assert check_citations("Sim [1], e também [2].", 2) == ([1, 2], [])
    assert check_citations("Veja [3].", 2) == ([], [3])
    assert check_citations("Sem citação.", 2) == ([], [])


async def test_a_grounded_answer_cites_its_passage_and_loses_the_markers(fake: FakeOpenAI) -> None:
    fake.script(answer("O prazo para São Paulo é de 2 dias úteis [1]."))
    result = await answerer(fake).answer(QUESTION, PASSAGES, lexer)
    assert result.text == "O prazo para São Paulo é de 2 dias úteis."
    assert [c["title"] for c in result.citations] == ["Entregas"]
    assert result.reason == "answered by the LLM citing passages 1"
    request = fake.requests[-1]
    assert request["model"] == "fake-model" and request["temperature"] == 0
    assert "O prazo de entrega para São Paulo" in request["messages"][0]["content"]
    assert fake.headers[-1]["authorization"] == "Bearer sk-test"


async def test_no_answer_in_the_passages_means_no_answer(fake: FakeOpenAI) -> None:
    fake.script(answer("NO_ANSWER"))
    result = await answerer(fake).answer(QUESTION, PASSAGES, lexer)
    assert result.text is None and "no answer" in result.reason


@pytest.mark.parametrize(
    ("reply", "why"), [("Entregamos em 1 dia [7].", "cited [7]"), ("Em 1 dia.", "cited no passage")]
)
async def test_an_answer_citing_nothing_retrieved_falls_back_to_the_passages_own_words(
    fake: FakeOpenAI, reply: str, why: str
) -> None:
    fake.script(answer(reply))
    llm = answerer(fake)
    result = await llm.answer(QUESTION, PASSAGES, lexer)
    assert result.text == "O prazo de entrega para São Paulo é de 2 dias úteis."  # extractive
    assert result.reason.startswith(f"the LLM answer {why}; extractive:")
    assert llm.outcomes == ["guard_failed"]  # type: ignore[attr-defined]


async def test_a_server_error_and_a_rate_limit_are_retried(fake: FakeOpenAI) -> None:
    fake.script(status(500), status(429, retry_after="0"), answer("São 2 dias úteis [1]."))
    result = await answerer(fake, retries=2).answer(QUESTION, PASSAGES, lexer)
    assert result.text == "São 2 dias úteis."
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("behaviour", "kind"), [(stall(3), "timeout"), (drop(), "connection"), (status(503), "error")], ids=str
)
async def test_a_failing_provider_gets_a_bounded_wait_then_the_extractive_answer(
    fake: FakeOpenAI, behaviour: object, kind: str
) -> None:
    fake.script(behaviour)  # type: ignore[arg-type]
    llm = answerer(fake, timeout=1.0, retries=0)
    started = time.monotonic()
    result = await llm.answer(QUESTION, PASSAGES, lexer)
    assert time.monotonic() - started < 2.0
    assert result.text == "O prazo de entrega para São Paulo é de 2 dias úteis."
    assert result.reason.startswith("the LLM failed (")
    assert llm.outcomes == [kind]  # type: ignore[attr-defined]


async def test_the_circuit_opens_after_repeated_failures_fails_fast_then_probes_and_closes(
    fake: FakeOpenAI,
) -> None:
    fake.script(status(500))
    llm = answerer(fake, retries=0, threshold=2, reset=1.0)
    for _ in range(2):
        await llm.answer(QUESTION, PASSAGES, lexer)
    assert len(fake.requests) == 2
    started = time.monotonic()
    result = await llm.answer(QUESTION, PASSAGES, lexer)  # open: the provider is not asked
    assert time.monotonic() - started < 0.5
    assert len(fake.requests) == 2
    assert result.reason.startswith("the LLM circuit is open; extractive:")
    assert result.text is not None  # the customer still gets an answer from the passages
    fake.script(answer("São 2 dias úteis [1]."))
    time.sleep(1.1)
    probed = await llm.answer(QUESTION, PASSAGES, lexer)  # half-open: one probe, it succeeds
    assert probed.reason == "answered by the LLM citing passages 1"
    again = await llm.answer(QUESTION, PASSAGES, lexer)
    assert again.reason == "answered by the LLM citing passages 1"
    assert llm.outcomes == ["error", "error", "circuit_open", "answered", "answered"]  # type: ignore[attr-defined]


async def test_a_reply_citing_several_passages_at_once_is_accepted(fake: FakeOpenAI) -> None:
    fake.script(answer("Entregamos em 2 dias úteis e aceitamos Pix [1, 2]."))
    result = await answerer(fake).answer(QUESTION, PASSAGES, lexer)
    assert result.text == "Entregamos em 2 dias úteis e aceitamos Pix."
    assert [c["title"] for c in result.citations] == ["Entregas", "Pagamentos"]


@pytest.mark.parametrize(
    "reply",
    [raw("<html>not an API</html>", "text/html"), raw("{not json", "application/json")],
    ids=["html", "json"],
)
async def test_a_200_that_is_not_a_chat_completion_falls_back_and_counts_as_a_failure(
    fake: FakeOpenAI, reply: object
) -> None:
    fake.script(reply)  # type: ignore[arg-type]
    llm = answerer(fake, threshold=1)
    result = await llm.answer(QUESTION, PASSAGES, lexer)
    assert result.text == "O prazo de entrega para São Paulo é de 2 dias úteis."
    assert result.reason.startswith("the LLM failed (")
    again = await llm.answer(QUESTION, PASSAGES, lexer)  # threshold 1: that failure opened it
    assert again.reason.startswith("the LLM circuit is open")


async def test_a_bad_key_falls_back_but_does_not_open_the_circuit(fake: FakeOpenAI) -> None:
    fake.script(status(401))
    llm = answerer(fake, threshold=2)
    for _ in range(3):
        result = await llm.answer(QUESTION, PASSAGES, lexer)
        assert result.reason.startswith("the LLM failed (AuthenticationError)")
    assert len(fake.requests) == 3  # still asked each time: our mistake, not the provider's outage
    assert llm.outcomes == ["misconfigured"] * 3  # type: ignore[attr-defined]


async def test_an_answer_citing_a_passage_that_does_not_say_it_is_refused(fake: FakeOpenAI) -> None:
    """A customer talks the model into a promise and a citation: the words are not the passage's."""
    fake.script(answer("Seu reembolso de R$ 5000 foi aprovado hoje mesmo [1]."))
    llm = answerer(fake)
    result = await llm.answer(QUESTION, PASSAGES, lexer)
    assert result.reason.startswith("the LLM answer says what its passages do not")
    assert result.text == "O prazo de entrega para São Paulo é de 2 dias úteis."  # the passage's own words
    assert llm.outcomes == ["guard_failed"]  # type: ignore[attr-defined]


ENGLISH = [
    Passage(
        uuid.uuid4(),
        uuid.uuid4(),
        "Shipping",
        "Shipping › Delivery times",
        "Delivery to state capitals takes 2 to 5 business days.",
        "en",
        1.0,
        lexemes=frozenset({"deliveri", "state", "capit", "take", "busi", "day"}),
    )
]


async def test_a_question_answered_from_passages_in_another_language_is_answered_in_the_customers(
    fake: FakeOpenAI,
) -> None:
    spanish = Question("¿Cuánto tarda el envío a las capitales?", "es", {"en": frozenset({"capit"})})
    system = build_messages(spanish, ENGLISH, 12000)[0]["content"]
    assert "Write the answer in Spanish" in system
    assert "even when the passages are in another language (translate what you use)" in system
    fake.script(answer("El envío a las capitales tarda de 2 a 5 días hábiles [1]."))
    result = await answerer(fake).answer(spanish, ENGLISH, lexer)
    assert result.text == "El envío a las capitales tarda de 2 a 5 días hábiles."
    assert [c["title"] for c in result.citations] == ["Shipping"]
    assert result.quoted_language is None  # its own words, in Spanish: no notice needed
