"""WhatsApp's 24-hour customer-service window, and what an agent does outside it: a free-form
reply is refused before it is stored (409 with the reason), the number's approved templates
are listed from the Graph API (cached a minute), one is sent with its parameters filled and
reaches the fake Graph API as a ``template`` message; a send Meta still refuses with 131047
is marked failed with that reason. And a handoff: the customer is told on WhatsApp what the
web chat says (hours-aware), and an agent's answer reaches them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from atende.conversations.models import Contact, Conversation, Message
from atende.engine.messages import phrase
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import WhatsApp, new_number
from tests.conftest import Clock, until
from tests.engine.test_handoff_flow import OFFICE, local, put_hours


async def conversation_of(wa: WhatsApp, runtime: Runtime, wa_id: str) -> dict[str, Any]:
    """The conversation of the customer ``wa_id``, as the API shows it."""
    async with runtime.db.transaction(wa.company.id) as session:
        conversation_id = await session.scalar(
            select(Conversation.id)
            .join(Contact, Contact.id == Conversation.contact_id)
            .where(Contact.channel == "whatsapp", Contact.external_id == wa_id)
        )
    assert conversation_id is not None, f"no conversation for {wa_id}"
    r = await wa.company.client.get(f"/v1/conversations/{conversation_id}")
    return dict(r.json())


async def thread(wa: WhatsApp, conversation_id: str) -> list[dict[str, Any]]:
    r = await wa.company.client.get(f"/v1/conversations/{conversation_id}/messages")
    return list(r.json()["items"])


async def say(wa: WhatsApp, wa_id: str, text: str) -> None:
    body = wa.payload("message", "text", wa_id=wa_id)
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text
    assert (await wa.post(body)).status_code == 200


async def started(wa: WhatsApp, runtime: Runtime) -> tuple[str, str]:
    """A customer writes and the bot answers; their wa_id and conversation id."""
    wa_id = new_number()
    await say(wa, wa_id, "Qual o prazo de entrega?")
    await until(lambda: wa.graph.sent_to(wa_id), what="the bot's answer")
    conversation = await conversation_of(wa, runtime, wa_id)
    return wa_id, conversation["id"]


async def age(runtime: Runtime, wa: WhatsApp, conversation_id: str, hours: float) -> None:
    """Make the conversation's messages ``hours`` older (the customer went quiet)."""
    async with runtime.db.transaction(wa.company.id) as session:
        await session.execute(
            update(Message)
            .where(Message.conversation_id == uuid.UUID(conversation_id))
            .values(created_at=Message.created_at - timedelta(hours=hours))
        )


async def test_outside_the_window_a_reply_is_refused_and_a_template_goes_out(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await started(wa, runtime)
    replies = f"/v1/conversations/{conversation_id}/replies"
    templates = f"/v1/conversations/{conversation_id}/whatsapp/templates"

    # inside the window an agent's free-form reply goes out
    r = await client.post(replies, json={"text": "Oi! Sou a Ana, vou te ajudar."})
    assert r.status_code == 201, r.text
    await until(lambda: len(wa.graph.sent_to(wa_id)) == 2, what="the agent's reply")
    listed = (await client.get(templates)).json()
    assert listed["window"]["open"] is True and listed["window"]["closes_at"]

    # a day and an hour later: refused before anything is stored, with the reason
    await age(runtime, wa, conversation_id, 25)
    before = await thread(wa, conversation_id)
    r = await client.post(replies, json={"text": "Ainda precisa de ajuda?"})
    assert r.status_code == 409, r.text
    assert r.json()["code"] == "outside_reply_window"
    assert "more than 24 hours" in r.json()["detail"] and "template" in r.json()["detail"]
    assert await thread(wa, conversation_id) == before
    assert len(wa.graph.sent_to(wa_id)) == 2

    # the approved templates, from the Graph API, once a minute at most
    lists = wa.graph.template_lists
    r = await client.get(templates)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["window"]["open"] is False
    by_name = {t["name"]: t for t in listed["items"]}
    assert sorted(by_name) == ["hello_world", "order_update", "promo_photo"]  # not the pending one
    order = by_name["order_update"]
    assert (order["language"], order["parameters"], order["sendable"]) == ("pt_BR", ["name", "order"], True)
    assert order["header"] == "Seu pedido" and order["footer"] == "Loja Exemplo"
    assert by_name["hello_world"]["parameters"] == ["1"]
    assert by_name["promo_photo"]["sendable"] is False
    assert by_name["promo_photo"]["unsupported"] == "its header is a media file"
    await client.get(templates)
    assert wa.graph.template_lists - lists <= 1  # the second came from the cache

    # what is wrong with a template send is said, nothing sent
    for body, words in [
        ({"name": "nope", "language": "pt_BR", "parameters": []}, "no approved template 'nope'"),
        ({"name": "order_update", "language": "pt_BR", "parameters": ["Ana"]}, "takes 2 parameters; 1"),
        ({"name": "order_update", "language": "pt_BR", "parameters": ["Ana", " "]}, "{{order}} must not"),
        ({"name": "promo_photo", "language": "pt_BR", "parameters": []}, "header is a media file"),
    ]:
        r = await client.post(templates, json=body)
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert len(wa.graph.sent_to(wa_id)) == 2

    # the template goes out through the outbox
    r = await client.post(
        templates, json={"name": "order_update", "language": "pt_BR", "parameters": ["Ana", "#1234"]}
    )
    assert r.status_code == 201, r.text
    message = r.json()
    assert message["author"] == "agent"
    assert message["text"] == "Seu pedido\n\nOlá Ana, o pedido #1234 saiu para entrega.\n\nLoja Exemplo"
    sent = await until(lambda: wa.graph.sent_to(wa_id)[2:], what="the template")
    assert sent[0].body["type"] == "template"
    assert sent[0].body["template"] == {
        "name": "order_update",
        "language": {"code": "pt_BR"},
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Ana", "parameter_name": "name"},
                    {"type": "text", "text": "#1234", "parameter_name": "order"},
                ],
            }
        ],
    }

    async def marked_sent() -> bool:
        found = await thread(wa, conversation_id)
        return any(m["id"] == message["id"] and m["delivery_status"] == "sent" for m in found)

    await until(marked_sent, what="the template marked sent")

    # a positional template, and one Meta still refuses as outside the window: failed, the reason kept
    wa.graph.fail_next(131047)
    r = await client.post(templates, json={"name": "hello_world", "language": "en_US", "parameters": ["Ana"]})
    assert r.status_code == 201 and r.json()["text"] == "Hello Ana, how can we help?"

    async def failed() -> dict[str, Any] | None:
        found = await thread(wa, conversation_id)
        return next((m for m in found if m["id"] == r.json()["id"] and m["delivery_error"]), None)

    refused = await until(failed, what="the refused template")
    assert refused["delivery_status"] == "failed"
    assert refused["delivery_error"].startswith("WhatsApp error 131047: Re-engagement message")
    assert "send an approved template" in refused["delivery_error"]

    # the customer writes again: the window is open once more
    await say(wa, wa_id, "Oi, chegou sim, obrigado!")
    r = await client.post(replies, json={"text": "Que bom!"})
    assert r.status_code == 201, r.text


