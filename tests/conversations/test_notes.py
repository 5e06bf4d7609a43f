"""Private notes: the team reads them in the thread; the customer never receives or sees them
(the outbox, the web chat's history and stream, the API channel's polling, ``message.created``
webhooks), and the bot never reads them as part of the conversation."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from atende.channels import registry
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.channels.loopback_channel import KIND, FakeProvider, LoopbackChannel
from tests.channels.test_outbox import open_conversation, until_status
from tests.channels.test_webchat import history, messages_of, read_events, say, start, wait_for
from tests.conftest import CompanyCtx, ask
from tests.fakes.loopback import running
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.llm.test_assistant_api import use_llm
from tests.tenancy.test_support_api import add_member, new_key

SECRET = "NOTA INTERNA: cliente VIP, oferecer frete grátis"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


async def add_note(client: httpx.AsyncClient, conversation_id: str | uuid.UUID, note: str = SECRET) -> dict:
    r = await client.post(f"/v1/conversations/{conversation_id}/notes", json={"text": note})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def thread(client: httpx.AsyncClient, conversation_id: str | uuid.UUID, **params: Any) -> list[dict]:
    r = await client.get(f"/v1/conversations/{conversation_id}/messages", params=params)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def jobs_for(runtime: Runtime, message_id: str) -> int:
    async with runtime.db.transaction() as session:
        count = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'message_id' = :m"), {"m": message_id}
        )
    return int(count or 0)


async def test_the_team_reads_a_note_in_the_thread_and_the_web_chat_visitor_never_sees_it(
    company: CompanyCtx, live_server: str, runtime: Runtime
) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as web:
        visitor = await start(web, company.widget_key)
        await say(web, visitor, "Meu pedido 123 chegou quebrado")
        await wait_for(web, visitor, lambda ms: any(m["author"] == "bot" for m in ms))
        state = (await company.client.get(f"/v1/conversations/{visitor.conversation_id}")).json()["state"]

        note = await add_note(company.client, visitor.conversation_id)
        assert (note["author"], note["text"], note["delivery_status"]) == ("note", SECRET, None)
        assert note["meta"]["agent_id"].startswith("atd_")  # who wrote it: the key, as for replies
        r = await company.client.post(
            f"/v1/conversations/{visitor.conversation_id}/replies",
            json={"text": "Oi! Vou trocar seu pedido."},
        )
        assert r.status_code == 201, r.text

        # the visitor's stream, from the start, up to the agent's reply, and the history
        events = await read_events(
            web,
            f"{visitor.path}/events?token={visitor.token}",
            lambda evs: any(m["author"] == "agent" for m in messages_of(evs)),
        )
        assert [m["author"] for m in messages_of(events)] == ["customer", "bot", "agent"]
        assert SECRET not in str([e.data for e in events])
        assert [m["author"] for m in await history(web, visitor)] == ["customer", "bot", "agent"]

    # the team: the note in its place with include_notes, nowhere without
    assert [m["author"] for m in await thread(company.client, visitor.conversation_id)] == [
        "customer",
        "bot",
        "agent",
    ]
    with_notes = await thread(company.client, visitor.conversation_id, include_notes="true")
    assert [m["author"] for m in with_notes] == ["customer", "bot", "note", "agent"]
    assert with_notes[2]["id"] == note["id"]
    # the note changed nothing, and no delivery job was ever queued for it
    assert state == "waiting_human"
    assert await jobs_for(runtime, note["id"]) == 0


@pytest.fixture
def loopback() -> Iterator[LoopbackChannel]:
    channel = LoopbackChannel()
    registry.register(channel)  # the session's worker delivers through it
    yield channel
    registry.unregister(KIND)


async def test_a_note_in_a_push_channels_conversation_never_reaches_the_provider(
    loopback: LoopbackChannel, company: CompanyCtx, runtime: Runtime
) -> None:
    with running(FakeProvider()) as provider:
        _account, conversation_id, _customer = await open_conversation(runtime, company.id, provider)
        note = await add_note(company.client, conversation_id)
        r = await company.client.post(f"/v1/conversations/{conversation_id}/replies", json={"text": "Olá!"})
        assert r.status_code == 201, r.text
        # the conversation's deliveries run in the order queued: a note queued before the
        # reply would have gone out before it
        await until_status(runtime, company.id, r.json()["id"], "sent")
        assert [req.text for req in provider.of(r.json()["id"])] == ["Olá!"]
        assert provider.of(note["id"]) == []
        assert SECRET not in [req.text for req in provider.requests]


async def test_webhooks_carry_a_note_only_as_note_created_never_as_message_created(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime
) -> None:
    paths = {}
    for event in ("message.created", "note.created"):
        paths[event] = receiver.new_path()
        r = await company.client.post(
            "/v1/webhooks", json={"url": receiver.url(paths[event]), "events": [event]}
        )
        assert r.status_code == 201, r.text
    user_id, email = await add_member(runtime, company, Role.agent, name="Carla")
    async with company.with_key(await new_key(runtime, company, Role.agent, email)) as carla:
        body = await ask(company.client, "Quero trocar meu pedido")  # no knowledge: a handoff
        cid = body["conversation_id"]
        note = await add_note(carla, cid)
    r = await company.client.post(f"/v1/conversations/{cid}/replies", json={"text": "Já vou ver."})
    assert r.status_code == 201, r.text

    [received] = await receiver.wait_for(paths["note.created"], lambda rs: len(rs) >= 1)
    assert received.event["type"] == "note.created"
    assert received.event["data"] == {
        "id": note["id"],
        "conversation_id": cid,
        "text": SECRET,
        "author_user_id": user_id,
        "agent_id": user_id,
        "created_at": received.event["data"]["created_at"],
    }
    messages = await receiver.wait_for(paths["message.created"], lambda rs: len(rs) >= 3)
    await asyncio.sleep(1)  # a note announced as a message, if it were, would have come by now
    messages = receiver.requests(paths["message.created"])
    assert sorted(r.event["data"]["author"] for r in messages) == ["agent", "bot", "customer"]
    assert note["id"] not in str([r.event for r in messages])


async def test_a_note_is_announced_live_to_the_team_on_the_conversations_topic(
    company: CompanyCtx, live_app: FastAPI
) -> None:
    body = await ask(company.client, "Quero falar com alguém")
    listener = live_app.state.runtime.listener
    with listener.subscribe(body["conversation_id"]) as sub:
        note = await add_note(company.client, body["conversation_id"])
        deadline = time.monotonic() + 10
        while True:
            event = await sub.next(timeout=max(0.1, deadline - time.monotonic()))
            assert time.monotonic() < deadline, "no note event"
            if event is not None and event.get("kind") == "note":
                break
    assert event["seq"] == note["seq"]
    assert SECRET not in str(event)  # a notification carries no text


async def test_the_bot_never_reads_a_note_as_part_of_the_conversation(
    kb_company: CompanyCtx, fake: FakeOpenAI
) -> None:
    await use_llm(kb_company, fake)
    fake.script(answer("Aceitamos Pix [1]."))
    first = await ask(kb_company.client, "Vocês aceitam Pix?", contact="notas")
    await add_note(kb_company.client, first["conversation_id"])
    fake.script(answer("Sim, em até 10 vezes sem juros [1]."))
    await ask(kb_company.client, "E posso parcelar no cartão?", contact="notas")
    prompt = fake.requests[-1]["messages"]
    assert [(m["role"], m["content"]) for m in prompt[1:]] == [
        ("user", "Vocês aceitam Pix?"),
        ("assistant", "Aceitamos Pix."),
        ("user", "E posso parcelar no cartão?"),
    ]
    assert SECRET not in str(prompt)


async def test_a_note_needs_an_agent_real_text_and_a_conversation_of_the_company(
    company: CompanyCtx, runtime: Runtime
) -> None:
    body = await ask(company.client, "Olá, preciso de ajuda")
    cid = body["conversation_id"]
    async with company.with_key(await new_key(runtime, company, Role.viewer)) as viewer:
        r = await viewer.post(f"/v1/conversations/{cid}/notes", json={"text": "posso?"})
        assert r.status_code == 403, r.text
        assert len(await thread(viewer, cid, include_notes="true")) == 2  # viewers read
    for bad, says in [
        ({"text": "   "}, "must not be empty"),
        ({"text": "a\u0000b"}, "NUL"),
        ({"text": ""}, "at least 1 character"),
        ({"text": "x", "to_customer": True}, "Extra inputs"),
        ({}, "Field required"),
    ]:
        r = await company.client.post(f"/v1/conversations/{cid}/notes", json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert says in r.text, (bad, r.text)
    r = await company.client.post(f"/v1/conversations/{uuid.uuid4()}/notes", json={"text": "x"})
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert [m["author"] for m in await thread(company.client, cid, include_notes="true")] == [
        "customer",
        "bot",
    ]
