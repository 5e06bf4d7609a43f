"""``GET /v1/audit-events``: the company's audit log for admin keys, newest first, with the
dashboard's filters (person, action, time range) and keyset paging."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from atende.audit import service
from atende.audit.models import AuditEvent
from atende.tenancy.deps import AdminTenant

router = APIRouter(prefix="/v1", tags=["audit"])


class AuditEventPublic(BaseModel):
    id: uuid.UUID
    created_at: datetime
    action: str = Field(description="What was done, a stable dotted name such as `member.role_changed`.")
    actor_type: str = Field(description="`user` (a person, signed in), `api_key` or `system`.")
    actor_user_id: uuid.UUID | None = Field(description="The person (also for a personal key).")
    actor_key_id: uuid.UUID | None = Field(description="The API key, when a key did it.")
    target_type: str | None
    target_id: str | None
    details: dict[str, Any] = Field(
        description="Names and values that say what changed; never secrets or message text."
    )
    ip: str | None

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventPublic:
        return cls(
            id=event.id,
            created_at=event.created_at,
            action=event.action,
            actor_type=event.actor_type,
            actor_user_id=event.actor_user_id,
            actor_key_id=event.actor_key_id,
            target_type=event.target_type,
            target_id=event.target_id,
            details=event.details or {},
            ip=str(event.ip) if event.ip is not None else None,
        )


class AuditPage(BaseModel):
    items: list[AuditEventPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next (older) page.")


@router.get("/audit-events", response_model=AuditPage)
async def list_audit_events(
    tenant: AdminTenant,
    user: Annotated[uuid.UUID | None, Query(description="Only what this person did.")] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=60,
            description="One action (`member.role_changed`), or an area ending in a dot (`member.`).",
        ),
    ] = None,
    since: Annotated[datetime | None, Query(description="From this instant on (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this instant.")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = service.PAGE_SIZE,
) -> AuditPage:
    """Who did what in the company, and when: sign-ins, roles, settings, keys, documents,
    channel accounts, replies, conversations' state changes. Newest first."""
    filters = service.Filters(user_id=user, action=action, since=since, until=until)
    async with tenant.transaction() as session:
        events, next_cursor = await service.list_events(session, filters, cursor=cursor, limit=limit)
        return AuditPage(items=[AuditEventPublic.of(e) for e in events], next_cursor=next_cursor)
