"""The logs viewer in a real browser (Debian's Chromium, driven by Playwright): an owner finds
a failed delivery among the company's events by its words and kind, opens its conversation,
retries a failed job with the keyboard; a viewer reads a real bot turn's reasoning (each
retrieval stage's scores, the decision and why). Every page passes axe-core, in English and
in Brazilian Portuguese, and writes its screenshot for the docs."""

from __future__ import annotations

import asyncio
import re
import uuid

from playwright.async_api import expect
from sqlalchemy import text

from atende.observability import events
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD, add_person


async def failed_job(runtime: Runtime, company_id: uuid.UUID) -> int:
    """A job of the company that failed for good (a task called with an argument it does
    not take), its event recorded."""
    async with runtime.db.transaction(company_id) as session:
        job_id = await runtime.jobs.enqueue(session, "events:prune", company_id=str(company_id))
    assert job_id is not None
    for _ in range(200):
        async with runtime.db.transaction() as session:
            status = await session.scalar(
                text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            )
        if status == "failed":
            return job_id
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not fail")


async def test_the_logs_viewer_finding_a_failed_delivery(
    open_context: OpenContext, live_server: str, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    owner = await add_person(runtime, kb_company.id, Role.owner, name="Olga Owner")
    body = await ask(kb_company.client, "Qual o prazo de entrega para o Nordeste?", contact="dora")
    conversation_id = body["conversation_id"]
    job_id = await failed_job(runtime, kb_company.id)
    for i in range(3):
        await events.record(
            runtime,
            events.WEBHOOK_FAILED,
            f"The webhook at hooks.example.com did not accept message.created (attempt {i + 1}): HTTP 503",
            company_id=kb_company.id,
        )
    await events.record(
        runtime,
        events.DELIVERY_FAILED,
        "A whatsapp message could not be delivered to dora@example.com: 131047 re-engagement window closed",
        level="error",
        company_id=kb_company.id,
        conversation_id=conversation_id,
        details={"channel": "whatsapp"},
    )

    page = await new_page(open_context, live_server)
    await sign_in(page, owner.email, PASSWORD)
    await page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Logs").click()
    await expect(page.get_by_role("heading", level=1, name="Logs")).to_be_visible()
    await expect(page.get_by_role("link", name="Events")).to_have_attribute("aria-current", "page")
    await assert_accessible(page)
    await screenshot(page, "logs-events")

    # by keyboard: the words, then the kind, then Enter applies the filters
    await page.get_by_label("Words in the message").focus()
    await page.keyboard.type("window")
    await page.get_by_label("Kind").select_option(label="Message not delivered")
    await page.get_by_label("Words in the message").press("Enter")
    rows = page.locator("#events tbody tr")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row).to_contain_text("Message not delivered")
    await expect(row).to_contain_text("131047 re-engagement window closed")
    await expect(row).to_contain_text("to [email]")  # redacted before it was stored
    await expect(page.get_by_label("Kind")).to_have_value("delivery_failed")
    await assert_accessible(page)

    await row.get_by_role("link", name="Open the conversation").click()
    await expect(page).to_have_url(re.compile(f"/app/conversations/{conversation_id}$"))
    await expect(page.get_by_text("Qual o prazo de entrega para o Nordeste?")).to_be_visible()

    # a failed job's row: "Retry job" queues it again, with a notice
    await page.goto("/app/logs?kind=job_failed")
    retry = page.get_by_role("button", name=f"Retry job {job_id}")
    await retry.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("The job was queued again")

    # the same page in Brazilian Portuguese
    pt = await new_page(open_context, live_server, "pt-BR")
    await sign_in(pt, owner.email, PASSWORD, "pt-BR")
    await pt.goto("/app/logs?level=error")
    await expect(pt.get_by_role("heading", level=1, name="Registros")).to_be_visible()
    await expect(pt.locator("#events")).to_contain_text("Mensagem não entregue")
    await assert_accessible(pt)


