"""``/v1`` routes of what agents do to a conversation that reads the human side: snoozing (by
the team's business hours too), giving it to a team, and canned responses.

Handlers parse, call one function of ``teams.service`` or ``teams.canned`` and shape the
answer; the dashboard calls the same functions.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Path, Query

from atende.conversations.schemas import ConversationPublic
from atende.teams import canned, service
from atende.teams.models import CannedResponse
from atende.teams.schemas import CannedIn, CannedOut, RenderedOut, RenderIn, SnoozeIn, TeamRefIn
from atende.tenancy.deps import AdminTenant, AgentTenant, ViewerTenant

snooze_router = APIRouter(prefix="/v1", tags=["conversations"])
canned_router = APIRouter(prefix="/v1", tags=["canned responses"])
CODE = Path(min_length=1, max_length=40, description="The canned response's code.")


@snooze_router.post(
    "/conversations/{conversation_id}/snooze",
    response_model=ConversationPublic,
    summary="Snooze until a time or the next business day",
)
async def snooze(conversation_id: uuid.UUID, body: SnoozeIn, tenant: AgentTenant) -> ConversationPublic:
    """Out of the queue and the open views until `until`; it wakes sooner when the customer
    writes, its state changes, or someone wakes it (`/unsnooze`). A resolved conversation
    cannot be snoozed; `until` must be in the future, within 366 days."""
    async with tenant.transaction() as session:
        conversation = await service.snooze(
            session,
            tenant.runtime.jobs,
            tenant.principal.company_id,
            conversation_id,
            body.until,
            now=tenant.runtime.clock(),
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
        )
    return ConversationPublic.model_validate(conversation)


@snooze_router.post(
    "/conversations/{conversation_id}/team",
    response_model=ConversationPublic,
    summary="Give the conversation to a team",
)
async def send_to_team(
    conversation_id: uuid.UUID, body: TeamRefIn, tenant: AgentTenant
) -> ConversationPublic:
    """It waits in the team's queue (`waiting_human`), nobody assigned, until one of its people
    takes it; one waiting already moves to the other queue, keeping its wait. `422` naming
    `team` for a team the company has not, or the queue it waits in already."""
    async with tenant.transaction() as session:
        conversation = await service.send_to_team(
            session,
            tenant.runtime.jobs,
            conversation_id,
            body.team,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
            now=tenant.runtime.clock(),
        )
    return ConversationPublic.model_validate(conversation)


def _out(row: CannedResponse) -> CannedOut:
    return CannedOut(
        id=row.id,
        code=row.code,
        title=row.title,
        text=row.text,
        variables=[p.name for p in canned.placeholders(row.text)],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@canned_router.get("/canned-responses", response_model=list[CannedOut], summary="List canned responses")
async def list_canned(
    tenant: ViewerTenant,
    q: str | None = Query(
        None,
        max_length=200,
        description="Codes starting with this (a leading `/` is ignored), then titles containing it.",
    ),
    limit: int = Query(100, ge=1, le=500),
) -> list[CannedOut]:
    async with tenant.transaction() as session:
        return [_out(row) for row in await canned.list_canned(session, q=q, limit=limit)]


@canned_router.post(
    "/canned-responses", response_model=CannedOut, status_code=201, summary="Create a canned response"
)
async def create_canned(body: CannedIn, tenant: AdminTenant) -> CannedOut:
    """`409` when the code is taken; `422` naming the field for a code, title or text that
    cannot be (an unknown variable, a stray `{{`)."""
    async with tenant.transaction() as session:
        row = await canned.create_canned(
            session,
            code=body.code,
            title=body.title,
            text=body.text,
            max_chars=tenant.runtime.settings.max_message_chars,
        )
        return _out(row)


@canned_router.get("/canned-responses/{code}", response_model=CannedOut, summary="One canned response")
async def get_canned(tenant: ViewerTenant, code: str = CODE) -> CannedOut:
    async with tenant.transaction() as session:
        return _out(await canned.get_canned(session, code))


@canned_router.put("/canned-responses/{code}", response_model=CannedOut, summary="Replace a canned response")
async def replace_canned(body: CannedIn, tenant: AdminTenant, code: str = CODE) -> CannedOut:
    """Its code may change too (to one not taken: else `409`)."""
    async with tenant.transaction() as session:
        row = await canned.replace_canned(
            session,
            code,
            code=body.code,
            title=body.title,
            text=body.text,
            max_chars=tenant.runtime.settings.max_message_chars,
        )
        return _out(row)


@canned_router.delete("/canned-responses/{code}", status_code=204, summary="Delete a canned response")
async def delete_canned(tenant: AdminTenant, code: str = CODE) -> None:
    async with tenant.transaction() as session:
        await canned.delete_canned(session, code)


@canned_router.post(
    "/canned-responses/{code}/render",
    response_model=RenderedOut,
    summary="Fill a canned response for a conversation",
)
async def render_canned(body: RenderIn, tenant: AgentTenant, code: str = CODE) -> RenderedOut:
    """The text with the conversation's contact, the agent (a personal key's person) and the
    company filled in, to edit and send as a reply; stores nothing."""
    async with tenant.transaction() as session:
        row, rendered = await canned.render(session, code, body.conversation_id, tenant.principal.user_id)
    return RenderedOut(code=row.code, text=rendered.text, missing=rendered.missing)


routes = APIRouter()
routes.include_router(snooze_router)
routes.include_router(canned_router)
