"""The audit log page in Chromium: reached from the menu, filtered by keyboard, read in
words, axe-clean in both languages."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from atende.runtime import Runtime
from atende.tenancy import accounts
from atende.tenancy.models import Role
from atende.tenancy.service import Principal
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, screenshot, sign_in
from tests.fixtures.dashboard import PASSWORD, Team


async def change_role(runtime: Runtime, team: Team) -> None:
    """The owner makes Ana an admin (as the users page does)."""
    owner = Principal(company_id=team.company_id, role=Role.owner, user_id=team.owner.user_id)
    async with runtime.db.transaction(team.company_id) as session:
        from atende.audit import service as audit

        audit.bind(session, audit.Actor(user_id=team.owner.user_id, ip="10.20.30.40"))
        await accounts.change_role(session, actor=owner, user_id=team.agent.user_id, role=Role.admin)


async def test_an_admin_filters_the_log_by_action_with_the_keyboard(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    await change_role(runtime, team)
    page = await new_page(open_context, live_server)
    await sign_in(page, team.admin.email, PASSWORD)
    await page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Logs").click()
    await page.get_by_role("navigation", name="Logs").get_by_role("link", name="Audit log").click()
    await expect(page.get_by_role("heading", level=1, name="Audit log")).to_be_visible()
    rows = page.get_by_role("table").get_by_role("row")
    await expect(rows.filter(has_text="Adam Admin signed in")).to_have_count(1)
    await assert_accessible(page)

    await page.get_by_label("Action").select_option(label="Role changed")
    await page.get_by_role("link", name="Clear filters").focus()
    await page.keyboard.press("Shift+Tab")  # the date fields' parts lie before; the button just before
    await expect(page.get_by_role("button", name="Apply filters")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"action=member.role_changed"))
    await expect(rows).to_have_count(2)  # the heading and the one change
    await expect(rows.nth(1)).to_contain_text("Olga Owner changed Ana Agent's role from Agent to Admin")
    await expect(rows.nth(1)).to_contain_text("10.20.30.40")
    await expect(page.get_by_label("Action")).to_have_value("member.role_changed")
    await assert_accessible(page)

    await page.get_by_label("Action").select_option(label="All: Sign-ins")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(rows.filter(has_text="changed")).to_have_count(0)
    await expect(rows.filter(has_text="Adam Admin signed in")).to_have_count(1)
    await page.get_by_role("link", name="Clear filters").click()
    await expect(rows).to_have_count(3)
    await screenshot(page, "logs-audit")


@pytest.mark.parametrize("language", ["pt-BR"])
async def test_the_log_reads_in_portuguese_and_passes_axe(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, language: str
) -> None:
    await change_role(runtime, team)
    page = await new_page(open_context, live_server, language)
    await sign_in(page, team.owner.email, PASSWORD, language)
    await page.goto("/app/logs/audit")
    await expect(page.get_by_role("heading", level=1, name="Registro de auditoria")).to_be_visible()
    await expect(
        page.get_by_role("row").filter(has_text="Olga Owner mudou o papel de Ana Agent")
    ).to_have_count(1)
    await expect(page.get_by_label("Ação")).to_be_visible()
    await assert_accessible(page)