async def test_the_traces_viewer_shows_each_stages_scores_and_the_decision(
    open_context: OpenContext, live_server: str, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    viewer = await add_person(runtime, kb_company.id, Role.viewer, name="Vic Viewer")
    contact = f"c-{uuid.uuid4().hex[:8]}"
    answered = await ask(
        kb_company.client, "Bom dia! Qual o prazo de garantia dos eletrônicos?", contact=contact
    )
    assert answered["reply"]["meta"]["decision"] == "answer"
    handed = await ask(kb_company.client, "Vocês vendem geladeiras usadas?", contact=contact)
    assert handed["reply"]["meta"]["decision"] == "handoff"

    page = await new_page(open_context, live_server)
    await sign_in(page, viewer.email, PASSWORD)
    await page.goto(f"/app/conversations/{answered['conversation_id']}")
    await page.get_by_role("link", name="How the bot decided this answer").first.click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("The bot's reasoning")
    first, second = page.locator("section.trace").nth(0), page.locator("section.trace").nth(1)

    # the question as read, its language, the decision and why, in plain words
    await expect(first).to_contain_text("What it looked up")
    await expect(first).to_contain_text("Portuguese · confidence")
    await expect(first.get_by_role("definition").filter(has_text="Answer").first).to_be_visible()
    await expect(first).to_contain_text(
        re.compile(r"The bot answered from “Garantia”(, which covers|: the re-ranker)")
    )
    await expect(first).to_contain_text("Offline answerer (extractive)")
    # a column per retrieval stage, with scores and ranks
    scores = first.get_by_role("table", name="Passages retrieved, best first")
    for heading in (
        "Full-text score (rank)",
        "Dense score (rank)",
        "Fused score (rank)",
        "Answer coverage score (rank)",
    ):
        await expect(scores.get_by_role("columnheader", name=heading)).to_be_visible()
    best = scores.locator("tbody tr").first
    await expect(best).to_contain_text("Garantia")
    await expect(best).to_contain_text(re.compile(r"\d\.\d{3} \(1\)"))
    steps = first.get_by_role("table", name="Steps and their time")
    for step in ("Normalise", "Detect the language", "Retrieve", "Answer", "Decide"):
        await expect(steps.get_by_role("cell", name=step, exact=True)).to_be_visible()

    await expect(second).to_contain_text("Hand to the team")
    await expect(second).to_contain_text("the knowledge base has no good answer")
    await assert_accessible(page)
    await screenshot(page, "logs-traces")


async def test_the_traces_viewer_shows_each_question_of_a_message_and_its_outcome(
    open_context: OpenContext, live_server: str, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    viewer = await add_person(runtime, kb_company.id, Role.viewer, name="Vic Viewer")
    body = await ask(
        kb_company.client,
        "Hello! How long does delivery to state capitals take? "
        "Do you sell refurbished laptops with Linux preinstalled?",
    )
    assert body["reply"]["meta"]["decision"] == "handoff"  # one answered, the other for a person

    page = await new_page(open_context, live_server)
    await sign_in(page, viewer.email, PASSWORD)
    await page.goto(f"/app/conversations/{body['conversation_id']}/traces")
    turn = page.locator("section.trace").first
    await expect(
        turn.get_by_role("heading", level=3, name="The questions found in the message")
    ).to_be_visible()
    first = turn.get_by_role("region", name="Question 1: “How long does delivery to state capitals take?”")
    second = turn.get_by_role(
        "region", name="Question 2: “Do you sell refurbished laptops with Linux preinstalled?”"
    )
    await expect(first.get_by_role("definition").filter(has_text=re.compile("^Answered$"))).to_be_visible()
    await expect(first).to_contain_text("Shipping — Shipping › Delivery times")
    await expect(
        second.get_by_role("definition").filter(has_text=re.compile("^Left for a person$"))
    ).to_be_visible()
    stages = first.get_by_role("table", name="Retrieval stages for question 1 and their time")
    for stage in ("Full-text", "Dense", "Fused", "Re-ranked"):
        await expect(stages.get_by_role("cell", name=stage, exact=True)).to_be_visible()
    passages = first.get_by_role(
        "table", name="Passages for question 1, best first, with their scores before and after re-ranking"
    )
    for heading in ("Fused score (rank)", "Re-ranked score (rank)"):
        await expect(passages.get_by_role("columnheader", name=heading)).to_be_visible()
    await expect(passages.locator("tbody tr").first).to_contain_text("Shipping › Delivery times")
    await assert_accessible(page)
    await screenshot(page, "logs-traces-questions")

    pt = await new_page(open_context, live_server, "pt-BR")
    await sign_in(pt, viewer.email, PASSWORD, "pt-BR")
    await pt.goto(f"/app/conversations/{body['conversation_id']}/traces")
    await expect(
        pt.get_by_role("heading", level=3, name="As perguntas encontradas na mensagem")
    ).to_be_visible()
    await expect(pt.locator("section.trace-question").nth(1)).to_contain_text("Fica para uma pessoa")
    await assert_accessible(pt)
