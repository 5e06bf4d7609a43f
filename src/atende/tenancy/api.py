"""``/v1/company``: what the caller's key belongs to, and how its assistant answers
(instructions, its own LLM endpoint, its re-ranking); ``/v1/api-keys``: the company's keys (list, create,
revoke), as the CLI and the dashboard manage them. Its web chat widget key is its ``webchat`` channel
account's ``external_id`` (``/v1/channel-accounts``)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Literal

import httpx
from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atende.tenancy import assistant, service
from atende.tenancy.assistant import AssistantShown, EndpointChange, RerankShown
from atende.tenancy.deps import AdminTenant, ViewerTenant
from atende.tenancy.models import ApiKey, Role

router = APIRouter(prefix="/v1", tags=["company"])


class CompanyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    slug: str
    default_language: str


@router.get("/company", response_model=CompanyPublic)
async def get_company(tenant: ViewerTenant) -> CompanyPublic:
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id))
        return CompanyPublic.model_validate(company)


class CompanyUpdate(BaseModel):
    """The company's profile; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Loja Exemplo"}]})
    name: str | None = Field(default=None, min_length=1, max_length=200)
    default_language: Literal["pt", "en", "es"] | None = Field(
        default=None, description="The assistant's language when it cannot tell the customer's."
    )


@router.patch("/company", response_model=CompanyPublic)
async def patch_company(body: CompanyUpdate, tenant: AdminTenant) -> CompanyPublic:
    """Change the company's name or default language (its slug stays). Its timezone is its
    business hours' (`/v1/company/hours`)."""
    async with tenant.transaction() as session:
        company = await service.update_company(
            session, tenant.principal.company_id, name=body.name, default_language=body.default_language
        )
        return CompanyPublic.model_validate(company)


class LLMEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://", description="e.g. .../v1")
    model: str = Field(min_length=1, max_length=200)

    @field_validator("base_url")
    @classmethod
    def _a_real_url(cls, value: str) -> str:
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("must not contain spaces or control characters")
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"is not a valid URL ({exc})") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("must be an http(s) URL with a host")
        return value

    api_key: str | None = Field(
        default=None,
        max_length=500,
        description='Stored encrypted; never shown again. Left out: the stored key is kept; `""`: removed.',
    )
    api_key_set: bool | None = Field(
        default=None,
        description="Read-only, as `GET` shows it: ignored here, so that a `GET` body can be sent back.",
    )


class RerankIn(BaseModel):
    """How retrieval re-orders its candidates before the answerer reads them."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(
        default=True,
        description="Re-rank the best fused candidates (a second, finer ordering) before the answerer "
        "reads them; `false`: the fused order is used.",
    )
    llm: bool = Field(
        default=False,
        description="Then let the LLM (the company's, else the deployment's) re-order the first few "
        "(`ATENDE_RERANK_LLM_TOP`); ignored without an LLM or with `enabled` false. Adds an LLM request "
        "to every question.",
    )


class RerankOut(BaseModel):
    enabled: bool
    llm: bool


class AssistantIn(BaseModel):
    """How the company's assistant answers: its instructions and, optionally, its own LLM."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "instructions": "Você é a Bia, da Loja Exemplo. Trate o cliente por você.",
                    "llm": {
                        "base_url": "https://api.openai.com/v1",
                        "model": "gpt-4o-mini",
                        "api_key": "sk-...",
                    },
                }
            ]
        },
    )

    instructions: str = Field(
        default="", max_length=4000, description="Persona, tone and rules, in any language."
    )
    llm: LLMEndpointIn | None = Field(
        default=None,
        description="An OpenAI-compatible endpoint of the company's own (else the deployment's).",
    )
    embeddings: LLMEndpointIn | None = Field(
        default=None,
        description="An OpenAI-compatible embeddings endpoint for dense retrieval (else the deployment's "
        "offline model). A change re-embeds the knowledge base in the background.",
    )
    rerank: RerankIn = Field(
        default_factory=RerankIn,
        description="Re-ranking of the retrieved candidates; left out: on, without the LLM.",
    )


class EndpointOut(BaseModel):
    """An endpoint as `PUT` takes it, its key write-only: only whether one is stored."""

    base_url: str
    model: str
    api_key_set: bool


