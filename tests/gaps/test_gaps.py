"""Knowledge gaps: which handoffs count, how they group into topics, and that each company
sees only its own. Real PostgreSQL, the real bot turn over the API channel, and the offline
embedding model the project ships."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from atende.conversations.models import Message
from atende.engine import handoff
from atende.gaps import service as gaps
from atende.gaps import tasks as gap_tasks
from atende.gaps.clustering import THRESHOLD, groups
from atende.gaps.models import GapQuestion
from atende.llm.answerer import Question
from atende.llm.extractive import ExtractiveAnswerer
from atende.runtime import Runtime
from atende.teams.settings import HandoffSettings
from tests.conftest import CompanyCtx, ask
from tests.fixtures import gaps as arrange
from tests.fixtures.gaps import MANAUS, REFUNDS, Handoff

EMBEDDER = gap_tasks.E5Embedder(threads=1)


async def refresh(runtime: Runtime, company_id: uuid.UUID) -> gaps.Refreshed:
    return await gaps.refresh_company(
        runtime.db, company_id, EMBEDDER, datetime.now(UTC), threshold=THRESHOLD
    )


async def stored(runtime: Runtime, company_id: uuid.UUID) -> list[GapQuestion]:
    """The company's stored gap questions. The tests read these rather than a refresh's own
    counts: the test server's worker runs the hourly refresh too, and a session starting just
    after its minute catches it up, for every company, beside the tests' own."""
    async with runtime.db.transaction(company_id) as session:
        return list(await session.scalars(select(GapQuestion)))


async def shown(runtime: Runtime, company_id: uuid.UUID, **filters: object) -> list[gaps.Topic]:
    now = datetime.now(UTC)
    window = {"start": now - timedelta(days=30), "end": now + timedelta(minutes=1), **filters}
    async with runtime.db.transaction(company_id) as session:
        return await gaps.topics(session, gaps.Filters(**window))  # type: ignore[arg-type]


async def no_lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    return [frozenset() for _ in texts]


async def test_only_handoffs_for_lack_of_knowledge_count() -> None:
    """The reasons the real answerer and handoff signals write: weak evidence counts; a customer
    asking for a person, a rule, a repeated question do not; an answer never does."""
    weak = await ExtractiveAnswerer(0.35).answer(
        Question("Vocês entregam em Manaus?", "pt", {}), [], no_lexer
    )
    assert weak.text is None
    assert gaps.is_gap("handoff", weak.reason)
    assert gaps.is_gap("handoff", arrange.LLM_NO_ANSWER)
    assert gaps.is_gap("handoff", arrange.LLM_FAILED)
    rules = HandoffSettings.model_validate({"rules": [{"name": "Procon", "keywords": ["procon"]}]})
    history = (("customer", "qual o prazo de entrega para recife"), ("bot", "5 a 8 dias úteis"))
    signals = [
        handoff.signal("Quero falar com um atendente, por favor", (), rules),
        handoff.signal("Vou reclamar no Procon", (), rules),
        handoff.signal("Qual o prazo de entrega para Recife?", history, rules),
    ]
    assert [s.lead for s in signals if s] == ["requested", "rule", "repeat"]
    assert not any(gaps.is_gap("handoff", s.reason) for s in signals if s)
    assert not gaps.is_gap("answer", "answered from 'Entregas' (coverage 0.82)")


def test_paraphrases_form_one_topic_each_around_their_most_central_question() -> None:
    import numpy as np

    vectors = np.asarray(
        [[1.0, 0.0, 0.0], [0.97, 0.2, 0.0], [0.95, 0.0, 0.25], [0.0, 1.0, 0.0], [0.0, 0.96, 0.2], [0, 0, 1.0]]
    )
    found = groups(vectors.tolist(), threshold=0.9)
    assert [sorted(g.members) for g in found] == [[0, 1, 2], [3, 4], [5]]
    assert found[0].representative == 0  # close to both others, which are further from each other
    assert groups([]) == []


