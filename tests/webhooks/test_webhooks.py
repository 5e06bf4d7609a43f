"""Outbound webhooks end to end: the live server's worker delivers real HTTP requests to a
loopback receiver, signs them, retries with backoff and disables endpoints that keep failing."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from atende.config import Settings
from atende.runtime import Runtime
from atende.webhooks.models import WebhookEndpoint
from tests.conftest import CompanyCtx, ask
from tests.fakes.webhook_receiver import ReceivedRequest, WebhookReceiver

QUIET_SECONDS = 1.0  # how long "nothing more arrives" is watched for


async def register(
    client: httpx.AsyncClient, receiver: WebhookReceiver, events: list[str]
) -> tuple[dict[str, Any], str]:
    """Register an endpoint on a fresh receiver path; returns the endpoint and its path."""
    path = receiver.new_path()
    r = await client.post("/v1/webhooks", json={"url": receiver.url(path), "events": events})
    assert r.status_code == 201, r.text
    return r.json(), path


def assert_signed(request: ReceivedRequest, secret: str) -> None:
    """The request verifies as a receiver checks it, with the ``standardwebhooks`` package
    (which also refuses a timestamp more than five minutes off)."""
    assert Webhook(secret).verify(request.body, request.headers) == request.event
    assert request.headers["webhook-id"] == request.event["id"]
    assert abs(time.time() - int(request.headers["webhook-timestamp"])) < 60
    assert "x-atende-signature" not in request.headers  # a new endpoint signs the standard way only


async def wait_for_delivery(
    client: httpx.AsyncClient, endpoint_id: str, status: str, *, timeout: float = 15.0
) -> dict[str, Any]:
    """Poll the delivery log until its newest delivery has ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        r = await client.get(f"/v1/webhooks/{endpoint_id}/deliveries")
        assert r.status_code == 200, r.text
        deliveries = r.json()
        if deliveries and deliveries[0]["status"] == status:
            return dict(deliveries[0])
        assert time.monotonic() < deadline, f"no delivery became {status} within {timeout}s: {deliveries}"
        await asyncio.sleep(0.1)


async def settled_conversation(company: CompanyCtx) -> tuple[str, str]:
    """A conversation whose bot turn is over; returns its id and state."""
    body = await ask(company.client, "Qual o horário de atendimento da loja?")
    detail = (await company.client.get(f"/v1/conversations/{body['conversation_id']}")).json()
    return body["conversation_id"], detail["state"]


def another_state(current: str, *avoid: str) -> str:
    return next(s for s in ("human", "resolved", "waiting_human", "bot") if s != current and s not in avoid)


async def test_registering_an_endpoint_returns_its_signing_secret_once(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime
) -> None:
    endpoint, _path = await register(company.client, receiver, ["message.created"])
    # the Standard Webhooks form: whsec_ + base64 of the key's random bytes
    assert endpoint["secret"].startswith("whsec_")
    assert len(base64.b64decode(endpoint["secret"].removeprefix("whsec_"), validate=True)) == 32
    assert (endpoint["signature_scheme"], endpoint["previous_secret_expires_at"]) == ("standard", None)
    assert endpoint["enabled"] is True
    assert endpoint["events"] == ["message.created"]
    listed = (await company.client.get("/v1/webhooks")).json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    async with runtime.db.transaction(company.id) as session:
        stored = await session.scalar(select(WebhookEndpoint.secret_encrypted))
    assert stored is not None
    assert endpoint["secret"] not in stored


