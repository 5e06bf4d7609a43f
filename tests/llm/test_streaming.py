"""Streaming LLM answers: the web chat sees the answer as it is written (``draft`` events over
its SSE stream), then the stored, checked reply; the real SDK streams from the fake server."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from purgatory import AsyncCircuitBreakerFactory

from atende.config import Settings
from atende.knowledge.passages import Passage
from atende.llm.answerer import Question
from atende.llm.extractive import ExtractiveAnswerer
from atende.llm.grounded import LLMAnswerer
from atende.openai_compat import client_for
from tests.channels.test_webchat import (
    Event,
    bot_replies,
    has_bot_replies,
    messages_of,
    read_events,
    say,
    start,
    wait_for,
)
from tests.conftest import CompanyCtx
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai

ANSWER = "Aceitamos Pix, cartão de crédito em até 12 vezes e boleto bancário [1]."


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


@pytest.fixture
async def web(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


def answerer(fake: FakeOpenAI, *, stream: bool) -> LLMAnswerer:
    return LLMAnswerer(
        client_for(fake.base_url, "sk-test", timeout=5, max_retries=0),
        "fake-model",
        breakers=AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=30),
        circuit=f"stream-{uuid.uuid4().hex[:6]}",
        fallback=ExtractiveAnswerer(0.5),
        context_chars=8000,
        deadline=10,
        stream=stream,
    )


def words(text: str) -> frozenset[str]:
    return frozenset(text.lower().replace(",", " ").replace(".", " ").split())


PASSAGE_TEXT = "Aceitamos Pix, cartão de crédito em até 12 vezes e boleto bancário."
PASSAGE = Passage(
    uuid.uuid4(),
    uuid.uuid4(),
    "Pagamentos",
    "Pagamentos › Formas",
    PASSAGE_TEXT,
    "pt",
    1.0,
    words(PASSAGE_TEXT),
)


async def lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    return [words(text) for text, _ in texts]


async def test_a_streamed_answer_reaches_the_drafts_word_by_word_without_citation_marks(
    fake: FakeOpenAI,
) -> None:
    fake.script(answer(ANSWER, pace=0.2))
    shown: list[str] = []

    async def drafts(text: str) -> None:
        shown.append(text)

    question = Question("Quais formas de pagamento?", "pt", {}, drafts=drafts)
    result = await answerer(fake, stream=True).answer(question, [PASSAGE], lexer)
    assert result.text == "Aceitamos Pix, cartão de crédito em até 12 vezes e boleto bancário."
    assert fake.requests[-1]["stream"] is True
    assert len(shown) >= 3, shown
    assert all(b.startswith(a) for a, b in itertools.pairwise(shown)), shown
    assert all("[" not in text for text in shown)


async def test_without_streaming_or_drafts_the_answer_comes_whole(fake: FakeOpenAI) -> None:
    fake.script(answer(ANSWER))
    shown: list[str] = []

    async def drafts(text: str) -> None:
        shown.append(text)

    await answerer(fake, stream=False).answer(
        Question("Pagamento?", "pt", {}, drafts=drafts), [PASSAGE], lexer
    )
    assert "stream" not in fake.requests[-1] and shown == []
    result = await answerer(fake, stream=True).answer(Question("Pagamento?", "pt", {}), [PASSAGE], lexer)
    assert result.text is not None and "stream" not in fake.requests[-1]


async def test_a_streamed_no_answer_shows_nothing_and_hands_off(fake: FakeOpenAI) -> None:
    fake.script(answer("NO_ANSWER", pace=0.2))
    shown: list[str] = []

    async def drafts(text: str) -> None:
        shown.append(text)

    result = await answerer(fake, stream=True).answer(
        Question("x?", "pt", {}, drafts=drafts), [PASSAGE], lexer
    )
    assert result.text is None and shown == []


async def test_the_web_chat_shows_the_answer_as_it_is_written_then_the_checked_reply(
    web: httpx.AsyncClient,
    kb_company: CompanyCtx,
    fake: FakeOpenAI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "llm_stream", True)
    r = await kb_company.client.put(
        "/v1/company/assistant", json={"llm": {"base_url": fake.base_url, "model": "fake-model"}}
    )
    assert r.status_code == 200, r.text
    fake.script(answer("Aceitamos Pix, cartão de crédito e boleto [1].", pace=0.25))
    visitor = await start(web, kb_company.widget_key)
    await say(web, visitor, "Olá")  # small talk: replayed first, so the stream is known to be live
    await wait_for(web, visitor, bot_replies(1))
    posted: list[dict] = []

    async def ask_once_live(events: list[Event]) -> bool:
        if len(messages_of(events)) < 2:
            return False
        posted.append(await say(web, visitor, "Quais formas de pagamento vocês aceitam?"))
        return True

    events = await read_events(
        web,
        f"{visitor.path}/events?token={visitor.token}",
        has_bot_replies(2),
        on_open=ask_once_live,
        timeout=20,
    )
    drafts = [e.json() for e in events if e.event == "draft"]
    reply = messages_of(events)[-1]
    assert reply["author"] == "bot" and reply["reply_to_id"] == posted[0]["id"]
    assert len(drafts) >= 2, [e.event for e in events]
    assert {d["message_id"] for d in drafts} == {posted[0]["id"]}
    assert all(b["text"].startswith(a["text"]) for a, b in itertools.pairwise(drafts))
    assert all("[" not in d["text"] for d in drafts)
    # the stored reply, checked and cited, comes after the drafts
    assert reply["text"] == "Aceitamos Pix, cartão de crédito e boleto."
    assert reply["meta"]["citations"][0]["title"] == "Formas de pagamento"
    kinds = [e.event for e in events]
    assert max(i for i, k in enumerate(kinds) if k == "draft") < len(kinds) - 1
