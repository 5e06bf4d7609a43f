"""The API channel end to end: a live server, the real worker, real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask


async def test_a_customer_question_gets_a_cited_answer_from_the_knowledge_base(
    kb_company: CompanyCtx,
) -> None:
    body = await ask(kb_company.client, "Qual o prazo de entrega para o interior?")
    reply = body["reply"]
    assert "4 a 10 dias úteis" in reply["text"]
    assert reply["author"] == "bot"
    assert reply["language"] == "pt"
    [citation] = reply["meta"]["citations"]
    assert citation["title"] == "Entregas"
    assert citation["section"] == "Entregas › Prazos de entrega"


async def test_reply_can_be_polled_instead_of_awaited(kb_company: CompanyCtx) -> None:
    r = await kb_company.client.post(
        "/v1/messages", json={"contact": {"external_id": "poller"}, "text": "Vocês aceitam Pix?"}
    )
    assert r.status_code == 201
    conversation_id = r.json()["conversation_id"]
    assert r.json()["reply"] is None
    for _ in range(100):
        messages = (await kb_company.client.get(f"/v1/conversations/{conversation_id}/messages")).json()[
            "items"
        ]
        if any(m["author"] == "bot" for m in messages):
            break
        await asyncio.sleep(0.1)
    assert [m["author"] for m in messages] == ["customer", "bot"]
    assert "Pix" in messages[1]["text"]


async def test_a_redelivered_message_is_stored_once_and_answered_once(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    payload = {
        "contact": {"external_id": "ana"},
        "text": "Como funciona o reembolso?",
        "message_id": "crm-77",
    }
    first = await kb_company.client.post("/v1/messages?wait=10", json=payload)
    again = await asyncio.gather(*(kb_company.client.post("/v1/messages", json=payload) for _ in range(5)))
    assert first.status_code == 201
    assert first.json()["duplicate"] is False
    assert all(r.json()["duplicate"] for r in again)
    assert {r.json()["message"]["id"] for r in again} == {first.json()["message"]["id"]}
    await asyncio.sleep(1)  # give any wrongly queued second turn the time to answer
    async with runtime.db.transaction(kb_company.id) as session:
        customer = await session.scalar(select(func.count()).where(Message.author == "customer"))
        bot = await session.scalar(select(func.count()).where(Message.author == "bot"))
    assert (customer, bot) == (1, 1)


async def test_an_agent_reply_takes_over_and_the_bot_stays_silent(kb_company: CompanyCtx) -> None:
    first = await ask(kb_company.client, "Qual o prazo de garantia?", contact="bia")
    cid = first["conversation_id"]
    r = await kb_company.client.post(
        f"/v1/conversations/{cid}/replies", json={"text": "Oi Bia, aqui é a Carla."}
    )
    assert r.status_code == 201
    assert r.json()["author"] == "agent"
    detail = (await kb_company.client.get(f"/v1/conversations/{cid}")).json()
    assert detail["state"] == "human"
    r = await kb_company.client.post(
        "/v1/messages?wait=2", json={"contact": {"external_id": "bia"}, "text": "Obrigada, e o frete?"}
    )
    assert r.json()["conversation_id"] == cid
    assert r.json()["reply"] is None
    authors = [
        m["author"]
        for m in (await kb_company.client.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    ]
    assert authors == ["customer", "bot", "agent", "customer"]


async def test_a_new_message_reopens_a_resolved_conversation_and_transitions_are_recorded(
    kb_company: CompanyCtx,
) -> None:
    first = await ask(kb_company.client, "Quais formas de pagamento vocês aceitam?", contact="caio")
    cid = first["conversation_id"]
    r = await kb_company.client.post(
        f"/v1/conversations/{cid}/state", json={"state": "resolved", "reason": "done"}
    )
    assert r.status_code == 200
    assert r.json()["state"] == "resolved"
    again = await ask(kb_company.client, "E posso parcelar no cartão?", contact="caio")
    assert again["conversation_id"] == cid
    assert "10 vezes sem juros" in again["reply"]["text"]
    detail = (await kb_company.client.get(f"/v1/conversations/{cid}")).json()
    moves = [(t["from_state"], t["to_state"], t["actor_type"]) for t in detail["transitions"]]
    assert moves == [("new", "bot", "customer"), ("bot", "resolved", "api"), ("resolved", "bot", "customer")]
    assert detail["transitions"][1]["actor_id"].startswith("atd_")
    assert detail["transitions"][1]["reason"] == "done"


async def test_a_transition_the_state_machine_forbids_is_a_clear_422(kb_company: CompanyCtx) -> None:
    first = await ask(kb_company.client, "Qual o horário de atendimento?")
    cid = first["conversation_id"]
    r = await kb_company.client.post(f"/v1/conversations/{cid}/state", json={"state": "bot"})
    assert r.status_code == 422
    assert "already bot" in r.json()["detail"]


async def test_conversations_list_with_filters_and_cursor_pagination(company: CompanyCtx) -> None:
    ids = []
    for i in range(5):  # wait for each reply: a bot turn moves updated_at, i.e. the list order
        ids.append((await ask(company.client, f"olá {i}", contact=f"p{i}"))["conversation_id"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await company.client.get("/v1/conversations", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5
    api_only = (await company.client.get("/v1/conversations", params={"channel": "webchat"})).json()
    assert api_only["items"] == []
    future = (
        await company.client.get("/v1/conversations", params={"updated_since": "2999-01-01T00:00:00Z"})
    ).json()
    assert future["items"] == []
    resolved = (await company.client.get("/v1/conversations", params={"state": "resolved"})).json()
    assert resolved["items"] == []


async def test_messages_are_listed_after_a_sequence_number(kb_company: CompanyCtx) -> None:
    body = await ask(kb_company.client, "Como rastrear meu pedido?")
    cid = body["conversation_id"]
    all_items = (await kb_company.client.get(f"/v1/conversations/{cid}/messages")).json()["items"]
    later = (
        await kb_company.client.get(
            f"/v1/conversations/{cid}/messages", params={"after": all_items[0]["seq"]}
        )
    ).json()["items"]
    assert [m["id"] for m in later] == [m["id"] for m in all_items[1:]]


async def test_unknown_conversation_is_404(company: CompanyCtx) -> None:
    r = await company.client.get(f"/v1/conversations/{uuid.uuid4()}")
    assert r.status_code == 404
    assert "no conversation" in r.json()["detail"]
