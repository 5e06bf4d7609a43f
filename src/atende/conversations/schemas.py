"""Shapes of the conversations domain: what adapters hand in, what the API returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from atende.conversations.states import State

# a customer message's meta: the bot must not answer it (a channel's loop protection: an
# auto-reply, a bounce, a mailing list, a contact over the bot's reply cap). Its value is
# ``{"reason": "<why, in words an agent reads>", "hand_off": <bool>}``: the bot turn stays
# silent and, when ``hand_off`` is true or the message opened its conversation, queues the
# conversation for the team (it shows up in the agents' queue unanswered); otherwise the
# conversation is left as it was (an out-of-office answer to our reply changes nothing).
NOT_FOR_THE_BOT = "not_for_the_bot"


@dataclass(frozen=True)
class InboundMessage:
    """One customer message, as every channel adapter hands it to ``receive_inbound``.

    ``thread_refs``: the ids of the messages it answers (e-mail's ``In-Reply-To`` and
    ``References``, oldest first), for a channel whose messages join their thread.
    ``reopens_resolved``: this one message's exception to its channel's policy (``False``: a
    rating or a receipt, stored without reopening a resolved conversation); ``None``: as the
    channel's policy says."""

    channel: str
    contact_external_id: str
    text: str
    channel_message_id: str | None = None
    conversation_id: uuid.UUID | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    thread_refs: tuple[str, ...] = ()
    reopens_resolved: bool | None = None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(Strict):
    external_id: str = Field(min_length=1, max_length=200, description="Your id for this customer.")
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)


# the key of a customer message's ``meta`` keeping the retrieval filters it was sent with
FILTERS_META = "filters"


class AgentReplyIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"text": "Olá Ana, já verifiquei seu pedido."},
                {"text": "Segue a nota fiscal.", "attachments": ["0196b1c2-7d3e-7a10-9c4e-1f2a3b4c5d6e"]},
            ]
        },
    )
    text: str = Field(default="", max_length=20000, description="May be empty when files are attached.")
    agent_id: str | None = Field(default=None, max_length=100, description="Who answered.")
    attachments: list[uuid.UUID] = Field(
        default=[],
        max_length=10,
        description=(
            "Media ids of files uploaded with `POST /v1/media` that the reply sends, in order "
            "(at most 10; the conversation's channel must send files: WhatsApp does, the web chat not)."
        ),
    )


class StateChangeIn(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"state": "resolved", "reason": "answered"}]}
    )
    state: State
    reason: str | None = Field(default=None, max_length=500)


class MessagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    seq: int
    conversation_id: uuid.UUID
    author: Literal["customer", "bot", "agent", "system", "note"] = Field(
        description="`note`: a private note of the team (only with `include_notes=true`)."
    )
    text: str
    language: str | None
    channel: str
    channel_message_id: str | None
    reply_to_id: uuid.UUID | None
    meta: dict[str, Any]
    created_at: datetime
    delivery_status: Literal["queued", "sent", "delivered", "read", "failed"] | None = Field(
        default=None,
        description="How far the delivery of an outbound message got (null for the customer's).",
    )
    delivery_error: str | None = Field(default=None, description="Why its delivery failed.")


class ConversationPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    state: State
    language: str | None
    created_at: datetime
    updated_at: datetime
    team_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    waiting_since: datetime | None = Field(default=None, description="When it joined the queue.")
    ticket: bool = Field(
        default=False, description="Waits for the team to open or for someone to come online."
    )
    snoozed_until: datetime | None = Field(
        default=None, description="Out of the open views until then (a customer message wakes it sooner)."
    )
    priority: str = Field(
        default="normal",
        description="low, normal, high or urgent: what SLA policies choose by "
        "(`PUT /v1/conversations/{id}/priority`; its SLA: `GET /v1/conversations/{id}/sla`).",
    )


class SlaDueOut(BaseModel):
    """One running SLA target of a conversation (docs/SLA.md): when it breaches."""

    target: Literal["first_response", "next_response", "resolution"]
    due_at: datetime | None = Field(
        description="When it breaches, business time counted; null: not computed yet (a policy or "
        "the conversation just changed, the SLA job computes it within seconds)."
    )
    seconds_to_breach: float | None = Field(
        description="Wall-clock seconds until `due_at` (negative: overdue)."
    )
    status: Literal["running", "warning", "breached"]


SLA_DESCRIPTION = (
    "Its running SLA targets, the first to breach first (empty: none runs, or no policy applies); "
    "`GET /v1/conversations/{id}/sla` has the policy and the stopped ones."
)


class QueueItem(ConversationPublic):
    waiting_business_seconds: float = Field(
        description="Business time waited so far (the team's hours, else the company's)."
    )


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(
        default="me",
        max_length=320,
        description="A user id or e-mail of an agent of the company, or `me` (a personal key).",
    )


class NoteIn(Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": "Cliente VIP: oferecer frete grátis na troca."}]},
    )
    text: str = Field(min_length=1, max_length=20000, description="The note; the customer never sees it.")
    agent_id: str | None = Field(default=None, max_length=100, description="Who wrote it.")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500)


class TransitionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_state: str
    to_state: str
    actor_type: str
    actor_id: str | None
    reason: str | None
    created_at: datetime


class ConversationDetail(ConversationPublic):
    transitions: list[TransitionPublic]
    context: dict[str, str] = Field(
        default={},
        description="Where the customer is, as the channel said (the web chat's `page` and `product`, "
        "an API message's `context`): what the company's knowledge rules read.",
    )
    labels: list[LabelPublic] = Field(default=[])
    sla: list[SlaDueOut] = Field(default=[], description=SLA_DESCRIPTION)


class PostMessageResult(BaseModel):
    conversation_id: uuid.UUID
    message: MessagePublic
    duplicate: bool = Field(description="True when this message id had been received before.")
    reply: MessagePublic | None = Field(
        default=None, description="The bot's reply, when `wait` was given and it came in time."
    )


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page.")


class LabelIn(Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "urgente", "color": "#d1242f"}]}
    )
    name: str = Field(
        min_length=1, max_length=50, description="Unique in the company whatever its case (`VIP` is `vip`)."
    )
    color: str | None = Field(default=None, max_length=7, description="`#rrggbb`, for the dashboard.")


class LabelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    color: str | None


class LabelRefIn(Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"label": "urgente"}]})
    label: str = Field(min_length=1, max_length=200, description="The label's id or name.")
