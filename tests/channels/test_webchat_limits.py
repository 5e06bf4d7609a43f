"""The public web chat's rate limits, over HTTP against a server whose limits are small
(``tests/channels/conftest.py``: 4 messages per conversation at once then one every 7 s, 8
messages and 3 new conversations per address a minute, 20 writes per site a minute).

A visitor over a limit is answered 429 with ``Retry-After`` and a message saying which
limit and how long to wait; nothing is stored and no bot turn is queued; other visitors,
addresses and companies go on as before; and the limit lets the visitor in again once the
wait is over.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import text

from atende.app import create_app
from atende.config import Settings
from atende.runtime import Runtime
from tests.channels.conftest import limited_settings
from tests.conftest import CompanyCtx, free_port
from tests.fixtures.servers import serving

WIDGET = "/widget/v1"
_addresses = itertools.count(1)


def new_address() -> str:
    """A client address no other test of the module uses (TEST-NET-3 and benchmarking ranges)."""
    n = next(_addresses)
    return f"198.18.{n // 250}.{n % 250 + 1}"


@dataclass
class Visitor:
    widget_key: str
    conversation_id: str
    token: str
    address: str

    @property
    def path(self) -> str:
        return f"{WIDGET}/{self.widget_key}/conversations/{self.conversation_id}"


@pytest.fixture
async def web(limited_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited_server, timeout=10) as client:
        yield client


async def open_chat(web: httpx.AsyncClient, widget_key: str, address: str) -> httpx.Response:
    return await web.post(f"{WIDGET}/{widget_key}/conversations", headers={"X-Forwarded-For": address})


async def start(web: httpx.AsyncClient, widget_key: str, address: str | None = None) -> Visitor:
    address = address or new_address()
    r = await open_chat(web, widget_key, address)
    assert r.status_code == 201, r.text
    return Visitor(widget_key, r.json()["conversation_id"], r.json()["token"], address)


async def post(web: httpx.AsyncClient, visitor: Visitor, text_: str) -> httpx.Response:
    return await web.post(
        f"{visitor.path}/messages",
        json={"text": text_},
        headers={"X-Visitor-Token": visitor.token, "X-Forwarded-For": visitor.address},
    )


async def customer_texts(web: httpx.AsyncClient, visitor: Visitor) -> list[str]:
    r = await web.get(f"{visitor.path}/messages", headers={"X-Visitor-Token": visitor.token})
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json() if m["author"] == "customer"]


async def turn_jobs(runtime: Runtime, company_id: uuid.UUID) -> int:
    async with runtime.db.transaction() as session:
        count = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE task_name = 'engine:run_turn' AND args->>'company_id' = :c"
            ),
            {"c": str(company_id)},
        )
    return int(count or 0)


def assert_refused(r: httpx.Response, says: str) -> int:
    """A 429 that says why (``says``) and how long to wait; returns the wait in seconds."""
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["code"] == "rate_limited"
    assert says in body["detail"]
    wait = int(r.headers["Retry-After"])
    assert wait >= 1 and body["retry_after"] == wait
    assert f"wait {wait} s" in body["detail"]
    return wait


async def test_a_visitor_sending_too_fast_is_told_to_wait_and_nothing_is_stored(
    web: httpx.AsyncClient, company: CompanyCtx, runtime: Runtime
) -> None:
    visitor = await start(web, company.widget_key)
    for i in range(4):
        r = await post(web, visitor, f"mensagem {i}")
        assert r.status_code == 201, r.text

    queued = await turn_jobs(runtime, company.id)
    wait = assert_refused(await post(web, visitor, "mensagem demais"), "in this conversation")
    assert 1 <= wait <= 7  # one message every 7 s comes back (less whatever refilled while posting)
    assert await customer_texts(web, visitor) == [f"mensagem {i}" for i in range(4)]
    assert await turn_jobs(runtime, company.id) == queued  # no bot turn for the refused one

    # another visitor of the same site, even from the same address, is not held up
    neighbour = await start(web, company.widget_key, visitor.address)
    assert (await post(web, neighbour, "Olá, vocês entregam no sábado?")).status_code == 201

    # once the wait is over, the visitor writes again
    await asyncio.sleep(wait)
    r = await post(web, visitor, "mensagem depois da espera")
    assert r.status_code == 201, r.text
    assert (await customer_texts(web, visitor))[-1] == "mensagem depois da espera"


async def test_one_address_cannot_open_conversation_after_conversation(
    web: httpx.AsyncClient, company: CompanyCtx
) -> None:
    address = new_address()
    for _ in range(3):
        assert (await open_chat(web, company.widget_key, address)).status_code == 201
    wait = assert_refused(await open_chat(web, company.widget_key, address), "new conversations")
    assert 15 <= wait <= 20  # one new conversation every 20 s
    # a visitor elsewhere starts one as usual
    assert (await open_chat(web, company.widget_key, new_address())).status_code == 201


async def test_one_address_cannot_flood_through_many_conversations(
    web: httpx.AsyncClient, company: CompanyCtx, runtime: Runtime
) -> None:
    address = new_address()
    visitors = [await start(web, company.widget_key, address) for _ in range(3)]
    sent = 0
    for visitor in visitors:  # each stays within its own 4
        for _ in range(3 if visitor is not visitors[-1] else 2):
            assert (await post(web, visitor, f"mensagem {sent}")).status_code == 201
            sent += 1
    assert sent == 8
    queued = await turn_jobs(runtime, company.id)
    assert_refused(await post(web, visitors[-1], "mais uma"), "from your network address")
    assert await turn_jobs(runtime, company.id) == queued
    other = await start(web, company.widget_key)
    assert (await post(web, other, "Oi")).status_code == 201


async def test_a_flood_of_one_sites_chat_leaves_other_sites_alone(
    web: httpx.AsyncClient, company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    # from ever new addresses: only the site's own limit (20 writes a minute) stops them
    writes = 0
    while writes < 20:
        visitor = await start(web, company.widget_key)
        writes += 1
        for _ in range(min(3, 20 - writes)):
            assert (await post(web, visitor, "garantia garantia")).status_code == 201
            writes += 1
    assert_refused(await open_chat(web, company.widget_key, new_address()), "this site's chat")
    assert_refused(await post(web, visitor, "garantia"), "this site's chat")

    # another company's visitors are served as usual
    theirs = await start(web, other_company.widget_key)
    r = await post(web, theirs, "Vocês entregam no sábado?")
    assert r.status_code == 201, r.text
    assert await turn_jobs(runtime, other_company.id) == 1


@pytest.fixture
def untrusting_server(settings: Settings, live_server: str) -> Iterator[str]:
    """The limited server, behind no trusted proxy: nobody's X-Forwarded-For is believed."""
    port = free_port()
    own = limited_settings(settings, port)
    with serving(create_app(own), port, forwarded_allow_ips="192.0.2.1") as base_url:
        yield base_url


