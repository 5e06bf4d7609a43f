"""The web chat channel over HTTP: what ``widget.js`` calls, against a live server and worker.

A visitor starts a conversation with the company's widget key, gets a token, posts messages
with it and hears replies over Server-Sent Events whose ids are the messages' ids.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from atende.config import Settings
from atende.conversations import service as conversations
from atende.demo import demo_api_key
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

WIDGET = "/widget/v1"


@dataclass
class Visitor:
    """One web chat conversation as the widget holds it."""

    widget_key: str
    conversation_id: str
    token: str

    @property
    def path(self) -> str:
        return f"{WIDGET}/{self.widget_key}/conversations/{self.conversation_id}"

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Visitor-Token": self.token}


@dataclass
class Event:
    event: str
    id: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


@pytest.fixture
async def web(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client, like a visitor's browser: no API key."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


async def start(web: httpx.AsyncClient, widget_key: str) -> Visitor:
    r = await web.post(f"{WIDGET}/{widget_key}/conversations", json={})
    assert r.status_code == 201, r.text
    body = r.json()
    return Visitor(widget_key, body["conversation_id"], body["token"])


async def say(web: httpx.AsyncClient, visitor: Visitor, text: str, client_id: str | None = None) -> dict:
    payload = {"text": text} | ({"client_id": client_id} if client_id else {})
    r = await web.post(f"{visitor.path}/messages", json=payload, headers=visitor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def history(web: httpx.AsyncClient, visitor: Visitor) -> list[dict]:
    r = await web.get(f"{visitor.path}/messages", headers=visitor.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def wait_for(
    web: httpx.AsyncClient, visitor: Visitor, done: Callable[[list[dict]], bool], timeout: float = 10
) -> list[dict]:
    """Poll the history until ``done(messages)``; fail after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            messages = await history(web, visitor)
            if done(messages):
                return messages
            await asyncio.sleep(0.05)


def bot_replies(count: int) -> Callable[[list[dict]], bool]:
    return lambda messages: sum(m["author"] == "bot" for m in messages) >= count


async def read_events(
    web: httpx.AsyncClient,
    url: str,
    until: Callable[[list[Event]], bool],
    *,
    headers: dict[str, str] | None = None,
    on_open: Callable[[list[Event]], Any] | None = None,
    timeout: float = 10,
) -> list[Event]:
    """Read an SSE stream until ``until(events)`` holds, then disconnect.

    ``on_open(events)`` runs after every event until it returns something truthy: the
    caller acts (posts a message) once the stream is known to be live.
    """
    events: list[Event] = []
    fields: dict[str, str] = {}
    opened = on_open is None
    async with asyncio.timeout(timeout), web.stream("GET", url, headers=headers, timeout=timeout) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        async for line in r.aiter_lines():
            if line.startswith(":"):
                continue  # a comment (keep-alive ping)
            if line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
                continue
            if not fields:
                continue
            events.append(Event(fields.get("event", "message"), fields.get("id"), fields.get("data", "")))
            fields = {}
            if not opened:
                result = on_open(events)  # type: ignore[misc]
                if asyncio.iscoroutine(result):
                    result = await result
                opened = bool(result)
            if until(events):
                return events
    raise AssertionError(f"the stream ended early after {events}")


def messages_of(events: list[Event]) -> list[dict]:
    return [e.json() for e in events if e.event == "message"]


def has_bot_replies(count: int) -> Callable[[list[Event]], bool]:
    return lambda events: sum(m["author"] == "bot" for m in messages_of(events)) >= count


# --- starting a conversation ---------------------------------------------------------------


async def test_starting_a_conversation_returns_its_id_and_a_secret_token(
    web: httpx.AsyncClient, company: CompanyCtx
) -> None:
    first = await start(web, company.widget_key)
    second = await start(web, company.widget_key)
    assert uuid.UUID(first.conversation_id) != uuid.UUID(second.conversation_id)
    assert len(first.token) >= 32
    assert first.token != second.token
    assert await history(web, first) == []
    conversation = (await company.client.get(f"/v1/conversations/{first.conversation_id}")).json()
    assert conversation["channel"] == "webchat"
    assert first.token not in json.dumps(conversation)


async def test_an_unknown_widget_key_is_not_found(web: httpx.AsyncClient) -> None:
    r = await web.post(f"{WIDGET}/wk_nope/conversations", json={})
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


# --- messages and replies ---------------------------------------------------------------------


