"""The "Try a question" page over HTTP with a re-ranking stage: a company whose LLM re-ranks
(the fake OpenAI-compatible server) sees the stage after the fused one, each passage with its
rank before and its fused score, and, when the LLM fails, why the fused order was kept. A
turn's trace shows a column per re-ranking stage too. A message that asks several questions
shows what each stage found for each of them, beside its outcome."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx

from atende.dashboard.i18n import translations
from atende.dashboard.traces import turn_view
from atende.engine.models import Trace
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.engine.test_search import RETURNS_PT, SHIPPING_PT
from tests.fakes.openai_server import answer, running_openai, status
from tests.fixtures.dashboard import Team, signed_in
from tests.tenancy.test_support_api import new_key

QUESTION = "/app/knowledge/try?question=Em+quantos+dias+voc%C3%AAs+entregam+no+interior%3F&language=pt"


def table(html: str, label: str) -> list[list[str]]:
    """The body rows of the stage table under ``label``'s heading, cell texts."""
    start = html.index(f">{label}</h3>")
    body = html[html.index("<tbody>", start) : html.index("</tbody>", start)]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def test_an_llm_re_ranking_stage_shows_each_passages_rank_before_and_after(
    runtime: Runtime, live_server: str, team: Team
) -> None:
    key = await new_key(runtime, SimpleNamespace(id=team.company_id), Role.admin)  # type: ignore[arg-type]
    with running_openai() as fake:
        async with httpx.AsyncClient(
            base_url=live_server, headers={"Authorization": f"Bearer {key}"}, timeout=60
        ) as api:
            r = await api.post(
                "/v1/documents?wait=true",
                json={"source": "entregas.md", "content": SHIPPING_PT, "language": "pt"},
            )
            assert r.status_code == 201, r.text
            llm = {"base_url": fake.base_url, "model": "fake-model"}
            r = await api.put("/v1/company/assistant", json={"llm": llm, "rerank": {"llm": True}})
            assert r.status_code == 200, r.text
        async with signed_in(live_server, team.agent) as client:
            fake.script(answer("2, 1"), answer("NO_ANSWER"))
            html = (await client.get(QUESTION)).text
            fused, reranked = table(html, "Fused (hybrid)"), table(html, "After LLM re-ranking")
            # the knowledge base has two passages: both go on to the LLM, then to the answerer
            assert "the first 2 go on to re-ranking" in html
            assert "the first 2 go to the answerer" in html
            assert '<th scope="col">Rank before</th>' in html
            # rank, score, document, section, passage, rank before, fused score, BM25 and dense ranks
            assert [row[0] for row in reranked] == ["1", "2"]
            assert [row[5] for row in reranked] == ["2", "1"]
            assert [row[3] for row in reranked] == [fused[1][3], fused[0][3]]
            assert reranked[0][6] == fused[1][1]  # its fused score, as the fused table shows it
            assert "No re-ranking ran" not in html

            fake.script(status(500), answer("NO_ANSWER"))
            html = (await client.get(QUESTION)).text
            assert "Not re-ranked: llm failed: InternalServerError" in html
            assert [row[3] for row in table(html, "After LLM re-ranking")] == [row[3] for row in fused]


def test_a_traces_passages_show_a_column_per_re_ranking_stage_with_score_and_rank() -> None:
    trace = Trace(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        language="pt",
        decision="answer",
        reason="answered",
        answerer="extractive",
        retriever="hybrid",
        total_ms=12.0,
        steps=[],
        retrieved=[
            {
                "title": "Entregas",
                "section": "Entregas › Interior",
                "language": "pt",
                "text": "…",
                "scores": {
                    **{"bm25": 3.2, "bm25_rank": 2, "fused": 0.4, "fused_rank": 3},
                    **{"reranked": 0.91, "reranked_rank": 2, "llm_reranked": 1.0, "llm_reranked_rank": 1},
                },
            }
        ],
    )
    view = turn_view(trace, "Quanto tempo?", lambda s: s)
    assert [key for key, _name in view.stages] == ["bm25", "fused", "reranked", "llm_reranked"]
    assert [name for _key, name in view.stages][-2:] == ["Re-ranked", "Re-ranked by the LLM"]
    [chunk] = view.chunks
    assert (chunk.scores["fused"].rank, chunk.scores["reranked"].rank) == (3, 2)
    assert (chunk.scores["llm_reranked"].value, chunk.scores["llm_reranked"].rank) == (1.0, 1)


