"""A conversation's context in the dashboard (Chromium): an API client's message says which
page and product the customer is on, and a key of the company's own; the conversation's page
shows them under "Context", with visible labels, in English and Portuguese; a conversation
whose channel said nothing shows no such section. axe-core finds no serious violation."""

from __future__ import annotations

from playwright.async_api import expect

from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fixtures.dashboard import PASSWORD, Team, team_api


async def test_an_agent_sees_where_the_customer_is(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    async with team_api(runtime, live_server, team.company_id, Role.agent) as api:
        r = await api.post(
            "/v1/messages",
            json={
                "contact": {"external_id": "ana", "name": "Ana"},
                "text": "Como cancelo o plano?",
                "context": {
                    "page": "https://loja.example/pro/planos?cupom=X",
                    "product": "pro",
                    "region": "south",
                },
            },
        )
        assert r.status_code == 201, r.text
        with_context = r.json()["conversation_id"]
        r = await api.post(
            "/v1/messages", json={"contact": {"external_id": "bia", "name": "Bia"}, "text": "Oi"}
        )
        assert r.status_code == 201, r.text
        without = r.json()["conversation_id"]

    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.goto(f"/app/conversations/{with_context}")
    where = page.get_by_role("region", name="Context")
    await expect(where.get_by_role("term")).to_have_text(["Page", "Product", "region"])
    await expect(where.get_by_role("definition")).to_have_text(["/pro/planos", "pro", "south"])
    await assert_accessible(page)

    await page.goto(f"/app/conversations/{without}")
    await expect(page.get_by_role("heading", level=2, name="Customer")).to_be_visible()
    await expect(page.get_by_role("heading", name="Context")).to_have_count(0)

    page = await new_page(open_context, live_server, "pt-BR")
    await sign_in(page, team.agent.email, PASSWORD, "pt-BR")
    await page.goto(f"/app/conversations/{with_context}")
    where = page.get_by_role("region", name="Contexto")
    await expect(where.get_by_role("term")).to_have_text(["Página", "Produto", "region"])
    await expect(where.get_by_text("Onde o cliente está, segundo o canal.")).to_be_visible()
    await assert_accessible(page)
