"""The audit log: each kind of action writes its row in the change's transaction, with who
did it (a person, an API key, the system) and from where; never a secret; one company never
sees another's rows; ``GET /v1/audit-events`` and the page filter and page alike."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select, text

from atende.audit import service as audit
from atende.audit.models import AuditEvent
from atende.runtime import Runtime
from atende.tenancy import accounts
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from atende.tenancy.service import Principal
from tests.conftest import CompanyCtx, ask
from tests.fixtures.dashboard import (
    Team,
    add_person,
    browser_client,
    make_team,
    post_form,
    sign_in,
    signed_in,
)

PATH = "/v1/audit-events"
HOURS = {"timezone": "America/Sao_Paulo", "weekly": {"monday": [{"start": "08:00", "end": "18:00"}]}}


def fixtures_key(event: dict) -> bool:
    """The company's first key ("tests"), created by the fixture in a platform session: the
    system's doing, in every company's log."""
    return event["action"] == "api_key.created" and event["details"].get("name") == "tests"


async def events(client: httpx.AsyncClient, **params: str) -> list[dict]:
    r = await client.get(PATH, params={"limit": "200", **params})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if not fixtures_key(e)]


async def key_id_of(company: CompanyCtx) -> str:
    keys = (await company.client.get("/v1/api-keys")).json()
    return next(k["id"] for k in keys if k["name"] == "tests")


# --- each area's actions, through the API as an admin key ------------------------------------


async def api_keys(company: CompanyCtx) -> None:
    r = await company.client.post("/v1/api-keys", json={"name": "CRM", "role": "agent"})
    assert r.status_code == 201, r.text
    assert (await company.client.delete(f"/v1/api-keys/{r.json()['id']}")).status_code == 204


async def webhooks(company: CompanyCtx) -> None:
    r = await company.client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook?token=abc", "events": ["message.created"]}
    )
    assert r.status_code == 201, r.text
    hook = r.json()["id"]
    assert (await company.client.patch(f"/v1/webhooks/{hook}", json={"enabled": False})).status_code == 200
    assert (await company.client.post(f"/v1/webhooks/{hook}/rotate-secret", json={})).status_code == 200
    assert (await company.client.delete(f"/v1/webhooks/{hook}")).status_code == 204


async def documents(company: CompanyCtx) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "faq.md", "content": "# FAQ\n\nSim."}
    )
    assert r.status_code == 201, r.text
    assert (await company.client.delete(f"/v1/documents/{r.json()['document']['id']}")).status_code == 204


async def channel_accounts(company: CompanyCtx) -> None:
    r = await company.client.post(
        "/v1/channel-accounts",
        json={"kind": "webchat", "external_id": f"wk_{uuid.uuid4().hex}", "display_name": "Blog"},
    )
    assert r.status_code == 201, r.text
    account = r.json()["id"]
    assert (
        await company.client.patch(f"/v1/channel-accounts/{account}", json={"display_name": "Loja"})
    ).status_code == 200
    assert (await company.client.delete(f"/v1/channel-accounts/{account}")).status_code == 204


async def settings(company: CompanyCtx) -> None:
    assert (await company.client.patch("/v1/company", json={"name": "Loja Nova"})).status_code == 200
    r = await company.client.put("/v1/company/hours", json=HOURS)
    assert r.status_code == 200, r.text
    r = await company.client.put("/v1/company/handoff", json={"bot_answers_while_closed": True})
    assert r.status_code == 200, r.text
    r = await company.client.put("/v1/company/assistant", json={"instructions": "Seja breve."})
    assert r.status_code == 200, r.text


async def teams(company: CompanyCtx) -> None:
    r = await company.client.post("/v1/teams", json={"name": "Financeiro", "members": []})
    assert r.status_code == 201, r.text
    assert (await company.client.delete(f"/v1/teams/{r.json()['slug']}")).status_code == 204


async def conversations(company: CompanyCtx) -> None:
    conversation = (await ask(company.client, "Oi, quero falar com alguém"))["conversation_id"]
    base = f"/v1/conversations/{conversation}"
    r = await company.client.post(f"{base}/replies", json={"text": "Olá, sou a Ana."})
    assert r.status_code == 201, r.text
    assert (await company.client.post(f"{base}/resolve", json={})).status_code == 200
    assert (await company.client.post(f"{base}/reopen", json={})).status_code == 200
    assert (await company.client.post(f"{base}/handback", json={})).status_code == 200


AREAS: list[tuple[Callable[[CompanyCtx], Awaitable[None]], list[str]]] = [
    (api_keys, ["api_key.created", "api_key.revoked"]),
    (webhooks, ["webhook.created", "webhook.disabled", "webhook.secret_rotated", "webhook.deleted"]),
    (documents, ["document.uploaded", "document.deleted"]),
    (channel_accounts, ["channel_account.connected", "settings.widget_changed", "channel_account.removed"]),
    (
        settings,
        [
            "settings.company_changed",
            "settings.hours_changed",
            "settings.handoff_changed",
            "settings.bot_changed",
        ],
    ),
    (teams, ["team.created", "team.deleted"]),
    (
        conversations,
        [
            "conversation.replied",
            "conversation.resolved",
            "conversation.reopened",
            "conversation.handed_back",
        ],
    ),
]


@pytest.mark.parametrize(("act", "actions"), AREAS, ids=[act.__name__ for act, _ in AREAS])
async def test_each_kind_of_action_writes_its_row_with_the_key_that_did_it(
    company: CompanyCtx, act: Callable[[CompanyCtx], Awaitable[None]], actions: list[str]
) -> None:
    await act(company)
    key_id = await key_id_of(company)
    found = await events(company.client)
    # (the company's first key, "tests", was created by the platform: the system did that)
    mine = [e for e in found if e["action"] in actions and e["target_id"] != key_id]
    assert sorted({e["action"] for e in mine}) == sorted(actions)
    for event in mine:
        assert (event["actor_type"], event["actor_key_id"], event["actor_user_id"]) == (
            "api_key",
            key_id,
            None,
        )
        assert event["target_type"] and event["target_id"]
    newest_first = [e["created_at"] for e in found]
    assert newest_first == sorted(newest_first, reverse=True)


async def test_a_webhook_is_named_by_its_host_not_its_url(company: CompanyCtx) -> None:
    await webhooks(company)
    [created] = await events(company.client, action="webhook.created")
    assert created["details"] == {"host": "127.0.0.1", "events": ["message.created"]}


async def test_a_change_rolled_back_leaves_no_row(runtime: Runtime, company: CompanyCtx) -> None:
    principal = Principal(company_id=company.id, role=Role.admin)

    async def fails_after_the_change() -> None:
        async with runtime.db.transaction(company.id) as session:
            await tenancy.issue_api_key(
                session, secret_key=runtime.secret_key, actor=principal, name="gone", role=Role.agent
            )
            raise RuntimeError("the request failed after the change")

    with pytest.raises(RuntimeError):
        await fails_after_the_change()
    assert await events(company.client, action="api_key.created") == []
    keys = (await company.client.get("/v1/api-keys")).json()
    assert [k["name"] for k in keys] == ["tests"]


async def test_a_refused_change_writes_nothing(company: CompanyCtx) -> None:
    r = await company.client.post(
        "/v1/webhooks", json={"url": "ftp://nowhere", "events": ["message.created"]}
    )
    assert r.status_code == 422
    assert await events(company.client) == []


async def test_the_system_is_the_actor_of_a_session_bound_to_nobody(
    runtime: Runtime, company: CompanyCtx
) -> None:
    async with runtime.db.transaction(company.id) as session:
        audit.record(session, "settings.hours_changed", ("company", company.id))
    [event] = await events(company.client, action="settings.hours_changed")
    assert (event["actor_type"], event["actor_user_id"], event["actor_key_id"], event["ip"]) == (
        "system",
        None,
        None,
        None,
    )


# --- people, through the dashboard -------------------------------------------------------------


async def test_sign_ins_failed_sign_ins_sign_outs_and_role_changes_are_said_in_words(
    live_server: str, runtime: Runtime, team: Team
) -> None:
    address = "10.9.8.7"
    async with browser_client(live_server, address=address) as client:
        assert (await sign_in(client, team.agent.email, "not the password")).status_code == 401
        assert (await sign_in(client, team.agent.email)).status_code == 303
        assert (await post_form(client, "/app/logout")).status_code == 303
    async with signed_in(live_server, team.admin) as admin:
        r = await post_form(
            admin, f"/app/users/{team.agent.user_id}/role", {"role": "admin"}, page="/app/users"
        )
        assert r.status_code == 303
        r = await post_form(
            admin, "/app/users/invite", {"email": "Nova@Example.com", "role": "viewer"}, page="/app/users"
        )
        assert r.status_code == 303, r.text
        page = (await admin.get("/app/logs/audit")).text
    for sentence in (
        "Someone failed to sign in as Ana Agent: wrong password",
        "Ana Agent signed in",
        "Ana Agent signed out",
        "Adam Admin signed in",
        "Adam Admin changed Ana Agent&#39;s role from Agent to Admin",
        "Adam Admin invited nova@example.com as Viewer",
    ):
        assert sentence in page, sentence
    assert address in page
    async with runtime.db.transaction(team.company_id) as session:
        rows = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "auth.sign_in_failed"))
        ).all()
    assert [(r.actor_user_id, str(r.ip)) for r in rows] == [(team.agent.user_id, address)]


async def test_the_same_action_from_the_dashboard_names_the_person(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.admin, address="10.1.2.3") as admin:
        r = await post_form(
            admin, "/app/settings/api-keys", {"name": "CRM", "role": "agent"}, page="/app/settings/api-keys"
        )
        assert r.status_code == 303, r.text
        page = (await admin.get("/app/logs/audit", params={"action": "api_key.created"})).text
    assert "Adam Admin created the API key CRM (atd_" in page
    assert "with the Agent role" in page and "10.1.2.3" in page
    assert "signed in" not in page  # filtered out


async def test_an_unknown_address_failing_to_sign_in_is_kept_nowhere(
    runtime: Runtime, live_server: str
) -> None:
    async with runtime.db.transaction() as session:
        before = await session.scalar(select(text("count(*)")).select_from(AuditEvent))
    async with browser_client(live_server) as client:
        assert (
            await sign_in(client, f"nobody-{uuid.uuid4().hex}@example.com", "hunter22")
        ).status_code == 401
    async with runtime.db.transaction() as session:
        assert await session.scalar(select(text("count(*)")).select_from(AuditEvent)) == before


# --- secrets ----------------------------------------------------------------------------------


async def test_no_secret_reaches_the_log(runtime: Runtime, live_server: str, company: CompanyCtx) -> None:
    secrets: list[str] = []
    r = await company.client.post("/v1/api-keys", json={"name": "CRM", "role": "agent"})
    secrets.append(r.json()["key"])
    r = await company.client.post(
        "/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook?token=hook-token-123", "events": ["message.created"]},
    )
    secrets += [r.json()["secret"], "hook-token-123"]
    r = await company.client.post(f"/v1/webhooks/{r.json()['id']}/rotate-secret", json={})
    secrets.append(r.json()["secret"])
    llm_key = "sk-llm-secret-456"
    r = await company.client.put(
        "/v1/company/assistant",
        json={
            "instructions": "",
            "llm": {"base_url": "https://api.example.com/v1", "model": "m", "api_key": llm_key},
        },
    )
    assert r.status_code == 200, r.text
    secrets.append(llm_key)
    conversation = (await ask(company.client, "Oi"))["conversation_id"]
    reply = "Seu código de rastreio é XY-9876"
    await company.client.post(f"/v1/conversations/{conversation}/replies", json={"text": reply})
    secrets.append(reply)
    person = await add_person(runtime, company.id, Role.admin, name="Pat")
    typed = "wrong-password-789"
    async with browser_client(live_server) as client:
        await sign_in(client, person.email, typed)
        await sign_in(client, person.email)
        r = await post_form(
            client,
            "/app/account/password",
            {
                "current_password": person.password,
                "new_password": "new-password-000",
                "confirm_password": "new-password-000",
            },
            page="/app/account",
        )
        assert r.status_code == 303, r.text
    secrets += [typed, person.password, "new-password-000"]
    async with runtime.db.transaction() as session:
        dump = (
            await session.execute(
                text("SELECT string_agg(t::text, ' ') FROM audit_events t WHERE company_id = :c"),
                {"c": company.id},
            )
        ).scalar_one()
    assert "api_key.created" in dump and "auth.password_changed" in dump and "conversation.replied" in dump
    for secret in secrets:
        assert secret not in dump


@pytest.mark.parametrize("name", ["password", "api_key", "secret", "token", "text", "webhook_secret"])
def test_a_detail_named_like_a_secret_or_a_message_is_refused(name: str) -> None:
    def add(_row: object) -> None:
        raise AssertionError("nothing may be added")

    session = SimpleNamespace(info={}, add=add)
    with pytest.raises(ValueError, match="secret or a message"):
        audit.record(session, "x.y", None, {name: "v"})  # type: ignore[arg-type]


# --- companies ----------------------------------------------------------------------------------


async def test_company_bs_admin_never_sees_as_rows(
    live_server: str, team: Team, rival: Team, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    await api_keys(company)
    assert await events(other_company.client) == []
    assert await events(other_company.client, action="api_key.created") == []
    async with signed_in(live_server, team.admin):
        pass  # A's admin signs in: A's row
    async with signed_in(live_server, rival.admin) as b:
        page = (await b.get("/app/logs/audit")).text
        assert "Adam Admin signed in" in page  # B's own admin (each team names its admin Adam)
        assert page.count("signed in") == 1
        filtered = (await b.get("/app/logs/audit", params={"user": str(team.admin.user_id)})).text
        assert "Nothing was recorded for these filters." in filtered
        exported = (await b.get("/app/logs/audit.csv")).text
        assert str(team.admin.user_id) not in exported and exported.count("\n") == 2  # heading + B's one


async def test_a_platform_action_belongs_to_no_company(runtime: Runtime, company: CompanyCtx) -> None:
    slug = f"plat-{uuid.uuid4().hex[:8]}"
    async with runtime.db.transaction() as session:
        created = await tenancy.create_company(session, name=slug, slug=slug)
    async with runtime.db.transaction() as session:
        row = await session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "company.created", AuditEvent.target_id == str(created.id)
            )
        )
        assert row is not None and row.company_id is None
    async with runtime.db.transaction(created.id) as session:
        assert (await audit.list_events(session, audit.Filters()))[0] == []


# --- filters and paging -------------------------------------------------------------------------


async def seeded(runtime: Runtime, company: CompanyCtx, person: uuid.UUID, n: int) -> datetime:
    """``n`` events an hour apart, newest now: even ones by ``person`` (role changes), odd
    ones by the system (hours)."""
    now = datetime.now(UTC)
    async with runtime.db.transaction(company.id) as session:
        for i in range(n):
            audit.bind(session, audit.Actor(user_id=person) if i % 2 == 0 else audit.SYSTEM)
            action = "member.role_changed" if i % 2 == 0 else "settings.hours_changed"
            event = audit.record(session, action, ("user", person), {"from": "agent", "to": "admin"})
            event.created_at = now - timedelta(hours=i)
    return now


async def test_the_api_pages_newest_first_and_filters_by_person_action_and_time(
    runtime: Runtime, company: CompanyCtx
) -> None:
    person = await add_person(runtime, company.id, Role.admin, name="Bia")
    now = await seeded(runtime, company, person.user_id, 45)
    seen: list[dict] = []
    cursor = None
    while True:
        r = await company.client.get(PATH, params={"limit": "20", **({"cursor": cursor} if cursor else {})})
        body = r.json()
        seen += [e for e in body["items"] if not fixtures_key(e)]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 45 and len({e["id"] for e in seen}) == 45
    assert [e["created_at"] for e in seen] == sorted((e["created_at"] for e in seen), reverse=True)
    assert len(await events(company.client, user=str(person.user_id))) == 23
    assert len(await events(company.client, action="settings.hours_changed")) == 22
    assert len(await events(company.client, action="settings.")) == 22
    assert len(await events(company.client, action="member.")) == 23
    window = await events(
        company.client,
        since=(now - timedelta(hours=10, minutes=30)).isoformat(),
        until=(now - timedelta(hours=4, minutes=30)).isoformat(),
    )
    assert len(window) == 6  # hours 5 to 10
    naive = (now - timedelta(hours=2, minutes=30)).replace(tzinfo=None).isoformat()
    assert len(await events(company.client, since=naive)) == 3  # a time without a zone is UTC
    r = await company.client.get(PATH, params={"cursor": "not-a-cursor"})
    assert r.status_code == 422 and "cursor" in r.json()["detail"]
    r = await company.client.get(PATH, params={"user": "ana"})
    assert r.status_code == 422


async def test_the_page_pages_and_filters_and_says_what_it_could_not_read(
    runtime: Runtime, live_server: str, team: Team
) -> None:
    company = CompanyCtx(team.company_id, "", "", "", None)  # type: ignore[arg-type]
    await seeded(runtime, company, team.agent.user_id, 60)
    async with signed_in(live_server, team.owner) as owner:
        first = await owner.get("/app/logs/audit", params={"action": "member.role_changed"})
        assert first.status_code == 200
        assert first.text.count("Ana Agent changed Ana Agent&#39;s role from Agent to Admin") == 30
        everything = await owner.get("/app/logs/audit")
        assert everything.text.count("<tr>") == 1 + 50  # the heading, a page of 50
        older = (
            everything.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        )
        second = await owner.get(older)
        assert second.text.count("<tr>") == 1 + 11  # 60 seeded and Olga's sign-in
        assert 'rel="next"' not in second.text and "Newest" in second.text
        today = datetime.now(UTC).date()
        wrong = await owner.get("/app/logs/audit", params={"since": "yesterday", "until": today.isoformat()})
        assert wrong.status_code == 422
        assert "Type the first day as a date, such as 2026-03-01." in wrong.text
        r = await owner.get("/app/logs/audit", params={"cursor": "zzz"})
        assert r.status_code == 422


async def test_the_csv_export_says_the_same_and_never_runs_a_formula(
    runtime: Runtime, live_server: str
) -> None:
    team = await make_team(runtime, language="en")
    sneaky = await add_person(runtime, team.company_id, Role.agent, name="=HYPERLINK(1)")
    async with signed_in(live_server, sneaky):
        pass
    async with signed_in(live_server, team.admin) as admin:
        r = await admin.get("/app/logs/audit.csv", params={"action": "auth.signed_in"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["When (UTC)", "Who", "What happened", "Action", "Target", "IP address"]
    whats = sorted(row[2] for row in rows[1:])
    assert whats == ["'=HYPERLINK(1) signed in", "Adam Admin signed in"]
    assert all(row[0] for row in rows[1:])


@pytest.mark.parametrize("role", [Role.agent, Role.viewer])
async def test_agents_and_viewers_are_refused_the_log(
    live_server: str, runtime: Runtime, team: Team, role: Role
) -> None:
    async with signed_in(live_server, team.person(role)) as client:
        for path in ("/app/logs/audit", "/app/logs/audit.csv"):
            r = await client.get(path)
            assert r.status_code == 403 and "This page needs the Admin role" in r.text
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=team.company_id, name="k", role=role
        )
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {full}"}) as client:
        assert (await client.get(PATH)).status_code == 403


async def test_accepting_an_invitation_is_the_new_members_doing(runtime: Runtime, team: Team) -> None:
    now = datetime.now(UTC)
    async with runtime.db.transaction(team.company_id) as session:
        actor = Principal(company_id=team.company_id, role=Role.admin, user_id=team.admin.user_id)
        _invitation, token = await accounts.invite(
            session,
            secret_key=runtime.secret_key,
            actor=actor,
            email="joao@example.com",
            role=Role.agent,
            now=now,
            valid_for=timedelta(days=1),
        )
    async with runtime.db.transaction() as session:
        user, _company = await accounts.accept_invitation(
            session,
            secret_key=runtime.secret_key,
            token=token,
            now=now,
            name="João",
            password="a good password 1",
        )
    async with runtime.db.transaction(team.company_id) as session:
        rows, _cursor = await audit.list_events(session, audit.Filters(action="invitation.accepted"))
    assert [(r.actor_user_id, r.details) for r in rows] == [(user.id, {"role": "agent"})]


async def test_a_password_reset_is_the_persons_in_each_of_their_companies(
    runtime: Runtime, team: Team
) -> None:
    now = datetime.now(UTC)
    new = "a reset password 42"
    async with runtime.db.transaction() as session:
        found = await accounts.request_password_reset(
            session,
            secret_key=runtime.secret_key,
            email=team.viewer.email,
            now=now,
            valid_for=timedelta(hours=1),
        )
        assert found is not None
        await accounts.reset_password(
            session, secret_key=runtime.secret_key, token=found[1], password=new, now=now
        )
    async with runtime.db.transaction(team.company_id) as session:
        rows, _cursor = await audit.list_events(session, audit.Filters(action="auth.password_reset"))
    assert [(r.actor_user_id, r.target_id, r.details) for r in rows] == [
        (team.viewer.user_id, str(team.viewer.user_id), {})
    ]
    assert new not in str(rows[0].details) and found[1] not in str(rows[0].details)
