"""The WhatsApp channel end to end: Meta's real webhook payloads, signed with the account's app
secret, posted to the live server → the message stored → the bot's turn (the session's
worker) → the reply received by the fake Graph API → Meta's ``delivered`` then ``read``
statuses applied to it. And what must not happen: a forged or missing signature stores
nothing, a redelivery is answered once, an unknown number is acknowledged and dropped."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atende.channels.delivery import account_credentials
from atende.conversations.models import Contact
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import WhatsApp, new_number, new_wamid, sign
from tests.conftest import CompanyCtx, until
from tests.fakes.graph_api import FakeGraphApi

# (file, key) of each customer message sample, and what the stored message must read
SAMPLES: list[tuple[str, str, str]] = [
    ("message", "text", "Body Text"),
    ("message", "image", "[image]"),
    ("message", "video", "caption"),
    ("message", "document", "caption"),
    ("message", "audio", "[audio]"),
    ("message", "voice", "[voice]"),
    ("message", "static_sticker", "[sticker]"),
    ("message", "animated_sticker", "[sticker]"),
    ("message", "current_location", "📍 12.25089, 43.90539"),
    (
        "message",
        "chosen_location",
        "📍 Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 (37.4611978, -122.2164385)",
    ),
    (
        "message",
        "contacts",
        "👤 Chandler Bing +1 555-555-5555; Monica +1 666-666-6666; Rachel Green +1 777-777-7777",
    ),
    ("message", "forwarded", "forwarded text"),
    ("message", "forwarded_many_times", "text forwarded many times"),
    ("message", "referral", "BODY"),
    ("message", "unsupported", "[unsupported message]"),
    ("message", "order", "[order message]"),
    ("callback_button", "button", "title"),
    ("callback_button", "quick_reply", "title"),
    ("callback_button", "quick_reply_without_context", "title"),
    ("callback_selection", "callback", "title"),
    ("callback_selection", "description", "title — description"),
]


async def messages_of(wa: WhatsApp) -> list[dict[str, Any]]:
    """Every WhatsApp message of the company, through the API."""
    client = wa.company.client
    conversations = (
        await client.get("/v1/conversations", params={"channel": "whatsapp", "limit": 100})
    ).json()
    found: list[dict[str, Any]] = []
    for conversation in conversations["items"]:
        r = await client.get(f"/v1/conversations/{conversation['id']}/messages", params={"limit": 100})
        found.extend(r.json()["items"])
    return found


async def customer_message(wa: WhatsApp, wamid: str) -> dict[str, Any] | None:
    return next((m for m in await messages_of(wa) if m["channel_message_id"] == wamid), None)


async def reply_to(wa: WhatsApp, message_id: str) -> dict[str, Any] | None:
    return next(
        (m for m in await messages_of(wa) if m["reply_to_id"] == message_id and m["author"] == "bot"), None
    )


async def test_every_sample_is_stored_answered_delivered_and_read(wa: WhatsApp, runtime: Runtime) -> None:
    for file, key, text in SAMPLES:
        wa_id, wamid = new_number(), new_wamid()
        r = await wa.post(wa.payload(file, key, wa_id=wa_id, wamid=wamid))
        assert r.status_code == 200, (key, r.text)
        stored = await until(lambda wamid=wamid: customer_message(wa, wamid), what=f"{key} stored")
        assert stored["author"] == "customer" and stored["text"] == text, key
        # the bot's answer (or the polite note for what it cannot read) reaches the customer
        sent = await until(lambda wa_id=wa_id: wa.graph.sent_to(wa_id), what=f"{key} answered")
        assert len(sent) == 1 and sent[0].body["type"] == "text" and sent[0].text, key
        reply = await until(lambda stored=stored: reply_to(wa, stored["id"]), what=f"{key} reply")
        assert reply["text"] == sent[0].text
        if stored["text"].startswith("["):  # media without caption, unsupported: a polite note
            assert reply["meta"]["decision"] == "unreadable"
            assert "Desculpe" in reply["text"], reply["text"]
        # Meta reports it delivered, then read
        for status in ("delivered", "read"):
            assert (await wa.status(sent[0].wamid, status, wa_id=wa_id)).status_code == 200

            async def reached(status: str = status, reply_id: str = reply["id"]) -> bool:
                message = next(m for m in await messages_of(wa) if m["id"] == reply_id)
                return bool(message["delivery_status"] == status)

            await until(reached, what=f"{key} {status}")
        # the bot took the message: the customer sees it read
        await until(lambda wamid=wamid: wamid in wa.graph.read, what=f"{key} marked read")

    # what each type keeps beside its text
    stored_all = {m["channel_message_id"]: m for m in await messages_of(wa)}
    image = next(m for m in stored_all.values() if m["meta"].get("whatsapp_type") == "image")
    described = {k: image["meta"]["media"][k] for k in ("id", "mime_type", "sha256")}
    assert described == {"id": "65463453", "mime_type": "image/jpeg", "sha256": "4654+8g="}
    # the samples' media ids are none the fake Graph API has: their fetch job gives up on them
    assert image["meta"]["media"].get("error") in (None, "gone")
    document = next(m for m in stored_all.values() if m["meta"].get("whatsapp_type") == "document")
    assert document["meta"]["media"]["filename"] == "filename.pdf" and document["text"] == "caption"
    voice = next(m for m in stored_all.values() if m["meta"].get("whatsapp_type") == "voice")
    assert voice["meta"]["media"]["mime_type"] == "audio/ogg; codecs=opus"
    place = next(m for m in stored_all.values() if m["meta"].get("location", {}).get("name"))
    assert place["meta"]["location"]["latitude"] == 37.4611978
    choice = next(m for m in stored_all.values() if m["meta"].get("choice", {}).get("type") == "list_reply")
    assert choice["meta"]["choice"]["id"] == "callback_data"
    unsupported = [m["meta"]["unsupported"] for m in stored_all.values() if "unsupported" in m["meta"]]
    assert {"type": "order", "errors": []} in unsupported
    unknown = {"code": 131051, "title": "Message type unknown"}
    assert {"type": "unsupported", "errors": [unknown]} in unsupported


async def test_profile_name_reply_context_and_reactions(wa: WhatsApp, runtime: Runtime) -> None:
    wa_id, first = new_number(), new_wamid()
    body = wa.payload("message", "text", wa_id=wa_id, wamid=first)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "Qual o prazo de entrega?"
    assert (await wa.post(body)).status_code == 200
    [sent] = await until(lambda: wa.graph.sent_to(wa_id), what="the first answer")
    stored = await until(lambda: customer_message(wa, first))
    async with runtime.db.transaction(wa.company.id) as session:  # matched by wa_id, named by profile
        contact = await session.scalar(
            select(Contact).where(Contact.channel == "whatsapp", Contact.external_id == wa_id)
        )
    assert contact is not None and (contact.name, contact.phone) == ("Test Name", f"+{wa_id}")

    # a reply quoting the bot's answer (context.id is the wamid we sent)
    body = wa.payload("message", "reply", wa_id=wa_id)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["context"]["id"] = sent.wamid
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "E qual o prazo para o Rio?"
    quoting = body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert (await wa.post(body)).status_code == 200
    replied = await until(lambda: customer_message(wa, quoting))
    assert replied["conversation_id"] == stored["conversation_id"]  # the contact's one chat
    bot_answer = await reply_to(wa, stored["id"])
    assert bot_answer is not None
    assert replied["meta"]["reply_to"] == {
        "wamid": sent.wamid,
        "message_id": bot_answer["id"],
        "author": "bot",
        "text": bot_answer["text"][:200],
    }
    await until(lambda: len(wa.graph.sent_to(wa_id)) == 2, what="the second answer")

    # a reaction to the bot's answer is put on it, and is no new message nor turn
    count = len(await messages_of(wa))
    body = wa.payload("message", "reaction", wa_id=wa_id)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["message_id"] = sent.wamid
    assert (await wa.post(body)).status_code == 200

    async def reacted() -> bool:
        message = next(m for m in await messages_of(wa) if m["id"] == bot_answer["id"])
        return bool(message["meta"].get("reactions") == {wa_id: "😮"})

    await until(reacted, what="the reaction")
    # taken back (an empty emoji)
    body = wa.payload("message", "unreaction_empty", wa_id=wa_id)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"]["message_id"] = sent.wamid
    assert (await wa.post(body)).status_code == 200

    async def unreacted() -> bool:
        message = next(m for m in await messages_of(wa) if m["id"] == bot_answer["id"])
        return bool(message["meta"].get("reactions") == {})

    await until(unreacted, what="the reaction taken back")
    assert len(await messages_of(wa)) == count
    assert len(wa.graph.sent_to(wa_id)) == 2


async def test_a_forged_or_missing_signature_is_refused_and_nothing_stored(wa: WhatsApp) -> None:
    wa_id = new_number()
    body = wa.payload("message", "text", wa_id=wa_id)
    assert (await wa.post(body, secret="not-the-app-secret")).status_code == 401
    assert (await wa.post(body, signature="")).status_code == 401
    assert (await wa.post(body, signature="sha256=zz")).status_code == 401
    raw = b'{"object": "whatsapp_business_account"}'
    r = await wa.post(raw, signature=f"sha256={'0' * 64}")
    assert r.status_code == 401 and "X-Hub-Signature-256" in r.json()["detail"]
    # the signature covers the raw bytes: the same JSON re-serialised differently fails
    good = json.dumps(body).encode()
    assert (
        await wa.post(json.dumps(body, indent=1).encode(), signature=sign(good, wa.app_secret))
    ).status_code == 401
    assert await messages_of(wa) == []
    assert wa.graph.sent_to(wa_id) == []


async def test_a_redelivery_is_stored_and_answered_once(wa: WhatsApp) -> None:
    wa_id, wamid = new_number(), new_wamid()
    body = wa.payload("message", "text", wa_id=wa_id, wamid=wamid)
    for _ in range(3):
        assert (await wa.post(body)).status_code == 200
    await until(lambda: wa.graph.sent_to(wa_id), what="the answer")
    assert (await wa.post(body)).status_code == 200
    customer = [m for m in await messages_of(wa) if m["author"] == "customer"]
    assert [m["channel_message_id"] for m in customer] == [wamid]
    # give a second turn a chance to show up: there is none
    stored = customer[0]
    await until(lambda: reply_to(wa, stored["id"]))
    assert len(wa.graph.sent_to(wa_id)) == 1


async def test_a_rate_limited_send_backs_off_and_goes_out_once(wa: WhatsApp) -> None:
    wa_id = new_number()
    attempts = wa.graph.attempts
    wa.graph.fail_next(130429, times=2)
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id))).status_code == 200
    [sent] = await until(lambda: wa.graph.sent_to(wa_id), seconds=60, what="the answer after two 130429")
    assert wa.graph.attempts - attempts == 3
    assert (await wa.status(sent.wamid, "delivered", wa_id=wa_id)).status_code == 200

    async def delivered() -> bool:
        return any(m["delivery_status"] == "delivered" for m in await messages_of(wa))

    await until(delivered, what="delivered")
    replies = [m for m in await messages_of(wa) if m["author"] != "customer"]
    assert len(replies) == 1 and replies[0]["delivery_error"] is None


async def test_a_permanent_refusal_marks_the_reply_failed_with_metas_reason(wa: WhatsApp) -> None:
    wa_id = new_number()
    wa.graph.fail_to(wa_id, 131047)
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id))).status_code == 200

    async def failed() -> dict[str, Any] | None:
        return next((m for m in await messages_of(wa) if m["delivery_status"] == "failed"), None)

    reply = await until(failed, what="the reply failed")
    assert reply["delivery_error"].startswith("WhatsApp error 131047: Re-engagement message")
    # a failure Meta reports later (a status callback) names its code and title too
    wa_id2 = new_number()
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id2))).status_code == 200
    [sent] = await until(lambda: wa.graph.sent_to(wa_id2), what="the answer")
    assert (await wa.status(sent.wamid, "failed", wa_id=wa_id2)).status_code == 200

    async def reported() -> dict[str, Any] | None:
        return next(
            (m for m in await messages_of(wa) if m["delivery_status"] == "failed" and m["id"] != reply["id"]),
            None,
        )

    later = await until(reported, what="the failed status")
    assert later["delivery_error"] == "WhatsApp error 130472: User's number is part of an experiment"
    # a late "delivered" never undoes it
    assert (await wa.status(sent.wamid, "delivered", wa_id=wa_id2)).status_code == 200
    message = next(m for m in await messages_of(wa) if m["id"] == later["id"])
    assert message["delivery_status"] == "failed"


async def test_an_unknown_number_is_acknowledged_and_nothing_stored(
    wa: WhatsApp, graph: FakeGraphApi
) -> None:
    wa_id = new_number()
    body = wa.payload("message", "text", wa_id=wa_id)
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = new_number()
    r = await wa.post(body)
    assert r.status_code == 200 and r.json() == {"stored": 0}
    assert await messages_of(wa) == []
    # a disabled account's number is as unknown
    r = await wa.company.client.patch(f"/v1/channel-accounts/{wa.account_id}", json={"enabled": False})
    assert r.status_code == 200
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id))).status_code == 401  # no secret of it
    assert await messages_of(wa) == []


async def test_the_verification_handshake(wa: WhatsApp) -> None:
    async with httpx.AsyncClient(base_url=wa.base_url, timeout=15) as client:
        params = {"hub.mode": "subscribe", "hub.verify_token": wa.verify_token, "hub.challenge": "1158201444"}
        r = await client.get("/webhooks/whatsapp", params=params)
        assert (r.status_code, r.text) == (200, "1158201444")
        assert r.headers["content-type"].startswith("text/plain")
        r = await client.get("/webhooks/whatsapp", params={**params, "hub.verify_token": "wrong"})
        assert r.status_code == 403 and "1158201444" not in r.text
        r = await client.get("/webhooks/whatsapp", params={**params, "hub.mode": "unsubscribe"})
        assert r.status_code == 403
        r = await client.get("/webhooks/whatsapp")
        assert r.status_code == 403


async def test_readiness_names_an_account_whose_token_is_rejected(wa: WhatsApp, runtime: Runtime) -> None:
    [credential] = [
        c
        for c in await account_credentials(runtime)
        if c.company_id == wa.company.id and c.kind == "whatsapp"
    ]
    assert credential.label == "whatsapp SAC WhatsApp"
    assert (await credential.check()).ok
    r = await wa.company.client.patch(
        f"/v1/channel-accounts/{wa.account_id}", json={"secrets": {"access_token": "expired-token"}}
    )
    assert r.status_code == 200
    [credential] = [
        c
        for c in await account_credentials(runtime)
        if c.company_id == wa.company.id and c.kind == "whatsapp"
    ]
    verdict = await credential.check()
    assert not verdict.ok and "190" in verdict.reason


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"graph_api_url": "http://graph.example.com"}, "must be https"),
        ({"graph_api_url": "ftp://127.0.0.1"}, "http(s) URL"),
        ({"graph_api_version": "latest"}, "graph_api_version"),
        ({"waba_id": "abc"}, "waba_id"),
        ({"other": 1}, "other"),
    ],
)
async def test_a_bad_configuration_is_refused_clearly(
    wa: WhatsApp, config: dict[str, Any], problem: str
) -> None:
    r = await wa.company.client.post(
        "/v1/channel-accounts",
        json={"kind": "whatsapp", "external_id": new_number(), "config": config},
    )
    assert r.status_code == 422 and problem in r.text, r.text


async def test_signed_but_strange_payloads_are_answered_never_with_a_500(wa: WhatsApp) -> None:
    """Meta retries a failed delivery for days: what cannot be stored must still be answered."""
    wa_id = new_number()
    nul = wa.payload("message", "text", wa_id=wa_id)
    nul["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = "Oi\u0000 tudo bem?"
    nul["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"] = "Ana\u0000"
    r = await wa.post(nul)
    assert r.status_code == 200 and r.json() == {"stored": 1}
    place = wa.payload("message", "chosen_location", wa_id=wa_id)
    raw = json.dumps(place).replace("37.4611978", "NaN").encode()
    assert (await wa.post(raw)).status_code == 200
    for body in (
        {"object": "whatsapp_business_account", "entry": "nothing"},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": []}]}]},
        {
            "entry": [
                {
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "metadata": {"phone_number_id": wa.phone_number_id},
                                "messages": ["x", {"id": "w"}],
                                "statuses": [{"id": "w" * 900, "status": "read"}],
                            },
                        }
                    ]
                }
            ]
        },
        [1, 2, 3],
    ):
        r = await wa.post(body)
        assert r.status_code == 200, (body, r.text)
    r = await wa.post(b"not json at all")
    assert r.status_code == 400 and r.json()["detail"] == "the body is not JSON"
    stored = [m for m in await messages_of(wa) if m["author"] == "customer"]
    assert sorted(m["text"] for m in stored) == sorted(
        ["Oi tudo bem?", "📍 Facebook HQ, 1 Hacker Way, Menlo Park, CA 94025 (?, -122.2164385)"]
    )


async def test_statuses_that_arrive_before_the_send_answers_are_applied_once_it_does(wa: WhatsApp) -> None:
    """Meta often reports ``delivered`` (even ``read``) before its send call has answered."""
    wa_id = new_number()
    wa.graph.hold_answers()
    try:
        assert (await wa.post(wa.payload("message", "text", wa_id=wa_id))).status_code == 200
        [sent] = await until(lambda: wa.graph.sent_to(wa_id), what="the send (its answer held)")
        for status in ("read", "delivered", "sent"):  # out of order, and early
            assert (await wa.status(sent.wamid, status, wa_id=wa_id)).status_code == 200
    finally:
        wa.graph.release_answers()

    async def read() -> bool:
        return any(m["delivery_status"] == "read" for m in await messages_of(wa))

    await until(read, what="the early read applied")
    replies = [m for m in await messages_of(wa) if m["author"] != "customer"]
    assert [m["delivery_status"] for m in replies] == ["read"]


async def test_one_meta_apps_signature_cannot_write_into_another_companys_number(
    wa: WhatsApp, other_company: CompanyCtx
) -> None:
    theirs, their_secret = new_number(), f"their-secret-{uuid.uuid4().hex}"
    r = await other_company.client.post(
        "/v1/channel-accounts",
        json={
            "kind": "whatsapp",
            "external_id": theirs,
            "config": {"graph_api_url": wa.graph.origin},
            "secrets": {"access_token": "t", "app_secret": their_secret, "verify_token": "x"},
        },
    )
    assert r.status_code == 201, r.text
    wa_id = new_number()
    body = wa.payload("message", "text", wa_id=wa_id)
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = theirs
    r = await wa.post(body)  # signed with our app secret, for their number
    assert r.status_code == 200 and r.json() == {"stored": 0}
    listed = (await other_company.client.get("/v1/conversations", params={"channel": "whatsapp"})).json()
    assert listed["items"] == [] and await messages_of(wa) == []
    r = await wa.post(body, secret=their_secret)  # their own app's signature: theirs
    assert r.status_code == 200 and r.json() == {"stored": 1}
    listed = (await other_company.client.get("/v1/conversations", params={"channel": "whatsapp"})).json()
    assert len(listed["items"]) == 1 and await messages_of(wa) == []
