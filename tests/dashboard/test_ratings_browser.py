"""Customers' thumbs on the bot's answers in the dashboard, in a real browser: an owner filters
Logs → Rated answers to those rated not helpful, reads the customer's comment, and follows the
row to the turn's reasoning, which shows the rating beside the passages that produced the
answer; the conversation's thread shows it under the answer; the same in Brazilian
Portuguese. Each page passes axe-core."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect

from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD, add_person


async def rate(company: CompanyCtx, body: dict, helpful: bool, comment: str | None = None) -> None:
    r = await company.client.put(
        f"/v1/conversations/{body['conversation_id']}/messages/{body['reply']['id']}/rating",
        json={"helpful": helpful, "comment": comment},
    )
    assert r.status_code == 200, r.text


async def test_an_owner_finds_the_answers_rated_not_helpful_and_the_passages_behind_one(
    open_context: OpenContext, live_server: str, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    owner = await add_person(runtime, kb_company.id, Role.owner, name="Olga Owner")
    bad = await ask(kb_company.client, "Qual o prazo de entrega?", contact=f"c-{uuid.uuid4().hex[:8]}")
    good = await ask(kb_company.client, "Qual o prazo de garantia dos eletrônicos?")
    assert bad["reply"]["meta"]["decision"] == good["reply"]["meta"]["decision"] == "answer"
    await rate(kb_company, bad, False, "Eu queria o prazo para o Nordeste.")
    await rate(kb_company, good, True)

    page = await new_page(open_context, live_server)
    await sign_in(page, owner.email, PASSWORD)
    await page.goto("/app/logs")
    await page.get_by_role("link", name="Rated answers").click()
    await expect(page.get_by_role("heading", level=1, name="Rated answers")).to_be_visible()
    rows = page.locator("#rated-answers tbody tr")
    await expect(rows).to_have_count(2)
    await page.get_by_label("Rating").select_option(label="Rated not helpful")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(f"{live_server}/app/logs/ratings?rating=not_helpful")
    await expect(rows).to_have_count(1)
    row = rows.first
    await expect(row).to_contain_text("Not helpful")
    await expect(row).to_contain_text("Qual o prazo de entrega?")
    await expect(row).to_contain_text("Eu queria o prazo para o Nordeste.")
    await assert_accessible(page)
    await screenshot(page, "logs-ratings")

    await row.get_by_role(
        "link", name=re.compile(r"^The bot's reasoning\W+Qual o prazo de entrega\?$")
    ).click()
    [trace] = (await kb_company.client.get(f"/v1/conversations/{bad['conversation_id']}/traces")).json()
    turn = page.locator(f"#trace-{trace['id']}")
    rating = turn.locator("dd.rating")
    await expect(rating).to_contain_text("Not helpful")
    await expect(rating.locator("blockquote")).to_have_text("Eu queria o prazo para o Nordeste.")
    scores = turn.get_by_role("table", name="Passages retrieved, best first")
    await expect(scores.locator("tbody tr").first).to_contain_text("Entregas")
    await assert_accessible(page)
    # the conversation's thread says it under the answer, for whom takes the conversation over
    await page.goto(f"/app/conversations/{bad['conversation_id']}")
    await expect(page.locator("p.rating")).to_have_text(
        "The customer rated it: Not helpful · “Eu queria o prazo para o Nordeste.”"
    )

    pt = await new_page(open_context, live_server, "pt-BR")
    await sign_in(pt, owner.email, PASSWORD, "pt-BR")
    await pt.goto("/app/logs/ratings?rating=not_helpful")
    await expect(pt.locator("#rated-answers tbody tr")).to_have_count(1)
    await expect(pt.locator("#rated-answers")).to_contain_text("Não ajudou")
    await assert_accessible(pt)
