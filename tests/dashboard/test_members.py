"""Roles, the users page and the platform's page over HTTP: what each role may open, role
changes and deactivation with their rules, the company switcher, cross-company ids."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.fixtures.dashboard import (
    PASSWORD,
    Team,
    add_person,
    browser_client,
    csrf_of,
    post_form,
    sign_in,
    signed_in,
)

# every page a member opens from the menu (a settings page: from the settings index), and the
# least role it needs
PAGES = {
    "/app": Role.viewer,
    "/app/account": Role.viewer,
    "/app/analytics": Role.viewer,
    "/app/analytics/gaps": Role.viewer,
    "/app/users": Role.admin,
    "/app/settings/feedback": Role.admin,
    "/app/settings": Role.admin,
    "/app/settings/company": Role.admin,
    "/app/settings/hours": Role.admin,
    "/app/settings/holidays": Role.admin,
    "/app/settings/handoff": Role.admin,
    "/app/settings/knowledge-rules": Role.admin,
    "/app/settings/widget": Role.admin,
    "/app/settings/teams": Role.admin,
    "/app/settings/sla": Role.admin,
    "/app/settings/bot": Role.admin,
    "/app/settings/api-keys": Role.admin,
    "/app/settings/webhooks": Role.admin,
    "/app/settings/channels": Role.admin,
    "/app/settings/whatsapp": Role.admin,
    "/app/settings/email": Role.admin,
    "/app/knowledge": Role.agent,
    "/app/knowledge/articles": Role.agent,
    "/app/knowledge/articles/new": Role.admin,
    "/app/logs/audit": Role.admin,
    "/app/logs/ratings": Role.admin,
    "/app/knowledge/try": Role.agent,
    "/app/logs": Role.admin,
}
ROLE_NAMES = {Role.owner: "Owner", Role.admin: "Admin", Role.agent: "Agent", Role.viewer: "Viewer"}


def menu(html: str) -> list[str]:
    nav = re.search(r'<nav class="menu".*?</nav>', html, re.DOTALL)
    assert nav, html
    return re.findall(r'href="([^"]+)"', nav.group(0))


def settings_sections(html: str) -> list[str]:
    """The settings pages the settings index links (the menu links the index)."""
    index = re.search(r'<ul class="links settings-sections">.*?</ul>', html, re.DOTALL)
    return re.findall(r'href="([^"]+)"', index.group(0)) if index else []


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_sees_only_the_pages_it_may_use_and_is_refused_the_others(
    live_server: str, team: Team, role: Role
) -> None:
    async with signed_in(live_server, team.person(role)) as client:
        shown = menu((await client.get("/app")).text)
        if "/app/settings" in shown:
            shown += settings_sections((await client.get("/app/settings")).text)
        if "/app/analytics" in shown:  # the knowledge gaps, linked from the analytics page
            shown += re.findall(r'href="(/app/analytics[^"?]*)"', (await client.get("/app/analytics")).text)
        if "/app/logs" in shown:  # the audit log, linked from the logs' tabs
            shown += re.findall(r'href="(/app/logs[^"?]*)"', (await client.get("/app/logs")).text)
        if "/app/knowledge" in shown:  # its tabs, and "Write an article" for whom may write
            shown += re.findall(
                r'href="(/app/knowledge[^"?]*)"', (await client.get("/app/knowledge/articles")).text
            )
        for path, needed in PAGES.items():
            response = await client.get(path)
            if role.allows(needed):
                assert response.status_code == 200, (path, response.text)
                assert path in shown
            else:
                assert path not in shown
                assert response.status_code == 403
                assert "You cannot use this page" in response.text
                assert (
                    f"This page needs the {ROLE_NAMES[needed]} role; you are {ROLE_NAMES[role]}."
                    in response.text
                )
        assert "/app/platform/companies" not in shown
        response = await client.get("/app/platform/companies")
        assert response.status_code == 403
        assert "This page is for the platform&#39;s administrators." in response.text


async def test_a_role_change_applies_to_the_next_request(live_server: str, team: Team) -> None:
    async with (
        signed_in(live_server, team.admin) as admin_client,
        signed_in(live_server, team.agent) as agent,
    ):
        assert (await agent.get("/app/users")).status_code == 403
        response = await post_form(
            admin_client, f"/app/users/{team.agent.user_id}/role", {"role": "admin"}, page="/app/users"
        )
        assert (response.status_code, response.headers["location"]) == (303, "/app/users?notice=role_changed")
        assert (await agent.get("/app/users")).status_code == 200


async def test_an_admin_cannot_demote_an_owner_nor_make_one(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.admin) as client:
        users = (await client.get("/app/users")).text
        assert f"/app/users/{team.owner.user_id}/role" not in users  # not offered
        assert '<option value="owner"' not in users
        for user_id, role in ((team.owner.user_id, "admin"), (team.agent.user_id, "owner")):
            response = await post_form(
                client, f"/app/users/{user_id}/role", {"role": role}, page="/app/users"
            )
            assert response.status_code == 403
            assert "You cannot give a role above yours" in response.text
        response = await post_form(client, f"/app/users/{team.owner.user_id}/deactivate", page="/app/users")
        assert response.status_code == 403
    async with signed_in(live_server, team.owner) as client:
        assert "Olga Owner" in (await client.get("/app/users")).text  # still the owner, still active


async def test_the_last_owner_cannot_be_demoted_or_deactivated(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.owner) as client:
        response = await post_form(
            client, f"/app/users/{team.owner.user_id}/role", {"role": "admin"}, page="/app/users"
        )
        assert response.status_code == 409
        assert "The company&#39;s last owner cannot lose that role" in response.text
        response = await post_form(client, f"/app/users/{team.owner.user_id}/deactivate", page="/app/users")
        assert response.status_code == 409
        assert "You cannot deactivate yourself" in response.text
        # with a second owner, the first may step down
        second = await add_person(runtime, team.company_id, Role.owner)
        response = await post_form(
            client, f"/app/users/{team.owner.user_id}/role", {"role": "admin"}, page="/app/users"
        )
        assert response.status_code == 303
        assert (await client.get("/app/users")).status_code == 200  # an admin now
    async with signed_in(live_server, team.admin) as client:
        response = await post_form(client, f"/app/users/{second.user_id}/deactivate", page="/app/users")
        assert response.status_code == 403  # an admin cannot touch the (last) owner


async def test_deactivating_a_member_ends_their_sessions_and_their_sign_in(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with (
        signed_in(live_server, team.agent) as agent,
        signed_in(live_server, team.admin) as admin_client,
    ):
        key = f"{team.agent.email}"
        async with runtime.db.transaction() as session:
            _row, personal_key = await tenancy.create_api_key(
                session,
                secret_key=runtime.secret_key,
                company_id=team.company_id,
                name="mine",
                role=Role.agent,
                user_email=key,
            )
        async with httpx.AsyncClient(
            base_url=live_server, headers={"Authorization": f"Bearer {personal_key}"}
        ) as api:
            assert (await api.get("/v1/company")).status_code == 200
            response = await post_form(
                admin_client, f"/app/users/{team.agent.user_id}/deactivate", page="/app/users"
            )
            assert response.status_code == 303
            after = await agent.get("/app", follow_redirects=False)
            assert after.headers["location"] == "/app/login?next=/app&notice=session_ended"
            assert (await api.get("/v1/company")).status_code == 401  # their personal key is revoked too
        users = (await admin_client.get("/app/users")).text
        assert re.search(r"Ana Agent.*?Deactivated", users, re.DOTALL)
    async with browser_client(live_server) as client:
        response = await sign_in(client, team.agent.email)
        assert response.status_code == 403
        assert "Your access was deactivated" in response.text


async def test_a_member_of_two_companies_switches_between_them(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        await tenancy.create_user(
            session, company_id=rival.company_id, email=team.agent.email, password="ignored!", role=Role.admin
        )
    async with signed_in(live_server, team.agent) as client:
        home = (await client.get("/app")).text
        assert 'label for="switch-company">Company<' in home
        company = re.search(r'<option value="([^"]+)"[^>]*>Rival Shop<', home)
        assert company
        response = await post_form(client, "/app/company", {"company_id": company.group(1)})
        assert response.status_code == 303
        home = (await client.get("/app")).text
        assert "You are working in Rival Shop as Admin." in home
        assert "/app/users" in menu(home)
        # a company they do not belong to: 404, as for any id of another company
        for other in (str(uuid.uuid4()), "not-an-id"):
            response = await post_form(client, "/app/company", {"company_id": other})
            assert response.status_code == 404
            assert "Not found" in response.text
        assert "You are working in Rival Shop as Admin." in (await client.get("/app")).text


async def test_another_companys_member_is_not_found(live_server: str, team: Team, rival: Team) -> None:
    async with signed_in(live_server, team.owner) as client:
        for action, data in (("role", {"role": "viewer"}), ("deactivate", {}), ("reactivate", {})):
            response = await post_form(
                client, f"/app/users/{rival.agent.user_id}/{action}", data, page="/app/users"
            )
            assert response.status_code == 404, response.text
        response = await post_form(
            client, "/app/users/not-a-uuid/role", {"role": "viewer"}, page="/app/users"
        )
        assert response.status_code == 404
    async with signed_in(live_server, rival.owner) as client:
        assert "Ana Agent" in (await client.get("/app/users")).text
        assert re.search(r"Ana Agent.*?Active", (await client.get("/app/users")).text, re.DOTALL)


async def test_unknown_dashboard_paths_are_a_404_page(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.viewer) as client:
        response = await client.get("/app/no/such/page")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "There is nothing here." in response.text


async def test_bad_input_gets_a_message_and_no_500(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.owner) as client:
        token = csrf_of((await client.get("/app/users")).text)
        for data in (
            {"email": "x" * 400, "role": "agent"},
            {"email": "not an address", "role": "agent"},
            {"email": "ok@example.com", "role": "king"},
            {"email": "\x00@example.com", "role": "agent"},
        ):
            response = await client.post("/app/users/invite", data={**data, "csrf_token": token})
            assert response.status_code in (403, 422), (data, response.status_code)
            assert response.headers["content-type"].startswith("text/html"), (data, response.text)
        response = await client.post(
            "/app/account/password",
            data={
                "csrf_token": token,
                "new_password": "short",
                "confirm_password": "short",
                "current_password": PASSWORD,
            },
        )
        assert response.status_code == 422
        assert "The password must have 8 to 256 characters." in response.text


async def test_a_deactivated_agent_can_no_longer_be_assigned(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=team.company_id, name="crm", role=Role.admin
        )
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {full}"}) as api:
        posted = await api.post("/v1/messages", json={"contact": {"external_id": "zé"}, "text": "Oi"})
        conversation = posted.json()["conversation_id"]
        assign = f"/v1/conversations/{conversation}/assign"
        assert (await api.post(assign, json={"agent": team.agent.email})).status_code == 200
        async with signed_in(live_server, team.owner) as client:
            deactivated = await post_form(
                client, f"/app/users/{team.agent.user_id}/deactivate", page="/app/users"
            )
            assert deactivated.status_code == 303
        refused = await api.post(assign, json={"agent": team.agent.email})
        assert refused.status_code == 422
        assert "is not an agent of this company" in refused.json()["detail"]


async def test_the_settings_page_links_the_sections_an_admin_may_use(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.person(Role.admin)) as client:
        page = await client.get("/app/settings")
        assert page.status_code == 200
        assert "<h1>Settings</h1>" in page.text
        assert 'href="/app/users">Users</a>' in page.text


async def test_the_menu_marks_the_section_of_a_page_below_it(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.person(Role.admin)) as client:
        own = (await client.get("/app/knowledge")).text
        below = (await client.get("/app/knowledge/try")).text
        home = (await client.get("/app")).text
    assert '<a href="/app/knowledge" aria-current="page">' in own
    assert '<a href="/app/knowledge" aria-current="true">' in below
    assert '<a href="/app" aria-current' not in below  # home is no section of every page
    assert '<a href="/app" aria-current="page">' in home
