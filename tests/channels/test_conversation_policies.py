"""Which conversation a message joins is its channel's policy. Two channels that exist only in
these tests show the ones the built-in channels do not use:

- ``MailishChannel`` (``Joins.thread``): an e-mail-like channel. A message carries its
  ``Message-ID``, ``In-Reply-To`` and ``References``; a new thread opens a new conversation
  (even for a customer who has one), a reply joins its thread — found by the customer's
  earlier message or by the provider's id of the reply we sent (the bot's, an agent's) — and
  an automatic reply (``Auto-Submitted``, RFC 3834: an out-of-office) is stored without
  reopening a resolved conversation.
- ``RatingsChannel`` (``Joins.contact``, ``reopens_resolved=False``): a channel whose every
  message leaves a resolved conversation resolved, unless one message says otherwise.

The session's worker answers the bot turns and delivers the replies through ``send``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from atende.channels import accounts, intake, registry
from atende.channels.base import Account, Channel, ConversationPolicy, Joins, Outbound, SentMessage
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import InboundMessage
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

MAIL = "mailish"
RATINGS = "ratings"


class MailishChannel(Channel):
    kind = MAIL
    conversation_policy = ConversationPolicy(Joins.thread)

    def __init__(self) -> None:
        self.sent: dict[uuid.UUID, str] = {}  # our message id -> the Message-ID it went out with

    def parse(self, account: Account | None, payload: Any) -> list[InboundMessage]:
        """One e-mail: ``{"message_id", "from", "text", "in_reply_to"?, "references"?,
        "auto_submitted"?}``."""
        refs = [*payload.get("references", []), *filter(None, [payload.get("in_reply_to")])]
        automatic = payload.get("auto_submitted", "no") != "no"
        return [
            InboundMessage(
                channel=MAIL,
                contact_external_id=payload["from"],
                text=payload["text"],
                channel_message_id=payload["message_id"],
                thread_refs=tuple(refs),
                reopens_resolved=False if automatic else None,
            )
        ]

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        message_id = f"<{uuid.uuid4().hex}@mail.loja.test>"  # the provider names it
        self.sent[outbound.message_id] = message_id
        return SentMessage(message_id)


class RatingsChannel(Channel):
    kind = RATINGS
    conversation_policy = ConversationPolicy(Joins.contact, reopens_resolved=False)
    delivery = "live"
    has_accounts = False


@pytest.fixture(scope="module")
def mailish() -> Iterator[MailishChannel]:
    channel = MailishChannel()
    registry.register(channel)  # in this process: the session's worker delivers through it
    yield channel
    registry.unregister(MAIL)


@pytest.fixture(scope="module")
def ratings() -> Iterator[RatingsChannel]:
    channel = RatingsChannel()
    registry.register(channel)
    yield channel
    registry.unregister(RATINGS)


async def mailbox(runtime: Runtime, channel: MailishChannel, company_id: uuid.UUID) -> Account:
    async with runtime.db.transaction(company_id) as session:
        row = await accounts.create(
            session, runtime.secret_key, kind=MAIL, external_id=f"sac-{uuid.uuid4().hex}"
        )
        return accounts.open_account(channel, row, runtime.secret_key)


async def mail(
    runtime: Runtime, channel: MailishChannel, account: Account, **email: Any
) -> conversations.Received:
    """One e-mail arriving, as the channel's inbound route would hand it in."""
    [inbound] = channel.parse(account, email)
    async with runtime.db.autocommit() as connection:
        return await intake.receive(connection, account.company_id, channel, inbound, account)


async def sent_reply(
    runtime: Runtime, company_id: uuid.UUID, conversation_id: uuid.UUID, author: str, seconds: float = 30
) -> Message:
    """The conversation's first ``author`` message once it went out (``sent``)."""
    deadline = time.monotonic() + seconds
    while True:
        async with runtime.db.transaction(company_id) as session:
            found = [
                m
                for m in await conversations.list_messages(session, conversation_id)
                if m.author == author and m.delivery_status == "sent"
            ]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no {author} message of {conversation_id} was sent"
        await asyncio.sleep(0.1)