async def test_templates_belong_to_whatsapp_conversations_and_need_metas_answer(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    r = await client.post("/v1/messages", json={"contact": {"external_id": "api-1"}, "text": "Oi"})
    api_conversation = r.json()["conversation_id"]
    r = await client.get(f"/v1/conversations/{api_conversation}/whatsapp/templates")
    assert r.status_code == 422 and "templates are WhatsApp's" in r.json()["detail"]
    # a free-form reply on a channel without a window is never refused for its age
    await age(runtime, wa, api_conversation, 48)
    r = await client.post(f"/v1/conversations/{api_conversation}/replies", json={"text": "Olá"})
    assert r.status_code == 201, r.text

    # Meta refuses the token: a clear 502, not a 500
    _wa_id, conversation_id = await started(wa, runtime)
    r = await client.patch(f"/v1/channel-accounts/{wa.account_id}", json={"secrets": {"access_token": "bad"}})
    assert r.status_code == 200, r.text
    r = await client.get(f"/v1/conversations/{conversation_id}/whatsapp/templates")
    assert r.status_code == 502 and r.json()["code"] == "whatsapp_unavailable"
    assert "WhatsApp error 190" in r.json()["detail"]


async def test_a_handoff_tells_the_whatsapp_customer_as_the_web_chat_does_and_the_agent_answers(
    wa: WhatsApp, clock: Clock, runtime: Runtime
) -> None:
    client = wa.company.client
    await put_hours(client, OFFICE)
    # closed (a Wednesday evening in São Paulo): when the team is back
    clock.at(local(1, 19))
    closed = new_number()
    await say(wa, closed, "quero falar com um atendente")
    [told] = await until(lambda: wa.graph.sent_to(closed), what="the handoff notice")
    back = phrase("next:closed", "pt").format(when="amanhã às 08:00")
    expected = f"{phrase('lead:requested', 'pt')} {back}"
    assert told.text == expected
    # open: a person answers soon
    clock.at(local(2, 10))
    opened = new_number()
    await say(wa, opened, "quero falar com um atendente")
    [told] = await until(lambda: wa.graph.sent_to(opened), what="the handoff notice")
    assert told.text == f"{phrase('lead:requested', 'pt')} {phrase('next:open', 'pt')}"
    conversation = await conversation_of(wa, runtime, opened)
    assert conversation["state"] == "waiting_human"
    # the agent's answer reaches the customer on WhatsApp
    answer = {"text": "Oi, aqui é a Ana. Como posso ajudar?"}
    r = await client.post(f"/v1/conversations/{conversation['id']}/replies", json=answer)
    assert r.status_code == 201, r.text
    answered = await until(lambda: wa.graph.sent_to(opened)[1:], what="the agent's answer")
    assert answered[0].text == "Oi, aqui é a Ana. Como posso ajudar?"
