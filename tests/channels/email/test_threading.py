"""Which conversation an e-mail joins, on the real intake and PostgreSQL: by ``In-Reply-To`` /
``References`` against the ids of this company's e-mails (the customer's, and the ones we
sent), by the conversation token only when the headers name nothing we know, and never across
companies, customers, forwards or looping headers.

The channel here is a stand-in of kind ``email`` that hands the parsed mail to
``channels.intake`` exactly as the e-mail channel does and "sends" replies by naming them
with ``threading.new_message_id``; the session's worker delivers the agents' replies."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest

from atende.channels import accounts, intake, registry
from atende.channels.base import Account, Channel, ConversationPolicy, Joins, Outbound, SentMessage
from atende.channels.email import threading
from atende.channels.email.parse import parse
from atende.channels.email.quotes import strip
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import InboundMessage
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

MAILBOX = "suporte@loja.test"


class StandInEmail(Channel):
    kind = "email"
    conversation_policy = ConversationPolicy(Joins.thread)

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        return SentMessage(threading.new_message_id("loja.test"))


@pytest.fixture(scope="module")
def channel() -> Iterator[StandInEmail]:
    before = registry.find("email")
    stand_in = StandInEmail()
    registry.register(stand_in)  # the session's worker delivers replies through it
    yield stand_in
    if before is not None:
        registry.register(before)
    else:
        registry.unregister("email")


@dataclass
class Arrived:
    conversation_id: uuid.UUID
    message_id: str  # the stored id: the Message-ID
    threading: threading.Threading


def email(sender: str, subject: str, text: str, **headers: Any) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = headers.pop("to", MAILBOX)
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", f"<{uuid.uuid4().hex}@cliente.test>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message.as_bytes()


_MAILBOXES: dict[uuid.UUID, Account] = {}


async def mailbox(runtime: Runtime, channel: StandInEmail, company_id: uuid.UUID) -> Account:
    """The company's mailbox account (replies go out through the customer's latest one)."""
    if company_id not in _MAILBOXES:
        async with runtime.db.transaction(company_id) as session:
            row = await accounts.create(
                session, runtime.secret_key, kind="email", external_id=f"suporte-{uuid.uuid4().hex}@loja.test"
            )
            _MAILBOXES[company_id] = accounts.open_account(channel, row, runtime.secret_key)
    return _MAILBOXES[company_id]


async def arrive(runtime: Runtime, channel: StandInEmail, company_id: uuid.UUID, raw: bytes) -> Arrived:
    """One e-mail through parse, strip, thread lookup and intake, in one transaction."""
    account = await mailbox(runtime, channel, company_id)
    parsed = parse(raw)
    assert parsed.from_ is not None
    sender = parsed.from_.address.lower()
    async with runtime.db.transaction(company_id) as session:
        found = await threading.resolve(
            session, threading.token_key(runtime.secret_key), sender, threading.thread_key(parsed)
        )
        received = await intake.receive(
            await session.connection(),
            company_id,
            channel,
            InboundMessage(
                channel="email",
                contact_external_id=sender,
                contact_email=sender,
                text=strip(parsed.text).text,
                channel_message_id=threading.message_key(parsed, raw),
                thread_refs=found.thread_refs,
                conversation_id=found.conversation_id,
            ),
            account,
        )
    return Arrived(received.conversation_id, threading.message_key(parsed, raw), found)


async def our_reply(runtime: Runtime, company: CompanyCtx, conversation_id: uuid.UUID) -> str:
    """An agent answers by e-mail; the Message-ID it went out with, once sent."""
    r = await company.client.post(
        f"/v1/conversations/{conversation_id}/replies", json={"text": "Já verificamos, segue o código."}
    )
    assert r.status_code == 201, r.text
    reply_id = uuid.UUID(r.json()["id"])
    deadline = time.monotonic() + 30
    while True:
        async with runtime.db.transaction(company.id) as session:
            sent = await session.get(Message, reply_id, populate_existing=True)
            if sent is not None and sent.provider_message_id:
                return sent.provider_message_id
        assert time.monotonic() < deadline, "the agent's reply was never sent"
        await asyncio.sleep(0.1)


async def count(runtime: Runtime, company_id: uuid.UUID, conversation_id: uuid.UUID) -> int:
    """The customer e-mails in a conversation (the bot's turns come and go on their own)."""
    async with runtime.db.transaction(company_id) as session:
        messages = await conversations.list_messages(session, conversation_id)
    return sum(m.author == "customer" for m in messages)


def customer() -> str:
    return f"ana-{uuid.uuid4().hex[:8]}@cliente.test"


async def test_a_reply_joins_its_thread_and_a_new_subject_opens_a_new_conversation(
    channel: StandInEmail, company: CompanyCtx, runtime: Runtime
) -> None:
    ana = customer()
    first = await arrive(runtime, channel, company.id, email(ana, "Pedido 4521", "Onde está meu pedido?"))
    ours = await our_reply(runtime, company, first.conversation_id)
    assert ours.startswith("<") and ours.endswith("@loja.test>")

    # her client answers our e-mail: In-Reply-To names it, References the chain
    reply = email(
        ana,
        "Re: Pedido 4521",
        "Obrigada! Chega amanhã?\n\nEm seg., 3 de jun. de 2024, Loja <suporte@loja.test> escreveu:\n"
        "> Já verificamos",
        in_reply_to=ours,
        references=f"{first.message_id} {ours}",
    )
    answered = await arrive(runtime, channel, company.id, reply)
    assert answered.conversation_id == first.conversation_id
    # only her own first message cited (a client that keeps References short): the same thread
    cited = await arrive(
        runtime, channel, company.id, email(ana, "Re: Pedido 4521", "E o frete?", references=first.message_id)
    )
    assert cited.conversation_id == first.conversation_id

    # a new subject, no reply headers: a conversation of its own, though she has one open
    other = await arrive(runtime, channel, company.id, email(ana, "Troca de tamanho", "Posso trocar?"))
    assert other.conversation_id != first.conversation_id
    # the same e-mail fetched twice is stored once
    again = await arrive(runtime, channel, company.id, reply)
    assert again.conversation_id == first.conversation_id
    assert await count(runtime, company.id, first.conversation_id) == 3


async def test_references_to_another_companys_message_never_cross_companies(
    channel: StandInEmail, company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    ana = customer()
    in_a = await arrive(runtime, channel, company.id, email(ana, "Pedido", "Meu pedido atrasou"))
    ours_in_a = await our_reply(runtime, company, in_a.conversation_id)
    before = await count(runtime, company.id, in_a.conversation_id)

    # the same customer writes to another company, citing company A's messages (a forwarded
    # chain, or someone probing): B never finds them, and A's conversation is untouched
    raw = email(
        ana,
        "Re: Pedido",
        "Vocês também vendem?",
        in_reply_to=ours_in_a,
        references=f"{in_a.message_id} {ours_in_a}",
    )
    in_b = await arrive(runtime, channel, other_company.id, raw)
    assert in_b.threading == threading.Threading(thread_refs=(in_a.message_id, ours_in_a))
    assert in_b.conversation_id != in_a.conversation_id
    assert await count(runtime, other_company.id, in_b.conversation_id) == 1
    assert await count(runtime, company.id, in_a.conversation_id) == before

    # and company A's token does not open company A's conversation from B's mailbox
    token = threading.conversation_token(
        threading.token_key(runtime.secret_key), company.id, in_a.conversation_id
    )
    tokened = await arrive(runtime, channel, other_company.id, email(ana, f"Pedido [#{token}]", "Oi de novo"))
    assert tokened.threading.conversation_id is None
    assert tokened.conversation_id not in (in_a.conversation_id, in_b.conversation_id)


async def test_another_customer_citing_a_thread_gets_a_conversation_of_their_own(
    channel: StandInEmail, company: CompanyCtx, runtime: Runtime
) -> None:
    ana, bruno = customer(), customer()
    hers = await arrive(runtime, channel, company.id, email(ana, "Nota fiscal", "Preciso da nota"))
    ours = await our_reply(runtime, company, hers.conversation_id)
    # Ana forwarded our e-mail to Bruno, who answers it: his own conversation, hers untouched
    his = await arrive(
        runtime,
        channel,
        company.id,
        email(bruno, "Re: Nota fiscal", "Sou o contador dela", in_reply_to=ours, references=ours),
    )
    assert his.conversation_id != hers.conversation_id
    assert await count(runtime, company.id, hers.conversation_id) == 1


async def test_a_forward_opens_a_new_conversation_whatever_it_references(
    channel: StandInEmail, company: CompanyCtx, runtime: Runtime
) -> None:
    ana = customer()
    first = await arrive(runtime, channel, company.id, email(ana, "Entrega", "Chegou quebrado"))
    ours = await our_reply(runtime, company, first.conversation_id)
    for subject in ("Fwd: Re: Entrega", "ENC: Entrega", "RV: Entrega", "Re: Fw: Entrega"):
        forwarded = await arrive(
            runtime,
            channel,
            company.id,
            email(ana, subject, "Veja abaixo o outro caso", in_reply_to=ours, references=ours),
        )
        assert forwarded.conversation_id != first.conversation_id, subject


async def test_looping_and_bogus_references_merge_nothing(
    channel: StandInEmail, company: CompanyCtx, runtime: Runtime
) -> None:
    ana = customer()
    first = await arrive(runtime, channel, company.id, email(ana, "Cupom", "O cupom não funciona"))
    own = f"<{uuid.uuid4().hex}@cliente.test>"
    # a message naming itself, ids that are not ids, a chain of a thousand strangers
    strangers = " ".join(f"<{i}.{uuid.uuid4().hex}@spam.test>" for i in range(1000))
    raw = email(
        ana,
        "Outra coisa",
        "Vocês abrem no domingo?",
        message_id=own,
        in_reply_to=own,
        references=f"{own} not-an-id <> {strangers} {own}",
    )
    parsed = parse(raw)
    key = threading.thread_key(parsed)
    assert own not in key.refs and len(key.refs) == threading.REFS_MAX
    looped = await arrive(runtime, channel, company.id, raw)
    assert looped.conversation_id != first.conversation_id
    # its own id now stored, a later message naming it joins it (not the first)
    follow = await arrive(
        runtime, channel, company.id, email(ana, "Re: Outra coisa", "E feriado?", in_reply_to=own)
    )
    assert follow.conversation_id == looped.conversation_id


async def test_the_token_threads_a_reply_only_when_the_headers_name_nothing_we_know(
    channel: StandInEmail, company: CompanyCtx, runtime: Runtime
) -> None:
    key = threading.token_key(runtime.secret_key)
    ana = customer()
    first = await arrive(runtime, channel, company.id, email(ana, "Boleto", "Não recebi o boleto"))
    token = threading.conversation_token(key, company.id, first.conversation_id)
    address = threading.reply_address(MAILBOX, token)
    assert len(address.split("@")[0]) <= 64 and token in address

    # her client dropped the headers; she answered to the reply address we gave
    bare = await arrive(
        runtime, channel, company.id, email(ana, "Re: Boleto", "Chegou, obrigada", to=address)
    )
    assert bare.conversation_id == first.conversation_id
    # the token in the subject, and a provider rewrote our Message-ID: the unknown id is ignored
    rewritten = await arrive(
        runtime,
        channel,
        company.id,
        email(
            ana, threading.tag_subject("Re: Boleto", token), "Pago", in_reply_to="<rewritten@outlook.test>"
        ),
    )
    assert rewritten.conversation_id == first.conversation_id

    # headers that name a thread win over a token of another thread
    second = await arrive(runtime, channel, company.id, email(ana, "Cartão", "Posso pagar no cartão?"))
    both = await arrive(
        runtime,
        channel,
        company.id,
        email(ana, f"Re: Cartão [#{token}]", "Parcelado?", in_reply_to=second.message_id),
    )
    assert both.conversation_id == second.conversation_id

    # a forged token (one character changed), and a true one used by someone else: new conversations
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert threading.read_token(key, company.id, forged) is None
    guess = await arrive(
        runtime,
        channel,
        company.id,
        email(ana, "Re: Boleto", "x", to=threading.reply_address(MAILBOX, forged)),
    )
    assert guess.conversation_id not in (first.conversation_id, second.conversation_id)
    stranger = await arrive(runtime, channel, company.id, email(customer(), "Re: Boleto", "y", to=address))
    assert stranger.conversation_id != first.conversation_id
    assert await count(runtime, company.id, first.conversation_id) == 3


def test_tokens_are_case_proof_unguessable_and_bound_to_their_company() -> None:
    key = threading.token_key("a secret")
    company, conversation = uuid.uuid4(), uuid.uuid4()
    token = threading.conversation_token(key, company, conversation)
    assert len(token) == 42 and token == token.lower()
    assert threading.read_token(key, company, token.upper()) == conversation
    assert threading.read_token(key, uuid.uuid4(), token) is None  # another company
    assert threading.read_token(threading.token_key("another secret"), company, token) is None
    assert threading.read_token(key, company, token[:26] + "a" * 16) is None
    assert threading.read_token(key, company, "not a token") is None


def test_reply_headers_for_what_we_send() -> None:
    assert threading.reply_subject("RES: Re: Pedido 4521") == "Re: Pedido 4521"
    assert threading.reply_subject("Pedido") == "Re: Pedido"
    assert threading.reply_references(("<a@x>", "<b@x>"), "<c@x>") == ("<a@x>", "<b@x>", "<c@x>")
    assert threading.reply_references(("<a@x>",), "<a@x>") == ("<a@x>",)
    assert (
        threading.tag_subject(threading.tag_subject("Pedido", "a" * 42), "a" * 42) == f"Pedido [#{'a' * 42}]"
    )
    ids = {threading.new_message_id("loja.test") for _ in range(100)}
    assert len(ids) == 100 and all(i.startswith("<") and i.endswith("@loja.test>") for i in ids)
    assert threading.is_forward("Fwd: x") and threading.is_forward("Encaminhada: x")
    assert not threading.is_forward("Re: Fwd de arquivos")


def test_a_mail_without_message_id_is_stored_under_one_made_of_its_bytes() -> None:
    raw = b"From: ana@cliente.test\r\nSubject: sem id\r\n\r\noi\r\n"
    key = threading.message_key(parse(raw), raw)
    assert key == threading.message_key(parse(raw), raw)  # fetched twice: stored once
    assert key != threading.message_key(parse(raw + b"!"), raw + b"!")
    assert key.startswith("<sha256-") and key.endswith("@atende.invalid>") and len(key) <= 255
    with_id = email("ana@cliente.test", "x", "y", message_id="<abc@cliente.test>")
    assert threading.message_key(parse(with_id), with_id) == "<abc@cliente.test>"