async def transitions(company: CompanyCtx, conversation_id: uuid.UUID) -> list[str]:
    detail = (await company.client.get(f"/v1/conversations/{conversation_id}")).json()
    return [f"{t['from_state']}>{t['to_state']}" for t in detail["transitions"]]


async def test_a_new_thread_opens_a_conversation_and_a_reply_joins_its_thread(
    mailish: MailishChannel, kb_company: CompanyCtx, runtime: Runtime
) -> None:
    account = await mailbox(runtime, mailish, kb_company.id)
    ana = f"ana-{uuid.uuid4().hex[:8]}@cliente.test"

    first = await mail(
        runtime,
        mailish,
        account,
        message_id="<a1@cliente.test>",
        **{"from": ana},
        text="Qual o prazo de entrega?",
    )
    assert first.bot_turn and not first.duplicate
    # the bot answers by e-mail; the provider gave its reply a Message-ID of its own
    bot = await sent_reply(runtime, kb_company.id, first.conversation_id, "bot")
    assert bot.provider_message_id == mailish.sent[bot.id]

    # the same customer starting a new thread gets a new conversation, not her latest one
    second = await mail(
        runtime,
        mailish,
        account,
        message_id="<b1@cliente.test>",
        **{"from": ana},
        text="Vocês têm loja física?",
    )
    assert second.conversation_id != first.conversation_id

    # answering the bot's e-mail joins the first thread (In-Reply-To: the provider's id)
    answer = await mail(
        runtime,
        mailish,
        account,
        message_id="<a2@cliente.test>",
        **{"from": ana},
        text="Obrigada! E para o Rio?",
        in_reply_to=bot.provider_message_id,
        references=["<a1@cliente.test>", bot.provider_message_id],
    )
    assert answer.conversation_id == first.conversation_id
    # a mail client citing only the thread's first message (her own) joins it too
    cited = await mail(
        runtime,
        mailish,
        account,
        message_id="<a3@cliente.test>",
        **{"from": ana},
        text="Esqueci: é para entrega expressa.",
        references=["<a1@cliente.test>"],
    )
    assert cited.conversation_id == first.conversation_id
    # a redelivered e-mail is stored once, in its conversation
    again = await mail(
        runtime,
        mailish,
        account,
        message_id="<a3@cliente.test>",
        **{"from": ana},
        text="Esqueci: é para entrega expressa.",
    )
    assert again.duplicate and again.message.id == cited.message.id

    # an agent answers the second thread; the customer's reply to that e-mail joins it
    r = await kb_company.client.post(
        f"/v1/conversations/{second.conversation_id}/replies", json={"text": "Temos, na Rua Augusta, 100."}
    )
    assert r.status_code == 201, r.text
    agent = await sent_reply(runtime, kb_company.id, second.conversation_id, "agent")
    assert agent.id == uuid.UUID(r.json()["id"]) and agent.provider_message_id == mailish.sent[agent.id]
    thanks = await mail(
        runtime,
        mailish,
        account,
        message_id="<b2@cliente.test>",
        **{"from": ana},
        text="Ótimo, passo lá amanhã.",
        in_reply_to=agent.provider_message_id,
        references=["<b1@cliente.test>", agent.provider_message_id],
    )
    assert thanks.conversation_id == second.conversation_id

    # a reply to a thread we never saw opens a conversation of its own
    lost = await mail(
        runtime,
        mailish,
        account,
        message_id="<c1@cliente.test>",
        **{"from": ana},
        text="Re: pedido 123",
        in_reply_to="<never-seen@elsewhere.test>",
    )
    assert lost.conversation_id not in {first.conversation_id, second.conversation_id}
    # another customer citing Ana's thread does not get into Ana's conversation
    bia = await mail(
        runtime,
        mailish,
        account,
        message_id="<d1@outra.test>",
        **{"from": f"bia-{uuid.uuid4().hex[:8]}@outra.test"},
        text="Encaminhado: prazo de entrega",
        in_reply_to=bot.provider_message_id,
        references=["<a1@cliente.test>"],
    )
    assert bia.conversation_id not in {first.conversation_id, second.conversation_id, lost.conversation_id}

    listed = (await kb_company.client.get("/v1/conversations", params={"channel": MAIL})).json()["items"]
    assert len(listed) == 4
    path = f"/v1/conversations/{first.conversation_id}/messages"
    texts = [
        m["text"] for m in (await kb_company.client.get(path)).json()["items"] if m["author"] == "customer"
    ]
    assert texts == [
        "Qual o prazo de entrega?",
        "Obrigada! E para o Rio?",
        "Esqueci: é para entrega expressa.",
    ]


