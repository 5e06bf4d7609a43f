"""Labels through the live server: a company's own set, on and off its conversations, by id
or by name; agents may change them, viewers only read; another company's labels and
conversations answer 404 and nothing changes."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from atende.conversations.models import ConversationLabel, Label
from atende.conversations.service import queue_topic
from atende.db.pubsub import Listener
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx


async def key_with_role(runtime: Runtime, company: CompanyCtx, role: Role) -> httpx.AsyncClient:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name=role.value, role=role
        )
    return company.with_key(full)


async def conversation_of(company: CompanyCtx) -> str:
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": f"c-{uuid.uuid4().hex[:6]}"}, "text": "Oi"}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["conversation_id"])


async def test_agents_create_list_and_delete_labels(runtime: Runtime, company: CompanyCtx) -> None:
    agent = await key_with_role(runtime, company, Role.agent)
    r = await agent.post("/v1/labels", json={"name": "  Troca   de produto ", "color": "#1F6FEB"})
    assert r.status_code == 201, r.text
    troca = r.json()
    assert (troca["name"], troca["color"]) == ("Troca de produto", "#1f6feb")
    r = await agent.post("/v1/labels", json={"name": "urgente"})
    assert r.status_code == 201
    assert [label["name"] for label in (await agent.get("/v1/labels")).json()] == [
        "Troca de produto",
        "urgente",
    ]
    r = await agent.delete("/v1/labels/urgente")  # by name
    assert r.status_code == 204
    r = await agent.delete(f"/v1/labels/{troca['id']}")  # by id
    assert r.status_code == 204
    assert (await agent.get("/v1/labels")).json() == []
    r = await agent.delete("/v1/labels/urgente")
    assert r.status_code == 404
    assert r.json()["detail"] == "no label 'urgente'"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"name": "VIP"}, 409, "a label 'VIP' already exists"),
        ({"name": "vip"}, 409, "a label 'vip' already exists"),
        ({"name": "   "}, 422, "a label needs a name"),
        ({"name": "x" * 51}, 422, "at most 50 characters"),
        ({"name": "bell\u0007"}, 422, "control characters"),
        ({"name": "nul\u0000"}, 422, "control characters"),
        ({"name": "ok", "color": "blue"}, 422, "is not a colour like #1f6feb"),
        ({"name": "ok", "extra": 1}, 422, "Extra inputs are not permitted"),
        ({}, 422, "Field required"),
    ],
)
async def test_a_bad_label_is_refused_with_a_clear_message(
    company: CompanyCtx, body: dict[str, object], status: int, says: str
) -> None:
    assert (await company.client.post("/v1/labels", json={"name": "vip"})).status_code == 201
    r = await company.client.post("/v1/labels", json=body)
    assert r.status_code == status, r.text
    assert says in r.text
    assert [label["name"] for label in (await company.client.get("/v1/labels")).json()] == ["vip"]


async def test_a_viewer_reads_labels_but_changes_none(runtime: Runtime, company: CompanyCtx) -> None:
    conversation = await conversation_of(company)
    await company.client.post("/v1/labels", json={"name": "vip"})
    viewer = await key_with_role(runtime, company, Role.viewer)
    assert [label["name"] for label in (await viewer.get("/v1/labels")).json()] == ["vip"]
    for method, path, body in (
        ("POST", "/v1/labels", {"name": "novo"}),
        ("DELETE", "/v1/labels/vip", None),
        ("POST", f"/v1/conversations/{conversation}/labels", {"label": "vip"}),
        ("DELETE", f"/v1/conversations/{conversation}/labels/vip", None),
    ):
        r = await viewer.request(method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
    assert (await viewer.get(f"/v1/conversations/{conversation}/labels")).json() == []


async def test_labels_go_on_and_off_a_conversation_by_name_or_id(company: CompanyCtx) -> None:
    conversation = await conversation_of(company)
    vip = (await company.client.post("/v1/labels", json={"name": "VIP"})).json()
    await company.client.post("/v1/labels", json={"name": "atraso"})
    path = f"/v1/conversations/{conversation}/labels"
    r = await company.client.post(path, json={"label": "vip"})  # a name in any case
    assert r.status_code == 200, r.text
    assert [label["name"] for label in r.json()] == ["VIP"]
    r = await company.client.post(path, json={"label": "atraso"})
    assert [label["name"] for label in r.json()] == ["atraso", "VIP"]
    r = await company.client.post(path, json={"label": vip["id"]})  # again, by id: nothing changes
    assert [label["name"] for label in r.json()] == ["atraso", "VIP"]
    detail = (await company.client.get(f"/v1/conversations/{conversation}")).json()
    assert [label["name"] for label in detail["labels"]] == ["atraso", "VIP"]
    r = await company.client.delete(f"{path}/atraso")
    assert [label["name"] for label in r.json()] == ["VIP"]
    r = await company.client.delete(f"{path}/atraso")  # already off: nothing changes
    assert r.status_code == 200
    assert [label["name"] for label in r.json()] == ["VIP"]
    r = await company.client.post(path, json={"label": "inexistente"})
    assert r.status_code == 404
    assert r.json()["detail"] == "no label 'inexistente'"
    # deleting a label takes it off every conversation
    assert (await company.client.delete(f"/v1/labels/{vip['id']}")).status_code == 204
    assert (await company.client.get(path)).json() == []


async def test_another_companys_label_cannot_be_put_on_a_conversation(
    runtime: Runtime, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    mine = await conversation_of(company)
    theirs = await conversation_of(other_company)
    their_label = (await other_company.client.post("/v1/labels", json={"name": "vip"})).json()
    await company.client.post("/v1/labels", json={"name": "nosso"})
    # B's label on A's conversation, by id and by name: A has no such label
    for ref in (their_label["id"], "vip"):
        r = await company.client.post(f"/v1/conversations/{mine}/labels", json={"label": ref})
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), r.text
    # A's label on B's conversation: A has no such conversation
    r = await company.client.post(f"/v1/conversations/{theirs}/labels", json={"label": "nosso"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await company.client.delete(f"/v1/labels/{their_label['id']}")
    assert r.status_code == 404
    async with runtime.db.transaction(other_company.id) as session:
        assert await session.scalar(select(func.count()).select_from(ConversationLabel)) == 0
        assert [label.name for label in await session.scalars(select(Label))] == ["vip"]
    async with runtime.db.transaction(company.id) as session:
        assert await session.scalar(select(func.count()).select_from(ConversationLabel)) == 0


async def test_a_label_change_reaches_agents_screens_live(runtime: Runtime, company: CompanyCtx) -> None:
    conversation = await conversation_of(company)
    await company.client.post("/v1/labels", json={"name": "vip"})
    listener = Listener(runtime.db.url)
    listener.start()
    try:
        with listener.subscribe(queue_topic(company.id)) as sub:
            await asyncio.sleep(0.2)  # LISTEN is in place
            await company.client.post(f"/v1/conversations/{conversation}/labels", json={"label": "vip"})
            event = None
            while event is None or event["kind"] != "labels":  # the handoff's may come first
                event = await sub.next(timeout=10)
                assert event is not None, "no labels event within 10 s"
    finally:
        await listener.stop()
    assert (event["conversation_id"], event["labels"]) == (conversation, ["vip"])
