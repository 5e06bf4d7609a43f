"""``/v1/conversations/{id}/whatsapp/templates``: what an agent may send on a WhatsApp
conversation once the 24-hour customer-service window has closed (a free-form reply is then
refused with ``409 outside_reply_window``): the number's approved templates, and sending one
with its parameters filled. See ``channels.whatsapp.templates``."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende.channels.whatsapp import templates
from atende.conversations.schemas import MessagePublic
from atende.tenancy.deps import AgentTenant

router = APIRouter(prefix="/v1", tags=["whatsapp"])


class WindowOut(BaseModel):
    open: bool = Field(description="A free-form reply can go out now.")
    last_customer_message_at: datetime | None
    closes_at: datetime | None = Field(description="When free-form replies stop being accepted.")


class TemplateOut(BaseModel):
    name: str
    language: str
    category: str
    header: str
    body: str
    footer: str
    parameters: list[str] = Field(description="The body's placeholders in order (`1`, `2`... or names).")
    sendable: bool
    unsupported: str = Field(description="Why it cannot be sent from here, when it cannot.")


class TemplatesOut(BaseModel):
    window: WindowOut
    items: list[TemplateOut]


class TemplateSendIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "order_update", "language": "pt_BR", "parameters": ["Ana", "#1234"]}]
        },
    )
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=2, max_length=15)
    parameters: list[str] = Field(
        default=[], max_length=60, description="One value per placeholder, in `parameters` order."
    )


@router.get(
    "/conversations/{conversation_id}/whatsapp/templates",
    response_model=TemplatesOut,
    summary="The reply window and the approved templates of a WhatsApp conversation",
    responses={502: {"description": "The Graph API could not be asked"}},
)
async def list_templates(conversation_id: uuid.UUID, tenant: AgentTenant) -> TemplatesOut:
    """Approved templates of the number the conversation is on (from Meta, cached a minute),
    and whether a free-form reply can still go out."""
    offer = await templates.offer(tenant, conversation_id)
    window = offer.window
    return TemplatesOut(
        window=WindowOut(
            open=window.open, last_customer_message_at=window.last_customer_at, closes_at=window.closes_at
        ),
        items=[
            TemplateOut(
                name=t.name,
                language=t.language,
                category=t.category,
                header=t.header,
                body=t.body,
                footer=t.footer,
                parameters=list(t.parameters),
                sendable=not t.unsupported,
                unsupported=t.unsupported,
            )
            for t in offer.templates
        ],
    )


@router.post(
    "/conversations/{conversation_id}/whatsapp/templates",
    response_model=MessagePublic,
    status_code=201,
    summary="Send an approved template as the agent's reply",
    responses={502: {"description": "The Graph API could not be asked"}},
)
async def send_template(
    conversation_id: uuid.UUID, body: TemplateSendIn, tenant: AgentTenant
) -> MessagePublic:
    """Stored as the agent's reply (its text the filled template) and delivered by the outbox
    as a WhatsApp `template` message: allowed outside the 24-hour window."""
    message = await templates.send(tenant, conversation_id, body.name, body.language, body.parameters)
    return MessagePublic.model_validate(message)
