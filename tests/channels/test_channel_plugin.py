"""A channel is a plugin: one that exists only in this test (``ParrotChannel``), registered
through the registry's public API, goes through intake, a bot turn, outbound delivery and a
delivery-status update without a line of ``conversations``, ``engine`` or ``app.py`` knowing it.

Its wire format is a toy provider's webhook: ``POST /parrot/{number}/webhook`` with
``{"messages": [{"id", "from", "text"}], "statuses": [{"id", "status"}]}``; its account's
``external_id`` is the number, its secret an ``access_token``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende.app import create_app
from atende.channels import accounts, intake, registry
from atende.channels.base import (
    Account,
    Channel,
    ConversationPolicy,
    Joins,
    Outbound,
    SentMessage,
    StatusUpdate,
)
from atende.channels.delivery import account_credentials
from atende.config import Settings
from atende.conversations.schemas import InboundMessage
from atende.observability.credentials import Verdict
from atende.runtime import Runtime
from atende.tenancy.deps import RuntimeDep
from tests.conftest import CompanyCtx, free_port
from tests.fixtures.servers import serving

KIND = "parrot"


class ParrotConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    signature: str = Field(default="", max_length=40, description="Appended to every message sent.")


class ParrotChannel(Channel):
    kind = KIND
    conversation_policy = ConversationPolicy(Joins.contact)
    config_schema = ParrotConfig
    secret_fields = ("access_token",)

    def __init__(self) -> None:
        self.sent: list[tuple[Account, Outbound, str]] = []

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/parrot/{number}/webhook", status_code=202)
        async def webhook(number: str, body: dict[str, Any], runtime: RuntimeDep) -> dict[str, int]:
            async with runtime.db.transaction() as session:
                row = await accounts.route(session, KIND, number)
                account = accounts.open_account(self, row, runtime.secret_key)
            for inbound in self.parse(account, body):
                async with runtime.db.autocommit() as connection:
                    await intake.receive(connection, account.company_id, self, inbound, account)
            applied = 0
            for status in body.get("statuses", []):
                update = StatusUpdate(provider_message_id=status["id"], status=status["status"])
                applied += await self.apply_status(runtime, account, update)
            return {"applied": applied}

        return router

    def parse(self, account: Account | None, payload: Any) -> list[InboundMessage]:
        return [
            InboundMessage(
                channel=KIND, contact_external_id=m["from"], text=m["text"], channel_message_id=m["id"]
            )
            for m in payload.get("messages", [])
        ]

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        assert isinstance(account.config, ParrotConfig)
        if account.secrets.get("access_token") != "good-token":
            raise PermissionError("the provider refused the token")
        provider_id = f"parrot-{len(self.sent) + 1}"
        self.sent.append((account, outbound, outbound.text + account.config.signature))
        return SentMessage(provider_id)

    async def check_credentials(self, account: Account) -> Verdict:
        ok = account.secrets.get("access_token") == "good-token"
        return Verdict(ok, "ok" if ok else "the provider refused the token")


@pytest.fixture(scope="module")
def parrot() -> Iterator[ParrotChannel]:
    channel = ParrotChannel()
    registry.register(channel)
    yield channel
    registry.unregister(KIND)


@pytest.fixture(scope="module")
def parrot_server(parrot: ParrotChannel, settings: Settings, live_server: str) -> Iterator[str]:
    """An app created after the channel registered (the session's was created before): it
    mounts the channel's routes. The session's worker answers the turns (one database)."""
    port = free_port()
    own = settings.model_copy(
        update={"port": port, "public_url": f"http://127.0.0.1:{port}", "run_worker": False}
    )
    with serving(create_app(own), port) as base_url:
        yield base_url


async def until(condition: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_channel_of_the_tests_alone_receives_answers_delivers_and_tracks_status(
    parrot: ParrotChannel, parrot_server: str, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    number = f"+55{uuid.uuid4().int % 10**10:010d}"
    r = await kb_company.client.post(
        "/v1/channel-accounts",
        json={
            "kind": KIND,
            "external_id": number,
            "display_name": "Parrot SAC",
            "config": {"signature": " -- Loja"},
            "secrets": {"access_token": "good-token"},
        },
    )
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["secrets_set"] == ["access_token"] and "good-token" not in r.text

    async with httpx.AsyncClient(base_url=parrot_server, timeout=15) as provider:
        # intake: the provider's webhook, in the channel's own wire format
        question = {"id": "wamid-1", "from": "5511999990000", "text": "Qual o prazo de entrega?"}
        r = await provider.post(f"/parrot/{number}/webhook", json={"messages": [question]})
        assert r.status_code == 202, r.text
        # the bot turn answers (the session's worker), and the reply goes out through send()
        await until(lambda: len(parrot.sent) == 1)
        sent_account, outbound, wire_text = parrot.sent[0]
        assert (sent_account.id, sent_account.company_id) == (uuid.UUID(account["id"]), kb_company.id)
        assert outbound.contact_external_id == "5511999990000" and outbound.author == "bot"
        assert "entrega" in outbound.text.lower() and wire_text.endswith(" -- Loja")

        conversations = (await kb_company.client.get("/v1/conversations", params={"channel": KIND})).json()
        [conversation] = conversations["items"]
        assert conversation["id"] == str(outbound.conversation_id)

        async def reply() -> dict[str, Any]:
            path = f"/v1/conversations/{outbound.conversation_id}/messages"
            items = (await kb_company.client.get(path)).json()["items"]
            [found] = [m for m in items if m["id"] == str(outbound.message_id)]
            return dict(found)

        sent = await reply()  # the provider's id is recorded once send() returned
        deadline = time.monotonic() + 5
        while sent["delivery_status"] != "sent":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
            sent = await reply()
        assert "delivery" not in sent["meta"] and sent["delivery_error"] is None

        # a status update in the channel's wire format, applied through apply_status
        r = await provider.post(
            f"/parrot/{number}/webhook", json={"statuses": [{"id": "parrot-1", "status": "read"}]}
        )
        assert r.json() == {"applied": 1}
        r = await provider.post(  # a late "delivered" never moves a read message back
            f"/parrot/{number}/webhook", json={"statuses": [{"id": "parrot-1", "status": "delivered"}]}
        )
        assert r.json() == {"applied": 1}
        assert (await reply())["delivery_status"] == "read"
        r = await provider.post(
            f"/parrot/{number}/webhook", json={"statuses": [{"id": "nobody's", "status": "read"}]}
        )
        assert r.json() == {"applied": 0}

        # the same contact writing again joins its conversation (Joins.contact)
        again = {"id": "wamid-2", "from": "5511999990000", "text": "E para o Rio?"}
        assert (await provider.post(f"/parrot/{number}/webhook", json={"messages": [again]})).is_success
        await until(lambda: len(parrot.sent) == 2)
        assert parrot.sent[1][1].conversation_id == outbound.conversation_id
        # an agent's reply goes out the same way
        path = f"/v1/conversations/{outbound.conversation_id}/replies"
        r = await kb_company.client.post(path, json={"text": "Sou a Ana, da equipe."})
        assert r.status_code == 201, r.text
        await until(lambda: len(parrot.sent) == 3)
        assert (parrot.sent[2][1].author, parrot.sent[2][1].text) == ("agent", "Sou a Ana, da equipe.")

        # a disabled account routes nothing
        r = await kb_company.client.patch(f"/v1/channel-accounts/{account['id']}", json={"enabled": False})
        assert r.status_code == 200 and r.json()["enabled"] is False
        r = await provider.post(f"/parrot/{number}/webhook", json={"messages": [question]})
        assert r.status_code == 404

    # readiness checks the account's credentials through the channel (once enabled again)
    await kb_company.client.patch(f"/v1/channel-accounts/{account['id']}", json={"enabled": True})
    [credential] = [c for c in await account_credentials(runtime) if c.company_id == kb_company.id]
    assert (credential.kind, credential.label) == (KIND, "parrot Parrot SAC")
    assert (await credential.check()).ok
    r = await kb_company.client.patch(
        f"/v1/channel-accounts/{account['id']}", json={"secrets": {"access_token": "revoked"}}
    )
    [credential] = [c for c in await account_credentials(runtime) if c.company_id == kb_company.id]
    assert await credential.check() == Verdict(False, "the provider refused the token")
    assert (await kb_company.client.delete(f"/v1/channel-accounts/{account['id']}")).status_code == 204
