"""The demo shop's first conversations, so that a new user signing in sees a working inbox at
once: one the bot answers, one handed to the team, one an agent works (with a private note),
one resolved, one snoozed until the next business day, one in English; with labels.

They are made the way real ones are: each customer message goes through intake
(``receive_inbound``, which queues its bot turn), and agents act through the same services
the dashboard calls. The bot's answers and handoffs come from the demo's worker a moment
after it starts, from the demo's knowledge base; a conversation a person has already taken
is left to them. Made once: a company with conversations gets none.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from atende.conversations import labels
from atende.conversations import service as conversations
from atende.conversations.models import Conversation
from atende.conversations.schemas import InboundMessage
from atende.conversations.states import State
from atende.runtime import Runtime
from atende.teams import service as teams


@dataclass(frozen=True)
class DemoConversation:
    contact: str
    name: str
    text: str
    email: str | None = None
    labels: tuple[str, ...] = ()
    agent_reply: str | None = None  # the demo agent takes it and answers
    note: str | None = None
    then: str | None = None  # "resolve" or "snooze" (until the next business day)


CONVERSATIONS = (
    DemoConversation("demo-pedro", "Pedro Alves", "Vocês aceitam Pix?",
                     agent_reply="Aceitamos sim! O Pix tem 5% de desconto.", then="resolve"),
    DemoConversation("demo-emma", "Emma Clark", "Do you ship to Portugal?", email="emma@example.com"),
    DemoConversation("demo-ana", "Ana Costa", "Vou pagar o boleto amanhã cedo e aviso vocês.",
                     email="ana.costa@example.com", labels=("pagamento",),
                     agent_reply="Combinado, Ana! Assim que o pagamento compensar, enviamos o pedido.",
                     then="snooze"),
    DemoConversation("demo-carla", "Carla Lima", "Minha encomenda chegou quebrada, o que eu faço?",
                     labels=("troca",), agent_reply="Sinto muito, Carla! Vamos trocar sem custo.",
                     note="Cliente antiga: oferecer frete grátis na troca."),
    DemoConversation("demo-joao", "João Pereira",
                     "Quero falar com um atendente, meu pedido 4521 veio com o tamanho errado.",
                     labels=("urgente",)),
    DemoConversation("demo-maria", "Maria Souza", "Qual o prazo de entrega?", email="maria@example.com"),
)  # fmt: skip


async def seed_conversations(runtime: Runtime, company_id: uuid.UUID, agent_id: uuid.UUID) -> int:
    """Make the demo's conversations (none if the company has any); how many were made."""
    async with runtime.db.transaction(company_id) as session:
        if await session.scalar(select(Conversation.id).limit(1)) is not None:
            return 0
        made = {
            name: (await labels.create_label(session, name=name)).id
            for name in ("urgente", "troca", "pagamento")
        }
    actor = str(agent_id)
    for spec in CONVERSATIONS:
        async with runtime.db.transaction(company_id) as session:
            received = await conversations.receive_inbound(
                await session.connection(),
                company_id,
                InboundMessage(
                    channel="api",
                    contact_external_id=spec.contact,
                    contact_name=spec.name,
                    contact_email=spec.email,
                    text=spec.text,
                ),
            )
            cid = received.conversation_id
            for name in spec.labels:
                await labels.add_label(session, cid, str(made[name]))
            if spec.agent_reply:
                await conversations.assign(
                    session, runtime.jobs, cid, assignee_id=agent_id, actor_type="agent", actor_id=actor
                )
                await conversations.post_agent_reply(
                    session, runtime.jobs, cid, text=spec.agent_reply, agent_id=actor, assignee_id=agent_id
                )
            if spec.note:
                await conversations.add_note(
                    session, runtime.jobs, cid, text=spec.note, agent_id=actor, author_user_id=agent_id
                )
            if spec.then == "resolve":
                await conversations.change_state(
                    session,
                    runtime.jobs,
                    cid,
                    State.resolved,
                    actor_type="agent",
                    actor_id=actor,
                    reason="resolved",
                )
            elif spec.then == "snooze":
                await teams.snooze(
                    session,
                    runtime.jobs,
                    company_id,
                    cid,
                    teams.NEXT_BUSINESS_DAY,
                    now=runtime.clock(),
                    actor_type="agent",
                    actor_id=actor,
                )
    return len(CONVERSATIONS)
