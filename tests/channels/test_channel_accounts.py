"""``/v1/channel-accounts``: admins list, create, change, disable and delete their company's
accounts; secrets are write-only; the web chat's widget key is one of them."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from atende.channels import registry
from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.channels.test_channel_plugin import KIND, ParrotChannel
from tests.conftest import CompanyCtx

PATH = "/v1/channel-accounts"


async def key_with_role(runtime: Runtime, company: CompanyCtx, role: Role) -> str:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name=role.value, role=role
        )
    return full


async def test_every_company_has_its_web_chat_account_keyed_by_its_widget_key(company: CompanyCtx) -> None:
    r = await company.client.get(PATH)
    assert r.status_code == 200
    [account] = r.json()
    assert (account["kind"], account["external_id"], account["enabled"]) == (
        "webchat",
        company.widget_key,
        True,
    )
    assert account["secrets_set"] == [] and account["config"] == {}
    # the account is the one place the key is kept: the company shows none of its own
    assert "widget_key" not in (await company.client.get("/v1/company")).json()


async def test_a_web_chat_account_routes_its_widget_key_while_enabled(company: CompanyCtx) -> None:
    second = f"wk_{uuid.uuid4().hex}"
    r = await company.client.post(
        PATH, json={"kind": "webchat", "external_id": second, "display_name": "Blog"}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert (await company.client.post(f"/widget/v1/{second}/conversations")).status_code == 201

    r = await company.client.patch(f"{PATH}/{created['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert (await company.client.post(f"/widget/v1/{second}/conversations")).status_code == 404
    # the first key still works
    assert (await company.client.post(f"/widget/v1/{company.widget_key}/conversations")).status_code == 201

    assert (await company.client.delete(f"{PATH}/{created['id']}")).status_code == 204
    assert (await company.client.get(f"{PATH}/{created['id']}")).status_code == 404
    assert [a["external_id"] for a in (await company.client.get(PATH)).json()] == [company.widget_key]


async def test_the_last_web_chat_account_is_disabled_not_deleted(company: CompanyCtx) -> None:
    """A company keeps a widget key: deleting its only web chat account is refused with what
    to do instead; a new key is a new account, after which the old one can go."""
    [first] = (await company.client.get(PATH)).json()
    r = await company.client.delete(f"{PATH}/{first['id']}")
    assert r.status_code == 409
    assert r.json()["code"] == "conflict" and "disable it instead" in r.json()["detail"]
    assert (await company.client.post(f"/widget/v1/{company.widget_key}/conversations")).status_code == 201

    r = await company.client.patch(f"{PATH}/{first['id']}", json={"enabled": False})  # what it says
    assert r.status_code == 200
    assert (await company.client.post(f"/widget/v1/{company.widget_key}/conversations")).status_code == 404

    new_key = f"wk_{uuid.uuid4().hex}"
    r = await company.client.post(PATH, json={"kind": "webchat", "external_id": new_key})
    assert r.status_code == 201, r.text
    second = r.json()
    assert (await company.client.delete(f"{PATH}/{first['id']}")).status_code == 204
    assert (await company.client.post(f"/widget/v1/{new_key}/conversations")).status_code == 201
    assert (await company.client.delete(f"{PATH}/{second['id']}")).status_code == 409

    r = await company.client.post(PATH, json={"kind": "webchat", "external_id": f"wk_{uuid.uuid4().hex}"})
    third = r.json()
    both = await asyncio.gather(*(company.client.delete(f"{PATH}/{a['id']}") for a in (second, third)))
    assert sorted(r.status_code for r in both) == [204, 409]  # two at once still leave one
    assert len((await company.client.get(PATH, params={"kind": "webchat"})).json()) == 1


async def test_secrets_are_write_only_and_stored_encrypted(company: CompanyCtx, runtime: Runtime) -> None:
    registry.register(ParrotChannel())
    try:
        body = {
            "kind": KIND,
            "external_id": f"+{uuid.uuid4().int % 10**12}",
            "config": {"signature": "x"},
            "secrets": {"access_token": "s3cr3t-value"},
        }
        r = await company.client.post(PATH, json=body)
        assert r.status_code == 201, r.text
        account = r.json()
        assert account["secrets_set"] == ["access_token"]
        listed = await company.client.get(PATH)
        one = await company.client.get(f"{PATH}/{account['id']}")
        for response in (r, listed, one):
            assert "s3cr3t-value" not in response.text
        async with runtime.db.transaction(company.id) as session:
            row = await session.get_one(ChannelAccount, uuid.UUID(account["id"]))
            assert "s3cr3t-value" not in str(row.secrets) and row.secrets["access_token"].startswith("gAAAA")

        # a secret left out is kept; "" removes it; a name the channel lacks is refused
        r = await company.client.patch(f"{PATH}/{account['id']}", json={"display_name": "SAC"})
        assert r.json()["secrets_set"] == ["access_token"]
        r = await company.client.patch(f"{PATH}/{account['id']}", json={"secrets": {"password": "x"}})
        assert r.status_code == 422 and r.json()["field"] == "secrets"
        r = await company.client.patch(f"{PATH}/{account['id']}", json={"secrets": {"access_token": ""}})
        assert r.json()["secrets_set"] == []
        # the configuration is validated by the channel's own schema
        r = await company.client.patch(f"{PATH}/{account['id']}", json={"config": {"colour": "red"}})
        assert r.status_code == 422 and r.json()["field"] == "config"
        r = await company.client.post(PATH, json={**body, "external_id": "+1", "config": {"signature": 7}})
        assert r.status_code == 422 and "config.signature" in r.json()["detail"]
    finally:
        registry.unregister(KIND)


async def test_routing_ids_are_unique_across_companies(
    company: CompanyCtx, other_company: CompanyCtx
) -> None:
    r = await other_company.client.post(PATH, json={"kind": "webchat", "external_id": company.widget_key})
    assert r.status_code == 409 and r.json()["field"] == "external_id"


async def test_unknown_kinds_and_the_api_channel_have_no_accounts(company: CompanyCtx) -> None:
    r = await company.client.post(PATH, json={"kind": "pigeon", "external_id": "x"})
    assert r.status_code == 422 and "webchat" in r.json()["detail"]
    r = await company.client.post(PATH, json={"kind": "api", "external_id": "x"})
    assert r.status_code == 422 and r.json()["field"] == "kind"


async def test_admins_alone_manage_accounts_and_only_their_company_s(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    [mine] = (await company.client.get(PATH)).json()
    async with company.with_key(await key_with_role(runtime, company, Role.agent)) as agent:
        assert (await agent.get(PATH)).status_code == 403
        r = await agent.post(PATH, json={"kind": "webchat", "external_id": f"wk_{uuid.uuid4().hex}"})
        assert r.status_code == 403
        assert (await agent.patch(f"{PATH}/{mine['id']}", json={"enabled": False})).status_code == 403
        assert (await agent.delete(f"{PATH}/{mine['id']}")).status_code == 403
    other: httpx.AsyncClient = other_company.client
    assert mine["id"] not in [a["id"] for a in (await other.get(PATH)).json()]
    assert (await other.get(f"{PATH}/{mine['id']}")).status_code == 404
    assert (await other.patch(f"{PATH}/{mine['id']}", json={"enabled": False})).status_code == 404
    assert (await other.delete(f"{PATH}/{mine['id']}")).status_code == 404
    assert (await company.client.get(f"{PATH}/{mine['id']}")).json()["enabled"] is True
