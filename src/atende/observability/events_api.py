"""``GET /v1/events``: the company's application events (warning and above), newest first,
with the filters and keyset paging of the dashboard's events page (``/app/logs``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from atende.observability import events
from atende.tenancy.deps import AdminTenant

router = APIRouter(prefix="/v1", tags=["events"])


class EventPublic(BaseModel):
    id: uuid.UUID
    created_at: datetime
    level: str
    kind: str
    message: str
    conversation_id: uuid.UUID | None
    details: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventPublic]
    next_cursor: str | None


@router.get("/events", response_model=EventPage)
async def list_events(
    tenant: AdminTenant,
    level: Annotated[str | None, Query(max_length=10)] = None,
    kind: Annotated[str | None, Query(max_length=50)] = None,
    conversation_id: uuid.UUID | None = None,
    text: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=events.PAGE_MAX)] = 50,
) -> EventPage:
    """Failed deliveries, failed jobs (``details.job_id``: retry with ``POST
    /v1/jobs/{id}/retry``), webhook failures, refused credentials and LLM circuit changes;
    ``after``: the previous page's ``next_cursor``."""
    where = events.EventFilter(
        level=level, kind=kind, conversation_id=conversation_id, text=text, since=since, until=until
    )
    async with tenant.transaction() as session:
        page = await events.list_events(session, where, after=after, limit=limit)
    return EventPage(
        events=[
            EventPublic(
                id=e.id,
                created_at=e.created_at,
                level=e.level,
                kind=e.kind,
                message=e.message,
                conversation_id=e.conversation_id,
                details=e.details,
            )
            for e in page.events
        ],
        next_cursor=page.next_cursor,
    )