async def test_a_visitor_question_is_answered_with_its_cited_source(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    visitor = await start(web, kb_company.widget_key)
    sent = await say(web, visitor, "Qual o prazo de entrega?")
    assert (sent["author"], sent["text"]) == ("customer", "Qual o prazo de entrega?")

    question, reply = await wait_for(web, visitor, bot_replies(1))
    assert question["id"] == sent["id"]
    assert reply["author"] == "bot"
    assert reply["reply_to_id"] == sent["id"]
    assert "2 a 5 dias úteis" in reply["text"]
    [citation] = reply["meta"]["citations"]
    assert citation["title"] == "Entregas"


VISITOR_FIELDS = {"id", "conversation_id", "author", "text", "language", "reply_to_id", "meta", "created_at"}


async def test_a_visitor_sees_neither_the_platforms_sequence_nor_who_of_the_team_answered(
    web: httpx.AsyncClient, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    """`seq` counts every message of every company (it tells a visitor how busy the platform
    is) and `meta.agent_id` names an API key or a user: neither is the visitor's business,
    nor the bot's confidence. The company's own API still shows them."""
    visitor = await start(web, kb_company.widget_key)
    sent = await say(web, visitor, "Qual o prazo de entrega?")
    await wait_for(web, visitor, bot_replies(1))
    r = await kb_company.client.post(
        f"/v1/conversations/{visitor.conversation_id}/replies", json={"text": "Olá, sou a Ana."}
    )
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["agent_id"] and r.json()["seq"]  # the company sees them
    shown = await wait_for(web, visitor, lambda ms: any(m["author"] == "agent" for m in ms))
    events = await read_events(
        web, f"{visitor.path}/events?token={visitor.token}", lambda events: len(events) >= 3
    )

    assert set(sent) == VISITOR_FIELDS | {"awaiting_reply"}
    for message in [*shown, *messages_of(events)]:
        assert set(message) == VISITOR_FIELDS, message
        assert set(message["meta"]) == {"citations", "decision", "rating", "csat"}, message
    question, answer, agent = shown
    assert (
        agent["meta"] == question["meta"] == {"citations": [], "decision": None, "rating": None, "csat": None}
    )
    assert answer["meta"] == {
        "citations": [{"title": "Entregas", "section": "Entregas › Prazos de entrega"}],
        "decision": "answer",
        "rating": None,
        "csat": None,
    }
    assert [e.id for e in events] == [question["id"], answer["id"], agent["id"]]
    assert "seq" not in json.dumps([sent, shown, [e.data for e in events]])


async def test_an_empty_message_is_refused_with_a_reason(web: httpx.AsyncClient, company: CompanyCtx) -> None:
    visitor = await start(web, company.widget_key)
    r = await web.post(f"{visitor.path}/messages", json={"text": "   \n "}, headers=visitor.headers)
    assert r.status_code == 422
    assert "empty" in json.dumps(r.json()["detail"])
    assert await history(web, visitor) == []


async def test_a_message_with_a_nul_byte_is_refused_not_altered(
    web: httpx.AsyncClient, company: CompanyCtx
) -> None:
    visitor = await start(web, company.widget_key)
    r = await web.post(f"{visitor.path}/messages", json={"text": "Oi\x00 tudo bem"}, headers=visitor.headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "text must not contain NUL bytes (\\u0000)"
    assert await history(web, visitor) == []


async def test_the_same_client_id_posted_twice_is_stored_and_answered_once(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    visitor = await start(web, kb_company.widget_key)
    first = await say(web, visitor, "Vocês aceitam Pix?", client_id="tab-1-msg-1")
    retries = await asyncio.gather(
        *(say(web, visitor, "Vocês aceitam Pix?", client_id="tab-1-msg-1") for _ in range(3))
    )
    assert {m["id"] for m in retries} == {first["id"]}

    await wait_for(web, visitor, bot_replies(1))
    await asyncio.sleep(0.5)  # time for a wrongly queued second turn to answer
    assert [m["author"] for m in await history(web, visitor)] == ["customer", "bot"]


async def test_a_client_id_is_only_a_duplicate_within_its_own_conversation(
    web: httpx.AsyncClient, company: CompanyCtx
) -> None:
    one = await start(web, company.widget_key)
    two = await start(web, company.widget_key)
    a = await say(web, one, "Olá", client_id="1")
    b = await say(web, two, "Olá", client_id="1")
    assert a["id"] != b["id"]
    assert b["conversation_id"] == two.conversation_id


# --- who may read and write a conversation ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", "/messages"), ("POST", "/messages"), ("GET", "/events")],
    ids=["history", "post", "events"],
)
async def test_a_wrong_token_is_not_found_and_a_missing_token_unauthorized(
    web: httpx.AsyncClient, company: CompanyCtx, method: str, suffix: str
) -> None:
    visitor = await start(web, company.widget_key)
    await say(web, visitor, "meu pedido 123")
    other = await start(web, company.widget_key)
    unknown = Visitor(company.widget_key, str(uuid.uuid4()), visitor.token)
    body = {"text": "oi"} if method == "POST" else None

    async def call(target: Visitor, token: str | None) -> httpx.Response:
        url = target.path + suffix
        headers = {"X-Visitor-Token": token} if token else {}
        if suffix == "/events":
            url, headers = url + (f"?token={token}" if token else ""), {}
        return await web.request(method, url, json=body, headers=headers, timeout=5)

    wrong = await call(visitor, other.token)
    missing = await call(visitor, None)
    nonexistent = await call(unknown, visitor.token)
    assert wrong.status_code == 404
    assert missing.status_code == 401
    # a wrong token and an id that does not exist look the same: nothing confirms the id
    assert nonexistent.status_code == 404
    assert wrong.json() == nonexistent.json()
    assert "meu pedido" not in wrong.text
    customer = [m["text"] for m in await history(web, visitor) if m["author"] == "customer"]
    assert customer == ["meu pedido 123"]


async def test_a_conversation_is_not_reachable_through_another_companys_widget_key(
    web: httpx.AsyncClient, company: CompanyCtx, other_company: CompanyCtx
) -> None:
    visitor = await start(web, company.widget_key)
    await say(web, visitor, "dados do meu pedido")
    elsewhere = Visitor(other_company.widget_key, visitor.conversation_id, visitor.token)

    read = await web.get(f"{elsewhere.path}/messages", headers=elsewhere.headers)
    write = await web.post(f"{elsewhere.path}/messages", json={"text": "oi"}, headers=elsewhere.headers)
    listen = await web.get(f"{elsewhere.path}/events?token={elsewhere.token}", timeout=5)
    assert (read.status_code, write.status_code, listen.status_code) == (404, 404, 404)
    customer = [m["text"] for m in await history(web, visitor) if m["author"] == "customer"]
    assert customer == ["dados do meu pedido"]


# --- live events --------------------------------------------------------------------------


async def test_the_event_stream_sends_messages_with_their_id_as_event_id_and_typing_while_the_bot_works(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    visitor = await start(web, kb_company.widget_key)
    await say(web, visitor, "Olá")
    before = await wait_for(web, visitor, bot_replies(1))
    posted: list[dict] = []

    async def ask_once_live(events: list[Event]) -> bool:
        # the stream has replayed the history, so it is live: now ask
        if len(messages_of(events)) < len(before):
            return False
        posted.append(await say(web, visitor, "Qual o prazo de entrega?"))
        return True

    events = await read_events(
        web, f"{visitor.path}/events?token={visitor.token}", has_bot_replies(2), on_open=ask_once_live
    )

    messages = messages_of(events)
    assert [e.id for e in events if e.event == "message"] == [m["id"] for m in messages]
    assert [m["id"] for m in messages[:2]] == [m["id"] for m in before]
    question, reply = messages[2:]
    assert question["id"] == posted[0]["id"]
    assert (reply["author"], reply["reply_to_id"]) == ("bot", question["id"])
    assert reply["meta"]["citations"][0]["title"] == "Entregas"
    kinds = [e.event if e.event != "message" else e.json()["author"] for e in events[2:]]
    assert kinds == ["customer", "typing", "bot"]
    [typing] = [e for e in events if e.event == "typing"]
    assert typing.json()["message_id"] == question["id"]  # lets the widget drop a late "typing"


@pytest.mark.parametrize("resume_with", ["Last-Event-ID", "after"])
async def test_reconnecting_after_the_last_seen_message_loses_and_repeats_nothing(
    web: httpx.AsyncClient, kb_company: CompanyCtx, resume_with: str
) -> None:
    visitor = await start(web, kb_company.widget_key)
    url = f"{visitor.path}/events?token={visitor.token}"
    await say(web, visitor, "Olá")
    first = await read_events(web, url, has_bot_replies(1))

    # while the visitor is away, the conversation goes on
    await say(web, visitor, "Vocês aceitam Pix?")
    await wait_for(web, visitor, bot_replies(2))
    last_id = first[-1].id
    assert last_id is not None
    if resume_with == "after":
        resumed = await read_events(web, f"{url}&after={last_id}", has_bot_replies(1))
    else:
        # an EventSource reconnects to the same URL (after=0) and adds the header
        resumed = await read_events(web, url, has_bot_replies(1), headers={"Last-Event-ID": last_id})

    seen = [e.id for e in first + resumed if e.event == "message"]
    stored = [m["id"] for m in await history(web, visitor)]
    assert seen == stored
    assert len(stored) == 4
    # the history too takes the last message a client has
    r = await web.get(f"{visitor.path}/messages", params={"after": stored[1]}, headers=visitor.headers)
    assert [m["id"] for m in r.json()] == stored[2:]


async def test_a_reconnect_far_behind_gets_every_missed_message_at_once(
    web: httpx.AsyncClient, company: CompanyCtx, runtime: Runtime
) -> None:
    visitor = await start(web, company.widget_key)
    await say(web, visitor, "preciso falar com alguém")
    await wait_for(web, visitor, bot_replies(1))  # no knowledge: handed to a person
    async with runtime.db.transaction(company.id) as session:
        conversation = await conversations.get_conversation(session, uuid.UUID(visitor.conversation_id))
        for i in range(250):
            await conversations.add_reply(
                session, runtime.jobs, conversation, author="agent", text=f"nota {i}"
            )
    stored = await history(web, visitor)
    assert len(stored) == 252

    events = await read_events(
        web,
        f"{visitor.path}/events?token={visitor.token}",
        lambda events: len(events) >= len(stored),
        timeout=5,
    )
    assert [e.id for e in events] == [m["id"] for m in stored]


async def test_any_site_may_call_the_visitor_api_but_not_the_company_api(
    web: httpx.AsyncClient, company: CompanyCtx
) -> None:
    shop = {"Origin": "https://shop.example"}
    preflight = await web.options(
        f"{WIDGET}/{company.widget_key}/conversations",
        headers=shop
        | {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]

    visitor = await start(web, company.widget_key)
    read = await web.get(f"{visitor.path}/messages", headers=visitor.headers | shop)
    assert read.headers["access-control-allow-origin"] == "*"
    events = await web.get(f"{visitor.path}/events?token=wrong", headers=shop)
    assert (events.status_code, events.headers["access-control-allow-origin"]) == (404, "*")

    api = await company.client.get("/v1/conversations", headers=shop)
    assert api.status_code == 200
    assert "access-control-allow-origin" not in api.headers


# --- the widget's files and the demo page -----------------------------------------------------


async def test_the_widget_script_and_stylesheet_are_served(web: httpx.AsyncClient) -> None:
    js = await web.get("/widget.js")
    css = await web.get("/widget.css")
    assert js.status_code == css.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert css.headers["content-type"].startswith("text/css")
    assert "EventSource" in js.text
    assert ".atende-launcher" in css.text


async def test_outside_demo_mode_there_is_no_demo_page_to_confirm_a_company(
    web: httpx.AsyncClient, company: CompanyCtx
) -> None:
    """`/demo?company=` named any company and showed its widget key: only `atende demo` has it."""
    known = await web.get(f"/demo?company={company.slug}")
    unknown = await web.get("/demo?company=no-such-company")
    assert known.status_code == unknown.status_code == 404
    assert known.json() == {"detail": "there is no /demo; the API is described at /docs", "code": "not_found"}
    assert company.widget_key not in known.text and company.slug not in known.text
    home = await web.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (307, "/docs")


async def demo_widget_key(settings: Settings, demo_server: str) -> str:
    key = demo_api_key(settings.secret_key.get_secret_value())
    async with httpx.AsyncClient(base_url=demo_server, headers={"Authorization": f"Bearer {key}"}) as api:
        r = await api.get("/v1/channel-accounts", params={"kind": "webchat"})
    assert r.status_code == 200, r.text
    [account] = r.json()
    return str(account["external_id"])


async def test_the_demo_page_embeds_the_widget_of_the_demo_shop(settings: Settings, demo_server: str) -> None:
    widget_key = await demo_widget_key(settings, demo_server)
    async with httpx.AsyncClient(base_url=demo_server, timeout=10) as web:
        for path in ("/demo", "/demo?company=loja-exemplo"):
            r = await web.get(path)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/html")
            assert "Loja Exemplo" in r.text
            assert f'<script src="/widget.js" data-widget-key="{widget_key}" data-open="true"' in r.text
            # the snippet to copy points at the public URL of this deployment
            assert f'{demo_server}/widget.js" data-widget-key="{widget_key}" defer&gt;' in r.text
        home = await web.get("/", follow_redirects=False)
        assert home.headers["location"] == "/demo"


async def test_the_demo_page_of_an_unknown_company_is_a_404_page(demo_server: str) -> None:
    async with httpx.AsyncClient(base_url=demo_server, timeout=10) as web:
        r = await web.get("/demo", params={"company": "nope<script>x</script>"})
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "No company" in r.text
    assert "nope&lt;script&gt;" in r.text
    assert "<script>x" not in r.text
    assert "widget.js" not in r.text


async def test_a_posted_message_says_whether_the_bot_will_answer_it(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    visitor = await start(web, kb_company.widget_key)
    first = await say(web, visitor, "Qual o prazo de entrega?")
    assert first["awaiting_reply"] is True
    await wait_for(web, visitor, bot_replies(1))
    taken = await kb_company.client.post(
        f"/v1/conversations/{visitor.conversation_id}/replies", json={"text": "Oi, sou a Carla."}
    )
    assert taken.status_code == 201
    second = await say(web, visitor, "Obrigado, Carla")
    assert second["awaiting_reply"] is False  # a person owns the chat: no typing indicator
