"""API-key authentication and per-route roles, against the live server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select, text

from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.crypto import hash_token
from atende.tenancy.models import ApiKey, Role
from tests.conftest import CompanyCtx, ask, until_refused


async def make_key(runtime: Runtime, company_id: uuid.UUID, role: Role) -> str:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company_id, name=f"{role} key", role=role
        )
    return full


def secret_of(full_key: str) -> str:
    """The part of a key after ``atd_xxxxxxxx_`` (the prefix is public and stored)."""
    return full_key[len(tenancy.KEY_PREFIX) + 9 :]


@pytest.fixture
async def anonymous(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=15) as client:
        yield client


@dataclass(frozen=True)
class Arranged:
    """A company with one conversation (answered by the bot), one document and one webhook."""

    company: CompanyCtx
    conversation_id: str
    document_id: str
    endpoint_id: str


@pytest.fixture
async def arranged(company: CompanyCtx) -> Arranged:
    r = await company.client.post(
        "/v1/documents?wait=true",
        json={"source": "faq/pix.md", "content": "# Pagamentos\n\nAceitamos Pix e cartão.", "language": "pt"},
    )
    assert r.status_code == 201, r.text
    document_id = r.json()["document"]["id"]
    body = await ask(company.client, "Vocês aceitam Pix?")
    r = await company.client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/never", "events": ["conversation.handoff"]}
    )
    assert r.status_code == 201, r.text
    return Arranged(company, body["conversation_id"], document_id, r.json()["id"])


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/company"),
        ("GET", "/v1/conversations"),
        ("POST", "/v1/messages"),
        ("GET", "/v1/documents"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/jobs/failed"),
        ("GET", "/v1/conversations/6f1c2a9e-3b5d-4c8e-9a7f-2d4e6b8c0a13"),  # the same id in every worker
    ],
)
async def test_a_request_without_an_api_key_is_refused_with_401_saying_how_to_send_one(
    anonymous: httpx.AsyncClient, method: str, path: str
) -> None:
    # an invalid body too: authentication is checked before anything about the request is revealed
    r = await anonymous.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "unauthorized"
    assert r.json()["detail"] == "missing API key: send 'Authorization: Bearer atd_...'"


@pytest.mark.parametrize(
    ("name", "headers_for"),
    [
        ("garbage", lambda key: {"Authorization": "Bearer hello"}),
        ("only-the-prefix-shape", lambda key: {"Authorization": "Bearer atd_"}),
        ("public-prefix-alone", lambda key: {"Authorization": f"Bearer {key[:12]}"}),
        ("wrong-secret", lambda key: {"Authorization": f"Bearer {key[:13]}{'A' * len(secret_of(key))}"}),
        ("truncated", lambda key: {"Authorization": f"Bearer {key[:-1]}"}),
        ("extended", lambda key: {"Authorization": f"Bearer {key}x"}),
        ("unknown-prefix", lambda key: {"Authorization": f"Bearer atd_zzzzzzzz_{secret_of(key)}"}),
        ("wrong-secret-in-x-api-key", lambda key: {"X-Api-Key": key[:-2] + "zz"}),
    ],
)
async def test_a_malformed_or_wrong_api_key_is_refused_with_401(
    company: CompanyCtx,
    anonymous: httpx.AsyncClient,
    name: str,
    headers_for: Callable[[str], dict[str, str]],
) -> None:
    r = await anonymous.get("/v1/company", headers=headers_for(company.api_key))
    assert r.status_code == 401, (name, r.text)
    assert r.json()["code"] == "unauthorized"
    assert "invalid API key" in r.json()["detail"]


async def test_a_non_bearer_authorization_scheme_is_treated_as_a_missing_key(
    company: CompanyCtx, anonymous: httpx.AsyncClient
) -> None:
    r = await anonymous.get("/v1/company", headers={"Authorization": f"Basic {company.api_key}"})
    assert r.status_code == 401
    assert "missing API key" in r.json()["detail"]


async def test_a_revoked_key_is_refused_with_401_saying_it_was_revoked(
    company: CompanyCtx, runtime: Runtime
) -> None:
    key = await make_key(runtime, company.id, Role.admin)
    async with company.with_key(key) as client:
        assert (await client.get("/v1/company")).status_code == 200
        async with runtime.db.transaction() as session:
            revoked = await tenancy.revoke_api_key(session, prefix=key[:12])
        assert revoked.revoked_at is not None
        r = await until_refused(client, "/v1/company")
    assert r.status_code == 401
    assert r.json()["detail"] == f"API key {key[:12]} was revoked"
    # the company's other keys keep working
    assert (await company.client.get("/v1/company")).status_code == 200


async def test_the_x_api_key_header_authenticates_too(
    company: CompanyCtx, anonymous: httpx.AsyncClient
) -> None:
    r = await anonymous.get("/v1/company", headers={"X-Api-Key": company.api_key})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(company.id)


async def test_keys_are_stored_hashed_and_the_full_key_is_nowhere_in_the_database(
    company: CompanyCtx, runtime: Runtime
) -> None:
    assert (await company.client.get("/v1/company")).status_code == 200  # a use of the key, too
    async with runtime.db.transaction() as session:
        stored = await session.scalar(select(ApiKey).where(ApiKey.prefix == company.api_key[:12]))
        assert stored is not None
        assert stored.key_hash == hash_token(runtime.secret_key, company.api_key)
        assert secret_of(company.api_key) not in stored.key_hash
        tables = list(
            await session.scalars(
                text(
                    "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)"
                    " FROM information_schema.tables"
                    " WHERE table_type = 'BASE TABLE'"
                    " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            )
        )
        assert "public.api_keys" in tables
        holding = [
            table
            for table in tables
            if await session.scalar(
                text(f"SELECT count(*) FROM {table} AS t WHERE strpos(t::text, :secret) > 0"),
                {"secret": secret_of(company.api_key)},
            )
        ]
    assert holding == []


async def test_a_viewer_key_can_read_everything(arranged: Arranged, runtime: Runtime) -> None:
    key = await make_key(runtime, arranged.company.id, Role.viewer)
    cid, did = arranged.conversation_id, arranged.document_id
    async with arranged.company.with_key(key) as viewer:
        for path in (
            "/v1/company",
            "/v1/conversations",
            f"/v1/conversations/{cid}",
            f"/v1/conversations/{cid}/messages",
            f"/v1/conversations/{cid}/traces",
            "/v1/documents?wait=true",
            f"/v1/documents/{did}",
            f"/v1/documents/{did}/chunks",
        ):
            r = await viewer.get(path)
            assert r.status_code == 200, (path, r.text)


async def test_a_viewer_key_gets_403_on_every_write_and_nothing_changes(
    arranged: Arranged, runtime: Runtime
) -> None:
    key = await make_key(runtime, arranged.company.id, Role.viewer)
    cid, did = arranged.conversation_id, arranged.document_id
    before = (await arranged.company.client.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    state = (await arranged.company.client.get(f"/v1/conversations/{cid}")).json()["state"]
    async with arranged.company.with_key(key) as viewer:
        attempts = [
            ("POST", f"/v1/conversations/{cid}/replies", {"text": "Oi, sou um viewer"}, "agent"),
            ("POST", f"/v1/conversations/{cid}/state", {"state": "resolved"}, "agent"),
            ("POST", "/v1/messages", {"contact": {"external_id": "v"}, "text": "oi"}, "agent"),
            ("POST", "/v1/documents?wait=true", {"source": "x.md", "content": "# X\n\nx"}, "admin"),
            ("DELETE", f"/v1/documents/{did}", None, "admin"),
            ("GET", "/v1/webhooks", None, "admin"),
        ]
        for method, path, body, needed in attempts:
            r = await viewer.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json() == {
                "detail": f"this needs the {needed} role; the key has viewer",
                "code": "forbidden",
            }
    after = (await arranged.company.client.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    assert after == before
    assert (await arranged.company.client.get(f"/v1/conversations/{cid}")).json()["state"] == state
    assert (await arranged.company.client.get(f"/v1/documents/{did}")).status_code == 200
    assert [d["source"] for d in (await arranged.company.client.get("/v1/documents")).json()] == [
        "faq/pix.md"
    ]


async def test_an_agent_key_cannot_manage_webhooks_or_documents(arranged: Arranged, runtime: Runtime) -> None:
    key = await make_key(runtime, arranged.company.id, Role.agent)
    eid, did = arranged.endpoint_id, arranged.document_id
    async with arranged.company.with_key(key) as agent:
        attempts = [
            ("GET", "/v1/webhooks", None),
            ("POST", "/v1/webhooks", {"url": "https://example.com/h", "events": ["message.created"]}),
            ("PATCH", f"/v1/webhooks/{eid}", {"enabled": False}),
            ("DELETE", f"/v1/webhooks/{eid}", None),
            ("GET", f"/v1/webhooks/{eid}/deliveries", None),
            ("POST", f"/v1/webhooks/{eid}/rotate-secret", None),
            ("POST", "/v1/documents?wait=true", {"source": "x.md", "content": "# X\n\nx"}),
            ("DELETE", f"/v1/documents/{did}", None),
            ("GET", "/v1/jobs/failed", None),
        ]
        for method, path, body in attempts:
            r = await agent.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["detail"] == "this needs the admin role; the key has agent"
    [endpoint] = (await arranged.company.client.get("/v1/webhooks")).json()
    assert (endpoint["id"], endpoint["enabled"]) == (eid, True)
    assert (await arranged.company.client.get(f"/v1/documents/{did}")).status_code == 200


async def test_an_agent_key_can_answer_customers_and_change_state(
    arranged: Arranged, runtime: Runtime
) -> None:
    key = await make_key(runtime, arranged.company.id, Role.agent)
    cid = arranged.conversation_id
    async with arranged.company.with_key(key) as agent:
        r = await agent.post(f"/v1/conversations/{cid}/replies", json={"text": "Olá, aqui é a Carla."})
        assert r.status_code == 201, r.text
        assert r.json()["meta"] == {"agent_id": key[:12]}
        r = await agent.post(f"/v1/conversations/{cid}/state", json={"state": "resolved"})
        assert r.status_code == 200, r.text
        assert (await agent.get(f"/v1/documents/{arranged.document_id}")).status_code == 200


async def test_an_owner_key_may_do_what_an_admin_may(arranged: Arranged, runtime: Runtime) -> None:
    key = await make_key(runtime, arranged.company.id, Role.owner)
    async with arranged.company.with_key(key) as owner:
        r = await owner.patch(f"/v1/webhooks/{arranged.endpoint_id}", json={"enabled": False})
        assert r.status_code == 200, r.text
        assert (await owner.delete(f"/v1/documents/{arranged.document_id}")).status_code == 204


def test_roles_rank_owner_over_admin_over_agent_over_viewer() -> None:
    order = [Role.viewer, Role.agent, Role.admin, Role.owner]
    for i, holder in enumerate(order):
        for j, needed in enumerate(order):
            assert holder.allows(needed) is (i >= j), (holder, needed)


async def test_a_key_records_when_it_was_last_used(company: CompanyCtx, runtime: Runtime) -> None:
    prefix = company.api_key[:12]
    async with runtime.db.transaction(company.id) as session:
        before = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == prefix))
    assert before is None
    assert (await company.client.get("/v1/company")).status_code == 200
    async with runtime.db.transaction(company.id) as session:
        used = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == prefix))
    assert used is not None