async def test_a_customer_message_and_the_bot_reply_arrive_signed_as_message_created(
    kb_company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    endpoint, path = await register(kb_company.client, receiver, ["message.created"])
    body = await ask(kb_company.client, "Vocês aceitam Pix?")

    received = await receiver.wait_for(path, lambda rs: len(rs) >= 2)
    events = sorted((r.event for r in received), key=lambda e: e["data"]["author"] != "customer")
    assert [e["type"] for e in events] == ["message.created", "message.created"]
    assert [e["data"]["author"] for e in events] == ["customer", "bot"]
    assert [e["data"]["id"] for e in events] == [body["message"]["id"], body["reply"]["id"]]
    assert {e["data"]["conversation_id"] for e in events} == {body["conversation_id"]}
    assert {e["company_id"] for e in events} == {str(kb_company.id)}
    for request in received:
        assert_signed(request, endpoint["secret"])
        assert request.headers["content-type"] == "application/json"
        assert request.headers["x-atende-event"] == "message.created"
        assert request.headers["x-atende-delivery"] == request.event["id"]


async def test_customer_and_bot_message_events_have_one_shape(
    kb_company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    """Customer messages are announced by the intake's SQL function, replies by Python: a
    receiver must not be able to tell them apart by shape."""
    _endpoint, path = await register(kb_company.client, receiver, ["message.created"])
    await ask(kb_company.client, "Vocês aceitam Pix?")
    received = await receiver.wait_for(path, lambda rs: len(rs) >= 2)
    customer, bot = sorted((r.event for r in received), key=lambda e: e["data"]["author"] != "customer")
    assert set(customer) == set(bot) == {"id", "type", "company_id", "created_at", "data"}
    assert set(customer["data"]) == set(bot["data"])
    for event in (customer, bot):
        assert datetime.fromisoformat(event["created_at"]).utcoffset() == timedelta(0)
        assert datetime.fromisoformat(event["data"]["created_at"]).utcoffset() == timedelta(0)
        assert uuid.UUID(event["id"]) and uuid.UUID(event["data"]["id"])
    assert customer["data"]["text"] == "Vocês aceitam Pix?"
    assert customer["data"]["channel"] == bot["data"]["channel"] == "api"


async def test_a_customer_reopening_a_resolved_conversation_sends_state_changed(
    kb_company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    _endpoint, path = await register(kb_company.client, receiver, ["conversation.state_changed"])
    first = await ask(kb_company.client, "Qual o prazo de entrega?", contact="reabre")
    cid = first["conversation_id"]
    r = await kb_company.client.post(f"/v1/conversations/{cid}/state", json={"state": "resolved"})
    assert r.status_code == 200, r.text
    await ask(kb_company.client, "E para o Nordeste?", contact="reabre")
    received = await receiver.wait_for(path, lambda rs: len(rs) >= 2)
    moves = [(e["data"]["from"], e["data"]["to"]) for e in (r.event for r in received)]
    assert sorted(moves) == [("bot", "resolved"), ("resolved", "bot")]
    assert {e["data"]["conversation_id"] for e in (r.event for r in received)} == {cid}


async def test_a_tampered_body_does_not_match_the_signature(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    endpoint, path = await register(company.client, receiver, ["message.created"])
    await company.client.post("/v1/messages", json={"contact": {"external_id": "eva"}, "text": "oi"})
    received = await receiver.wait_for(path, lambda rs: any(r.event["data"]["text"] == "oi" for r in rs))
    [request] = [r for r in received if r.event["data"]["text"] == "oi"]
    tampered = ReceivedRequest(
        path=request.path,
        headers=request.headers,
        body=request.body.replace(b'"oi"', b'"ol\\u00e1"'),
        at=request.at,
        answered=request.answered,
    )
    assert tampered.body != request.body
    assert_signed(request, endpoint["secret"])
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        Webhook(endpoint["secret"]).verify(tampered.body, tampered.headers)


async def test_a_handoff_sends_state_changed_and_handoff_only_to_subscribed_endpoints(
    kb_company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    both, both_path = await register(
        kb_company.client, receiver, ["conversation.state_changed", "conversation.handoff"]
    )
    _handoff_only, handoff_path = await register(kb_company.client, receiver, ["conversation.handoff"])
    _messages_only, messages_path = await register(kb_company.client, receiver, ["message.created"])

    body = await ask(kb_company.client, "Vocês vendem bicicletas?")
    assert body["reply"]["meta"]["decision"] == "handoff"

    received = await receiver.wait_for(both_path, lambda rs: len(rs) >= 2)
    by_type = {r.event["type"]: r.event for r in received}
    change = {"conversation_id": body["conversation_id"], "from": "bot", "to": "waiting_human"}
    assert by_type["conversation.state_changed"]["data"] == change
    handoff = by_type["conversation.handoff"]["data"]
    assert {k: handoff[k] for k in change} == change
    # where it waits and why: the company queue, answered soon (no hours set, no agents tracked)
    assert handoff["team_id"] is None
    assert handoff["ticket"] is False
    assert handoff["reason"].startswith("weak evidence")
    for request in received:
        assert_signed(request, both["secret"])
    await receiver.wait_for(handoff_path, lambda rs: len(rs) >= 1)
    await receiver.wait_for(messages_path, lambda rs: len(rs) >= 2)

    await asyncio.sleep(QUIET_SECONDS)
    assert sorted(r.event["type"] for r in receiver.requests(both_path)) == [
        "conversation.handoff",
        "conversation.state_changed",
    ]
    assert [r.event["type"] for r in receiver.requests(handoff_path)] == ["conversation.handoff"]
    assert {r.event["type"] for r in receiver.requests(messages_path)} == {"message.created"}


async def test_an_endpoint_failing_twice_gets_three_attempts_with_growing_delays_and_is_delivered(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    conversation_id, state = await settled_conversation(company)
    endpoint, path = await register(company.client, receiver, ["conversation.state_changed"])
    receiver.answer(path, 500, 500)

    target = another_state(state)
    r = await company.client.post(f"/v1/conversations/{conversation_id}/state", json={"state": target})
    assert r.status_code == 200, r.text

    received = await receiver.wait_for(path, lambda rs: len(rs) >= 3, timeout=20)
    assert [r.answered for r in received] == [500, 500, 200]
    assert len({r.headers["x-atende-delivery"] for r in received}) == 1
    assert {r.body for r in received} == {received[0].body}  # the same event, re-sent
    # one webhook-id (the receiver's idempotency key) on every retry, each attempt signed anew
    assert {r.headers["webhook-id"] for r in received} == {received[0].event["id"]}
    assert len({r.headers["webhook-timestamp"] for r in received}) == 3
    for request in received:
        assert_signed(request, endpoint["secret"])
    first_wait, second_wait = received[1].at - received[0].at, received[2].at - received[1].at
    assert first_wait >= 1.8, first_wait  # RetryStrategy(exponential_wait=2): 2 s, then 4 s
    assert second_wait >= 3.8, second_wait
    assert second_wait > first_wait

    delivery = await wait_for_delivery(company.client, endpoint["id"], "delivered")
    assert delivery["event_type"] == "conversation.state_changed"
    assert delivery["attempts"] == 3
    assert delivery["delivered_at"] is not None
    log = delivery["attempt_log"]
    assert [a["number"] for a in log] == [1, 2, 3]
    assert [a["status_code"] for a in log] == [500, 500, 200]
    assert [a["error"] for a in log] == ["HTTP 500", "HTTP 500", None]
    [listed] = (await company.client.get("/v1/webhooks")).json()
    assert listed["enabled"] is True
    assert listed["consecutive_failures"] == 0


async def test_an_endpoint_that_always_fails_is_disabled_after_three_failures_and_gets_nothing_more(
    company: CompanyCtx, receiver: WebhookReceiver, settings: Settings
) -> None:
    assert settings.webhook_disable_after_failures == 3
    conversation_id, state = await settled_conversation(company)
    endpoint, path = await register(company.client, receiver, ["conversation.state_changed"])
    receiver.always_answer(path, 500)

    first = another_state(state)
    r = await company.client.post(f"/v1/conversations/{conversation_id}/state", json={"state": first})
    assert r.status_code == 200, r.text

    await receiver.wait_for(path, lambda rs: len(rs) >= 3, timeout=20)
    delivery = await wait_for_delivery(company.client, endpoint["id"], "failed")
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 500]
    [listed] = (await company.client.get("/v1/webhooks")).json()
    assert listed["enabled"] is False
    assert listed["consecutive_failures"] == 3
    assert "3 consecutive failed deliveries" in listed["disabled_reason"]
    assert "HTTP 500" in listed["disabled_reason"]

    second = another_state(first, state)
    r = await company.client.post(f"/v1/conversations/{conversation_id}/state", json={"state": second})
    assert r.status_code == 200, r.text
    await asyncio.sleep(QUIET_SECONDS)
    assert len(receiver.requests(path)) == 3
    assert len((await company.client.get(f"/v1/webhooks/{endpoint['id']}/deliveries")).json()) == 1

    # re-enabling clears the failure count, and events flow again
    receiver.always_answer(path, 200)
    r = await company.client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": True})
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["consecutive_failures"], r.json()["disabled_reason"]) == (
        True,
        0,
        None,
    )
    r = await company.client.post(f"/v1/conversations/{conversation_id}/state", json={"state": first})
    assert r.status_code == 200, r.text
    [*_, last] = await receiver.wait_for(path, lambda rs: len(rs) >= 4)
    assert last.answered == 200
    assert last.event["data"]["to"] == first


async def test_a_disabled_or_deleted_endpoint_receives_nothing(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    disabled, disabled_path = await register(company.client, receiver, ["message.created"])
    deleted, deleted_path = await register(company.client, receiver, ["message.created"])
    r = await company.client.patch(f"/v1/webhooks/{disabled['id']}", json={"enabled": False})
    assert (r.status_code, r.json()["enabled"]) == (200, False)
    r = await company.client.delete(f"/v1/webhooks/{deleted['id']}")
    assert r.status_code == 204
    assert [e["id"] for e in (await company.client.get("/v1/webhooks")).json()] == [disabled["id"]]
    r = await company.client.get(f"/v1/webhooks/{deleted['id']}/deliveries")
    assert r.status_code == 404

    await ask(company.client, "Olá, preciso de ajuda")
    await asyncio.sleep(QUIET_SECONDS)
    assert receiver.requests(disabled_path) == []
    assert receiver.requests(deleted_path) == []


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"url": "ftp://example.com/hook", "events": ["message.created"]}, "http(s)"),
        ({"url": "not a url at all", "events": ["message.created"]}, "http(s)"),
        ({"url": "http:///no-host", "events": ["message.created"]}, "http(s)"),
        ({"url": "https://example.com/hook", "events": ["message.deleted"]}, "message.deleted"),
        ({"url": "https://example.com/hook", "events": []}, "events"),
        ({"url": "https://example.com/hook"}, "events"),
        ({"url": "https://example.com/hook", "events": ["message.created"], "secret": "x"}, "secret"),
    ],
)
async def test_an_invalid_url_or_unknown_event_is_refused_with_422(
    company: CompanyCtx, body: dict[str, Any], complaint: str
) -> None:
    r = await company.client.post("/v1/webhooks", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert complaint in str(r.json()["detail"])
    assert (await company.client.get("/v1/webhooks")).json() == []


async def test_an_unknown_endpoint_id_answers_404(company: CompanyCtx) -> None:
    missing = uuid.uuid4()
    assert (await company.client.patch(f"/v1/webhooks/{missing}", json={"enabled": False})).status_code == 404
    assert (await company.client.delete(f"/v1/webhooks/{missing}")).status_code == 404
    assert (await company.client.get(f"/v1/webhooks/{missing}/deliveries")).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::1]/hook",
        "http://192.168.1.10:5432/",
    ],
)
async def test_webhook_urls_on_internal_addresses_are_refused_unless_allowed(url: str) -> None:
    from atende.errors import InvalidInput
    from atende.webhooks.service import check_destination

    with pytest.raises(InvalidInput, match="not a public address"):
        await check_destination(url, allow_private=False)
    await check_destination(url, allow_private=True)  # the setting opens it


async def test_a_public_address_is_accepted() -> None:
    from atende.webhooks.service import check_destination

    await check_destination("https://8.8.8.8/hook", allow_private=False)


async def test_a_delivery_that_gets_no_answer_in_time_is_logged_as_a_timed_out_attempt(
    company: CompanyCtx, receiver: WebhookReceiver, settings: Settings
) -> None:
    conversation_id, state = await settled_conversation(company)
    endpoint, path = await register(company.client, receiver, ["conversation.state_changed"])
    receiver.stall(path, settings.webhook_timeout_seconds + 3)
    r = await company.client.post(
        f"/v1/conversations/{conversation_id}/state", json={"state": another_state(state)}
    )
    assert r.status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        [delivery] = (await company.client.get(f"/v1/webhooks/{endpoint['id']}/deliveries")).json()
        if delivery["attempt_log"]:
            break
        await asyncio.sleep(0.2)
    first = delivery["attempt_log"][0]
    assert first["status_code"] is None
    assert first["error"] == f"no answer within {settings.webhook_timeout_seconds:g} s"
    assert first["duration_ms"] < (settings.webhook_timeout_seconds + 1.5) * 1000
    receiver.stall(path, 0)  # let the retry through, so the worker is free again
