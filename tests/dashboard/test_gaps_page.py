"""The knowledge gaps page over HTTP: what each role sees, the draft link's contents, the
filters and their refusals, and that another company's gaps never appear."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from atende.gaps import service as gaps
from atende.gaps.clustering import THRESHOLD
from atende.runtime import Runtime
from tests.fixtures import gaps as arrange
from tests.fixtures.dashboard import Team, signed_in
from tests.fixtures.gaps import MANAUS, REFUNDS, Handoff
from tests.gaps.test_gaps import EMBEDDER

REFUND_ANSWER = "O estorno no cartão de crédito aparece em até 2 faturas, conforme a operadora."
MANAUS_ANSWER = "Entregamos em Manaus em 12 dias úteis, com frete calculado no carrinho."


async def arrange_gaps(runtime: Runtime, team: Team) -> None:
    """Four refund questions (one answered by the agent), three about Manaus on WhatsApp (one
    answered), and handoffs that are not gaps; topics computed."""
    agent = team.agent.user_id
    for n, text in enumerate(REFUNDS):
        item = Handoff(text, arrange.WEAK, answer=REFUND_ANSWER if n == 1 else None)
        await arrange.hand_off(runtime, team.company_id, item, agent_id=agent)
    for n, text in enumerate(MANAUS):
        item = Handoff(
            text, arrange.LLM_NO_ANSWER, channel="whatsapp", answer=MANAUS_ANSWER if n == 0 else None
        )
        await arrange.hand_off(runtime, team.company_id, item, agent_id=agent)
    await arrange.hand_off(
        runtime, team.company_id, Handoff("Quero falar com um atendente", arrange.ASKED_FOR_A_PERSON)
    )
    await gaps.refresh_company(runtime.db, team.company_id, EMBEDDER, datetime.now(UTC), threshold=THRESHOLD)


def topic_headings(page: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'<h2 id="topic-\d+">(.*?)</h2>', page)]


def article_links(page: str) -> list[dict[str, list[str]]]:
    found = re.findall(r'<a class="button" href="([^"]+)">', page)
    return [parse_qs(urlsplit(html.unescape(href)).query) for href in found]


async def test_topics_are_ranked_by_volume_and_admins_get_a_draft(
    runtime: Runtime, live_server: str, team: Team, rival: Team
) -> None:
    await arrange_gaps(runtime, team)
    await arrange.hand_off(
        runtime, rival.company_id, Handoff("Vocês entregam em Belém do Pará?", arrange.WEAK)
    )
    await gaps.refresh_company(runtime.db, rival.company_id, EMBEDDER, datetime.now(UTC), threshold=THRESHOLD)

    async with signed_in(live_server, team.admin) as client:
        page = (await client.get("/app/analytics/gaps")).text
    headings = topic_headings(page)
    assert len(headings) == 2
    assert headings[0] in REFUNDS and headings[1] in MANAUS
    assert "Quero falar com um atendente" not in page
    assert "Belém" not in page  # the rival's gap
    assert "Topics computed" in page
    refunds, manaus = article_links(page)
    assert refunds["title"] == [headings[0]] and refunds["body"] == [REFUND_ANSWER]
    assert manaus["title"] == [headings[1]] and manaus["body"] == [MANAUS_ANSWER]
    assert re.findall(r'<a class="button" href="([^"?]+)', page) == ["/app/knowledge/articles/new"] * 2

    async with signed_in(live_server, team.viewer) as client:
        page = (await client.get("/app/analytics/gaps")).text
    assert topic_headings(page) == headings
    assert "Write an article for this" not in page  # viewers read; admins write articles

    async with signed_in(live_server, team.admin) as client:
        whatsapp = (await client.get("/app/analytics/gaps", params={"channel": "whatsapp"})).text
        english = (await client.get("/app/analytics/gaps", params={"language": "en"})).text
        long_ago = (
            await client.get("/app/analytics/gaps", params={"from": "2020-01-01", "to": "2020-12-31"})
        ).text
    assert topic_headings(whatsapp) == [headings[1]]
    assert topic_headings(english) == []
    assert "No knowledge gaps in this period" in long_ago


async def test_bad_filters_are_refused_with_a_reason(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.viewer) as client:
        for params, says in (
            ({"from": "2026-13-45"}, "Check these fields and try again: from"),
            ({"from": "2026-05-10", "to": "2026-05-01"}, "The start date is after the end date."),
            ({"channel": "pigeon"}, "There is no such channel or language."),
            ({"language": "xx"}, "There is no such channel or language."),
        ):
            response = await client.get("/app/analytics/gaps", params=params)
            assert response.status_code == 422, params
            assert says in response.text, params


def test_a_long_answer_is_cut_at_a_word() -> None:
    from atende.dashboard.gaps import DRAFT_CHARS, shortened

    text = "palavra " * 400
    cut = shortened(text, DRAFT_CHARS)
    assert len(cut) <= DRAFT_CHARS and cut.endswith("palavra…")
    assert shortened("curto", DRAFT_CHARS) == "curto"


async def test_topics_show_answers_rated_not_helpful_and_can_be_ordered_by_them(
    runtime: Runtime, live_server: str, team: Team
) -> None:
    """Refunds: four handoffs; Manaus: three answers the customers rated "Not helpful". By
    volume refunds come first; ordered by bad ratings, Manaus does; each says its counts."""
    from sqlalchemy import select

    from atende.conversations.models import Message
    from atende.feedback import ratings

    for text in REFUNDS:
        await arrange.hand_off(runtime, team.company_id, Handoff(text, arrange.WEAK))
    for text in MANAUS:
        cid = await arrange.hand_off(
            runtime,
            team.company_id,
            Handoff(text, "answered from 'Entregas' (coverage 0.82)", decision="answer"),
        )
        async with runtime.db.transaction(team.company_id) as session:
            reply = await session.scalar(
                select(Message.id).where(Message.conversation_id == cid, Message.author == "bot")
            )
            assert reply is not None
            await ratings.rate_answer(
                session,
                runtime.jobs,
                cid,
                reply,
                helpful=False,
                comment=None,
                channel="api",
                now=datetime.now(UTC),
            )
    await gaps.refresh_company(runtime.db, team.company_id, EMBEDDER, datetime.now(UTC), threshold=THRESHOLD)

    async with signed_in(live_server, team.viewer) as client:
        by_volume = (await client.get("/app/analytics/gaps")).text
        by_ratings = (await client.get("/app/analytics/gaps", params={"sort": "rating"})).text
        wrong = await client.get("/app/analytics/gaps", params={"sort": "loudest"})
    assert [h in REFUNDS for h in topic_headings(by_volume)] == [True, False]
    assert [h in MANAUS for h in topic_headings(by_ratings)] == [True, False]
    counts = re.findall(r"<dt>(Handoffs|Rated not helpful)</dt><dd>(\d+)</dd>", by_ratings)
    assert counts == [
        ("Handoffs", "0"),
        ("Rated not helpful", "3"),
        ("Handoffs", "4"),
        ("Rated not helpful", "0"),
    ]
    assert '<option value="rating" selected>Most answers rated not helpful</option>' in by_ratings
    assert wrong.status_code == 422 and "There is no such order." in wrong.text
