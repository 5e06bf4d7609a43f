"""Reopening: an agent reopens a resolved conversation to follow it up; it becomes theirs and
the bot stays silent. Only a resolved conversation reopens."""

from __future__ import annotations

import uuid

from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask
from tests.tenancy.test_support_api import add_member, new_key


async def test_an_agent_reopens_a_resolved_conversation_it_becomes_theirs_and_the_bot_stays_silent(
    company: CompanyCtx, runtime: Runtime
) -> None:
    body = await ask(company.client, "Olá, meu pedido chegou?", contact="reaberta")
    cid = body["conversation_id"]
    r = await company.client.post(f"/v1/conversations/{cid}/resolve")
    assert r.status_code == 200, r.text
    user_id, email = await add_member(runtime, company, Role.agent, name="Dora")
    async with company.with_key(await new_key(runtime, company, Role.agent, email)) as dora:
        r = await dora.post(f"/v1/conversations/{cid}/reopen", json={"reason": "confirmar a entrega"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["assignee_id"]) == ("human", user_id)
    detail = (await company.client.get(f"/v1/conversations/{cid}")).json()
    last = detail["transitions"][-1]
    assert (last["from_state"], last["to_state"], last["actor_type"], last["actor_id"], last["reason"]) == (
        "resolved",
        "human",
        "agent",
        user_id,
        "confirmar a entrega",
    )
    # the customer writes: the conversation is a person's, so the bot does not answer
    r = await company.client.post(
        "/v1/messages?wait=2", json={"contact": {"external_id": "reaberta"}, "text": "Obrigado!"}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["conversation_id"], r.json()["reply"]) == (cid, None)


async def test_only_a_resolved_conversation_reopens(company: CompanyCtx, runtime: Runtime) -> None:
    body = await ask(company.client, "Oi")
    cid = body["conversation_id"]
    r = await company.client.post(f"/v1/conversations/{cid}/reopen")
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "only a resolved conversation can be reopened; this one is bot"
    r = await company.client.post(f"/v1/conversations/{cid}/resolve")
    assert r.status_code == 200, r.text
    async with company.with_key(await new_key(runtime, company, Role.viewer)) as viewer:
        r = await viewer.post(f"/v1/conversations/{cid}/reopen")
        assert r.status_code == 403, r.text
    r = await company.client.post(f"/v1/conversations/{cid}/reopen", json={"reason": "x" * 501})
    assert r.status_code == 422, r.text
    r = await company.client.post(f"/v1/conversations/{uuid.uuid4()}/reopen")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert (await company.client.get(f"/v1/conversations/{cid}")).json()["state"] == "resolved"
    # with the company's key (no person) it reopens unassigned
    r = await company.client.post(f"/v1/conversations/{cid}/reopen")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["assignee_id"]) == ("human", None)
