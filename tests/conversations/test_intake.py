"""Receiving customer messages under pressure: contact details, concurrent first messages,
lock order, a database that drops its connections, and a pool with no free connection."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from sqlalchemy import func, select, update

from atende.app import create_app
from atende.bootstrap import BLUEPRINTS
from atende.config import Settings
from atende.conversations.models import Contact, Conversation, Message, StateTransition
from atende.db import migrate
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.jobs.queue import JobQueue
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, make_database


def message(contact: str, text: str, **extra: object) -> dict[str, object]:
    return {"contact": {"external_id": contact}, "text": text, **extra}


async def test_contact_details_are_kept_and_updated_only_when_given(
    company: CompanyCtx, runtime: Runtime
) -> None:
    first = {"external_id": "ana", "name": "Ana", "email": "ana@example.com"}
    r = await company.client.post("/v1/messages", json={"contact": first, "text": "Oi"})
    assert r.status_code == 201, r.text
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": "ana"}, "text": "Tudo bem?"}
    )
    assert r.status_code == 201, r.text
    async with runtime.db.transaction(company.id) as session:
        ana = await session.scalar(select(Contact).where(Contact.external_id == "ana"))
        assert ana is not None
        assert (ana.name, ana.email, ana.phone) == ("Ana", "ana@example.com", None)
    renamed = {"external_id": "ana", "name": "Ana Souza", "phone": "+55 11 99999-0000"}
    r = await company.client.post("/v1/messages", json={"contact": renamed, "text": "Mudei de nome"})
    assert r.status_code == 201, r.text
    async with runtime.db.transaction(company.id) as session:
        ana = await session.scalar(select(Contact).where(Contact.external_id == "ana"))
        assert ana is not None
        assert (ana.name, ana.email, ana.phone) == ("Ana Souza", "ana@example.com", "+55 11 99999-0000")
        conversations = await session.scalar(select(func.count()).select_from(Conversation))
        assert conversations == 1


async def test_concurrent_first_messages_of_one_customer_share_one_conversation(
    company: CompanyCtx, runtime: Runtime
) -> None:
    texts = [f"Mensagem {i}" for i in range(12)]
    responses = await asyncio.gather(
        *(
            company.client.post("/v1/messages", json=message("rajada", t, message_id=f"r-{i}"))
            for i, t in enumerate(texts)
        )
    )
    assert [r.status_code for r in responses] == [201] * len(texts)
    assert len({r.json()["conversation_id"] for r in responses}) == 1
    seqs = [r.json()["message"]["seq"] for r in responses]
    assert len(set(seqs)) == len(texts)
    async with runtime.db.transaction(company.id) as session:
        stored = list(await session.scalars(select(Message.text).where(Message.author == "customer")))
        opened = await session.scalar(
            select(func.count()).select_from(StateTransition).where(StateTransition.from_state == "new")
        )
    assert sorted(stored) == sorted(texts)
    assert opened == 1


async def test_messages_naming_their_conversation_and_not_do_not_deadlock(company: CompanyCtx) -> None:
    """Both kinds of intake lock the contact before the conversation, so a customer writing
    from two integrations at once never waits on a deadlock."""
    r = await company.client.post("/v1/messages", json=message("dois-canais", "Primeira"))
    cid = r.json()["conversation_id"]
    bodies = [
        message("dois-canais", f"Mensagem {i}", **({"conversation_id": cid} if i % 2 else {}))
        for i in range(16)
    ]
    responses = await asyncio.gather(*(company.client.post("/v1/messages", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [201] * len(bodies), [
        r.text for r in responses if r.status_code != 201
    ]
    assert {r.json()["conversation_id"] for r in responses} == {cid}


async def test_another_contacts_conversation_id_is_404_and_stores_nothing(
    company: CompanyCtx, runtime: Runtime
) -> None:
    r = await company.client.post("/v1/messages", json=message("dono", "Oi"))
    cid = r.json()["conversation_id"]
    r = await company.client.post(
        "/v1/messages", json=message("intruso", "Posso entrar?", conversation_id=cid)
    )
    assert r.status_code == 404
    assert r.json() == {"detail": f"no conversation {cid} for this contact", "code": "not_found"}
    async with runtime.db.transaction(company.id) as session:
        contacts = list(await session.scalars(select(Contact.external_id)))
        texts = list(await session.scalars(select(Message.text).where(Message.author == "customer")))
    assert contacts == ["dono"]
    assert texts == ["Oi"]


@dataclass
class Isolated:
    """atende over its own database and a small pool, served in process."""

    url: str
    database: str
    db: Database
    client: httpx.AsyncClient
    company_id: uuid.UUID


@pytest.fixture
async def isolated(pg_url: str, settings: Settings) -> AsyncIterator[Isolated]:
    name = f"atende_intake_{uuid.uuid4().hex[:8]}"
    url = make_database(pg_url, name)
    await asyncio.to_thread(migrate.upgrade, url)
    own = settings.model_copy(update={"database_url": url, "db_pool_timeout_seconds": 0.5})
    db = Database(url, pool_size=2, pool_timeout=own.db_pool_timeout_seconds)
    app = create_app(own)
    app.state.runtime = runtime = Runtime(
        settings=own, db=db, jobs=JobQueue(db.url, BLUEPRINTS), listener=Listener(db.url)
    )
    async with db.transaction() as session:
        company = await tenancy.create_company(session, name="Isolada", slug="isolada")
        _key, api_key = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name="t", role=Role.admin
        )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://atende",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=20,
    ) as client:
        yield Isolated(url, name, db, client, company.id)
    await db.dispose()


def stored_texts(url: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [row[0] for row in conn.execute("SELECT text FROM messages ORDER BY seq")]


async def test_connections_lost_to_a_database_restart_fail_one_request_with_503_then_recover(
    isolated: Isolated, pg_url: str
) -> None:
    r = await isolated.client.post("/v1/messages", json=message("m", "antes", message_id="m-1"))
    assert r.status_code == 201, r.text
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:  # what a restart does to them
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (isolated.database,),
        ).fetchone()
    assert killed is not None and killed[0] >= 1
    r = await isolated.client.post("/v1/messages", json=message("m", "durante", message_id="m-2"))
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "database_unavailable"
    assert r.headers["retry-after"] == "1"
    r = await isolated.client.post("/v1/messages", json=message("m", "durante", message_id="m-2"))
    assert r.status_code == 201, r.text  # the client's retry, on a renewed pool
    assert stored_texts(isolated.url) == ["antes", "durante"]


async def test_every_pooled_connection_lost_to_a_restart_is_renewed_after_one_503(
    isolated: Isolated, pg_url: str
) -> None:
    r = await isolated.client.post("/v1/messages", json=message("m", "antes", message_id="m-1"))
    assert r.status_code == 201, r.text
    async with isolated.db.engine.connect() as one, isolated.db.engine.connect() as two:
        await one.exec_driver_sql("SELECT 1")  # the pool now holds two connections
        await two.exec_driver_sql("SELECT 1")
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (isolated.database,)
        )
    r = await isolated.client.post("/v1/messages", json=message("m", "durante", message_id="m-2"))
    assert r.status_code == 503, r.text
    # the other pooled connection, opened before the loss too, is not handed out dead
    r = await isolated.client.post("/v1/messages", json=message("m", "durante", message_id="m-2"))
    assert r.status_code == 201, r.text
    assert stored_texts(isolated.url) == ["antes", "durante"]


async def test_the_connection_a_message_was_received_on_goes_back_to_the_pool_in_transactions(
    isolated: Isolated,
) -> None:
    # intake runs its statement in autocommit; the next user of that pooled connection (the
    # pool has opened only the one) must get a transaction that a rollback undoes
    r = await isolated.client.post("/v1/messages", json=message("m", "Oi"))
    assert r.status_code == 201, r.text
    async with isolated.db.company_session(isolated.company_id) as session:
        await session.execute(update(Contact).values(name="never committed"))
        await session.rollback()
    async with isolated.db.transaction(isolated.company_id) as session:
        assert await session.scalar(select(Contact.name)) is None


async def test_a_request_finding_no_free_connection_gets_503_and_stores_nothing(isolated: Isolated) -> None:
    r = await isolated.client.post("/v1/messages", json=message("m", "aquece"))  # caches the key
    assert r.status_code == 201, r.text
    async with isolated.db.engine.connect() as one, isolated.db.engine.connect() as two:
        await one.exec_driver_sql("SELECT 1")
        await two.exec_driver_sql("SELECT 1")
        r = await isolated.client.post("/v1/messages", json=message("m", "sem conexão"))
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": "every database connection is busy; retry shortly", "code": "database_busy"}
    assert stored_texts(isolated.url) == ["aquece"]
    r = await isolated.client.post("/v1/messages", json=message("m", "com conexão"))
    assert r.status_code == 201, r.text
