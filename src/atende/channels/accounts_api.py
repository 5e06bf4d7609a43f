"""``/v1/channel-accounts``: a company's accounts of its channels (admin role). Secrets are
write-only: a response names the ones stored (``secrets_set``), never their values."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from atende.channels import accounts
from atende.channels.models import ChannelAccount
from atende.tenancy.deps import AdminTenant

router = APIRouter(prefix="/v1", tags=["channel accounts"])

SECRETS = Field(
    default=None,
    description='Name → value, stored encrypted and never shown again; `""` removes one. '
    "Names are the channel's secret fields.",
)


class ChannelAccountIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"kind": "webchat", "external_id": "wk_loja_site2", "display_name": "Second site"}]
        },
    )
    kind: str = Field(min_length=1, max_length=20, description="The channel: `webchat`, ...")
    external_id: str = Field(
        min_length=1,
        max_length=255,
        pattern=r"^[^\s\x00]+$",
        description="What the channel routes by (a widget key, a phone number id); unique per kind.",
    )
    display_name: str = Field(default="", max_length=200)
    enabled: bool = True
    config: dict[str, Any] = Field(default={}, description="Validated by the channel's own schema.")
    secrets: dict[str, str] | None = SECRETS


class ChannelAccountPatch(BaseModel):
    """What to change; left out: kept. `config` replaces the stored one; `secrets` are merged."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": False}]})
    display_name: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    secrets: dict[str, str] | None = SECRETS


class ChannelAccountOut(BaseModel):
    id: uuid.UUID
    kind: str
    external_id: str
    display_name: str
    enabled: bool
    config: dict[str, Any]
    secrets_set: list[str] = Field(description="The names of the secrets stored (never their values).")
    created_at: datetime


def _out(account: ChannelAccount) -> ChannelAccountOut:
    return ChannelAccountOut(
        id=account.id,
        kind=account.kind,
        external_id=account.external_id,
        display_name=account.display_name,
        enabled=account.enabled,
        config=account.config or {},
        secrets_set=sorted(account.secrets or {}),
        created_at=account.created_at,
    )


@router.get("/channel-accounts", response_model=list[ChannelAccountOut], summary="List channel accounts")
async def list_accounts(
    tenant: AdminTenant, kind: str | None = Query(None, max_length=20)
) -> list[ChannelAccountOut]:
    async with tenant.transaction() as session:
        return [_out(a) for a in await accounts.list_accounts(session, kind)]


@router.post("/channel-accounts", response_model=ChannelAccountOut, status_code=201)
async def create_account(body: ChannelAccountIn, tenant: AdminTenant) -> ChannelAccountOut:
    """Add an account of a channel; 409 when its `external_id` is taken (by any company)."""
    async with tenant.transaction() as session:
        account = await accounts.create(
            session,
            tenant.runtime.secret_key,
            kind=body.kind,
            external_id=body.external_id,
            display_name=body.display_name,
            enabled=body.enabled,
            config=body.config,
            secrets=body.secrets,
        )
        return _out(account)


@router.get("/channel-accounts/{account_id}", response_model=ChannelAccountOut)
async def get_account(account_id: uuid.UUID, tenant: AdminTenant) -> ChannelAccountOut:
    async with tenant.transaction() as session:
        return _out(await accounts.get(session, account_id))


@router.patch("/channel-accounts/{account_id}", response_model=ChannelAccountOut)
async def update_account(
    account_id: uuid.UUID, body: ChannelAccountPatch, tenant: AdminTenant
) -> ChannelAccountOut:
    """Rename, enable or disable (a disabled account routes nothing: its widget key, its
    webhooks answer 404), reconfigure, set or remove secrets. `external_id` cannot change:
    create another account."""
    async with tenant.transaction() as session:
        account = await accounts.update(
            session,
            tenant.runtime.secret_key,
            account_id,
            display_name=body.display_name,
            enabled=body.enabled,
            config=body.config,
            secrets=body.secrets,
        )
        return _out(account)


@router.delete(
    "/channel-accounts/{account_id}",
    status_code=204,
    responses={409: {"description": "The company's last web chat account: disable it instead."}},
)
async def delete_account(account_id: uuid.UUID, tenant: AdminTenant) -> Response:
    """Delete an account: what routed through it answers 404 from now on. The company's last
    `webchat` account is refused (409): disable it (`PATCH` `{"enabled": false}`), which can
    be undone; to change the widget key, create the new account first."""
    async with tenant.transaction() as session:
        await accounts.delete(session, account_id)
    return Response(status_code=204)
