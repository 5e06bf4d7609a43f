"""The web chat widget in a real browser (Debian's Chromium, driven by Playwright).

A shop's page (on its own origin, as the widget always runs) opens the widget
(``data-open="true"``); a visitor types, presses Enter and reads the bot's answer with its
source, the history survives a reload, the widget works by keyboard, and ``atende demo``'s
demo page, under its Content-Security-Policy, runs it too; a visitor who sends too fast is
asked, in their language, to wait, without losing what they typed. The account's settings
show: its title, colours and greeting; "Talk to a person" hands the chat to the team; with
the team closed, the offline contact form leaves a message in the team's inbox; axe-core
finds nothing serious in any of it.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from tests.channels.test_webchat_settings import OFFICE, SETTINGS, SP
from tests.conftest import Clock, CompanyCtx
from tests.dashboard.browser import assert_accessible

# make test finds or installs it (scripts/test-browser) and passes it on
CHROMIUM = os.environ.get("ATENDE_TEST_BROWSER", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TIMEOUT_MS = 10_000

# records whether the typing indicator was ever shown, however briefly
WATCH_TYPING = """() => {
  window.typingShown = false;
  const typing = document.querySelector('.atende-typing');
  new MutationObserver(() => { if (!typing.hidden) { window.typingShown = true; } })
    .observe(typing, { attributes: true, attributeFilter: ['hidden'] });
}"""


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        await browser.close()


@pytest.fixture
async def tab(chromium: Browser) -> AsyncIterator[Page]:
    """A fresh browser profile (empty localStorage) per test."""
    context = await chromium.new_context(locale="pt-BR")
    context.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page = await context.new_page()
    yield page
    await context.close()


PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>A shop</title></head>
<body><h1>A shop on its own site</h1>
<script src="{atende}/widget.js" data-widget-key="{key}" data-open="true" data-lang="{lang}" defer></script>
</body></html>"""


class Site:
    """A web site of companies' pages, on its own origin: ``add(html)`` returns a page's URL."""

    def __init__(self) -> None:
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path)
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page or b"")))
                self.end_headers()
                self.wfile.write(page or b"")

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def add(self, html: str) -> str:
        path = f"/{len(self.pages)}"
        self.pages[path] = html.encode()
        return f"http://127.0.0.1:{self.server.server_port}{path}"


@pytest.fixture(scope="session")
def site() -> Iterator[Site]:
    shops = Site()
    thread = threading.Thread(target=shops.server.serve_forever, daemon=True)
    thread.start()
    yield shops
    shops.server.shutdown()
    shops.server.server_close()
    thread.join(timeout=5)


def shop_page(site: Site, live_server: str, company: CompanyCtx, lang: str = "pt") -> str:
    """The company's page with the one-line widget snippet, open, in ``lang``."""
    return site.add(PAGE.format(atende=live_server, key=company.widget_key, lang=lang))


async def open_demo(tab: Page, site: Site, live_server: str, company: CompanyCtx) -> None:
    await tab.goto(shop_page(site, live_server, company))
    await expect(tab.get_by_role("dialog", name="Atendimento")).to_be_visible()


async def ask(tab: Page, question: str) -> None:
    box = tab.get_by_role("textbox", name="Sua mensagem")
    await box.fill(question)
    await box.press("Enter")


async def test_a_visitor_question_is_answered_with_its_source_under_it(
    tab: Page, site: Site, live_server: str, kb_company: CompanyCtx
) -> None:
    await open_demo(tab, site, live_server, kb_company)
    await tab.evaluate(WATCH_TYPING)
    await ask(tab, "Qual o prazo de entrega?")

    log = tab.get_by_role("log")
    await expect(log.locator(".atende-customer")).to_have_text("Qual o prazo de entrega?")
    answer = log.locator(".atende-bot")
    await expect(answer.locator(".atende-text")).to_contain_text("2 a 5 dias úteis")
    await expect(answer.locator(".atende-sources")).to_have_text("Fontes: Entregas › Prazos de entrega")
    await expect(tab.locator(".atende-typing")).to_be_hidden()
    assert await tab.evaluate("window.typingShown") is True
    box = tab.get_by_role("textbox", name="Sua mensagem")
    await expect(box).to_have_value("")
    await expect(box).to_be_focused()
    await expect(tab.locator(".atende-error")).to_be_hidden()