async def test_weak_evidence_handoffs_of_real_turns_group_into_topics_ranked_by_volume(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    """An empty knowledge base: the bot hands every question off for weak evidence. Four ways of
    asking for a refund to a credit card and three about delivery to Manaus make two topics,
    refunds first; a customer asking for a person is not a gap; another company's identical
    question never shows here."""
    for text in (*REFUNDS, *MANAUS, "Quero falar com um atendente, por favor"):
        body = await ask(company.client, text)
        assert body["reply"]["meta"]["decision"] == "handoff"
    await ask(other_company.client, "Quero o reembolso no meu cartão de crédito")
    async with runtime.db.transaction(company.id) as session:
        conversations = {
            m.text: m.conversation_id
            for m in (await session.scalars(select(Message).where(Message.author == "customer"))).all()
        }
    # the agent's first answer, and a later one that is not the draft
    await arrange.answer(
        runtime, company.id, conversations[REFUNDS[1]], "O estorno no cartão leva até 2 faturas."
    )
    await arrange.answer(runtime, company.id, conversations[REFUNDS[1]], "Mais alguma dúvida?")
    await arrange.answer(
        runtime, company.id, conversations[MANAUS[0]], "Entregamos em Manaus em 12 dias úteis."
    )

    await refresh(runtime, company.id)
    questions = await stored(runtime, company.id)
    assert len(questions) == 7 and len([q for q in questions if q.answer]) == 2
    await refresh(runtime, other_company.id)

    topics = await shown(runtime, company.id)
    assert [t.volume for t in topics] == [4, 3]
    refunds, manaus = topics
    assert refunds.label in REFUNDS and manaus.label in MANAUS
    assert refunds.counts == {"handoff": 4, "rating": 0}
    assert {"cartão", "crédito"} <= set(refunds.terms) and "manaus" in manaus.terms
    assert len(refunds.examples) == gaps.EXAMPLES and {e.question for e in refunds.examples} <= set(REFUNDS)
    assert {e.question for e in manaus.examples} == set(MANAUS)
    assert refunds.draft == "O estorno no cartão leva até 2 faturas."
    assert manaus.draft == "Entregamos em Manaus em 12 dias úteis."
    everything = [e.question for t in topics for e in t.examples]
    assert "Quero falar com um atendente, por favor" not in everything
    assert "Quero o reembolso no meu cartão de crédito" not in everything

    theirs = await shown(runtime, other_company.id)
    assert [(t.label, t.volume) for t in theirs] == [("Quero o reembolso no meu cartão de crédito", 1)]


async def test_handoffs_for_other_reasons_never_count(runtime: Runtime, company: CompanyCtx) -> None:
    """Out of hours, a message left for the team has no bot turn; a rule, a repeat, a request
    for a person are decided before the knowledge base is searched. None is a gap."""
    for item in (
        Handoff(
            "Preciso de ajuda com meu pedido",
            "the customer left a message for the team (closed)",
            traced=False,
        ),
        Handoff("Quero falar com um atendente", arrange.ASKED_FOR_A_PERSON),
        Handoff("Vou reclamar no Procon", arrange.RULE),
        Handoff("Qual o prazo de entrega para Recife?", arrange.REPEAT),
        Handoff(
            "Qual o prazo de entrega para Recife?",
            "answered from 'Entregas' (coverage 0.82)",
            decision="answer",
        ),
        Handoff("Vocês entregam em Manaus?", arrange.NO_PASSAGE),
    ):
        await arrange.hand_off(runtime, company.id, item)
    await refresh(runtime, company.id)
    assert len(await stored(runtime, company.id)) == 1
    assert [(t.label, t.volume) for t in await shown(runtime, company.id)] == [
        ("Vocês entregam em Manaus?", 1)
    ]


async def test_the_refresh_is_incremental_and_follows_the_filters(
    runtime: Runtime, company: CompanyCtx
) -> None:
    now = datetime.now(UTC)
    for n, text in enumerate(MANAUS):
        await arrange.hand_off(
            runtime,
            company.id,
            Handoff(text, arrange.WEAK, channel="whatsapp"),
            at=now - timedelta(days=n * 20),
        )
    for text in REFUNDS[:2]:
        await arrange.hand_off(runtime, company.id, Handoff(text, arrange.LLM_NO_ANSWER, channel="webchat"))
    await arrange.hand_off(
        runtime, company.id, Handoff("Do you deliver to Manaus?", arrange.WEAK, language="en")
    )
    await refresh(runtime, company.id)
    assert len(await stored(runtime, company.id)) == 6
    again = await refresh(runtime, company.id)  # nothing new: nothing embedded, topics kept
    assert (again.added, again.topics) == (0, None)
    later = await arrange.hand_off(
        runtime, company.id, Handoff("Quanto custa o frete para Manaus?", arrange.WEAK), at=datetime.now(UTC)
    )
    await refresh(runtime, company.id)
    assert len(await stored(runtime, company.id)) == 7
    async with runtime.db.transaction(company.id) as session:
        row = await session.scalar(select(GapQuestion).where(GapQuestion.conversation_id == later))
    assert row is not None and row.topic_id is not None

    # Manaus in 30 days: two on WhatsApp, the new one, the English one (the model is multilingual)
    manaus, refunds = await shown(runtime, company.id)
    assert (manaus.volume, refunds.volume) == (4, 2)
    assert manaus.label in MANAUS and refunds.label in REFUNDS
    whatsapp = await shown(runtime, company.id, channel="whatsapp")
    assert [(t.label, t.volume) for t in whatsapp] == [(manaus.label, 2)]
    english = await shown(runtime, company.id, language="en")
    assert [(t.label, [e.question for e in t.examples]) for t in english] == [
        (manaus.label, ["Do you deliver to Manaus?"])
    ]
    old = await shown(runtime, company.id, start=now - timedelta(days=45), end=now - timedelta(days=10))
    assert [(t.volume, [e.question for e in t.examples]) for t in old] == [(2, [MANAUS[1], MANAUS[2]])]


async def test_the_periodic_job_refreshes_every_company(runtime: Runtime, company: CompanyCtx) -> None:
    await arrange.hand_off(runtime, company.id, Handoff("Vocês entregam em Manaus?", arrange.WEAK))
    assert "gaps:refresh_gaps" in runtime.jobs.app.tasks
    assert await gap_tasks.refresh_all(runtime, EMBEDDER) >= 1
    async with runtime.db.transaction(company.id) as session:
        run = await gaps.last_run(session, company.id)
    assert run is not None and run.questions == 1 and run.topics == 1


async def test_a_run_takes_the_oldest_questions_first_and_skips_ones_without_text(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """A company's first run catches up in steps of ``PER_RUN``, oldest first; a handoff of a
    message with no text (a photo without a caption) is read, skipped, and not read again."""
    now = datetime.now(UTC)
    for n, text in enumerate(("", MANAUS[0], MANAUS[1], MANAUS[2])):
        await arrange.hand_off(
            runtime, company.id, Handoff(text, arrange.WEAK), at=now - timedelta(hours=4 - n)
        )
    async with runtime.db.transaction(company.id) as session:
        first, seen = await gaps.candidates(session, None, now, limit=2)
        assert [c.question for c in first] == [MANAUS[0]]  # the empty one read and skipped
        assert seen is not None
        later, _ = await gaps.candidates(session, seen, now, limit=2)
    assert [c.question for c in later] == [MANAUS[0], MANAUS[1]]  # the margin re-reads; nothing stored yet


class Together:
    """The real embedder, but each call waits until ``n`` calls have arrived: the refreshes
    then reach their writing together, the race the lock in ``refresh_company`` settles."""

    model = EMBEDDER.model

    def __init__(self, n: int) -> None:
        self.barrier = asyncio.Barrier(n)

    async def queries(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = await EMBEDDER.queries(texts)
        with contextlib.suppress(TimeoutError):  # the other found nothing left to embed
            async with asyncio.timeout(20):
                await self.barrier.wait()
        return vectors


async def test_two_refreshes_at_once_store_each_question_once(runtime: Runtime, company: CompanyCtx) -> None:
    for text in MANAUS:
        await arrange.hand_off(runtime, company.id, Handoff(text, arrange.WEAK))
    together = Together(2)
    now = datetime.now(UTC)
    first, second = await asyncio.gather(
        *(gaps.refresh_company(runtime.db, company.id, together, now, threshold=THRESHOLD) for _ in range(2))
    )
    assert first.added + second.added <= len(MANAUS)
    assert sorted(q.question for q in await stored(runtime, company.id)) == sorted(MANAUS)
    assert [t.volume for t in await shown(runtime, company.id)] == [len(MANAUS)]


async def rate_bot_reply(company: CompanyCtx, conversation_id: uuid.UUID, *, helpful: bool) -> None:
    """The customer's thumbs on the bot's reply in the conversation, through the API."""
    messages = (await company.client.get(f"/v1/conversations/{conversation_id}/messages")).json()
    [reply] = [m for m in messages["items"] if m["author"] == "bot"]
    r = await company.client.put(
        f"/v1/conversations/{conversation_id}/messages/{reply['id']}/rating", json={"helpful": helpful}
    )
    assert r.status_code == 200, r.text


ANSWERED = "answered from 'Entregas' (coverage 0.82)"


async def test_answers_rated_not_helpful_count_beside_handoffs_and_leave_once_rated_helpful(
    runtime: Runtime, company: CompanyCtx
) -> None:
    """Three Manaus questions the bot answered, each rated "Not helpful", and four refund
    handoffs: by volume refunds lead, by bad ratings Manaus does. A handoff rated down is not
    counted twice; an answer rated helpful is no gap, and one rated helpful again leaves."""
    manaus = [
        await arrange.hand_off(runtime, company.id, Handoff(text, ANSWERED, decision="answer"))
        for text in MANAUS
    ]
    refunds = [await arrange.hand_off(runtime, company.id, Handoff(text, arrange.WEAK)) for text in REFUNDS]
    liked = await arrange.hand_off(
        runtime, company.id, Handoff("Qual o horário de atendimento?", ANSWERED, decision="answer")
    )
    for conversation_id in manaus:
        await rate_bot_reply(company, conversation_id, helpful=False)
    await rate_bot_reply(company, refunds[0], helpful=False)
    await rate_bot_reply(company, liked, helpful=True)

    await refresh(runtime, company.id)
    questions = await stored(runtime, company.id)
    assert sorted(q.source for q in questions) == ["handoff"] * 4 + ["rating"] * 3
    topics = await shown(runtime, company.id)
    assert [(t.counts["handoff"], t.counts["rating"]) for t in topics] == [(4, 0), (0, 3)]
    assert [t.label in MANAUS for t in await shown(runtime, company.id, sort="rating")] == [True, False]
    assert [t.label in REFUNDS for t in await shown(runtime, company.id, sort="handoff")] == [True, False]

    await rate_bot_reply(company, manaus[0], helpful=True)  # the customer changed their mind
    await refresh(runtime, company.id)
    assert sorted(q.source for q in await stored(runtime, company.id)) == ["handoff"] * 4 + ["rating"] * 2
    assert [t.counts["rating"] for t in await shown(runtime, company.id, sort="rating")] == [2, 0]
