"""What keeps the webhook's acknowledgement fast, and must not change what anyone sees:

- the customer's message is marked read by the worker when the bot takes it (the bot turn's
  ``on_taken`` hook), not by the acknowledgement; a mark-read Meta refuses never fails the
  turn: the reply still goes out;
- the numbers and app secrets the webhook checks are a per-process copy, yet a number
  connected a moment ago (under a new app secret, or an app secret another number already
  has) is honoured at once, and a rotated or disabled secret stops being honoured within
  moments (the accounts' change notification);
- the process's pooled Graph API client is closed when the process stops.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import uuid
import warnings
from typing import Any

import httpx

from atende.bootstrap import open_runtime
from atende.channels.whatsapp import graph as graph_api
from atende.channels.whatsapp.numbers import Numbers
from atende.config import Settings
from atende.conversations.models import Message
from atende.engine import turn as turns
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import WhatsApp, new_number, new_wamid, sign
from tests.channels.whatsapp.test_whatsapp import customer_message
from tests.conftest import CompanyCtx, ask, until
from tests.fakes.graph_api import FakeGraphApi

EMPTY = {"object": "whatsapp_business_account", "entry": []}  # signed, stores nothing


async def test_a_refused_mark_read_never_fails_the_turn(wa: WhatsApp) -> None:
    wa.graph.fail_reads(131000)
    try:
        wa_id, wamid = new_number(), new_wamid()
        assert (await wa.post(wa.payload("message", "text", wa_id=wa_id, wamid=wamid))).status_code == 200
        # the bot took it (Meta refused the blue ticks) and its answer still reached the customer
        await until(lambda: wa.graph.read_refused >= 1, what="the mark-read tried")
        sent = await until(lambda: wa.graph.sent_to(wa_id), what="the reply")
        assert len(sent) == 1 and sent[0].text
        assert wamid not in wa.graph.read
    finally:
        wa.graph.fail_reads(None)


async def test_the_bot_turn_announces_each_message_it_takes_and_survives_a_failing_hook(
    kb_company: CompanyCtx,
) -> None:
    """The engine's side of it, on the API channel: the session's worker runs the turn."""
    taken: list[uuid.UUID] = []
    lock = threading.Lock()

    async def record(runtime: Runtime, message: Message) -> None:
        with lock:
            taken.append(message.id)
        raise RuntimeError("a channel's hook that fails")

    turns.on_taken("api", record)
    try:
        body = await ask(kb_company.client, "Qual o prazo de entrega?")
    finally:
        turns._taken_hooks.pop("api", None)
    # the hook ran for the message the bot took, and its failure did not stop the answer
    assert uuid.UUID(body["message"]["id"]) in taken
    assert body["reply"]["author"] == "bot" and body["reply"]["text"]


async def test_a_number_connected_a_moment_ago_is_honoured_at_once(wa: WhatsApp) -> None:
    assert (await wa.post(EMPTY)).status_code == 200  # the process's copy is read now
    client = wa.company.client
    # a second number of the same Meta app (the same app secret), and one of another app
    other_secret = f"app-secret-{uuid.uuid4().hex}"
    same_app = await _connect(client, wa.graph, app_secret=wa.app_secret)
    other_app = await _connect(client, wa.graph, app_secret=other_secret)
    for number, secret in ((same_app, wa.app_secret), (other_app, other_secret)):
        wamid = new_wamid()
        body = wa.payload("message", "text", wa_id=new_number(), wamid=wamid)
        body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = number["external_id"]
        r = await wa.post(body, secret=secret)
        assert r.status_code == 200 and r.json() == {"stored": 1}, r.text
        stored = await customer_message(wa, wamid)
        assert stored is not None and stored["meta"]["channel_account_id"] == number["id"]


async def test_a_rotated_or_disabled_app_secret_stops_being_honoured(wa: WhatsApp) -> None:
    client = wa.company.client
    assert (await wa.post(EMPTY)).status_code == 200
    old, new = wa.app_secret, f"rotated-{uuid.uuid4().hex}"
    r = await client.patch(f"/v1/channel-accounts/{wa.account_id}", json={"secrets": {"app_secret": new}})
    assert r.status_code == 200, r.text
    # the new secret at once; the old one refused as soon as the change reached this process
    assert (await wa.post(EMPTY, secret=new)).status_code == 200
    assert (await _until_status(wa, old, 401)).status_code == 401
    r = await client.patch(f"/v1/channel-accounts/{wa.account_id}", json={"enabled": False})
    assert r.status_code == 200, r.text
    assert (await _until_status(wa, new, 401)).status_code == 401
    r = await client.patch(f"/v1/channel-accounts/{wa.account_id}", json={"enabled": True})
    assert (await wa.post(EMPTY, secret=new)).status_code == 200


async def test_the_copy_is_dropped_by_a_whatsapp_change_or_a_resync_not_another_channels(
    wa: WhatsApp, runtime: Runtime
) -> None:
    numbers = Numbers()
    first = await numbers.get(runtime)
    assert first.fresh and wa.phone_number_id in first.by_number
    assert not (await numbers.get(runtime)).fresh  # kept
    numbers.handle({"topic": "channel_accounts", "kind": "changed", "channel": "webchat"})
    assert not (await numbers.get(runtime)).fresh  # another channel's account: still kept
    for event in ({"kind": "changed", "channel": "whatsapp"}, {"kind": "resync"}):
        numbers.handle({"topic": "channel_accounts", **event})
        assert (await numbers.get(runtime)).fresh  # read again
    # a read that began before a change is used, but not kept
    loading = asyncio.create_task(numbers.load(runtime))
    await asyncio.sleep(0)  # the read is under way
    numbers.handle({"kind": "changed", "channel": "whatsapp"})
    assert wa.phone_number_id in (await loading).by_number
    assert (await numbers.get(runtime)).fresh  # read again


async def test_the_pooled_graph_client_is_closed_when_the_process_stops(
    settings: Settings, graph: FakeGraphApi
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with open_runtime(settings, migrate_now=False, listen=False):
            api = graph_api.Graph(graph.origin, graph_api.GRAPH_VERSION, "test-access-token")
            await _call(api)
            pooled = graph_api.client()
            assert not pooled.is_closed
            await _call(api)
            assert graph_api.client() is pooled  # one client for every call of the process
        assert pooled.is_closed
        del pooled
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


# helpers


async def _call(api: graph_api.Graph) -> None:
    answer = await graph_api.phone_number(api, "123")
    assert answer["id"] == "123"


async def _connect(client: httpx.AsyncClient, fake: FakeGraphApi, *, app_secret: str) -> dict[str, Any]:
    r = await client.post(
        "/v1/channel-accounts",
        json={
            "kind": "whatsapp",
            "external_id": new_number(),
            "config": {"graph_api_url": fake.origin},
            "secrets": {"access_token": "test-access-token", "app_secret": app_secret, "verify_token": "v"},
        },
    )
    assert r.status_code == 201, r.text
    number: dict[str, Any] = r.json()
    return number


async def _until_status(wa: WhatsApp, secret: str, status: int, seconds: float = 5.0) -> httpx.Response:
    """Post the empty delivery signed with ``secret`` until it answers ``status``: a change
    reaches every process through LISTEN/NOTIFY, milliseconds after it commits."""
    deadline = time.monotonic() + seconds
    raw = json.dumps(EMPTY).encode()
    while True:
        response = await wa.post(raw, signature=sign(raw, secret))
        if response.status_code == status or time.monotonic() > deadline:
            return response
