"""Agent assist: a suggested reply to the customer's last question, drafted from the knowledge
base with its citations, as the bot would answer it (offline, or with the company's LLM), and
nothing stored or changed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from atende.conversations.models import Conversation, Message, StateTransition
from atende.engine.models import Trace
from atende.runtime import Runtime
from atende.tenancy.models import Role
from atende.webhooks.models import WebhookDelivery
from tests.conftest import CompanyCtx, ask
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai
from tests.llm.test_assistant_api import use_llm
from tests.tenancy.test_support_api import new_key


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


async def customer_writes(company: CompanyCtx, cid: str, contact: str, question: str) -> dict[str, Any]:
    r = await company.client.post(
        "/v1/messages?wait=2",
        json={"contact": {"external_id": contact}, "text": question, "conversation_id": cid},
    )
    assert r.status_code == 201, r.text
    assert r.json()["reply"] is None  # an agent has it: the bot is silent
    return dict(r.json()["message"])


async def taken(company: CompanyCtx) -> tuple[str, str]:
    """A conversation an agent has taken (the bot is silent from now on): (id, contact)."""
    contact = f"c-{uuid.uuid4().hex[:8]}"
    body = await ask(company.client, "Olá, bom dia", contact=contact)
    cid = body["conversation_id"]
    r = await company.client.post(f"/v1/conversations/{cid}/replies", json={"text": "Oi! Sou a Carla."})
    assert r.status_code == 201, r.text
    return cid, contact


async def everything(runtime: Runtime, company_id: uuid.UUID, cid: str) -> dict[str, Any]:
    """What a suggestion must not change: the conversation, and every row and job it could add."""
    async with runtime.db.transaction(company_id) as session:
        conversation = await session.get_one(Conversation, uuid.UUID(cid))
        counts = {
            model.__name__: await session.scalar(select(func.count()).select_from(model))
            for model in (Message, Trace, StateTransition, WebhookDelivery)
        }
        jobs = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'company_id' = :c"),
            {"c": str(company_id)},
        )
        return {
            **counts,
            "jobs": jobs,
            "conversation": (
                conversation.state,
                conversation.language,
                conversation.updated_at,
                conversation.assignee_id,
                conversation.snoozed_until,
            ),
        }


async def suggest(client: httpx.AsyncClient, cid: str) -> httpx.Response:
    return await client.post(f"/v1/conversations/{cid}/suggested-reply")


async def test_a_grounded_draft_with_its_citations_and_nothing_stored(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    cid, contact = await taken(kb_company)
    question = await customer_writes(kb_company, cid, contact, "Qual o prazo de entrega para o interior?")
    await asyncio.sleep(0.5)  # let the intake's jobs (webhooks, none here) settle
    before = await everything(runtime, kb_company.id, cid)

    r = await suggest(kb_company.client, cid)
    assert r.status_code == 200, r.text
    draft = r.json()
    assert draft["question_id"] == question["id"]
    assert draft["question"] == "Qual o prazo de entrega para o interior?"
    assert "4 a 10 dias úteis" in draft["text"]
    assert (draft["answerer"], draft["language"]) == ("extractive", "pt")
    [citation] = draft["citations"]
    assert (citation["title"], citation["section"]) == ("Entregas", "Entregas › Prazos de entrega")
    documents = {d["title"]: d["id"] for d in (await kb_company.client.get("/v1/documents")).json()}
    assert citation["document_id"] == documents["Entregas"]
    chunks = (await kb_company.client.get(f"/v1/documents/{citation['document_id']}/chunks")).json()
    [chunk] = [c for c in chunks if c["id"] == citation["chunk_id"]]
    assert citation["snippet"] and chunk["text"].startswith(citation["snippet"])
    assert "4 a 10 dias úteis" in chunk["text"]

    await asyncio.sleep(0.5)  # anything it had queued would show by now
    assert await everything(runtime, kb_company.id, cid) == before


async def test_a_question_the_knowledge_base_does_not_answer_gets_no_draft_and_says_why(
    kb_company: CompanyCtx,
) -> None:
    cid, contact = await taken(kb_company)
    await customer_writes(kb_company, cid, contact, "Vocês consertam bicicletas elétricas de carga?")
    r = await suggest(kb_company.client, cid)
    assert r.status_code == 200, r.text
    assert r.json()["text"] is None and r.json()["citations"] == []
    assert r.json()["reason"].startswith("weak evidence")


async def test_a_message_the_bot_leaves_to_people_by_a_handoff_rule_still_gets_a_draft(
    kb_company: CompanyCtx,
) -> None:
    """The handoff signals decide whether the bot answers; the agent asking for a draft is the
    person the signal asks for."""
    rules = {"rules": [{"name": "interior", "keywords": ["interior"]}]}
    assert (await kb_company.client.put("/v1/company/handoff", json=rules)).status_code == 200
    body = await ask(kb_company.client, "Qual o prazo de entrega para o interior?")
    assert body["reply"]["meta"]["decision"] == "handoff"  # the bot leaves it to people
    r = await suggest(kb_company.client, body["conversation_id"])
    assert r.status_code == 200, r.text
    assert "4 a 10 dias úteis" in r.json()["text"]


async def test_with_the_companys_llm_the_draft_is_the_llms_grounded_answer_without_the_teams_notes(
    kb_company: CompanyCtx, fake: FakeOpenAI, runtime: Runtime
) -> None:
    await use_llm(kb_company, fake)
    fake.script(answer("Olá! [1]"))
    cid, contact = await taken(kb_company)
    r = await kb_company.client.post(f"/v1/conversations/{cid}/notes", json={"text": "NOTA: cliente VIP"})
    assert r.status_code == 201, r.text
    await customer_writes(kb_company, cid, contact, "Quais formas de pagamento vocês aceitam?")
    before = await everything(runtime, kb_company.id, cid)
    fake.script(answer("Aceitamos Pix, cartão de crédito e boleto [1]."))
    r = await suggest(kb_company.client, cid)
    assert r.status_code == 200, r.text
    assert (r.json()["text"], r.json()["answerer"]) == ("Aceitamos Pix, cartão de crédito e boleto.", "llm")
    assert r.json()["citations"][0]["title"] == "Formas de pagamento"
    prompt = fake.requests[-1]["messages"]
    assert prompt[-1] == {"role": "user", "content": "Quais formas de pagamento vocês aceitam?"}
    assert "cliente VIP" not in str(prompt)
    assert ("assistant", "Oi! Sou a Carla.") in [(m["role"], m["content"]) for m in prompt]
    assert await everything(runtime, kb_company.id, cid) == before


async def test_no_draft_before_the_customer_writes_and_only_for_agents_of_the_company(
    company: CompanyCtx, runtime: Runtime
) -> None:
    r = await company.client.post(f"/widget/v1/{company.widget_key}/conversations", json={})
    assert r.status_code == 201, r.text
    silent = r.json()["conversation_id"]
    r = await suggest(company.client, silent)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "the customer has not written yet: there is no question to draft a reply to"
    r = await suggest(company.client, str(uuid.uuid4()))
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    async with company.with_key(await new_key(runtime, company, Role.viewer)) as viewer:
        assert (await suggest(viewer, silent)).status_code == 403