async def test_the_conversation_is_still_there_after_a_reload(
    tab: Page, site: Site, live_server: str, kb_company: CompanyCtx
) -> None:
    await open_demo(tab, site, live_server, kb_company)
    await ask(tab, "Qual o prazo de entrega?")
    log = tab.get_by_role("log")
    await expect(log.locator(".atende-bot")).to_have_count(1)
    before = await log.locator("li").all_inner_texts()

    await tab.reload()
    await expect(log.locator("li")).to_have_count(2)
    assert await log.locator("li").all_inner_texts() == before

    # the same conversation goes on, live, without repeating what was there
    await ask(tab, "Vocês aceitam Pix?")
    await expect(log.locator(".atende-bot")).to_have_count(2)
    await expect(log.locator(".atende-bot").last).to_contain_text("Pix")
    await expect(log.locator("li")).to_have_count(4)
    ids = await log.locator("li").evaluate_all("items => items.map(i => i.dataset.id)")
    assert len(set(ids)) == 4
    authors = await log.locator("li").evaluate_all("items => items.map(i => i.className)")
    assert [a.split("atende-")[-1].strip() for a in authors] == ["customer", "bot", "customer", "bot"]


async def test_a_failed_history_load_does_not_forget_the_conversation(
    tab: Page, site: Site, live_server: str, kb_company: CompanyCtx
) -> None:
    await open_demo(tab, site, live_server, kb_company)
    await ask(tab, "Vocês aceitam Pix?")
    log = tab.get_by_role("log")
    await expect(log.locator(".atende-bot")).to_have_count(1)
    stored = await tab.evaluate("JSON.stringify(Object.entries(localStorage))")

    failed: list[str] = []

    async def drop_once(route: Route) -> None:
        # the first history load after the reload meets a network failure
        if failed or route.request.method != "GET":
            await route.continue_()
            return
        failed.append(route.request.url)
        await route.abort("connectionreset")

    await tab.route("**/messages", drop_once)
    await tab.reload()
    await expect(log.locator("li")).to_have_count(2)
    assert len(failed) == 1
    assert await tab.evaluate("JSON.stringify(Object.entries(localStorage))") == stored


async def test_no_typing_indicator_once_a_person_has_the_conversation(
    tab: Page, site: Site, live_server: str, company: CompanyCtx
) -> None:
    await open_demo(tab, site, live_server, company)
    await ask(tab, "Quero falar com alguém")  # no knowledge base: handed to a person
    log = tab.get_by_role("log")
    await expect(log.locator(".atende-bot")).to_have_count(1)
    typing = tab.locator(".atende-typing")
    await expect(typing).to_be_hidden()

    await ask(tab, "Ainda estou aqui")
    await expect(log.locator(".atende-customer")).to_have_count(2)
    await expect(typing).to_be_hidden(timeout=2_000)  # the bot is not working on it: nobody is typing


async def test_the_launcher_works_by_keyboard_and_escape_closes_the_panel(
    tab: Page, site: Site, live_server: str, company: CompanyCtx
) -> None:
    await open_demo(tab, site, live_server, company)
    panel = tab.get_by_role("dialog", name="Atendimento")
    launcher = tab.locator(".atende-launcher")
    await expect(tab.get_by_role("textbox", name="Sua mensagem")).to_be_focused()

    await tab.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(launcher).to_be_focused()
    await expect(launcher).to_have_attribute("aria-expanded", "false")
    await expect(launcher).to_have_accessible_name("Abrir chat")

    # from the top of the page, Tab reaches the launcher
    await tab.evaluate("document.activeElement.blur()")
    for _ in range(10):
        await tab.keyboard.press("Tab")
        if await launcher.evaluate("b => b === document.activeElement"):
            break
    await expect(launcher).to_be_focused()

    await tab.keyboard.press("Enter")
    await expect(panel).to_be_visible()
    await expect(launcher).to_have_attribute("aria-expanded", "true")
    await expect(tab.get_by_role("textbox", name="Sua mensagem")).to_be_focused()

    await launcher.focus()
    await tab.keyboard.press("Enter")
    await expect(panel).to_be_hidden()


async def test_the_widget_exposes_its_roles_and_names(
    tab: Page, site: Site, live_server: str, company: CompanyCtx
) -> None:
    await open_demo(tab, site, live_server, company)
    panel = tab.get_by_role("dialog", name="Atendimento")
    await expect(panel.get_by_role("log")).to_have_attribute("aria-live", "polite")
    await expect(panel.get_by_role("button", name="Enviar")).to_be_visible()
    launcher = tab.locator(".atende-launcher")
    await expect(launcher).to_have_attribute("aria-controls", await panel.get_attribute("id") or "")
    await expect(launcher).to_have_accessible_name("Fechar chat")
    await expect(tab.get_by_role("alert")).to_be_hidden()


