"""The API channel's routes: ``POST /v1/messages`` (a customer message, optionally waiting
for the bot's reply). The rest of the REST API over conversations (listing, agent replies,
states) is the conversations domain's (``atende.conversations.api``).

Its customers read replies where the company's systems read them: ``?wait=``, the live
stream or ``GET /v1/conversations/{id}/messages``, so the channel is ``live`` and has no
accounts (it routes by the API key). Which conversation a message joins: the one it names,
else the contact's latest (reopened when resolved), i.e. ``Joins.contact``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import ConfigDict, Field

from atende.channels import intake
from atende.channels.base import Account, Channel, ConversationPolicy, Joins
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import (
    FILTERS_META,
    ContactIn,
    InboundMessage,
    MessagePublic,
    PostMessageResult,
    Strict,
)
from atende.engine.search import check_documents
from atende.knowledge.schemas import FiltersIn, MessageContext
from atende.tenancy.deps import AgentTenant, Tenant

router = APIRouter(prefix="/v1", tags=["conversations"])


class CustomerMessageIn(Strict):
    """A customer message posted through the API channel."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "contact": {"external_id": "cliente-42", "name": "Ana"},
                    "text": "Qual o prazo de entrega para São Paulo?",
                    "message_id": "crm-msg-1001",
                },
                {
                    "contact": {"external_id": "cliente-42"},
                    "text": "Como cancelo o plano?",
                    "context": {"page": "https://loja.example/pro/planos", "product": "pro"},
                },
            ]
        },
    )

    contact: ContactIn
    text: str = Field(min_length=1, max_length=20000, description="What the customer wrote.")
    message_id: str | None = Field(
        default=None,
        max_length=255,
        description="Your id of this message; a message posted twice with one id is stored once.",
    )
    conversation_id: uuid.UUID | None = Field(
        default=None, description="Continue this conversation (default: the contact's latest)."
    )
    filters: FiltersIn | None = Field(
        default=None,
        description="Which documents may answer this message (as `POST /v1/search`'s); the company's "
        "knowledge rules apply as well.",
    )
    context: MessageContext | None = None


class ApiChannel(Channel):
    kind = "api"
    conversation_policy = ConversationPolicy(Joins.contact)
    delivery = "live"
    has_accounts = False

    def router(self) -> APIRouter:
        return router

    def parse(self, account: Account | None, payload: Any) -> list[InboundMessage]:
        """``payload``: a ``CustomerMessageIn`` (its text already cleaned)."""
        body: CustomerMessageIn = payload
        return [
            InboundMessage(
                channel=self.kind,
                contact_external_id=body.contact.external_id,
                text=body.text,
                channel_message_id=body.message_id,
                conversation_id=body.conversation_id,
                contact_name=body.contact.name,
                contact_email=body.contact.email,
                contact_phone=body.contact.phone,
                meta={FILTERS_META: body.filters.model_dump(mode="json", exclude_defaults=True)}
                if body.filters
                else {},
            )
        ]


channel = ApiChannel()


async def _wait_for_reply(
    tenant: Tenant, message_id: uuid.UUID, topic: str, seconds: float
) -> Message | None:
    """The bot's reply to the message, once written; ``None`` after ``seconds``, or at once when
    the turn says it leaves the message for people (``idle``)."""
    deadline = time.monotonic() + seconds
    with tenant.runtime.listener.subscribe(topic) as sub:
        while True:
            async with tenant.transaction() as session:
                reply = await conversations.bot_reply(session, message_id)
            remaining = deadline - time.monotonic()
            if reply is not None or remaining <= 0:
                return reply
            note = await sub.next(timeout=min(remaining, 1.0))
            if note is not None and note.get("kind") == "idle" and note.get("message_id") == str(message_id):
                return None


@router.post(
    "/messages",
    response_model=PostMessageResult,
    status_code=201,
    summary="Post a customer message (API channel)",
    responses={200: {"description": "Duplicate: this message_id was received before"}},
)
async def post_customer_message(
    body: CustomerMessageIn,
    tenant: AgentTenant,
    wait: float = Query(
        0, ge=0, le=30, description="Seconds to wait for the bot's reply and return it (0: don't)."
    ),
) -> Response:
    """Store a customer message once and queue the bot's turn. Poll
    `GET /v1/conversations/{id}/messages`, or pass `wait` to receive the reply here. A
    `context` is kept on the conversation (`GET /v1/conversations/{id}`), where the company's
    knowledge rules read it for this turn and the next ones."""
    text = conversations.clean_text(body.text, tenant.runtime.settings.max_message_chars)
    if body.filters and body.filters.documents:
        async with tenant.transaction() as session:
            await check_documents(session, tuple(body.filters.documents))
    [inbound] = channel.parse(None, body.model_copy(update={"text": text}))
    if body.context:
        # kept on the conversation in the message's transaction: its turn (queued) reads it
        async with tenant.transaction() as session:
            received = await intake.receive(
                await session.connection(), tenant.principal.company_id, channel, inbound
            )
            if not received.duplicate:  # a message posted again changes nothing
                await conversations.set_context(session, received.conversation_id, body.context)
    else:
        async with tenant.runtime.db.driver_autocommit() as connection:  # one atomic statement
            received = await intake.receive(connection, tenant.principal.company_id, channel, inbound)
    reply = None
    if wait and received.bot_turn:
        reply = await _wait_for_reply(tenant, received.message.id, str(received.conversation_id), wait)
    result = PostMessageResult(
        conversation_id=received.conversation_id,
        message=MessagePublic.model_validate(received.message),
        duplicate=received.duplicate,
        reply=MessagePublic.model_validate(reply) if reply else None,
    )
    # serialised here, once: a returned model would be validated again and then serialised by
    # FastAPI (response_model still documents it)
    return Response(
        result.model_dump_json(),
        status_code=200 if received.duplicate else 201,
        media_type="application/json",
    )
