"""The hourly job that learns, per company, which words its customers' messages usually
contain (``engine.tasks.learn_message_terms``): only customers' messages count, only the
company's own, and retrieval weighs those words less from then on."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Sequence
from unittest.mock import ANY

import pytest
from sqlalchemy import select

from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import InboundMessage
from atende.engine.tasks import blueprint, learn_company_message_terms, learn_message_terms
from atende.knowledge import message_terms
from atende.knowledge.models import MessageLexemeStat
from atende.knowledge.retrieval import CONTACTS_MIN, MESSAGES_FLOOR
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import CompanyCtx
from tests.knowledge.test_message_terms import (
    QUESTION,
    customers_from_curitiba,
    ingest_documents,
    top_titles,
)
from tests.test_cli import run


async def store_messages(
    runtime: Runtime,
    company_id: uuid.UUID,
    customers: list[str],
    others: Sequence[tuple[str, str]] = (),
    *,
    contact: str = "cliente",
) -> None:
    """One conversation of the company: its first customer message as a channel stores it,
    then the other customer messages and ``(author, text)`` messages of the bot or agents."""
    async with runtime.db.transaction(company_id) as session:
        received = await conversations.receive_inbound(
            await session.connection(),
            company_id,
            InboundMessage(channel="api", contact_external_id=contact, text=customers[0]),
        )
        messages = [("customer", body) for body in customers[1:]] + list(others)
        session.add_all(
            Message(
                company_id=company_id,
                conversation_id=received.conversation_id,
                channel="api",
                author=author,
                text=body,
                meta={},
            )
            for author, body in messages
        )


async def store_customers(
    runtime: Runtime, company_id: uuid.UUID, texts: list[str], prefix: str = "cliente"
) -> None:
    """Each text the first message of another customer (``prefix-0``, ``prefix-1``...), as a
    channel stores it."""
    async with runtime.db.transaction(company_id) as session:
        connection = await session.connection()
        for i, body in enumerate(texts):
            inbound = InboundMessage(channel="api", contact_external_id=f"{prefix}-{i}", text=body)
            await conversations.receive_inbound(connection, company_id, inbound)


async def counted(runtime: Runtime, company_id: uuid.UUID) -> dict[str, int]:
    async with runtime.db.transaction(company_id) as session:
        rows = await session.execute(select(MessageLexemeStat.lexeme, MessageLexemeStat.contacts))
        return dict(rows.all())


async def test_the_job_learns_each_companys_customer_words(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    await ingest_documents(company)
    assert (await top_titles(runtime, company))[0] == "Loja de Curitiba"
    customers = customers_from_curitiba(CONTACTS_MIN + 20)
    await store_customers(runtime, company.id, customers)
    # the bot's and the agents' words are not what customers write
    staff = [("bot", "Resposta sobre o boleto bancário")] * 20 + [
        ("agent", "Seu boleto bancário vence hoje")
    ] * 20
    await store_messages(runtime, company.id, ["Olá"], staff, contact="cliente-0")
    # another company's customers write about something else
    await store_customers(runtime, other_company.id, ["Quero trocar o tênis tamanho 42"] * 250)

    assert await learn_message_terms(runtime) >= 2

    mine, theirs = await counted(runtime, company.id), await counted(runtime, other_company.id)
    assert mine[""] == len(customers)
    assert mine["curitib"] == len(customers)
    assert not any(lexeme.startswith(("bancari", "tenis")) for lexeme in mine)
    assert theirs[""] == 250 and theirs["tenis"] == 250 and "curitib" not in theirs
    # and the question about the bill now finds the bill
    assert (await top_titles(runtime, company, QUESTION))[0] == "Fatura do cartão"


def weight(words: dict[str, int], lexeme: str) -> float:
    """A term's weight from customers' statistics, as the BM25 statement computes it."""
    n, m = words[""], words.get(lexeme, 0)
    return max(MESSAGES_FLOOR, math.log((n + 1) / (m + 1)) / math.log(n + 1))


def test_the_job_runs_every_hour_one_run_at_a_time() -> None:
    bp = blueprint()
    task = bp.tasks["learn_message_terms"]
    assert (task.lock, task.queueing_lock) == ("learn_message_terms", "learn_message_terms")
    schedules = bp.periodic_registry.periodic_tasks.values()
    assert [p.cron for p in schedules if p.task.name == "learn_message_terms"] == ["41 * * * *"]


async def test_a_company_where_no_customer_wrote_since_is_not_counted_again(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await store_customers(runtime, company.id, ["Quero saber da entrega"] * 3)
    first = await learn_company_message_terms(runtime, company.id)
    before = await counted(runtime, company.id)
    assert first == (3, len(before) - 1) and before[""] == 3
    # nothing new: skipped (an hourly run costs nothing for a quiet company)
    assert await learn_company_message_terms(runtime, company.id) is None
    assert await counted(runtime, company.id) == before
    # a new customer message: counted again
    await store_messages(runtime, company.id, ["E a garantia do liquidificador?"], contact="outro")
    again = await learn_company_message_terms(runtime, company.id)
    assert again is not None and again[0] == 4
    assert (await counted(runtime, company.id))["garant"] == 1
    # a company that never had a customer message is skipped too
    async with runtime.db.transaction() as session:
        quiet = await tenancy.create_company(session, name="quiet", slug=f"quiet-{uuid.uuid4().hex[:8]}")
    try:
        assert await learn_company_message_terms(runtime, quiet.id) is None
    finally:
        async with runtime.db.transaction() as session:
            await tenancy.delete_company(session, quiet.id)


async def test_only_the_latest_conversations_and_their_latest_messages_are_counted(
    company: CompanyCtx, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_terms, "SAMPLE_CONVERSATIONS", 3)
    monkeypatch.setattr(message_terms, "PER_CONVERSATION", 2)
    topics = ["boleto", "senha", "entrega", "garantia", "troca"]  # oldest first
    for i, topic in enumerate(topics):
        await store_messages(runtime, company.id, [f"Dúvida sobre {topic}"], contact=f"cliente-{i}")
    # the latest conversation's customer wrote three messages: the last two count
    await store_messages(
        runtime, company.id, ["Sobre o cadastro", "Sobre o limite", "Sobre o aplicativo"], contact="cliente-9"
    )
    found = await learn_company_message_terms(runtime, company.id)
    assert found is not None and found[0] == 3
    words = await counted(runtime, company.id)
    assert {"garant", "troc", "limit", "aplic"} <= set(words)
    assert not {"bolet", "senh", "entreg", "cadastr"} & set(words)


async def test_one_customer_repeating_a_word_cannot_lower_its_weight_but_many_can(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await ingest_documents(company)
    others = [f"Bom dia, tenho uma dúvida sobre {topic}" for topic in ["senha", "boleto", "troca"] * 80]
    await store_customers(runtime, company.id, others)
    # one anonymous visitor repeats the city in 210 messages
    await store_messages(runtime, company.id, ["Moro em Curitiba"] * 210, contact="visitante")
    assert await learn_company_message_terms(runtime, company.id) == (241, ANY)
    words = await counted(runtime, company.id)
    assert words["curitib"] == 1
    assert weight(words, "curitib") > 0.85  # was the floor, 0.2, when messages were counted
    assert (await top_titles(runtime, company))[0] == "Loja de Curitiba"  # the city still decides

    # many customers saying where they live do lower it
    await store_customers(runtime, company.id, customers_from_curitiba(CONTACTS_MIN), prefix="curitibano")
    await learn_company_message_terms(runtime, company.id)
    words = await counted(runtime, company.id)
    assert weight(words, "curitib") < 0.3
    assert (await top_titles(runtime, company))[0] == "Fatura do cartão"


async def test_the_cli_counts_a_companys_customer_words_now(
    company: CompanyCtx, runtime: Runtime, db_url: str
) -> None:
    await store_customers(runtime, company.id, ["Onde fica a loja de Curitiba?"] * 5)
    done = await asyncio.to_thread(run, db_url, "learn-terms", "--company", company.slug)
    assert done.returncode == 0, done.stderr
    assert "5 customers counted" in done.stdout
    assert "fewer than 200 customers" in done.stdout  # too few to weigh anything yet
    assert (await counted(runtime, company.id))["curitib"] == 5
    unknown = await asyncio.to_thread(run, db_url, "learn-terms", "--company", "no-such-company")
    assert unknown.returncode != 0
    assert "no-such-company" in unknown.stdout + unknown.stderr
    assert "Traceback" not in unknown.stdout + unknown.stderr