async def test_an_automatic_reply_leaves_a_resolved_thread_resolved_and_a_customer_reply_reopens_it(
    mailish: MailishChannel, company: CompanyCtx, runtime: Runtime
) -> None:
    account = await mailbox(runtime, mailish, company.id)
    carla = f"carla-{uuid.uuid4().hex[:8]}@cliente.test"
    first = await mail(
        runtime, mailish, account, message_id="<e1@cliente.test>", **{"from": carla}, text="Oi"
    )
    r = await company.client.post(f"/v1/conversations/{first.conversation_id}/resolve")
    assert r.status_code == 200 and r.json()["state"] == "resolved", r.text
    before = await transitions(company, first.conversation_id)

    out_of_office = await mail(
        runtime,
        mailish,
        account,
        message_id="<e2@cliente.test>",
        **{"from": carla},
        text="Estou fora do escritório até segunda.",
        in_reply_to="<e1@cliente.test>",
        auto_submitted="auto-replied",
    )
    assert out_of_office.conversation_id == first.conversation_id  # stored in its thread
    assert (out_of_office.conversation_state, out_of_office.bot_turn) == ("resolved", False)
    assert await transitions(company, first.conversation_id) == before  # no state change at all
    path = f"/v1/conversations/{first.conversation_id}/messages"
    texts = [m["text"] for m in (await company.client.get(path)).json()["items"]]
    assert "Estou fora do escritório até segunda." in texts

    back = await mail(
        runtime,
        mailish,
        account,
        message_id="<e3@cliente.test>",
        **{"from": carla},
        text="Voltei, e ainda preciso de ajuda.",
        in_reply_to="<e2@cliente.test>",
    )
    assert back.conversation_id == first.conversation_id
    assert (back.conversation_state, back.bot_turn) == ("bot", True)
    assert (await transitions(company, first.conversation_id))[-1] == "resolved>bot"


async def test_a_channel_whose_messages_do_not_reopen_leaves_resolved_conversations_resolved(
    ratings: RatingsChannel, company: CompanyCtx, runtime: Runtime
) -> None:
    customer = uuid.uuid4().hex

    async def receive(text: str, **extra: Any) -> conversations.Received:
        inbound = InboundMessage(channel=RATINGS, contact_external_id=customer, text=text, **extra)
        async with runtime.db.autocommit() as connection:
            return await intake.receive(connection, company.id, ratings, inbound)

    opened = await receive("Como foi o atendimento?")
    assert (opened.conversation_state, opened.bot_turn) == ("bot", True)  # a first message opens one
    r = await company.client.post(f"/v1/conversations/{opened.conversation_id}/resolve")
    assert r.status_code == 200, r.text

    before = await transitions(company, opened.conversation_id)

    rating = await receive("5")
    assert rating.conversation_id == opened.conversation_id  # Joins.contact: her latest
    assert (rating.conversation_state, rating.bot_turn) == ("resolved", False)
    assert await transitions(company, opened.conversation_id) == before

    # one message may say otherwise: a comment that asks for help reopens it
    comment = await receive("Mas o produto veio errado", reopens_resolved=True)
    assert comment.conversation_id == opened.conversation_id
    assert (comment.conversation_state, comment.bot_turn) == ("bot", True)
    assert (await transitions(company, opened.conversation_id))[-1] == "resolved>bot"
