"""A conversation's page over HTTP: the thread with authors, notes marked private, delivery
statuses in words, the bot's sources and a link to its turn's trace, the handoff reason in
plain words, the customer; every action as the page's forms send it (CSRF token, HTMX
headers), the role each needs, another company's id, and bad input said on the page."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atende.conversations.models import Conversation, Message
from atende.dashboard import live
from atende.media.models import Media
from atende.runtime import Runtime
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.fixtures.dashboard import Team, browser_client, csrf_of, make_team, signed_in
from tests.fixtures.inbox import Shop, make_shop

HTMX = {"HX-Request": "true"}


@pytest.fixture
async def shop(runtime: Runtime, team: Team) -> Shop:
    return await make_shop(runtime, team)


async def act(client: httpx.AsyncClient, shop: Shop, key: str, action: str, **data: str) -> httpx.Response:
    """Send one of the page's forms as HTMX does (the CSRF token in its header)."""
    page = await client.get(shop.url(key))
    return await client.post(
        f"{shop.url(key)}/{action}", data=data, headers={**HTMX, "X-CSRF-Token": csrf_of(page.text)}
    )


async def stored(runtime: Runtime, shop: Shop, key: str) -> tuple[Conversation, list[Message]]:
    async with runtime.db.transaction(shop.team.company_id) as session:
        conversation = await session.get_one(Conversation, shop.ids[key])
        messages = list(
            await session.scalars(
                select(Message).where(Message.conversation_id == shop.ids[key]).order_by(Message.seq)
            )
        )
    return conversation, messages


async def test_the_thread_shows_who_said_what_with_evidence_and_delivery(
    live_server: str, shop: Shop
) -> None:
    async with signed_in(live_server, shop.team.viewer) as client:
        mine = (await client.get(shop.url("mine"))).text
        carla = (await client.get(shop.url("handed_off"))).text
        dora = (await client.get(shop.url("answered"))).text
        traces = await client.get(f"{shop.url('answered')}/traces")
    for shown in (
        "Minha encomenda chegou quebrada",
        "Private note by Ana Agent",
        "Cliente antigo, priorizar a troca",
        "Delivery: Delivered",
        "Delivery: Failed (the provider refused it)",
        "Ana Agent assigned it to Ana Agent.",
        "Assigned to Ana Agent",
        "vip",
    ):
        assert shown in mine, shown
    for shown in (
        "Why it came to the team:</strong> The customer asked to talk to a person.",
        "Handed to the team. The customer asked to talk to a person.",
        "carla@example.com",
        "+55 81 99999-0000",
        "Web chat",
        "<dd>Portuguese</dd>",
        "Team: Suporte",
    ):
        assert shown in carla, shown
    assert "Sources:" in dora and "Entregas › Prazos" in dora
    assert "How the bot decided this answer" in dora
    assert traces.status_code == 200
    for shown in (
        "Qual o prazo de entrega para Recife?",
        "Entregas › Prazos",
        "Full-text score (rank)",
        "7.250",
        "Nordeste: 5 a 8",
        "The bot answered from “Entregas”, which covers 82% of the question&#39;s words.",
    ):
        assert shown in traces.text, shown
    assert "answered from &#39;Entregas&#39; (coverage 0.82)" in traces.text
    # a viewer reads and does nothing: no action is offered
    for hidden in ("Send</button>", "Resolve</button>", "Add note</button>", "Assign to me"):
        assert hidden not in mine, hidden