async def test_a_forwarded_for_header_from_an_untrusted_peer_does_not_escape_the_limit(
    untrusting_server: str, company: CompanyCtx
) -> None:
    async with httpx.AsyncClient(base_url=untrusting_server, timeout=10) as web:
        answers = [(await open_chat(web, company.widget_key, new_address())).status_code for _ in range(4)]
    assert answers == [201, 201, 201, 429]


async def test_rating_answers_counts_against_the_conversations_limit(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    """A rating is a write anyone may send: a visitor flipping thumbs is held to the same
    pace as messages, and the refused rating changes nothing."""
    visitor = await start(web, kb_company.widget_key)
    assert (await post(web, visitor, "Qual o prazo de entrega?")).status_code == 201
    headers = {"X-Visitor-Token": visitor.token, "X-Forwarded-For": visitor.address}
    async with asyncio.timeout(20):
        while True:
            history = (await web.get(f"{visitor.path}/messages", headers=headers)).json()
            if [m for m in history if m["author"] == "bot"]:
                break
            await asyncio.sleep(0.1)
    [answer] = [m for m in history if m["author"] == "bot"]
    path = f"{visitor.path}/messages/{answer['id']}/rating"
    for helpful in (True, False, True):  # with the message: the 4 the conversation takes at once
        r = await web.put(path, json={"helpful": helpful}, headers=headers)
        assert r.status_code == 200, r.text
    assert_refused(await web.put(path, json={"helpful": False}, headers=headers), "in this conversation")
    shown = (await web.get(f"{visitor.path}/messages", headers=headers)).json()
    assert [m["meta"]["rating"] for m in shown if m["author"] == "bot"] == ["helpful"]
