"""The integrations' settings pages over HTTP: teams and their members, the bot's persona and
LLM endpoint (its key write-only), API keys (shown once; ``/v1/api-keys`` too), outbound
webhooks with their delivery log, and channel accounts. For each: what an admin does, bad
input answered on the page with nothing changed, a role that may not, and another company's
ids answering 404."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from atende.runtime import Runtime
from atende.teams import service as teams
from atende.teams.models import TeamMember
from atende.tenancy import service as tenancy
from atende.tenancy.models import ApiKey, Role
from atende.webhooks import service as webhooks
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.fixtures.dashboard import Team, csrf_of, signed_in


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


async def form(client: httpx.AsyncClient, page: str, path: str, data: dict[str, object]) -> httpx.Response:
    """Send a form of ``page`` (with its CSRF token; lists as repeated fields)."""
    token = csrf_of((await client.get(page)).text)
    return await client.post(path, data={**data, "csrf_token": token})


async def a_team(runtime: Runtime, company_id: uuid.UUID, name: str = "Suporte") -> uuid.UUID:
    async with runtime.db.transaction(company_id) as session:
        team, _members = await teams.put_team(session, None, name=name, slug=None, hours=None, members=[])
        return team.id


async def members_of(runtime: Runtime, company_id: uuid.UUID, team_id: uuid.UUID) -> set[uuid.UUID]:
    async with runtime.db.transaction(company_id) as session:
        return set(await session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team_id)))


async def api_client(
    runtime: Runtime, live_server: str, company_id: uuid.UUID, role: Role
) -> httpx.AsyncClient:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company_id, name=f"{role} key", role=role
        )
    return httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {full}"}, timeout=15)


# teams


async def test_an_admin_creates_renames_staffs_and_deletes_a_team(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.admin) as client:
        page = "/app/settings/teams"
        r = await form(client, page, page, {"name": "Financeiro", "slug": ""})
        assert r.status_code == 303
        location = r.headers["location"]
        assert location.endswith("?notice=team_created")
        team_id = uuid.UUID(location.split("/")[-1].split("?")[0])
        shown = (await client.get(location)).text
        assert "Team created. Add its members below." in shown
        assert 'value="financeiro"' in shown  # the slug made from the name

        r = await form(client, page, f"{page}/{team_id}", {"name": "Cobrança", "slug": "cobranca"})
        assert r.status_code == 303
        r = await form(client, page, f"{page}/{team_id}/members", {"user_id": str(team.agent.user_id)})
        assert r.status_code == 303
        assert await members_of(runtime, team.company_id, team_id) == {team.agent.user_id}
        listed = (await client.get(page)).text
        assert re.search(r"Cobrança</a></td>\s*<td>cobranca</td>\s*<td>Ana Agent</td>", listed), listed

        r = await form(client, page, f"{page}/{team_id}/members/{team.agent.user_id}/remove", {})
        assert r.status_code == 303
        assert await members_of(runtime, team.company_id, team_id) == set()
        r = await form(client, page, f"{page}/{team_id}/delete", {})
        assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=team_deleted")
        assert "Cobrança" not in (await client.get(page)).text


async def test_bad_team_input_is_said_on_the_page_and_changes_nothing(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    team_id = await a_team(runtime, team.company_id, "Suporte")
    await a_team(runtime, team.company_id, "Vendas")
    page = "/app/settings/teams"
    async with signed_in(live_server, team.owner) as client:
        r = await form(client, page, page, {"name": "  ", "slug": ""})
        assert r.status_code == 422
        assert "Type a name of 1 to 200 characters." in r.text
        r = await form(client, page, page, {"name": "x" * 201, "slug": ""})
        assert r.status_code == 422
        assert 'value="' + "x" * 201 + '"' in r.text  # the form kept
        r = await form(client, page, f"{page}/{team_id}", {"name": "Suporte", "slug": "vendas"})
        assert r.status_code == 409
        assert "already exists" in r.text
        r = await form(client, page, f"{page}/{team_id}", {"name": "Suporte", "slug": "Not A Slug"})
        assert r.status_code == 422
        # a viewer answers no conversations: not a team member
        r = await form(client, page, f"{page}/{team_id}/members", {"user_id": str(team.viewer.user_id)})
        assert r.status_code == 422
        assert "only agents, admins and owners join teams" in r.text
        r = await form(client, page, f"{page}/{team_id}/members", {"user_id": ""})
        assert (r.status_code, "Choose who joins the team." in r.text) == (422, True)
    async with runtime.db.transaction(team.company_id) as session:
        found = await teams.team_by_id(session, team_id)
        assert (found.name, found.slug) == ("Suporte", "suporte")
    assert await members_of(runtime, team.company_id, team_id) == set()


async def test_teams_pages_refuse_agents_and_another_companys_ids(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    mine = await a_team(runtime, team.company_id)
    theirs = await a_team(runtime, rival.company_id, "Rival team")
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get("/app/settings/teams")).status_code == 403
        r = await form(client, "/app", "/app/settings/teams", {"name": "Agents' own"})
        assert r.status_code == 403
    async with signed_in(live_server, team.admin) as client:
        page = "/app/settings/teams"
        assert (await client.get(f"{page}/{theirs}")).status_code == 404
        for path, data in (
            (f"{page}/{theirs}", {"name": "Taken"}),
            (f"{page}/{theirs}/delete", {}),
            (f"{page}/{theirs}/members", {"user_id": str(team.agent.user_id)}),
            (f"{page}/{mine}/members", {"user_id": str(rival.agent.user_id)}),
            (f"{page}/{mine}/members/{rival.agent.user_id}/remove", {}),
            (f"{page}/{mine}/members", {"user_id": "not-an-id"}),
        ):
            r = await form(client, page, path, data)
            assert r.status_code == 404, (path, r.text)
            assert "There is nothing here." in r.text
    async with runtime.db.transaction(rival.company_id) as session:
        assert (await teams.team_by_id(session, theirs)).name == "Rival team"
    assert await members_of(runtime, team.company_id, mine) == set()


# the bot


async def test_the_bot_page_saves_instructions_and_an_llm_whose_key_is_never_shown(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    page = "/app/settings/bot"
    secret = "sk-do-not-show-0123456789"
    api = await api_client(runtime, live_server, team.company_id, Role.viewer)
    async with api, signed_in(live_server, team.admin) as client:
        r = await form(
            client,
            page,
            page,
            {
                "instructions": "Você é a Bia.",
                "llm_base_url": "http://127.0.0.1:9/v1",
                "llm_model": "tiny",
                "llm_api_key": secret,
            },
        )
        assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=bot_saved")
        shown = (await client.get(r.headers["location"])).text
        assert "Bot settings saved." in shown
        assert "A key is stored. It is never shown" in shown
        assert secret not in shown
        assert (await api.get("/v1/company/assistant")).json()["llm"] == {
            "base_url": "http://127.0.0.1:9/v1",
            "model": "tiny",
            "api_key_set": True,
        }
        # saved again without a key: the stored one stays; ticked: removed
        r = await form(
            client,
            page,
            page,
            {"instructions": "Bia", "llm_base_url": "http://127.0.0.1:9/v1", "llm_model": "m2"},
        )
        assert r.status_code == 303
        assert (await api.get("/v1/company/assistant")).json()["llm"]["api_key_set"] is True
        r = await form(
            client,
            page,
            page,
            {
                "instructions": "Bia",
                "llm_base_url": "http://127.0.0.1:9/v1",
                "llm_model": "m2",
                "llm_clear_key": "1",
            },
        )
        assert r.status_code == 303
        assert (await api.get("/v1/company/assistant")).json()["llm"]["api_key_set"] is False
        # the address emptied: the deployment's LLM again
        r = await form(client, page, page, {"instructions": "Bia"})
        assert r.status_code == 303
        assert (await api.get("/v1/company/assistant")).json()["llm"] is None


async def test_bad_bot_input_is_said_and_nothing_is_saved(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    page = "/app/settings/bot"
    async with signed_in(live_server, team.owner) as client:
        r = await form(client, page, page, {"instructions": "Antes"})
        assert r.status_code == 303
        for data, message in (
            (
                {"instructions": "Depois", "llm_base_url": "ftp://x", "llm_model": "m"},
                "must be an http(s) URL",
            ),
            ({"instructions": "Depois", "llm_base_url": "https://api.example.com/v1"}, "give the model"),
            ({"instructions": "x" * 4001}, "up to 4000 characters"),
        ):
            r = await form(client, page, page, data)
            assert r.status_code == 422, r.text
            assert message in r.text
            assert "Depois" in r.text or "x" * 4001 in r.text  # the form kept
        assert ">Antes</textarea>" in (await client.get(page)).text
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get(page)).status_code == 403
        assert (await form(client, "/app", page, {"instructions": "Agent's"})).status_code == 403


async def test_the_bot_page_turns_re_ranking_and_the_llms_re_ranking_on_and_off(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    page = "/app/settings/bot"
    checkbox = r'<input id="{}" name="{}" type="checkbox" value="1"( checked)?'
    api = await api_client(runtime, live_server, team.company_id, Role.viewer)
    async with api, signed_in(live_server, team.admin) as client:

        def ticked(html: str) -> dict[str, bool]:
            found = {name: re.search(checkbox.format(name, name), html) for name in ("rerank", "rerank_llm")}
            assert all(found.values()), html
            return {name: bool(match and match.group(1)) for name, match in found.items()}

        shown = (await client.get(page)).text
        assert '<label for="rerank">Re-rank the passages found</label>' in shown
        assert '<label for="rerank_llm">Let the LLM re-order the best few</label>' in shown
        assert ticked(shown) == {"rerank": True, "rerank_llm": False}  # a company that never chose
        # the box left unticked: re-ranking off, for the bot and in the API
        r = await form(client, page, page, {"instructions": "Bia"})
        assert r.status_code == 303
        assert ticked((await client.get(page)).text) == {"rerank": False, "rerank_llm": False}
        assert (await api.get("/v1/company/assistant")).json()["rerank"] == {"enabled": False, "llm": False}
        r = await form(client, page, page, {"instructions": "Bia", "rerank": "1", "rerank_llm": "1"})
        assert r.status_code == 303
        shown = (await client.get(page)).text
        assert ticked(shown) == {"rerank": True, "rerank_llm": True}
        assert (await api.get("/v1/company/assistant")).json()["rerank"] == {"enabled": True, "llm": True}
        # without an LLM (neither the company's nor the deployment's) the page says it will not run
        no_llm = "No LLM endpoint is set: the LLM does not re-rank until one is."
        assert no_llm in shown
        llm = {"llm_base_url": "http://127.0.0.1:9/v1", "llm_model": "tiny"}
        r = await form(client, page, page, {"instructions": "Bia", "rerank": "1", "rerank_llm": "1", **llm})
        assert r.status_code == 303
        assert no_llm not in (await client.get(page)).text
        # a refused form keeps what was ticked
        r = await form(client, page, page, {"instructions": "x" * 4001, "rerank_llm": "1"})
        assert r.status_code == 422
        assert ticked(r.text) == {"rerank": False, "rerank_llm": True}


# API keys


NEW_KEY = re.compile(r'id="new-key" type="text" readonly value="(atd_[^"]+)"')


async def test_a_new_api_key_is_shown_once_works_and_is_revoked(live_server: str, team: Team) -> None:
    page = "/app/settings/api-keys"
    async with signed_in(live_server, team.admin) as client:
        r = await form(client, page, page, {"name": "CRM", "role": "agent"})
        assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=api_key_created")
        assert "atd_" not in r.headers["location"]
        shown = (await client.get(r.headers["location"])).text
        found = NEW_KEY.search(shown)
        assert found, shown
        key = found.group(1)
        assert "Copy it now: it is shown only this once." in shown
        again = (await client.get(page)).text
        assert key not in again and "new-key" not in again
        assert re.search(r"CRM</td>\s*<td><code>" + key[:12] + r"</code></td>\s*<td>Agent</td>", again), again
        async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {key}"}) as api:
            assert (await api.get("/v1/company")).status_code == 200
            key_id = re.search(r"/app/settings/api-keys/([0-9a-f-]+)/revoke", again)
            assert key_id
            r = await form(client, page, f"{page}/{key_id.group(1)}/revoke", {})
            assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=api_key_revoked")
            assert (await api.get("/v1/company")).status_code == 401
        assert "Revoked" in (await client.get(page)).text


async def test_bad_api_key_input_role_denial_and_another_companys_key(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    page = "/app/settings/api-keys"
    async with runtime.db.transaction() as session:
        theirs, _full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=rival.company_id, name="rival", role=Role.admin
        )
        owners, _full = await tenancy.create_api_key(
            session,
            secret_key=runtime.secret_key,
            company_id=team.company_id,
            name="owner's",
            role=Role.owner,
        )
    async with signed_in(live_server, team.admin) as client:
        for data, message in (
            ({"name": "", "role": "agent"}, "Type a name of 1 to 200 characters."),
            ({"name": "Too high", "role": "owner"}, "can have the role admin, agent, viewer"),
            ({"name": "Nonsense", "role": "root"}, "no role"),
        ):
            r = await form(client, page, page, data)
            assert r.status_code == 422, r.text
            assert message in r.text
        r = await form(client, page, f"{page}/{owners.id}/revoke", {})
        assert r.status_code == 403
        assert "above yours" in r.text
        r = await form(client, page, f"{page}/{theirs.id}/revoke", {})
        assert r.status_code == 404
        assert "rival" not in (await client.get(page)).text
    async with runtime.db.transaction() as session:
        keys = {
            k.name: k
            for k in await session.scalars(select(ApiKey).where(ApiKey.id.in_([theirs.id, owners.id])))
        }
        assert keys["rival"].revoked_at is None and keys["owner's"].revoked_at is None
        names = set(await session.scalars(select(ApiKey.name).where(ApiKey.company_id == team.company_id)))
        assert names == {"owner's"}
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get(page)).status_code == 403
        assert (await form(client, "/app", page, {"name": "mine", "role": "agent"})).status_code == 403


async def test_the_api_keys_api_lists_creates_and_revokes(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    admin = await api_client(runtime, live_server, team.company_id, Role.admin)
    agent = await api_client(runtime, live_server, team.company_id, Role.agent)
    rival_admin = await api_client(runtime, live_server, rival.company_id, Role.admin)
    async with admin, agent, rival_admin:
        r = await admin.post("/v1/api-keys", json={"name": "Site", "role": "viewer"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["key"].startswith(created["prefix"] + "_") and created["role"] == "viewer"
        listed = (await admin.get("/v1/api-keys")).json()
        assert [k["name"] for k in listed] == ["admin key", "agent key", "Site"]
        assert all("key" not in k for k in listed)
        assert (await admin.post("/v1/api-keys", json={"name": "x", "role": "owner"})).status_code == 422
        assert (await admin.post("/v1/api-keys", json={"name": ""})).status_code == 422
        assert (await agent.get("/v1/api-keys")).status_code == 403
        assert (await agent.post("/v1/api-keys", json={"name": "mine"})).status_code == 403
        assert (await rival_admin.delete(f"/v1/api-keys/{created['id']}")).status_code == 404
        assert (await rival_admin.get("/v1/api-keys")).json()[0]["name"] == "admin key"
        assert len((await rival_admin.get("/v1/api-keys")).json()) == 1
        assert (await admin.delete(f"/v1/api-keys/{created['id']}")).status_code == 204
        [site] = [k for k in (await admin.get("/v1/api-keys")).json() if k["name"] == "Site"]
        assert site["revoked_at"] is not None
        async with httpx.AsyncClient(
            base_url=live_server, headers={"Authorization": f"Bearer {created['key']}"}
        ) as c:
            assert (await c.get("/v1/company")).status_code == 401


# webhooks


SECRET = re.compile(r'id="signing-secret" type="text" readonly value="(whsec_[^"]+)"')


async def test_an_admin_adds_edits_rotates_disables_and_deletes_a_webhook(
    live_server: str, team: Team, receiver: WebhookReceiver
) -> None:
    page = "/app/settings/webhooks"
    async with signed_in(live_server, team.admin) as client:
        r = await form(
            client, page, page, {"url": receiver.url("/hook-a"), "events": ["conversation.handoff"]}
        )
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        assert location.endswith("?notice=webhook_created")
        endpoint = location.split("?")[0]
        shown = (await client.get(location)).text
        secret = SECRET.search(shown)
        assert secret, shown
        assert secret.group(1) not in (await client.get(endpoint)).text  # once only

        r = await form(
            client,
            endpoint,
            endpoint,
            {"url": receiver.url("/hook-b"), "events": ["message.created", "conversation.handoff"]},
        )
        assert r.status_code == 303
        edited = (await client.get(endpoint)).text
        assert receiver.url("/hook-b") in edited
        assert re.search(r'value="message.created" checked', edited)

        r = await form(client, endpoint, f"{endpoint}/rotate", {"grace_seconds": "0"})
        assert r.status_code == 303
        rotated = SECRET.search((await client.get(r.headers["location"])).text)
        assert rotated and rotated.group(1) != secret.group(1)

        r = await form(client, endpoint, f"{endpoint}/disable", {})
        assert r.status_code == 303
        shown = (await client.get(endpoint)).text
        assert "Disable webhook" not in shown and "Enable webhook" in shown
        r = await form(client, endpoint, f"{endpoint}/enable", {})
        assert "Disable webhook" in (await client.get(endpoint)).text

        r = await form(client, endpoint, f"{endpoint}/delete", {})
        assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=webhook_deleted")
        assert (await client.get(endpoint)).status_code == 404


async def test_bad_webhook_input_is_said_and_changes_nothing(
    live_server: str, team: Team, receiver: WebhookReceiver
) -> None:
    page = "/app/settings/webhooks"
    async with signed_in(live_server, team.owner) as client:
        r = await form(client, page, page, {"url": receiver.url("/ok"), "events": ["queue.opened"]})
        endpoint = r.headers["location"].split("?")[0]
        for path, data, message in (
            (page, {"url": "not a url", "events": ["queue.opened"]}, "absolute http(s) URL"),
            (page, {"url": "http://[not-ipv6/", "events": ["queue.opened"]}, "absolute http(s) URL"),
            (page, {"url": receiver.url("/none")}, "events must be a non-empty subset"),
            (page, {"url": receiver.url("/bad"), "events": ["no.such.event"]}, "no.such.event"),
            (endpoint, {"url": "ftp://example.com/x", "events": ["queue.opened"]}, "absolute http(s) URL"),
            (endpoint, {"url": receiver.url("/ok"), "events": []}, "events must be a non-empty subset"),
            (f"{endpoint}/rotate", {"grace_seconds": "999999999"}, "grace_seconds must be between"),
        ):
            r = await form(client, page, path, data)
            assert r.status_code == 422, (path, r.text)
            assert message in r.text
        listed = (await client.get(page)).text
        assert listed.count("/app/settings/webhooks/") == 1  # nothing more was registered
        assert receiver.url("/ok") in (await client.get(endpoint)).text


def log_of(html: str) -> str:
    found = re.search(r'<table class="table" id="deliveries">.*?</table>', html, re.DOTALL)
    assert found, html
    return found.group(0)


async def test_the_delivery_log_pages_through_every_delivery(
    live_server: str, team: Team, runtime: Runtime, receiver: WebhookReceiver
) -> None:
    async with runtime.db.transaction(team.company_id) as session:
        endpoint, _secret = await webhooks.create_endpoint(
            session,
            secret_key=runtime.secret_key,
            url=receiver.url("/log"),
            events=["queue.opened"],
            allow_private=True,
        )
        for n in range(30):
            await webhooks.emit(session, runtime.jobs, "queue.opened", {"n": n})
    await receiver.wait_for("/log", lambda rs: len(rs) >= 30, timeout=30)
    page = f"/app/settings/webhooks/{endpoint.id}"
    async with signed_in(live_server, team.admin) as client:
        first = (await client.get(page)).text
        assert log_of(first).count("<code>queue.opened</code>") == 25
        older = re.search(r'href="(/app/settings/webhooks/[^"]+\?before=[^"]+)">Older<', first)
        assert older, first
        second = (await client.get(older.group(1).replace("&amp;", "&"))).text
        assert log_of(second).count("<code>queue.opened</code>") == 5
        assert ">Older<" not in second and ">Newest<" in second
        assert re.search(r"Delivered.*?</td>\s*<td>1</td>\s*<td>200</td>", second, re.DOTALL), second
    api = await api_client(runtime, live_server, team.company_id, Role.admin)
    async with api:
        first_api = (await api.get(f"/v1/webhooks/{endpoint.id}/deliveries", params={"limit": 20})).json()
        rest = (
            await api.get(
                f"/v1/webhooks/{endpoint.id}/deliveries", params={"before": first_api[-1]["id"], "limit": 50}
            )
        ).json()
        assert len(first_api) == 20 and len(rest) == 10
        assert {d["id"] for d in first_api}.isdisjoint({d["id"] for d in rest})
        r = await api.get(f"/v1/webhooks/{endpoint.id}/deliveries", params={"before": str(uuid.uuid4())})
        assert r.status_code == 404


async def test_the_webhooks_api_changes_an_endpoints_url_and_events(
    live_server: str, team: Team, runtime: Runtime, receiver: WebhookReceiver
) -> None:
    api = await api_client(runtime, live_server, team.company_id, Role.admin)
    async with api:
        created = (
            await api.post("/v1/webhooks", json={"url": receiver.url("/p1"), "events": ["queue.opened"]})
        ).json()
        r = await api.patch(
            f"/v1/webhooks/{created['id']}", json={"url": receiver.url("/p2"), "events": ["note.created"]}
        )
        assert r.status_code == 200, r.text
        assert (r.json()["url"], r.json()["events"], r.json()["enabled"]) == (
            receiver.url("/p2"),
            ["note.created"],
            True,
        )
        r = await api.patch(f"/v1/webhooks/{created['id']}", json={"events": ["nope"], "enabled": False})
        assert r.status_code == 422
        [listed] = (await api.get("/v1/webhooks")).json()
        assert (listed["events"], listed["enabled"]) == (["note.created"], True)


async def test_webhook_pages_refuse_agents_and_another_companys_endpoints(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    async with runtime.db.transaction(rival.company_id) as session:
        theirs, _secret = await webhooks.create_endpoint(
            session,
            secret_key=runtime.secret_key,
            url="http://127.0.0.1:9/rival",
            events=["queue.opened"],
            allow_private=True,
        )
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get("/app/settings/webhooks")).status_code == 403
        r = await form(
            client,
            "/app",
            "/app/settings/webhooks",
            {"url": "http://127.0.0.1:9/x", "events": ["queue.opened"]},
        )
        assert r.status_code == 403
    async with signed_in(live_server, team.admin) as client:
        base = f"/app/settings/webhooks/{theirs.id}"
        assert (await client.get(base)).status_code == 404
        for path, data in (
            (base, {"url": "http://127.0.0.1:9/mine", "events": ["queue.opened"]}),
            (f"{base}/disable", {}),
            (f"{base}/rotate", {"grace_seconds": "0"}),
            (f"{base}/delete", {}),
        ):
            r = await form(client, "/app/settings/webhooks", path, data)
            assert r.status_code == 404, (path, r.text)
    async with runtime.db.transaction(rival.company_id) as session:
        kept = await webhooks.get_endpoint(session, theirs.id)
        assert (kept.url, kept.enabled) == ("http://127.0.0.1:9/rival", True)


# channel accounts


async def test_an_admin_adds_renames_disables_and_deletes_channel_accounts(
    live_server: str, team: Team
) -> None:
    page = "/app/settings/channels"
    async with signed_in(live_server, team.admin) as client:
        shown = (await client.get(page)).text
        [built_in] = re.findall(r'/app/settings/widget\?account=([0-9a-f-]+)"', shown)
        key = f"wk_second_{uuid.uuid4().hex[:8]}"
        r = await form(
            client, page, page, {"kind": "webchat", "external_id": key, "display_name": "Second site"}
        )
        assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=channel_account_created")
        shown = (await client.get(page)).text
        assert f"<code>{key}</code>" in shown
        [second] = [
            a for a in re.findall(r'/app/settings/widget\?account=([0-9a-f-]+)"', shown) if a != built_in
        ]

        r = await form(client, page, f"{page}/{second}/rename", {"display_name": "Loja nova"})
        assert r.status_code == 303
        assert f'id="name-{second}" name="display_name" value="Loja nova"' in (await client.get(page)).text
        r = await form(client, page, f"{page}/{second}/disable", {})
        assert r.status_code == 303
        assert re.search(
            rf'id="account-{second}".*?<td>Disabled</td>', (await client.get(page)).text, re.DOTALL
        )
        r = await form(client, page, f"{page}/{second}/enable", {})
        assert r.status_code == 303
        r = await form(client, page, f"{page}/{second}/delete", {})
        assert (r.status_code, r.headers["location"]) == (303, f"{page}?notice=channel_account_deleted")
        # the company's last web chat account: the API's 409, said on the page
        r = await form(client, page, f"{page}/{built_in}/delete", {})
        assert r.status_code == 409
        assert "last web chat account, so it cannot be deleted" in r.text
        assert f"/app/settings/widget?account={built_in}" in r.text


async def test_bad_channel_input_role_denial_and_another_companys_accounts(
    live_server: str, team: Team, rival: Team
) -> None:
    page = "/app/settings/channels"
    async with signed_in(live_server, rival.admin) as client:
        [theirs] = re.findall(r'/app/settings/widget\?account=([0-9a-f-]+)"', (await client.get(page)).text)
        taken = re.search(r"<td><code>([^<]+)</code></td>", (await client.get(page)).text)
        assert taken
    async with signed_in(live_server, team.admin) as client:
        for data, status, message in (
            ({"kind": "webchat", "external_id": "has space"}, 422, "no spaces"),
            ({"kind": "webchat", "external_id": ""}, 422, "no spaces"),
            ({"kind": "pigeon", "external_id": "x1"}, 422, "no channel"),
            ({"kind": "webchat", "external_id": taken.group(1)}, 409, "already exists"),
            ({"kind": "webchat", "external_id": "wk_x", "display_name": "n" * 201}, 422, "up to 200"),
        ):
            r = await form(client, page, page, data)
            assert r.status_code == status, (data, re.findall(r'role="alert">[^<]*', r.text))
            assert message in r.text
        assert len(re.findall(r"/app/settings/widget\?account=", (await client.get(page)).text)) == 1
        for action, data in (
            ("rename", {"display_name": "Mine"}),
            ("disable", {}),
            ("secrets", {}),
            ("delete", {}),
        ):
            r = await form(client, page, f"{page}/{theirs}/{action}", data)
            assert r.status_code == 404, (action, r.text)
    async with signed_in(live_server, rival.admin) as client:
        assert re.search(r"<td>Enabled</td>", (await client.get(page)).text)
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get(page)).status_code == 403
        r = await form(client, "/app", f"{page}/{theirs}/disable", {})
        assert r.status_code == 403


async def test_the_settings_pages_refuse_a_form_without_its_csrf_token_and_speak_portuguese(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    team_id = await a_team(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        for path, data in (
            ("/app/settings/api-keys", {"name": "forged", "role": "viewer"}),
            ("/app/settings/webhooks", {"url": "http://127.0.0.1:9/forged", "events": "queue.opened"}),
            (f"/app/settings/teams/{team_id}/delete", {}),
        ):
            r = await client.post(path, data=data)
            assert r.status_code == 403, path
            assert "This form has expired" in r.text
        assert "forged" not in (await client.get("/app/settings/api-keys")).text
        assert "Suporte" in (await client.get("/app/settings/teams")).text
    async with signed_in(live_server, team.admin, language="pt-BR") as client:
        for path, heading in (
            ("/app/settings/teams", "Equipes"),
            ("/app/settings/bot", "Robô"),
            ("/app/settings/api-keys", "Chaves de API"),
            ("/app/settings/webhooks", "Webhooks"),
            ("/app/settings/channels", "Canais"),
        ):
            shown = (await client.get(path)).text
            assert f"<h1>{heading}</h1>" in shown, path
