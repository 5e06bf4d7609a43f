"""The knowledge base's "Try a question" page in Chromium, as an agent uses it by keyboard:
each retrieval stage with its ranks and scores, the answer the bot would give with its
citation, and a question the knowledge base does not cover, which it would hand off, saying
why; a message that asks several questions shows each one's outcome and what each stage
found for it. Filters narrow what answers; a blank question is refused with a notice; the page reads
in Portuguese too. axe-core finds no serious violation."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from atende.runtime import Runtime
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.engine.test_search import RETURNS_PT, SHIPPING_PT
from tests.fixtures.dashboard import PASSWORD, Team, team_api


@pytest.fixture
async def shop(runtime: Runtime, live_server: str, team: Team) -> Team:
    """The team's company with a small knowledge base: shipping and returns, in Portuguese."""
    async with team_api(runtime, live_server, team.company_id) as api:
        for source, content in (("entregas.md", SHIPPING_PT), ("trocas.md", RETURNS_PT)):
            r = await api.post(
                "/v1/documents?wait=true",
                json={"source": source, "content": content, "language": "pt"},
            )
            assert r.status_code == 201, r.text
    return team


async def ask(page: Page, question: str) -> None:
    await page.get_by_label("Question", exact=True).fill(question)
    await page.get_by_role("button", name="Try it").press("Enter")  # by keyboard
    await expect(page.get_by_role("heading", name="What the bot would do")).to_be_visible()


async def test_an_agent_tries_a_question_and_sees_the_stages_the_answer_and_why(
    open_context: OpenContext, live_server: str, shop: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.agent.email, PASSWORD)
    await page.goto("/app/knowledge/try")
    await expect(page.get_by_role("heading", level=1, name="Try a question")).to_be_visible()
    await expect(page.get_by_role("link", name="Try a question")).to_have_attribute("aria-current", "page")
    await assert_accessible(page)

    await ask(page, "Em quantos dias vocês entregam no interior?")
    await expect(page.get_by_text("Language detected: Portuguese.")).to_be_visible()
    for stage in ("Full text (BM25)", "Meaning (dense vectors)", "Fused (hybrid)", "After re-ranking"):
        await expect(page.get_by_role("heading", level=3, name=stage)).to_be_visible()
    fused = page.get_by_role("table", name="Fused (hybrid)")
    first = fused.get_by_role("row").nth(1)
    await expect(first.get_by_role("cell").nth(0)).to_have_text("1")
    await expect(first.get_by_role("cell").nth(2)).to_have_text("Entregas")
    await expect(first.get_by_role("cell").nth(3)).to_have_text("Entregas › Prazos")
    await expect(first.get_by_role("cell").nth(5)).to_have_text("1")  # first in full text too
    # the fused candidates go on to the learned re-ranker, whose first 3 go to the answerer
    await expect(page.get_by_text(re.compile(r"the first 3 go to the answerer"))).to_be_visible()
    reranked = page.get_by_role("table", name="After re-ranking")
    await expect(reranked.get_by_role("row").nth(1).get_by_role("cell").nth(2)).to_have_text("Entregas")
    await expect(page.get_by_text("It would answer.")).to_be_visible()
    # answered on the words the passage holds, or on the re-ranker's confidence in it
    await expect(page.locator("#why")).to_contain_text(
        re.compile(r"“Entregas” (contains|is the passage that answers)")
    )
    await expect(page.locator("blockquote.reply")).to_contain_text("no interior em até 8 dias úteis")
    citations = page.get_by_role("list").filter(has_text="Entregas — Entregas › Prazos")
    await expect(citations).to_have_count(1)
    await expect(page.get_by_role("cell", name="Search the knowledge base")).to_be_visible()
    await expect(page.get_by_role("rowheader", name="In all")).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "knowledge-try")

    await ask(page, "Vocês aceitam pagamento com criptomoedas?")
    await expect(page.get_by_text("It would hand off to a person.")).to_be_visible()
    await expect(page.locator("#why")).to_contain_text("A person answers")
    await expect(page.locator("blockquote.reply")).to_have_count(0)
    await assert_accessible(page)

    await ask(page, "Quero falar com um atendente, por favor")
    await expect(page.get_by_text("It would hand off to a person.")).to_be_visible()
    await expect(page.locator("#why")).to_have_text(
        "The customer asked to talk to a person. The bot hands off before searching the knowledge base."
    )


async def test_filters_narrow_what_answers_and_a_blank_question_is_refused(
    open_context: OpenContext, live_server: str, shop: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.agent.email, PASSWORD)
    await page.goto("/app/knowledge/try")
    await page.get_by_label("Document", exact=True).select_option(label="Trocas e devoluções")
    await ask(page, "Em quantos dias vocês entregam no interior?")
    for stage in ("Full text (BM25)", "Meaning (dense vectors)", "Fused (hybrid)"):
        titles = (
            await page.get_by_role("table", name=stage).locator("tbody tr td:nth-child(3)").all_inner_texts()
        )
        assert set(titles) <= {"Trocas e devoluções"}, (stage, titles)
    await expect(page.get_by_label("Document", exact=True)).to_have_value(re.compile(r"^[0-9a-f-]{36}$"))
    await expect(page.get_by_text("It would hand off to a person.")).to_be_visible()

    await page.goto("/app/knowledge/try?question=%20%20%20")
    await expect(page.get_by_role("alert")).to_have_text("Type a question of up to 2000 characters.")
    await assert_accessible(page)


