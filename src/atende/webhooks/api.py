"""``/v1/webhooks``: register endpoints, see their delivery log, enable or disable them,
rotate their signing secrets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from atende.config import WEBHOOK_MAX_GRACE_SECONDS
from atende.tenancy.deps import AdminTenant
from atende.webhooks import service
from atende.webhooks.models import WebhookEndpoint

router = APIRouter(prefix="/v1", tags=["webhooks"])


class EndpointIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://example.com/atende-hook", "events": ["conversation.handoff"]}]
        },
    )
    url: str = Field(min_length=8, max_length=2000)
    events: list[str] = Field(
        min_length=1, max_length=len(service.EVENTS), description=f"Any of {', '.join(service.EVENTS)}"
    )


class EndpointPatch(BaseModel):
    """What to change; left out: kept."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=len(service.EVENTS))
    enabled: bool | None = None


class EndpointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    url: str
    events: list[str]
    enabled: bool
    consecutive_failures: int
    disabled_reason: str | None
    signature_scheme: Literal["standard", "atende"] = Field(
        description="`standard`: Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, "
        "`webhook-signature`); `atende`: the legacy `X-Atende-Signature` of endpoints registered "
        "before them, until their secret is rotated."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret replaced by the last rotation still signs deliveries too."
    )
    created_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint, now: datetime) -> EndpointPublic:
        return cls.model_validate(
            {
                **{name: getattr(endpoint, name) for name in cls.model_fields},
                "previous_secret_expires_at": service.grace_until(endpoint, now),
            }
        )


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="Signing secret (`whsec_` + base64 of the key); shown only now.")


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_seconds: int | None = Field(
        default=None,
        ge=0,
        le=WEBHOOK_MAX_GRACE_SECONDS,
        description="Seconds the old secret keeps signing next to the new one (0: it stops now; at "
        "most 30 days). Unset: `ATENDE_WEBHOOK_SECRET_GRACE_SECONDS` (24 h).",
    )


class SecretRotated(EndpointCreated):
    secret: str = Field(description="The new signing secret (`whsec_` + base64 of the key); shown only now.")


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
    """Register a URL. Each event is POSTed as JSON, signed the Standard Webhooks way:
    `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256(key,
    "<webhook-id>.<webhook-timestamp>." + body)>`; any Standard Webhooks library verifies it
    with the secret returned here."""
    async with tenant.transaction() as session:
        endpoint, secret = await service.create_endpoint(
            session,
            secret_key=tenant.runtime.secret_key,
            url=body.url,
            events=body.events,
            allow_private=tenant.runtime.settings.webhook_allow_private_networks,
        )
        public = EndpointPublic.of(endpoint, tenant.runtime.clock())
        return EndpointCreated(**public.model_dump(), secret=secret)


@router.get("/webhooks", response_model=list[EndpointPublic])
async def list_endpoints(tenant: AdminTenant) -> list[EndpointPublic]:
    now = tenant.runtime.clock()
    async with tenant.transaction() as session:
        return [EndpointPublic.of(e, now) for e in await service.list_endpoints(session)]


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointPublic)
async def update_endpoint(endpoint_id: uuid.UUID, body: EndpointPatch, tenant: AdminTenant) -> EndpointPublic:
    """Change the URL (checked as when registered), the events, or enable and disable it
    (enabling clears the failures that disabled it). The secret stays."""
    async with tenant.transaction() as session:
        endpoint = await service.update_endpoint(
            session,
            endpoint_id,
            url=body.url,
            events=body.events,
            enabled=body.enabled,
            allow_private=tenant.runtime.settings.webhook_allow_private_networks,
        )
        return EndpointPublic.of(endpoint, tenant.runtime.clock())


@router.post("/webhooks/{endpoint_id}/rotate-secret", response_model=SecretRotated)
async def rotate_secret(
    endpoint_id: uuid.UUID, tenant: AdminTenant, body: Annotated[RotateIn | None, Body()] = None
) -> SecretRotated:
    """Replace the endpoint's signing secret without downtime: the new one is returned once,
    and for the grace period deliveries are signed with both (`webhook-signature` holds two
    `v1,` signatures). An endpoint still on the legacy `X-Atende-Signature` moves to the
    Standard Webhooks headers, keeping `X-Atende-Signature` (old secret) for the grace period."""
    grace = body.grace_seconds if body is not None else None
    now = tenant.runtime.clock()
    async with tenant.transaction() as session:
        endpoint, secret = await service.rotate_secret(
            session,
            endpoint_id,
            secret_key=tenant.runtime.secret_key,
            grace_seconds=tenant.runtime.settings.webhook_secret_grace_seconds if grace is None else grace,
            now=now,
        )
        return SecretRotated(**EndpointPublic.of(endpoint, now).model_dump(), secret=secret)


@router.delete("/webhooks/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: uuid.UUID, tenant: AdminTenant) -> Response:
    async with tenant.transaction() as session:
        await service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get("/webhooks/{endpoint_id}/deliveries", response_model=list[DeliveryPublic])
async def list_deliveries(
    endpoint_id: uuid.UUID,
    tenant: AdminTenant,
    limit: int = Query(50, ge=1, le=200),
    before: Annotated[
        uuid.UUID | None, Query(description="A delivery's id: the older ones after it (the next page).")
    ] = None,
) -> list[DeliveryPublic]:
    """The latest deliveries to this endpoint, newest first, each with its log of attempts;
    the next page: `before` = the last one's id."""
    async with tenant.transaction() as session:
        rows = await service.list_deliveries(session, endpoint_id, limit, before=before)
        return [
            DeliveryPublic(
                **DeliveryPublic.model_validate(d).model_dump(exclude={"attempt_log"}),
                attempt_log=[AttemptPublic.model_validate(a) for a in attempts],
            )
            for d, attempts in rows
        ]
