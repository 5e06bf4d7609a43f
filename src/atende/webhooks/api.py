"""``/v1/webhooks``: register endpoints, see their delivery log, enable or disable them."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from atende.tenancy.deps import AdminTenant
from atende.webhooks import service

router = APIRouter(prefix="/v1", tags=["webhooks"])


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://example.com/atende-hook", "events": ["conversation.handoff"]}]
        },
    )
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(min_length=1, max_length=10, description=f"Any of {', '.join(service.EVENTS)}")


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class EndpointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    url: str
    events: list[str]
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None
    created_at: datetime


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="Signing secret; shown only now.")


class AttemptPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    status_code: int | None
    error: str | None
    duration_ms: float
    created_at: datetime


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptPublic] = []


@router.post("/webhooks", response_model=EndpointCreated, status_code=201)
async def create_endpoint(body: EndpointIn, tenant: AdminTenant) -> EndpointCreated:
    """Register a URL. Each event is POSTed as JSON with `X-Atende-Signature:
    sha256=<hex HMAC-SHA256(secret, "<X-Atende-Timestamp>." + body)>`."""
    async with tenant.transaction() as session:
        endpoint, secret = await service.create_endpoint(
            session,
            secret_key=tenant.runtime.secret_key,
            url=body.url,
            events=body.events,
            allow_private=tenant.runtime.settings.webhook_allow_private_networks,
        )
        return EndpointCreated(**EndpointPublic.model_validate(endpoint).model_dump(), secret=secret)


@router.get("/webhooks", response_model=list[EndpointPublic])
async def list_endpoints(tenant: AdminTenant) -> list[EndpointPublic]:
    async with tenant.transaction() as session:
        return [EndpointPublic.model_validate(e) for e in await service.list_endpoints(session)]


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointPublic)
async def update_endpoint(endpoint_id: uuid.UUID, body: EndpointPatch, tenant: AdminTenant) -> EndpointPublic:
    async with tenant.transaction() as session:
        endpoint = await service.set_endpoint_enabled(session, endpoint_id, body.enabled)
        return EndpointPublic.model_validate(endpoint)


@router.delete("/webhooks/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: uuid.UUID, tenant: AdminTenant) -> Response:
    async with tenant.transaction() as session:
        await service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryPublic])
async def list_deliveries(endpoint_id: uuid.UUID, tenant: AdminTenant) -> list[DeliveryPublic]:
    """The latest deliveries to this endpoint, each with its log of attempts."""
    async with tenant.transaction() as session:
        rows = await service.list_deliveries(session, endpoint_id)
        return [
            DeliveryPublic(
                **DeliveryPublic.model_validate(d).model_dump(exclude={"attempt_log"}),
                attempt_log=[AttemptPublic.model_validate(a) for a in attempts],
            )
            for d, attempts in rows
        ]
