"""Driving the dashboard in Debian's Chromium (Playwright), as a person does: finding fields by
their labels and buttons by their names, with an accessibility check (axe-core, vendored in
tests/fixtures) and the pages' Content-Security-Policy enforced."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.conftest import ROOT

CHROMIUM = os.environ.get("ATENDE_TEST_BROWSER", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TIMEOUT_MS = 10_000
AXE = (ROOT / "tests" / "fixtures" / "axe-4.14.1.min.js").read_text()
SCREENSHOTS = ROOT / "docs" / "screenshots"
# what a person reads, by language: the tests find things by these names
WORDS = {
    "en": {
        "email": "E-mail",
        "password": "Password",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "signed_out": "You are signed out.",
        "wrong": "Wrong e-mail or password.",
        "home": "Home",
        "users": "Users",
    },
    "pt-BR": {
        "email": "E-mail",
        "password": "Senha",
        "sign_in": "Entrar",
        "sign_out": "Sair",
        "signed_out": "Você saiu.",
        "wrong": "E-mail ou senha errados.",
        "home": "Início",
        "users": "Usuários",
    },
}

OpenContext = Callable[..., Awaitable[BrowserContext]]


async def new_page(open_context: OpenContext, base_url: str, language: str = "en") -> Page:
    context = await open_context(language, base_url)
    return await context.new_page()


async def sign_in(page: Page, email: str, password: str, language: str = "en") -> None:
    words = WORDS[language]
    await page.goto("/app/login")
    await page.get_by_label(words["email"]).fill(email)
    await page.get_by_label(words["password"], exact=True).fill(password)
    await page.get_by_role("button", name=words["sign_in"]).click()
    await expect(page.get_by_role("button", name=words["sign_out"])).to_be_visible()


async def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(AXE)
    results: dict[str, Any] = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    serious = [
        (v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:3])
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{page.url}: {serious}"


async def screenshot(page: Page, name: str) -> None:
    """docs/screenshots/NAME.png, shown in the README and docs/DASHBOARD.md."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