class AssistantOut(BaseModel):
    """The assistant's settings in the shape `PUT` takes (`GET` → edit → `PUT` works)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instructions": "Você é a Bia, da Loja Exemplo. Trate o cliente por você.",
                    "llm": {
                        "base_url": "https://api.openai.com/v1",
                        "model": "gpt-4o-mini",
                        "api_key_set": True,
                    },
                    "embeddings": None,
                    "rerank": {"enabled": True, "llm": False},
                }
            ]
        }
    )
    instructions: str
    llm: EndpointOut | None = Field(description="The company's own LLM endpoint; null: the deployment's.")
    embeddings: EndpointOut | None = Field(
        description="The company's own embeddings endpoint; null: the deployment's offline model."
    )
    rerank: RerankOut


def _assistant_out(assistant: AssistantShown) -> AssistantOut:
    return AssistantOut.model_validate(asdict(assistant))


def _change(given: LLMEndpointIn | None) -> EndpointChange | None:
    return EndpointChange(given.base_url, given.model, given.api_key) if given else None


@router.get("/company/assistant", response_model=AssistantOut)
async def get_assistant(tenant: ViewerTenant) -> AssistantOut:
    async with tenant.transaction() as session:
        return _assistant_out(await assistant.read_assistant(session, tenant.principal.company_id))


@router.put("/company/assistant", response_model=AssistantOut)
async def put_assistant(body: AssistantIn, tenant: AdminTenant) -> AssistantOut:
    """Replace the assistant's settings: the instructions, the company's own LLM and
    embeddings endpoints (one left out, or `null`, is removed; an endpoint's `api_key` left
    out keeps the stored key) and its re-ranking (left out: on, without the LLM). It answers,
    as `GET` does, in the shape it takes, so a `GET` body edited and sent back changes only
    what was edited. A different embeddings model re-embeds the knowledge base in the
    background; until a chunk is re-embedded it is found by full-text search only."""
    runtime = tenant.runtime
    async with tenant.transaction() as session:
        return _assistant_out(
            await assistant.replace_assistant(
                session,
                runtime.jobs,
                company_id=tenant.principal.company_id,
                secret_key=runtime.secret_key,
                allow_private=runtime.settings.llm_allow_private_networks,
                instructions=body.instructions,
                llm=_change(body.llm),
                embeddings=_change(body.embeddings),
                rerank=RerankShown(enabled=body.rerank.enabled, llm=body.rerank.llm),
            )
        )


# API keys


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "CRM", "role": "agent"}]}
    )
    name: str = Field(min_length=1, max_length=200, description="What the key is for.")
    role: Role = Field(default=Role.admin, description="`admin`, `agent` or `viewer`; never above yours.")


class ApiKeyPublic(BaseModel):
    """A key as listed: its prefix, never the key (only its hash is stored)."""

    id: uuid.UUID
    name: str
    prefix: str
    role: Role
    user_email: str | None = Field(
        description="A personal key's member (it acts as them); null: the company's."
    )
    created_at: datetime
    last_used_at: datetime | None = Field(description="To the minute; null: never used.")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key (`atd_...`): shown only now; store it.")


def _key_out(key: ApiKey, email: str | None) -> ApiKeyPublic:
    return ApiKeyPublic(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        role=Role(key.role),
        user_email=email,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


@router.get("/api-keys", response_model=list[ApiKeyPublic], summary="List API keys")
async def list_api_keys(tenant: AdminTenant) -> list[ApiKeyPublic]:
    """The company's keys, oldest first, revoked ones included (with when)."""
    async with tenant.transaction() as session:
        return [_key_out(key, email) for key, email in await service.list_api_keys(session)]


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201, summary="Create an API key")
async def create_api_key(body: ApiKeyIn, tenant: AdminTenant) -> ApiKeyCreated:
    """A company key with a role no higher than the caller's; the key is in this answer only."""
    async with tenant.transaction() as session:
        key, full = await service.issue_api_key(
            session,
            secret_key=tenant.runtime.secret_key,
            actor=tenant.principal,
            name=body.name,
            role=body.role,
        )
        return ApiKeyCreated(**_key_out(key, None).model_dump(), key=full)


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
async def revoke_api_key(key_id: uuid.UUID, tenant: AdminTenant) -> Response:
    """It stops working at once, in every process; it stays listed as revoked. A key whose
    role is above the caller's answers 403."""
    await tenant.revoke_api_key(key_id)
    return Response(status_code=204)
