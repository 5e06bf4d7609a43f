"""Giving a conversation to a team (``POST /v1/conversations/{id}/team``, the dashboard's
"Give to team"): it waits in that team's queue with nobody assigned; one waiting already moves
queues and keeps its wait; an unknown team or the same queue is a 422 naming ``team``."""

from __future__ import annotations

from atende.runtime import Runtime
from atende.teams import service as teams
from tests.conftest import CompanyCtx, ask


async def test_a_conversation_goes_to_a_teams_queue_and_moves_between_queues(
    company: CompanyCtx, runtime: Runtime
) -> None:
    async with runtime.db.transaction(company.id) as session:
        for slug in ("suporte", "vendas"):
            await teams.put_team(session, None, name=slug.title(), slug=slug, hours=None, members=[])
    body = await ask(company.client, "Olá, qual o horário de vocês?", contact="fila")
    cid = body["conversation_id"]
    r = await company.client.post(f"/v1/conversations/{cid}/team", json={"team": "suporte"})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert (moved["state"], moved["assignee_id"]) == ("waiting_human", None)
    queue = (await company.client.get("/v1/queue", params={"team": "suporte"})).json()
    assert cid in {item["id"] for item in queue}
    r = await company.client.post(f"/v1/conversations/{cid}/team", json={"team": "vendas"})
    assert r.status_code == 200, r.text
    assert r.json()["waiting_since"] == moved["waiting_since"]  # it keeps its wait
    assert r.json()["team_id"] != moved["team_id"]
    r = await company.client.post(f"/v1/conversations/{cid}/team", json={"team": "vendas"})
    assert (r.status_code, r.json()["field"]) == (422, "team")
    r = await company.client.post(f"/v1/conversations/{cid}/team", json={"team": "juridico"})
    assert (r.status_code, r.json()["field"]) == (422, "team")
    detail = (await company.client.get(f"/v1/conversations/{cid}")).json()
    assert [t["to_state"] for t in detail["transitions"]][-2:] == ["waiting_human", "waiting_human"]