async def test_the_page_reads_in_portuguese(open_context: OpenContext, live_server: str, shop: Team) -> None:
    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, shop.agent.email, PASSWORD, "pt-BR")
    await page.goto("/app/knowledge/try")
    await page.get_by_label("Pergunta", exact=True).fill("Qual o prazo de entrega no interior?")
    await page.get_by_role("button", name="Experimentar").click()
    await expect(page.get_by_text("Responderia.")).to_be_visible()
    await expect(page.get_by_role("heading", level=3, name="Depois do reordenamento")).to_be_visible()
    await assert_accessible(page)


async def test_a_message_partly_answered_shows_each_questions_outcome(
    open_context: OpenContext, live_server: str, shop: Team
) -> None:
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.agent.email, PASSWORD)
    await page.goto("/app/knowledge/try")
    await ask(
        page,
        "Bom dia! Em quantos dias vocês entregam no interior? "
        "Vocês vendem notebooks recondicionados com Linux?",
    )
    await expect(page.locator(".verdict")).to_have_text(
        "Partly answered. It would answer 1 of 2 questions and hand the rest to a person."
    )
    await expect(page.locator("#why")).to_contain_text("The message asks 2 questions")
    each = page.get_by_role("list", name="Each question")
    answered, left = each.get_by_role("listitem").nth(0), each.get_by_role("listitem").nth(1)
    await expect(answered).to_contain_text("Em quantos dias vocês entregam no interior? — Answered")
    await expect(answered).to_contain_text("Source: Entregas — Entregas › Prazos")
    await expect(answered).to_contain_text("no interior em até 8 dias úteis")
    await expect(left).to_contain_text(
        "Vocês vendem notebooks recondicionados com Linux? — Left for a person"
    )
    await expect(left.get_by_text("Source:")).to_have_count(0)
    await expect(page.get_by_role("heading", name="Citations")).to_have_count(0)  # each question has its own
    # what each stage found for each question, opened by keyboard
    await answered.get_by_text("What each stage found for question 1").focus()
    await page.keyboard.press("Enter")
    fused = answered.get_by_role("table", name="Fused (hybrid), question 1")
    await expect(fused).to_be_visible()
    await expect(fused.get_by_role("row").nth(1).get_by_role("cell").nth(2)).to_have_text("Entregas")
    await expect(answered.get_by_role("heading", level=4, name="After re-ranking")).to_be_visible()
    reranked = answered.get_by_role("table", name="After re-ranking, question 1")
    await expect(reranked).to_contain_text("Entregas")
    await left.get_by_text("What each stage found for question 2").click()
    await expect(left.get_by_role("table", name="Meaning (dense vectors), question 2")).to_be_visible()
    await assert_accessible(page)

    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, shop.agent.email, PASSWORD, "pt-BR")
    await page.goto("/app/knowledge/try")
    await page.get_by_label("Pergunta", exact=True).fill(
        "Em quantos dias vocês entregam no interior? Vocês vendem notebooks recondicionados com Linux?"
    )
    await page.get_by_role("button", name="Experimentar").click()
    await expect(page.locator(".verdict")).to_contain_text("Respondida em parte.")
    each = page.get_by_role("list", name="Cada pergunta")
    await expect(each.get_by_role("listitem").nth(0)).to_contain_text("Respondida")
    await expect(each.get_by_role("listitem").nth(1)).to_contain_text("Fica para uma pessoa")
    await assert_accessible(page)


async def test_the_conversations_other_details_try_the_companys_rules_on_them(
    open_context: OpenContext, live_server: str, shop: Team, runtime: Runtime
) -> None:
    async with team_api(runtime, live_server, shop.company_id) as api:
        r = await api.post(
            "/v1/documents?wait=true",
            json={
                "source": "entregas-sul.md",
                "content": "# Entregas no Sul\n\n## Prazos\nNo Sul entregamos no interior em 5 dias úteis.",
                "language": "pt",
                "meta": {"custom": {"region": "south"}},
            },
            timeout=60,
        )
        assert r.status_code == 201, r.text
        r = await api.put(
            "/v1/company/knowledge-rules", json={"rules": [{"when": "region", "field": "region"}]}
        )
        assert r.status_code == 200, r.text
    page = await new_page(open_context, live_server)
    await sign_in(page, shop.agent.email, PASSWORD)
    await page.goto("/app/knowledge/try")
    await page.get_by_label("Other details of the conversation").fill("region = south")
    await ask(page, "Em quantos dias vocês entregam no interior?")
    titles = (
        await page.get_by_role("table", name="Fused (hybrid)")
        .locator("tbody tr td:nth-child(3)")
        .all_inner_texts()
    )
    assert set(titles) == {"Entregas no Sul"}, titles
    await expect(page.get_by_role("list", name="Rules and filters applied")).to_contain_text(
        "Rule 1: the conversation's region is “south”, so only documents whose region is “south”."
    )
    await expect(page.get_by_label("Other details of the conversation")).to_have_value("region = south")

    await page.get_by_label("Other details of the conversation").fill("Region = south")
    await page.get_by_role("button", name="Try it").click()
    await expect(page.get_by_role("alert")).to_have_text(
        "Write one key = value a line, the key in lower-case letters, digits and _ (such as region = south), "
        "each key once; at most 20, values up to 500 characters."
    )
    await assert_accessible(page)