async def test_a_visitor_typing_too_fast_is_asked_politely_to_wait_and_keeps_the_text(
    tab: Page, site: Site, limited_server: str, company: CompanyCtx
) -> None:
    # this server accepts 4 messages of a conversation at once, then one every 7 s
    await open_demo(tab, site, limited_server, company)
    log = tab.get_by_role("log")
    for i in range(4):
        await ask(tab, f"Mensagem {i}")
        await expect(log.locator(".atende-customer")).to_have_count(i + 1)

    await ask(tab, "Mais uma pergunta")
    alert = tab.get_by_role("alert")
    await expect(alert).to_have_text(
        "Você está enviando mensagens rápido demais — aguarde alguns segundos e envie de novo."
    )
    box = tab.get_by_role("textbox", name="Sua mensagem")
    await expect(box).to_have_value("Mais uma pergunta")
    await expect(log.locator(".atende-customer")).to_have_count(4)

    # Send comes back once the server takes messages again; the same text then goes through
    await expect(tab.get_by_role("button", name="Enviar")).to_be_enabled(timeout=12_000)
    await box.press("Enter")
    await expect(log.locator(".atende-customer")).to_have_count(5)
    await expect(log.locator(".atende-customer").last).to_have_text("Mais uma pergunta")
    await expect(alert).to_be_hidden()
    await expect(box).to_have_value("")


async def test_the_launcher_draws_its_icon_and_is_named_in_the_page_language(
    tab: Page, site: Site, live_server: str, company: CompanyCtx
) -> None:
    """An emoji on the button shows as an empty box where no emoji font is installed (a
    server, a kiosk): the icon is drawn inline, and the button's name comes from the
    widget's translations."""
    await open_demo(tab, site, live_server, company)
    launcher = tab.locator(".atende-launcher")
    icon = launcher.locator("svg")
    await expect(icon).to_have_count(1)
    await expect(icon).to_have_attribute("aria-hidden", "true")
    assert (await icon.bounding_box() or {}).get("width", 0) > 0
    assert await launcher.evaluate("b => b.textContent") == ""  # no emoji, no text glyph at all
    await tab.keyboard.press("Escape")
    await expect(launcher).to_have_accessible_name("Abrir chat")


@pytest.fixture
def shop_site(site: Site, live_server: str, kb_company: CompanyCtx) -> str:
    """A company's own site, on another origin, with the one-line widget snippet, in English."""
    return shop_page(site, live_server, kb_company, "en")


async def test_a_shop_on_another_origin_embeds_the_widget_with_one_script_tag(
    tab: Page, shop_site: str
) -> None:
    await tab.goto(shop_site)
    await expect(tab.get_by_role("dialog", name="Support")).to_be_visible()
    box = tab.get_by_role("textbox", name="Your message")
    await box.fill("What payment methods do you accept?")
    await box.press("Enter")
    answer = tab.get_by_role("log").locator(".atende-bot")
    await expect(answer.locator(".atende-text")).to_contain_text("Pix")
    await expect(answer.locator(".atende-sources")).to_have_text(
        "Sources: Payment methods › Accepted payment methods"
    )
    await expect(tab.get_by_role("alert")).to_be_hidden()


