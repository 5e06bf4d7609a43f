"""The bot's reasoning page (``/app/conversations/{id}/traces``) over HTTP for a message that
asks several questions, answered by the real turn (the live server, the worker, the demo
knowledge base): each question found, what was looked up for it, each retrieval stage's
time, its passages with their scores before and after re-ranking, and its outcome: answered
citing its own passage, or left for a person and why."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime

from atende.dashboard.i18n import translations
from atende.dashboard.traces import turn_view
from atende.engine.models import Trace
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask
from tests.fixtures.dashboard import add_person, signed_in

PARTLY = (
    "Hello! How long does delivery to state capitals take? "
    "Do you sell refurbished laptops with Linux preinstalled?"
)


def section(page: str, heading: str) -> str:
    """The text of the ``<section>`` whose heading contains ``heading``, tags stripped."""
    at = page.index(heading)
    start, end = page.rindex("<section", 0, at), page.index("</section>", at)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page[start:end])))


def caption_rows(page: str, caption: str, row_class: str = "") -> list[list[str]]:
    """The body rows (cell texts) of the table captioned ``caption`` (those of ``row_class``)."""
    at = page.index(f"<caption>{caption}</caption>")
    body = page[page.index("<tbody>", at) : page.index("</tbody>", at)]
    opening = f' class="{row_class}"' if row_class else ""
    return [
        [
            html.unescape(" ".join(re.sub(r"<[^>]+>", " ", cell).split()))
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(f"<tr{opening}>(.*?)</tr>", body, re.S)
    ]


async def test_each_question_of_a_message_shows_its_lookup_and_outcome(
    live_server: str, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    body = await ask(kb_company.client, PARTLY)
    assert body["reply"]["meta"]["decision"] == "handoff"
    viewer = await add_person(runtime, kb_company.id, Role.viewer)
    async with signed_in(live_server, viewer) as client:
        r = await client.get(f"/app/conversations/{body['conversation_id']}/traces")
    assert r.status_code == 200, r.text
    page = r.text
    assert "The questions found in the message" in page
    assert "The message asks 2 questions; each was looked up and answered on its own." in page

    first = section(page, "Question 1: “How long does delivery to state capitals take?”")
    assert "Outcome Answered" in first
    assert "Cited Shipping — Shipping › Delivery times" in first
    # the company's rules (internal documents left out, validity dates) apply to each question
    assert "Filters The message's knowledge rules and filters (above)." in first
    second = section(page, "Question 2: “Do you sell refurbished laptops with Linux preinstalled?”")
    assert "Outcome Left for a person" in second
    assert "Cited" not in second
    # why, in plain words (the recorded reason beside it when it is not the same)
    reason = re.search(r"Why (.*?) Filters", second)
    assert reason is not None and reason.group(1).strip(), second

    # each question's retrieval stages with their time, then its passages with a column per stage
    for number in (1, 2):
        stages = caption_rows(page, f"Retrieval stages for question {number} and their time")
        assert [row[0].split(" ")[0] for row in stages][:3] == ["Full-text", "Dense", "Fused"], stages
        assert all(re.fullmatch(r"[\d.]+ ms", row[3]) for row in stages), stages
        assert int(stages[1][1]) >= 1  # the dense stage found candidates (full text may find none)
        # the re-ranker passes on the answerer's few, no more than it was given
        assert next(row for row in stages if row[0] == "Re-ranked")[2] == "5"
        assert all(row[2] == "all" or int(row[2]) <= int(row[1]) for row in stages), stages
    caption = "Passages for question 1, best first, with their scores before and after re-ranking"
    head = page[page.index(f"<caption>{caption}</caption>") : page.index("</thead>", page.index(caption))]
    for column in ("Full-text score (rank)", "Fused score (rank)", "Re-ranked score (rank)"):
        assert column in head, column
    [best, *_rest] = caption_rows(page, caption)
    assert best[0] == "Shipping › Delivery times"
    assert re.fullmatch(r"\d\.\d{3} \(\d+\)", best[1]), best  # its full-text score and rank
    assert "2 to 5 business days" in best[-1]  # the passage's text, from the trace's retrieved ones
    # the candidates fusion ranked among the first five that re-ranking moved out: below them,
    # with their scores before (fused rank up to 5) and after (re-ranked rank past 5)
    columns = re.findall(r'<th scope="col">(.*?)</th>', head)
    fused, reranked = columns.index("Fused score (rank)"), columns.index("Re-ranked score (rank)")
    moved = caption_rows(page, caption, "displaced")
    assert moved, "re-ranking moved none of the fused top five out"
    for row in moved:
        assert "Moved out by re-ranking: not given to the answerer" in row[0]
        assert (
            int(re.findall(r"\((\d+)\)", row[fused])[0])
            <= 5
            < int(re.findall(r"\((\d+)\)", row[reranked])[0])
        )
    # the message whole: its stages' time too
    whole = caption_rows(page, "Retrieval stages for the message whole and their time")
    assert [row[0] for row in whole][:3] == ["Full-text", "Dense", "Fused"]


def test_an_older_trace_without_question_details_shows_what_it_kept() -> None:
    """A trace from before the questions kept their passages' scores and citations: its
    questions are listed with what was looked up, their outcome, and no columns."""
    trace = Trace(
        id=uuid.uuid4(),
        created_at=datetime.now(UTC),
        language="pt",
        decision="handoff",
        reason="partly answered 1 of 2 questions: …",
        answerer="extractive",
        retriever="hybrid",
        total_ms=40.0,
        steps=[
            {
                "step": "retrieve",
                "ms": 30.0,
                "questions": [
                    {"question": "Qual o prazo?", "query": "Qual o prazo?", "ms": 9.0, "found": []},
                    {"question": "E o Pix?", "query": "E o Pix?", "ms": 8.0, "found": []},
                ],
            },
            {
                "step": "answer",
                "ms": 5.0,
                "questions": [
                    {"question": "Qual o prazo?", "answered": True, "reason": "answered", "confidence": 0.8},
                    {
                        "question": "E o Pix?",
                        "answered": False,
                        "reason": "weak evidence: best coverage 0.20 < threshold 0.50",
                        "confidence": 0.2,
                    },
                ],
            },
        ],
        retrieved=[],
    )
    first, second = turn_view(trace, "Qual o prazo? E o Pix?", translations("pt-BR").gettext).questions
    assert (first.answered, first.citations, first.stage_times, first.stages) == (True, [], [], [])
    assert second.answered is False
    assert second.reason.startswith("O melhor trecho cobre só 20% das palavras da pergunta")
    assert second.reason_recorded == "weak evidence: best coverage 0.20 < threshold 0.50"