def test_a_traces_retrieval_stages_that_fell_back_are_shown_in_words_in_the_readers_language() -> None:
    trace = Trace(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        language="pt",
        decision="answer",
        reason="answered",
        answerer="extractive",
        retriever="hybrid",
        total_ms=160.0,
        steps=[
            {
                "step": "retrieve",
                "ms": 150.0,
                "fallbacks": [{"stage": "reranked", "error": "learned took longer than its 100 ms budget"}],
            },
            {
                "step": "rerank",
                "ms": 4500.0,
                "fallbacks": [{"stage": "llm_reranked", "error": "llm failed: InternalServerError: 500"}],
            },
        ],
        retrieved=[],
    )
    assert turn_view(trace, "Quanto tempo?", lambda s: s).fallbacks == [
        "Re-ranking kept the order before it: the re-ranker took longer than its 100 ms budget.",
        "Re-ranking by the LLM kept the order before it: the re-ranker failed (InternalServerError: 500).",
    ]
    portuguese = turn_view(trace, "Quanto tempo?", translations("pt-BR").gettext).fallbacks
    assert portuguese[0] == (
        "Reordenamento manteve a ordem anterior: o reordenador levou mais que seu limite de 100 ms."
    )


PARTLY = (
    "/app/knowledge/try?question=Bom+dia%21+Em+quantos+dias+voc%C3%AAs+entregam+no+interior%3F+"
    "Voc%C3%AAs+vendem+notebooks+recondicionados+com+Linux%3F"
)


def question_block(html: str, number: int) -> str:
    """The ``number``-th item of the "Each question" list."""
    start = html.index('<ol class="try-questions')
    items = html[start : html.index("</ol>", start)].split("<li>")[1:]
    return items[number - 1]


async def test_each_question_of_a_message_shows_what_each_stage_found_for_it(
    runtime: Runtime, live_server: str, team: Team
) -> None:
    key = await new_key(runtime, SimpleNamespace(id=team.company_id), Role.admin)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        base_url=live_server, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as api:
        for source, content in (("entregas.md", SHIPPING_PT), ("trocas.md", RETURNS_PT)):
            r = await api.post(
                "/v1/documents?wait=true", json={"source": source, "content": content, "language": "pt"}
            )
            assert r.status_code == 201, r.text
    async with signed_in(live_server, team.agent) as client:
        html = (await client.get(PARTLY)).text
    assert "Partly answered." in html
    answered, left = question_block(html, 1), question_block(html, 2)
    assert "Em quantos dias vocês entregam no interior?</q>" in answered and ">Answered<" in answered
    assert "Vocês vendem notebooks recondicionados com Linux?</q>" in left and ">Left for a person<" in left
    # each question's own stages: full text, dense, fused, re-ranked, each with its candidates
    for number, block in ((1, answered), (2, left)):
        assert f"What each stage found for question {number}" in block
        labels = re.findall(r'<h4 id="q\d-stage-(\w+)">', block)
        assert labels[:3] == ["fulltext", "dense", "fused"], labels
        assert f'aria-label="Fused (hybrid), question {number}"' in block
    fused = answered[answered.index('aria-label="Fused (hybrid), question 1"') :]
    first_row = re.findall(r"<td[^>]*>(.*?)</td>", fused[fused.index("<tbody>") :], re.S)[:4]
    assert first_row[0] == "1" and first_row[2] == "Entregas", first_row
    # the answered question's re-ranking stage: each candidate's rank before it and its fused score
    reranked = answered[answered.index('aria-label="After re-ranking, question 1"') :]
    assert "Rank before" in reranked[: reranked.index("</thead>")]
    assert "Source: <strong>Entregas</strong>" in answered
    assert "Source:" not in left
    # the message's own stages come first, as for a one-question message
    assert html.index('<h3 id="stage-fused">') < html.index('<h4 id="q1-stage-fused">')
