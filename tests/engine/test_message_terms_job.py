"""The hourly job that learns, per company, which words its customers' messages usually
contain (``engine.tasks.learn_message_terms``): only customers' messages count, only the
company's own, and retrieval weighs those words less from then on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import select

from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import InboundMessage
from atende.engine.tasks import blueprint, learn_company_message_terms, learn_message_terms
from atende.knowledge import message_terms
from atende.knowledge.models import MessageLexemeStat
from atende.knowledge.retrieval import MESSAGES_MIN
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
    runtime: Runtime, company_id: uuid.UUID, customers: list[str], others: Sequence[tuple[str, str]] = ()
) -> None:
    """One conversation of the company: its first customer message as a channel stores it,
    then the other customer messages and ``(author, text)`` messages of the bot or agents."""
    async with runtime.db.transaction(company_id) as session:
        received = await conversations.receive_inbound(
            await session.connection(),
            company_id,
            InboundMessage(channel="api", contact_external_id="cliente", text=customers[0]),
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


async def counted(runtime: Runtime, company_id: uuid.UUID) -> dict[str, int]:
    async with runtime.db.transaction(company_id) as session:
        rows = await session.execute(select(MessageLexemeStat.lexeme, MessageLexemeStat.messages))
        return dict(rows.all())


async def test_the_job_learns_each_companys_customer_words(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    await ingest_documents(company)
    assert (await top_titles(runtime, company))[0] == "Loja de Curitiba"
    customers = customers_from_curitiba(MESSAGES_MIN + 20)
    # the bot's and the agents' words are not what customers write
    staff = [("bot", "Resposta sobre o boleto bancário")] * 20 + [
        ("agent", "Seu boleto bancário vence hoje")
    ] * 20
    await store_messages(runtime, company.id, customers, staff)
    # another company's customers write about something else
    await store_messages(runtime, other_company.id, ["Quero trocar o tênis tamanho 42"] * 250)

    assert await learn_message_terms(runtime) >= 2

    mine, theirs = await counted(runtime, company.id), await counted(runtime, other_company.id)
    assert mine[""] == len(customers)
    assert mine["curitib"] == len(customers)
    assert not any(lexeme.startswith(("bancari", "tenis")) for lexeme in mine)
    assert theirs[""] == 250 and theirs["tenis"] == 250 and "curitib" not in theirs
    # and the question about the bill now finds the bill
    assert (await top_titles(runtime, company, QUESTION))[0] == "Fatura do cartão"


def test_the_job_runs_every_hour_one_run_at_a_time() -> None:
    bp = blueprint()
    task = bp.tasks["learn_message_terms"]
    assert (task.lock, task.queueing_lock) == ("learn_message_terms", "learn_message_terms")
    schedules = bp.periodic_registry.periodic_tasks.values()
    assert [p.cron for p in schedules if p.task.name == "learn_message_terms"] == ["41 * * * *"]


async def test_a_company_where_no_customer_wrote_since_is_not_counted_again(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await store_messages(runtime, company.id, ["Quero saber da entrega"] * 3)
    first = await learn_company_message_terms(runtime, company.id)
    before = await counted(runtime, company.id)
    assert first == (3, len(before) - 1) and before[""] == 3
    # nothing new: skipped (an hourly run costs nothing for a quiet company)
    assert await learn_company_message_terms(runtime, company.id) is None
    assert await counted(runtime, company.id) == before
    # a new customer message: counted again
    await store_messages(runtime, company.id, ["E a garantia do liquidificador?"])
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


async def test_only_the_latest_messages_are_counted(
    company: CompanyCtx, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_terms, "SAMPLE", 3)
    topics = ["boleto", "senha", "entrega", "garantia", "troca"]  # oldest first
    await store_messages(runtime, company.id, [f"Dúvida sobre {topic}" for topic in topics])
    found = await learn_company_message_terms(runtime, company.id)
    assert found is not None and found[0] == 3
    words = await counted(runtime, company.id)
    assert {"entreg", "garant", "troc"} <= set(words)
    assert not {"bolet", "senh"} & set(words)


async def test_the_cli_counts_a_companys_customer_words_now(
    company: CompanyCtx, runtime: Runtime, db_url: str
) -> None:
    await store_messages(runtime, company.id, ["Onde fica a loja de Curitiba?"] * 5)
    done = await asyncio.to_thread(run, db_url, "learn-terms", "--company", company.slug)
    assert done.returncode == 0, done.stderr
    assert "5 customer messages counted" in done.stdout
    assert "fewer than 200 messages" in done.stdout  # too few to weigh anything yet
    assert (await counted(runtime, company.id))["curitib"] == 5
    unknown = await asyncio.to_thread(run, db_url, "learn-terms", "--company", "no-such-company")
    assert unknown.returncode != 0
    assert "no-such-company" in unknown.stdout + unknown.stderr
    assert "Traceback" not in unknown.stdout + unknown.stderr
