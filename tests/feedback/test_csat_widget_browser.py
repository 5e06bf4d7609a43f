"""The web chat's survey in a real browser (Debian's Chromium, driven by Playwright): the
stars come live under the question, a click rates, another changes the rating, the comment
box sends a comment, and axe-core finds nothing serious in it."""

from __future__ import annotations

from playwright.async_api import Page, expect

from atende.runtime import Runtime
from tests.channels.test_widget_browser import (  # noqa: F401 (chromium, site, tab: fixtures)
    Site,
    ask,
    chromium,
    open_demo,
    site,
    tab,
)
from tests.conftest import CompanyCtx, until
from tests.dashboard.browser import assert_accessible
from tests.feedback.conftest import enable, resolve, run_survey_job, state


async def test_a_visitor_rates_with_the_stars_changes_it_and_leaves_a_comment(
    tab: Page,  # noqa: F811
    site: Site,  # noqa: F811
    live_server: str,
    kb_company: CompanyCtx,
    runtime: Runtime,
) -> None:
    client = kb_company.client
    await enable(client)
    await open_demo(tab, site, live_server, kb_company)
    await ask(tab, "Qual o prazo de entrega?")
    log = tab.get_by_role("log")
    await expect(log.locator(".atende-bot")).to_have_count(1)
    [conversation] = (await client.get("/v1/conversations", params={"channel": "webchat"})).json()["items"]
    await resolve(client, conversation["id"])
    await run_survey_job(runtime, kb_company.id)

    survey = log.locator(".atende-system")
    await expect(survey.locator(".atende-text")).to_contain_text("Como você avalia o atendimento")
    stars = survey.get_by_role("group", name="Sua avaliação")
    await expect(stars.get_by_role("button")).to_have_count(5)
    await stars.get_by_role("button", name="4 de 5: Bom").click()
    await expect(survey.get_by_role("status")).to_contain_text("Obrigado pela avaliação!")
    await expect(stars.get_by_role("button", name="4 de 5: Bom")).to_have_attribute("aria-pressed", "true")
    await stars.get_by_role("button", name="5 de 5: Excelente").click()
    await expect(stars.get_by_role("button", name="5 de 5: Excelente")).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(stars.get_by_role("button", name="4 de 5: Bom")).to_have_attribute("aria-pressed", "false")

    await survey.get_by_role("textbox", name="Comentário (opcional)").fill("Rápido e claro.")
    await survey.get_by_role("button", name="Enviar comentário").click()
    await expect(survey.get_by_role("status")).to_have_text("Obrigado pelo comentário!")
    await assert_accessible(tab)

    async def answered() -> dict | None:
        [found] = (await client.get(f"/v1/conversations/{conversation['id']}/csat")).json()
        return dict(found) if found["comment"] else None

    stored = await until(answered, what="the answer")
    assert (stored["score"], stored["comment"], stored["answered_via"]) == (5, "Rápido e claro.", "webchat")
    assert await state(client, conversation["id"]) == "resolved"
