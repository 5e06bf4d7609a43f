"""``/v1/sla/policies``: admins add, read, replace and delete policies; bad input is a 422
naming the field, never a 500; viewers read and may not write; a policy's team and labels are
the company's own."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from atende.runtime import Runtime
from atende.sla import service
from atende.sla.schemas import PolicyIn
from tests.conftest import CompanyCtx, until


async def test_policies_are_created_read_replaced_and_deleted(company: CompanyCtx) -> None:
    client = company.client
    assert (await client.post("/v1/labels", json={"name": "VIP"})).status_code == 201
    assert (await client.post("/v1/teams", json={"name": "Suporte", "members": []})).status_code == 201
    r = await client.post(
        "/v1/sla/policies",
        json={
            "name": "VIP",
            "labels": ["vip"],
            "teams": ["suporte"],
            "first_response": "15m",
            "next_response": 3600,
            "escalation": "notify",
            "escalation_team": "suporte",
        },
    )
    assert r.status_code == 201, r.text
    vip = r.json()
    assert (vip["position"], vip["first_response_seconds"], vip["next_response_seconds"]) == (0, 900, 3600)
    assert vip["resolution_seconds"] is None and vip["warning_percent"] == 80
    assert len(vip["labels"]) == 1 and vip["escalation_team"] == vip["teams"][0]
    r = await client.post("/v1/sla/policies", json={"name": "Todos", "resolution": "2d"})
    assert (r.status_code, r.json()["position"], r.json()["resolution_seconds"]) == (201, 1, 172800)
    listed = (await client.get("/v1/sla/policies")).json()
    assert [p["name"] for p in listed] == ["VIP", "Todos"]
    r = await client.put(
        f"/v1/sla/policies/{vip['id']}", json={"name": "VIP", "position": 5, "first_response": "1h"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["first_response_seconds"], r.json()["labels"], r.json()["escalation"]) == (
        3600,
        [],
        "none",
    )
    assert [p["name"] for p in (await client.get("/v1/sla/policies")).json()] == ["Todos", "VIP"]
    assert (await client.delete(f"/v1/sla/policies/{vip['id']}")).status_code == 204
    assert (await client.get(f"/v1/sla/policies/{vip['id']}")).status_code == 404


async def test_bad_policies_are_refused_naming_the_field(company: CompanyCtx) -> None:
    client = company.client
    cases = [
        ({"name": "Sem metas"}, "first_response"),
        ({"name": "x", "first_response": "quatro horas"}, "first_response"),
        ({"name": "x", "first_response": "-5"}, "first_response"),
        ({"name": "x", "resolution": "1h", "priorities": ["asap"]}, "priorities"),
        ({"name": "x", "resolution": "1h", "teams": ["nenhum"]}, "teams"),
        ({"name": "x", "resolution": "1h", "labels": ["nenhuma"]}, "labels"),
        ({"name": "x", "resolution": "1h", "escalation": "reassign"}, "escalation_team"),
        ({"name": "x", "resolution": "1h", "warning_percent": 0}, "warning_percent"),
        ({"name": "x", "resolution": "1h", "surprise": True}, "surprise"),
    ]
    for body, field in cases:
        r = await client.post("/v1/sla/policies", json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text, (body, r.text)
    assert (
        await client.post("/v1/sla/policies", json={"name": "Igual", "resolution": "1h"})
    ).status_code == 201
    r = await client.post("/v1/sla/policies", json={"name": "igual", "resolution": "2h"})
    assert (r.status_code, r.json()["field"]) == (422, "name")
    assert len((await client.get("/v1/sla/policies")).json()) == 1


async def test_a_viewer_reads_policies_but_cannot_change_them(company: CompanyCtx) -> None:
    r = await company.client.post("/v1/api-keys", json={"name": "painel", "role": "viewer"})
    assert r.status_code == 201, r.text
    async with company.with_key(r.json()["key"]) as viewer:
        assert (await viewer.get("/v1/sla/policies")).status_code == 200
        r = await viewer.post("/v1/sla/policies", json={"name": "x", "resolution": "1h"})
        assert r.status_code == 403


async def test_two_creates_at_once_of_one_name_in_another_case_refuse_the_second(
    company: CompanyCtx, runtime: Runtime
) -> None:
    """Both pass the name check (neither sees the other's uncommitted policy): the index on
    lower(name) makes the second wait for the first and refuses it as a duplicate, not a 500."""
    async with runtime.db.transaction(company.id) as session:
        await service.create_policy(session, PolicyIn.model_validate({"name": "Suporte", "resolution": "1h"}))
        second = asyncio.create_task(
            company.client.post("/v1/sla/policies", json={"name": "SUPORTE", "resolution": "2h"})
        )
        await until(lambda: inserting_blocked(runtime), seconds=20, what="the second insert waiting")
        assert not second.done()
    r = await second
    assert (r.status_code, r.json()["field"]) == (422, "name"), r.text
    assert "there is a policy named 'SUPORTE' already" in r.json()["detail"]
    assert [p["name"] for p in (await company.client.get("/v1/sla/policies")).json()] == ["Suporte"]


async def inserting_blocked(runtime: Runtime) -> bool:
    """An insert of a policy waits on a lock (the unique index's entry of an uncommitted one)."""
    async with runtime.db.transaction() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO sla_policies%'"
            )
        )
    return bool(waiting)