async def test_the_demo_page_of_atende_demo_runs_the_widget_under_its_security_policy(
    tab: Page, demo_server: str
) -> None:
    """`atende demo`'s page, as served (with its Content-Security-Policy): the widget loads,
    asks and answers, and the browser blocks nothing on it."""
    await tab.add_init_script(
        "window.violations = [];"
        " document.addEventListener('securitypolicyviolation',"
        " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    response = await tab.goto(f"{demo_server}/demo")
    assert response is not None and response.status == 200
    await expect(tab.get_by_role("heading", name="Loja Exemplo")).to_be_visible()
    await expect(tab.get_by_role("dialog", name="Atendimento")).to_be_visible()
    await ask(tab, "Qual o prazo de entrega?")
    answer = tab.get_by_role("log").locator(".atende-bot")
    await expect(answer.locator(".atende-text")).to_contain_text("dias úteis")
    await expect(answer.locator(".atende-sources")).to_contain_text("Fontes: Entregas")
    # the page's own style applies (not blocked): the body is laid out narrow, centred
    assert await tab.evaluate("getComputedStyle(document.body).maxWidth") == "760px"
    assert await tab.evaluate("window.violations") == []


# Swagger UI as its CDN would serve it, reduced to what the page's start-up script calls: it
# reads the spec from atende (connect-src) and shows its title
FAKE_SWAGGER_UI = """window.SwaggerUIBundle = function (config) {
  fetch(config.url).then(function (r) { return r.json(); }).then(function (spec) {
    document.querySelector(config.dom_id).textContent = spec.info.title + " API " + spec.info.version;
  });
  return {};
};
window.SwaggerUIBundle.presets = { apis: {} };
window.SwaggerUIBundle.SwaggerUIStandalonePreset = {};"""


async def test_the_api_docs_page_still_starts_swagger_ui_under_its_security_policy(
    tab: Page, live_server: str
) -> None:
    """The CDN is out of reach here: its files are answered by the test, as the CDN would
    answer them; the page's policy must let them, and its own start-up script, run."""

    async def cdn(route: Route) -> None:
        if route.request.url.endswith(".js"):
            await route.fulfill(body=FAKE_SWAGGER_UI, content_type="text/javascript")
        elif route.request.url.endswith(".css"):
            await route.fulfill(body=".swagger-ui { color: #3b4151; }", content_type="text/css")
        else:
            await route.fulfill(status=404)

    await tab.route("https://cdn.jsdelivr.net/**", cdn)
    await tab.route("https://fastapi.tiangolo.com/**", lambda route: route.fulfill(status=404))
    await tab.add_init_script(
        "window.violations = [];"
        " document.addEventListener('securitypolicyviolation',"
        " e => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    response = await tab.goto(f"{live_server}/docs")
    assert response is not None and "frame-ancestors 'none'" in response.headers["content-security-policy"]
    await expect(tab.locator("#swagger-ui")).to_have_text(re.compile(r"^atende API "))
    assert await tab.evaluate("window.violations") == []


# the widget's settings (the web chat account's config): title, colours, greeting, "Talk to a
# person", the offline contact form (the hours and settings are test_webchat_settings.py's)


async def configure(company: CompanyCtx, config: dict[str, Any]) -> None:
    [account] = (await company.client.get("/v1/channel-accounts", params={"kind": "webchat"})).json()
    r = await company.client.patch(f"/v1/channel-accounts/{account['id']}", json={"config": config})
    assert r.status_code == 200, r.text


async def test_the_widget_shows_its_title_colours_and_greeting_and_talk_to_a_person_hands_off(
    tab: Page, site: Site, live_server: str, company: CompanyCtx
) -> None:
    await configure(company, SETTINGS)
    await tab.goto(shop_page(site, live_server, company, lang="en"))
    panel = tab.get_by_role("dialog", name="Loja Exemplo")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_role("heading", name="Loja Exemplo")).to_be_visible()
    await expect(panel.get_by_role("log")).to_contain_text("Hi! How can we help?")
    header = panel.locator(".atende-header")
    await expect(header).to_have_css("background-color", "rgb(122, 31, 92)")
    await expect(tab.locator(".atende-launcher")).to_have_css("background-color", "rgb(122, 31, 92)")
    await assert_accessible(tab)

    await panel.get_by_role("button", name="Talk to a person").click()
    log = panel.get_by_role("log")
    await expect(log.locator(".atende-customer")).to_have_text("I'd like to talk to a person, please.")
    await expect(log.locator(".atende-bot:not(.atende-greeting)")).to_contain_text("Of course!")
    await expect(panel.get_by_role("button", name="Talk to a person")).to_be_hidden()  # it is with the team
    [row] = (await company.client.get("/v1/conversations", params={"view": "unassigned"})).json()["items"]
    assert row["state"] == "waiting_human" and row["ticket"] is False  # open, staffed: a person answers soon
    await assert_accessible(tab)


async def test_with_the_team_closed_the_offline_form_leaves_a_message_the_inbox_lists(
    tab: Page, site: Site, live_server: str, company: CompanyCtx, clock: Clock
) -> None:
    assert (await company.client.put("/v1/company/hours", json=OFFICE)).status_code == 200
    clock.at(datetime(2027, 9, 1, 19, 0, tzinfo=SP))  # a Wednesday evening: back on Monday
    await tab.goto(shop_page(site, live_server, company, lang="pt"))
    panel = tab.get_by_role("dialog", name="Atendimento")
    await expect(panel).to_be_visible()

    await panel.get_by_role("button", name="Falar com uma pessoa").click()
    form = panel.get_by_role("form", name="Deixe uma mensagem")
    await expect(form).to_contain_text("responderemos por e-mail segunda-feira às 08:00")
    await expect(form.get_by_label("Seu nome")).to_be_focused()
    await assert_accessible(tab)
    await form.get_by_label("Seu nome").fill("Rita")
    await form.get_by_label("Seu e-mail").fill("rita@example.com")
    await form.get_by_label("Mensagem").fill("Meu pedido 123 não chegou.")
    await form.get_by_role("button", name="Enviar mensagem").click()

    log = panel.get_by_role("log")
    await expect(log.locator(".atende-customer")).to_have_text("Meu pedido 123 não chegou.")
    await expect(log).to_contain_text(
        "Obrigado, Rita! Recebemos sua mensagem e vamos responder em rita@example.com segunda-feira às 08:00."
    )
    await expect(form).to_be_hidden()
    await expect(panel.get_by_role("button", name="Falar com uma pessoa")).to_be_hidden()
    [row] = (await company.client.get("/v1/conversations", params={"view": "unassigned"})).json()["items"]
    assert (row["contact_name"], row["state"], row["ticket"]) == ("Rita", "waiting_human", True)
    assert row["last_message"]["preview"].startswith("Meu pedido 123")
    await assert_accessible(tab)


async def test_the_widget_sends_its_page_and_product_and_the_companys_rules_narrow_the_answer(
    tab: Page, site: Site, live_server: str, company: CompanyCtx
) -> None:
    plans = "# Planos {name}\n\n## Cancelamento do plano\nO plano {name} se cancela na área do cliente."
    ids = {}
    for name, meta in {"pro": {"product": "pro"}, "basic": {"product": "basic"}}.items():
        r = await company.client.post(
            "/v1/documents?wait=true",
            json={"source": f"{name}.md", "content": plans.format(name=name), "language": "pt", "meta": meta},
        )
        assert r.status_code == 201, r.text
        ids[name] = r.json()["document"]["id"]
    rule = {"when": "product", "field": "product", "or_unset": True}  # the page's own product
    assert (
        await company.client.put("/v1/company/knowledge-rules", json={"rules": [rule]})
    ).status_code == 200
    page = PAGE.format(atende=live_server, key=company.widget_key, lang="pt").replace(
        'data-open="true"', 'data-open="true" data-product="pro"'
    )
    url = site.add(page)
    await tab.goto(url)
    await ask(tab, "Como cancelo o plano?")
    await expect(tab.get_by_role("log").locator(".atende-bot .atende-text")).to_contain_text("plano pro")
    [conversation] = (await company.client.get("/v1/conversations")).json()["items"]
    [trace] = (await company.client.get(f"/v1/conversations/{conversation['id']}/traces")).json()
    assert {p["document_id"] for p in trace["retrieved"]} == {ids["pro"]}
    [retrieve] = [s for s in trace["steps"] if s["step"] == "retrieve"]
    [applied] = [r for r in retrieve["rules"] if r["kind"] == "context"]
    assert (applied["given"], applied["value"]) == ("pro", "pro")


# thumbs on answers (``atende.feedback.ratings``): "Helpful" / "Not helpful" under each answer,
# a comment after a thumbs-down, and a person offered there


async def test_a_visitor_rates_an_answer_not_helpful_comments_and_is_offered_a_person(
    tab: Page, site: Site, live_server: str, kb_company: CompanyCtx
) -> None:
    await tab.goto(shop_page(site, live_server, kb_company, lang="en"))
    panel = tab.get_by_role("dialog", name="Support")
    box = panel.get_by_role("textbox", name="Your message")
    await box.fill("What is the delivery time?")
    await box.press("Enter")
    answer = panel.get_by_role("log").locator(".atende-bot:not(.atende-greeting)")
    rate = answer.get_by_role("group", name="Was this answer helpful?")
    await expect(rate).to_be_visible()
    await assert_accessible(tab)

    # by keyboard: Tab from the answer's buttons, Enter presses
    not_helpful = rate.get_by_role("button", name="Not helpful")
    await not_helpful.focus()
    await tab.keyboard.press("Enter")
    await expect(not_helpful).to_have_attribute("aria-pressed", "true")
    comment = rate.get_by_label("What was missing? (optional)")
    await expect(comment).to_be_focused()
    await expect(rate.get_by_role("button", name="Talk to a person")).to_be_visible()
    await assert_accessible(tab)
    await comment.fill("I wanted the time for the Northeast.")
    await tab.keyboard.press("Enter")
    await expect(rate.get_by_role("status")).to_have_text("Thank you for your feedback!")
    await expect(comment).to_be_hidden()

    [row] = (await kb_company.client.get("/v1/conversations")).json()["items"]
    [trace] = (await kb_company.client.get(f"/v1/conversations/{row['id']}/traces")).json()
    rated = await kb_company.client.put(
        f"/v1/conversations/{row['id']}/messages/{trace['reply_message_id']}/rating",
        json={"helpful": False, "comment": "I wanted the time for the Northeast."},
    )
    assert rated.json()["changed"] is False  # the widget stored exactly this

    # the rating survives a reload; a second thumbs-down offers a person, who takes the chat
    await tab.reload()
    rate = panel.get_by_role("log").locator(".atende-bot:not(.atende-greeting)").get_by_role("group")
    await expect(rate.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    await expect(rate.get_by_role("button", name="Helpful", exact=True)).to_have_attribute(
        "aria-pressed", "false"
    )
    await rate.get_by_role("button", name="Not helpful").click()  # pressed already: the comment stays
    await expect(rate.get_by_label("What was missing? (optional)")).to_be_focused()
    await rate.get_by_role("button", name="Talk to a person").click()
    log = panel.get_by_role("log")
    await expect(log.locator(".atende-customer").last).to_have_text("I'd like to talk to a person, please.")
    await expect(rate.get_by_role("button", name="Talk to a person")).to_be_hidden()  # it is with the team
    [row] = (await kb_company.client.get("/v1/conversations", params={"view": "unassigned"})).json()["items"]
    assert row["state"] == "waiting_human"
    stored = await kb_company.client.put(
        f"/v1/conversations/{row['id']}/messages/{trace['reply_message_id']}/rating",
        json={"helpful": False, "comment": "I wanted the time for the Northeast."},
    )
    assert stored.json()["changed"] is False


async def test_a_helpful_rating_thanks_in_portuguese_and_the_setting_off_offers_no_person(
    tab: Page, site: Site, live_server: str, kb_company: CompanyCtx
) -> None:
    await configure(kb_company, {"offer_person_on_thumbs_down": False})
    await open_demo(tab, site, live_server, kb_company)
    await ask(tab, "Qual o prazo de entrega?")
    rate = tab.get_by_role("log").locator(".atende-bot").get_by_role("group", name="Esta resposta ajudou?")
    await rate.get_by_role("button", name="Útil").click()
    await expect(rate.get_by_role("status")).to_have_text("Obrigado pela avaliação!")
    await expect(rate.get_by_role("button", name="Útil")).to_have_attribute("aria-pressed", "true")
    await rate.get_by_role("button", name="Não ajudou").click()
    await expect(rate.get_by_label("O que faltou? (opcional)")).to_be_focused()
    await expect(rate.get_by_role("button", name="Falar com uma pessoa")).to_have_count(0)
    await expect(rate.get_by_role("button", name="Útil")).to_have_attribute("aria-pressed", "false")


async def test_in_spanish_with_the_team_closed_a_thumbs_down_offers_the_offline_form(
    tab: Page, site: Site, live_server: str, kb_company: CompanyCtx, clock: Clock
) -> None:
    assert (await kb_company.client.put("/v1/company/hours", json=OFFICE)).status_code == 200
    clock.at(datetime(2027, 9, 1, 19, 0, tzinfo=SP))  # a Wednesday evening: back on Monday
    await tab.goto(shop_page(site, live_server, kb_company, lang="es"))
    panel = tab.get_by_role("dialog", name="Atención")
    box = panel.get_by_role("textbox", name="Tu mensaje")
    await box.fill("Qual o prazo de entrega?")
    await box.press("Enter")
    rate = (
        panel.get_by_role("log")
        .locator(".atende-bot")
        .get_by_role("group", name="¿Te sirvió esta respuesta?")
    )
    await rate.get_by_role("button", name="No me sirvió").click()
    await expect(rate.get_by_label("¿Qué faltó? (opcional)")).to_be_focused()
    await assert_accessible(tab)
    await rate.get_by_role("button", name="Dejar un mensaje").click()
    form = panel.get_by_role("form", name="Deja un mensaje")
    await expect(form.get_by_label("Tu nombre")).to_be_focused()
