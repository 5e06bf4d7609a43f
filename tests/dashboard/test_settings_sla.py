"""Settings → SLA: an admin adds, edits and deletes a policy with the page's forms (the rules
the API applies), bad input is said on the page with the form kept, and the page reads in
Portuguese."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.runtime import Runtime
from atende.sla import service as sla
from atende.sla.models import SlaPolicy
from atende.sla.schemas import PolicyIn
from atende.teams import service as teams
from tests.fixtures.dashboard import Team, csrf_of, post_form, signed_in

PAGE = "/app/settings/sla"


async def form(client: httpx.AsyncClient, path: str, data: dict[str, object]) -> httpx.Response:
    token = csrf_of((await client.get(PAGE)).text)
    return await client.post(path, data={**data, "csrf_token": token})


async def policies(runtime: Runtime, company_id: uuid.UUID) -> list[SlaPolicy]:
    async with runtime.db.transaction(company_id) as session:
        return list(await session.scalars(select(SlaPolicy).order_by(SlaPolicy.position)))


async def test_an_admin_adds_edits_and_deletes_a_policy(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with runtime.db.transaction(team.company_id) as session:
        n2, _ = await teams.put_team(session, None, name="Nível 2", slug="n2", hours=None, members=[])
    async with signed_in(live_server, team.admin) as client:
        shown = (await client.get(PAGE)).text
        for label in ("First response", "Next response", "Resolution", "Escalation team", "Priorities"):
            assert f">{label}<" in shown or f">{label} " in shown or label in shown
        r = await form(
            client,
            PAGE,
            {
                "name": "Urgente",
                "priorities": ["urgent", "high"],
                "first_response": "30m",
                "resolution": "1h30m",
                "warning_percent": "75",
                "escalation": "reassign",
                "escalation_team": str(n2.id),
                "email_team": "on",
            },
        )
        assert (r.status_code, r.headers["location"]) == (303, f"{PAGE}?notice=sla_policy_created")
        [saved] = await policies(runtime, team.company_id)
        assert (saved.priorities, saved.first_response_seconds, saved.resolution_seconds) == (
            ["urgent", "high"],
            1800,
            5400,
        )
        assert (saved.warning_percent, saved.escalation, saved.escalation_team_id, saved.email_team) == (
            75,
            "reassign",
            n2.id,
            True,
        )
        listed = (await client.get(PAGE)).text
        assert "Urgente" in listed and "30m" in listed and "1h30m" in listed
        edit = (await client.get(f"{PAGE}/{saved.id}")).text
        assert 'value="30m"' in edit and "checked" in edit
        r = await form(
            client, f"{PAGE}/{saved.id}", {"name": "Urgente", "priorities": ["urgent"], "next_response": "2h"}
        )
        assert r.status_code == 303
        [saved] = await policies(runtime, team.company_id)
        assert (saved.priorities, saved.first_response_seconds, saved.next_response_seconds) == (
            ["urgent"],
            None,
            7200,
        )
        r = await form(client, f"{PAGE}/{saved.id}/delete", {})
        assert (r.status_code, r.headers["location"]) == (303, f"{PAGE}?notice=sla_policy_deleted")
    assert await policies(runtime, team.company_id) == []


async def test_bad_policy_input_is_said_on_the_page_and_changes_nothing(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.owner) as client:
        r = await form(client, PAGE, {"name": "Sem metas"})
        assert r.status_code == 422
        assert "at least one target" in r.text
        assert 'value="Sem metas"' in r.text  # the form kept
        r = await form(client, PAGE, {"name": "Errada", "first_response": "quatro horas"})
        assert r.status_code == 422
        assert "first_response" in r.text
        r = await form(client, PAGE, {"name": "Sem time", "first_response": "1h", "escalation": "notify"})
        assert r.status_code == 422
        assert "escalation_team" in r.text
        r = await form(client, PAGE, {"name": "Nº", "first_response": "1h", "position": "primeiro"})
        assert r.status_code == 422
    assert await policies(runtime, team.company_id) == []


async def test_the_page_reads_in_portuguese(live_server: str, team: Team) -> None:
    async with signed_in(live_server, team.admin, language="pt-BR") as client:
        shown = (await client.get(PAGE)).text
    assert "Primeira resposta" in shown and "Adicionar política" in shown


async def test_the_inbox_and_the_conversation_show_the_time_to_breach(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with runtime.db.transaction(team.company_id) as session:
        await sla.create_policy(session, PolicyIn(name="Rápida", first_response=600))
    handed_off = datetime.now(UTC) - timedelta(minutes=15)  # no hours: always open
    async with runtime.db.transaction(team.company_id) as session:
        received = await conversations.receive_inbound(
            await session.connection(),
            team.company_id,
            InboundMessage(channel="api", contact_external_id="prazo", text="Oi, preciso de ajuda"),
        )
        conversation = await conversations.get_conversation(
            session, received.conversation_id, for_update=True
        )
        await conversations.hand_to_team(
            session, runtime.jobs, conversation, team_id=None, ticket=False, reason="test", now=handed_off
        )
    cid = received.conversation_id
    async with runtime.db.transaction(team.company_id) as session:  # the job's run (every 15 s)
        await sla.check(session, runtime, team.company_id, datetime.now(UTC))
    async with signed_in(live_server, team.agent) as client:
        listed = (await client.get("/app/inbox")).text
        assert re.search(r'<time datetime="[^"]+" class="overdue">SLA breached 5m', listed), listed
        page = f"/app/conversations/{cid}"
        shown = (await client.get(page)).text
        assert "SLA breached 5m" in shown and "SLA policy: Rápida" in shown
        assert '<label for="priority">Priority</label>' in shown
        r = await post_form(client, f"{page}/priority", {"priority": "urgent"}, page=page)
        assert r.status_code == 303, r.text
        assert "Priority: Urgent" in (await client.get(page)).text
        r = await post_form(client, f"{page}/priority", {"priority": "asap"}, page=page)
        assert r.status_code == 422