async def test_previous_conversations_of_the_customer_are_listed(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    async with runtime.db.transaction(shop.team.company_id) as session:
        old = Conversation(
            id=uuid.uuid4(),
            contact_id=shop.contacts["mine"],
            channel="api",
            state="resolved",
            created_at=datetime.now(UTC) - timedelta(days=40),
            updated_at=datetime.now(UTC) - timedelta(days=40),
        )
        session.add(old)
    async with signed_in(live_server, shop.team.agent) as client:
        page = (await client.get(shop.url("mine"))).text
    assert f'href="/app/conversations/{old.id}"' in page
    assert "Previous conversations" in page


async def test_an_agent_works_a_conversation_through_the_pages_forms(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    agent = shop.team.agent
    async with signed_in(live_server, agent) as client:
        r = await act(client, shop, "handed_off", "assign", agent="me")
        assert r.status_code == 200, r.text
        assert "Assigned to Ana Agent" in r.text and "Assigned." in r.text
        r = await act(client, shop, "handed_off", "reply", text="Olá Carla, vou verificar o pedido.")
        assert r.status_code == 200, r.text
        assert "Olá Carla, vou verificar o pedido." in r.text and "Reply sent." in r.text
        r = await act(client, shop, "handed_off", "note", text="Verificar com a transportadora")
        assert "Private note by Ana Agent" in r.text
        r = await act(client, shop, "handed_off", "labels", label="Entrega atrasada")  # a new label
        assert "Entrega atrasada" in r.text
        conversation, messages = await stored(runtime, shop, "handed_off")
        assert (conversation.state, conversation.assignee_id) == ("human", agent.user_id)
        reply, note = messages[-2:]
        assert (reply.author, reply.delivery_status, reply.author_user_id) == ("agent", "sent", None)
        assert reply.meta == {"agent_id": str(agent.user_id)}
        assert (note.author, note.delivery_status, note.author_user_id) == ("note", None, agent.user_id)
        r = await act(client, shop, "handed_off", "team", team="suporte")
        assert r.status_code == 200, r.text
        assert "Given to the team" in r.text
        r = await act(client, shop, "handed_off", "handback")
        assert "Handed back to the bot" in r.text
        r = await act(client, shop, "handed_off", "resolve")
        assert "Resolved." in r.text and "Reopen</button>" in r.text
        r = await act(client, shop, "handed_off", "reopen")
        assert "Reopened: it is yours." in r.text
        until = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
        r = await act(client, shop, "handed_off", "snooze", until=until, zone="UTC")
        assert r.status_code == 200, r.text
        conversation, _ = await stored(runtime, shop, "handed_off")
        assert conversation.snoozed_until == datetime.fromisoformat(until).replace(tzinfo=UTC)
        r = await act(client, shop, "handed_off", "unsnooze")
        assert "Woken up" in r.text
        labels_on = await client.get(shop.url("handed_off"))
        urgente = labels_on.text.split('name="label" value="', 1)[1].split('"', 1)[0]
        r = await act(client, shop, "handed_off", "labels/remove", label=urgente)
        assert "Label removed." in r.text
        # without HTMX, a form answers with the page again
        page = await client.get(shop.url("handed_off"))
        r = await client.post(f"{shop.url('handed_off')}/resolve", data={"csrf_token": csrf_of(page.text)})
        assert (r.status_code, r.headers["location"]) == (303, f"{shop.url('handed_off')}?notice=resolve")


@pytest.mark.parametrize(
    ("action", "data", "says"),
    [
        ("reply", {"text": "x" * 5001}, "The text is too long: 5001 characters; at most"),
        ("reply", {"text": "   "}, "Write something first."),
        ("note", {"text": ""}, "Write something first."),
        ("assign", {"agent": "nobody@example.com"}, "That person is not an agent of this company."),
        ("team", {"team": "juridico"}, "The company has no such team."),
        ("reopen", {}, "Only a resolved conversation can be reopened."),
        ("snooze", {"until": "yesterday"}, "Choose a date and time."),
        ("snooze", {"until": "2020-01-01T10:00", "zone": "UTC"}, "Choose a time in the future."),
        ("snooze", {"next_business_day": "yes"}, "No business hours are set"),
        ("unsnooze", {}, "The conversation is not snoozed."),
        ("labels", {"label": "  "}, "A label's name has 1 to 50 characters."),
        ("labels/remove", {"label": "nope"}, "The company has no such label."),
    ],
)
async def test_bad_input_is_a_notice_and_changes_nothing(
    live_server: str, shop: Shop, runtime: Runtime, action: str, data: dict[str, str], says: str
) -> None:
    before = await stored(runtime, shop, "handed_off")
    async with signed_in(live_server, shop.team.agent) as client:
        r = await act(client, shop, "handed_off", action, **data)
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["HX-Retarget"] == "#notice"
    assert says in html.unescape(r.text)
    after = await stored(runtime, shop, "handed_off")
    assert (after[0].state, after[0].assignee_id, len(after[1])) == (
        before[0].state,
        before[0].assignee_id,
        len(before[1]),
    )


async def test_a_viewer_is_refused_every_action_and_another_companys_id_is_404(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    rival = await make_team(runtime, name="Rival")
    theirs = await make_shop(runtime, rival)
    before = await stored(runtime, theirs, "handed_off")
    async with signed_in(live_server, shop.team.viewer) as client:
        for action in ("reply", "note", "assign", "resolve", "handback", "snooze", "labels"):
            r = await act(client, shop, "handed_off", action, text="hi", agent="me", label="x")
            assert r.status_code == 403, (action, r.text)
            assert "needs the Agent role" in r.text
        page = (await client.get(shop.url("handed_off"))).text
        assert (await client.get(f"/app/conversations/{theirs.ids['handed_off']}")).status_code == 404
    async with signed_in(live_server, shop.team.owner) as client:
        token = csrf_of((await client.get("/app/inbox")).text)
        for action in ("reply", "resolve", "assign", "labels", "suggestion"):
            r = await client.post(
                f"/app/conversations/{theirs.ids['handed_off']}/{action}",
                data={"text": "hi", "agent": "me", "label": "vip", "csrf_token": token},
            )
            assert r.status_code == 404, (action, r.text)
        assert (await client.get(f"/app/conversations/{theirs.ids['handed_off']}/traces")).status_code == 404
    assert "Send</button>" not in page
    after = await stored(runtime, theirs, "handed_off")
    assert (after[0].state, after[0].updated_at, [m.id for m in after[1]]) == (
        before[0].state,
        before[0].updated_at,
        [m.id for m in before[1]],
    )


async def test_a_stale_form_and_a_closed_session_change_nothing(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    before = await stored(runtime, shop, "handed_off")
    async with signed_in(live_server, shop.team.agent) as client:
        r = await client.post(
            f"{shop.url('handed_off')}/resolve", headers={**HTMX, "X-CSRF-Token": "a-token-from-yesterday"}
        )
        assert r.status_code == 403
        assert "This form has expired" in r.text
        page = await client.get(shop.url("handed_off"))
        token = csrf_of(page.text)
        await client.post("/app/logout", data={"csrf_token": token})
        r = await client.post(f"{shop.url('handed_off')}/resolve", headers={**HTMX, "X-CSRF-Token": token})
        assert r.status_code in (401, 403)
    after = await stored(runtime, shop, "handed_off")
    assert after[0].state == before[0].state == "waiting_human"


async def test_availability_is_set_by_the_agent_in_the_header(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    async with signed_in(live_server, shop.team.agent) as client:
        page = await client.get("/app/inbox")
        assert 'label for="availability">Your availability</label>' in page.text
        r = await client.post(
            "/app/availability",
            data={"availability": "away", "next": "/app/inbox?view=mine", "csrf_token": csrf_of(page.text)},
        )
        assert (r.status_code, r.headers["location"]) == (303, "/app/inbox?notice=availability_away")
        page = await client.get("/app/inbox?notice=availability_away")
        assert "You are away: no new conversations come to you." in page.text
        assert '<option value="away" selected>' in page.text
        r = await client.post(
            "/app/availability", data={"availability": "asleep", "csrf_token": csrf_of(page.text)}
        )
        assert r.status_code == 422
    async with runtime.db.transaction(shop.team.company_id) as session:
        [me] = [a for a in await teams.agents(session) if a.user.id == shop.team.agent.user_id]
    assert me.member.availability == "away"
    async with signed_in(live_server, shop.team.viewer) as client:
        page = await client.get("/app/inbox")
        assert "Your availability" not in page.text
        r = await client.post(
            "/app/availability", data={"availability": "online", "csrf_token": csrf_of(page.text)}
        )
        assert r.status_code == 403


async def test_the_live_stream_is_the_members_own(live_server: str, shop: Shop, runtime: Runtime) -> None:
    rival = await make_team(runtime, name="Rival")
    theirs = await make_shop(runtime, rival)
    async with signed_in(live_server, shop.team.viewer) as client:
        r = await client.get("/app/live", params={"conversation": str(theirs.ids["mine"])})
        assert r.status_code == 404
        async with client.stream(
            "GET", "/app/live", params={"conversation": str(shop.ids["mine"])}
        ) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                assert line == "event: ready"
                break
    async with browser_client(live_server) as anonymous:
        r = await anonymous.get("/app/live")
        assert (r.status_code, r.headers["location"]) == (303, "/app/login?next=/app/live")


async def test_open_inbox_screens_check_the_activity_together_and_each_hears_a_customer(
    live_server: str, shop: Shop, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six inbox screens of one company open at once (tabs of its agents) share each check of
    the company's latest activity instead of reading it six times, and every one still hears
    ``inbox`` when a customer writes (announced on the conversation's topic only: the check
    finds it)."""
    reads = 0
    real = live.listing.activity_since

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(live.listing, "activity_since", counted)
    async with runtime.db.transaction() as session:
        _key, api_key = await tenancy.create_api_key(
            session,
            secret_key=runtime.secret_key,
            company_id=shop.team.company_id,
            name="crm",
            role=Role.admin,
        )
    heard: list[list[str]] = [[] for _ in range(6)]
    ready = [asyncio.Event() for _ in range(6)]

    async def screen(client: httpx.AsyncClient, i: int) -> None:
        async with client.stream("GET", "/app/live", timeout=httpx.Timeout(15, read=60)) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("event:"):
                    heard[i].append(line.removeprefix("event:").strip())
                    ready[i].set()

    headers = {"Authorization": f"Bearer {api_key}"}
    async with (
        signed_in(live_server, shop.team.agent) as agent,
        signed_in(live_server, shop.team.admin) as admin,
        httpx.AsyncClient(base_url=live_server, headers=headers, timeout=15) as api,
    ):
        screens = [asyncio.create_task(screen(agent if i % 2 else admin, i)) for i in range(6)]
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 15)
            reads, started = 0, time.monotonic()
            posted = await api.post(
                "/v1/messages", json={"contact": {"external_id": "zé"}, "text": "Alguém aí?"}
            )
            assert posted.status_code == 201
            async with asyncio.timeout(live.CHECK_SECONDS * 3 + 10):
                while not all("inbox" in h for h in heard):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(live.CHECK_SECONDS * 2)
            checks = (time.monotonic() - started) / live.CHECK_SECONDS + 1
        finally:
            for task in screens:
                task.cancel()
            await asyncio.gather(*screens, return_exceptions=True)
    assert all(h[0] == "ready" for h in heard)
    assert 1 <= reads <= checks + 1  # each screen reading for itself: six times that


async def test_a_file_sent_on_a_channel_that_cannot_carry_it_is_a_notice_and_nothing_is_kept(
    live_server: str, shop: Shop, runtime: Runtime
) -> None:
    """The web chat sends no files: a reply form carrying one anyway (multipart, as a page
    without JavaScript sends it) is said on the page, 422; no message, no file kept."""
    before = await stored(runtime, shop, "handed_off")
    async with runtime.db.transaction(shop.team.company_id) as session:
        files_before = await session.scalar(select(func.count()).select_from(Media))
    async with signed_in(live_server, shop.team.agent) as client:
        page = await client.get(shop.url("handed_off"))
        assert "Attach a file" not in page.text
        r = await client.post(
            f"{shop.url('handed_off')}/reply",
            data={"text": "Segue a foto.", "csrf_token": csrf_of(page.text)},
            files={"file": ("foto.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")},
        )
    assert r.status_code == 422, r.text
    assert "This channel cannot send files: send text only." in html.unescape(r.text)
    after = await stored(runtime, shop, "handed_off")
    assert len(after[1]) == len(before[1])
    async with runtime.db.transaction(shop.team.company_id) as session:
        assert await session.scalar(select(func.count()).select_from(Media)) == files_before
