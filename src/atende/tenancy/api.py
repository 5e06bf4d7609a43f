"""``/v1/company``: what the caller's key belongs to, and how its assistant answers
(instructions, its own LLM endpoint). Its web chat widget key is its ``webchat`` channel
account's ``external_id`` (``/v1/channel-accounts``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atende import netguard
from atende.tenancy import service
from atende.tenancy.crypto import encrypt_secret
from atende.tenancy.deps import AdminTenant, ViewerTenant
from atende.tenancy.settings import EmbeddingsEndpoint, Endpoint, Instructions, LLMEndpoint, read_section

router = APIRouter(prefix="/v1", tags=["company"])

EMBED_TASK = "knowledge:embed_company"  # re-embeds the knowledge base (``atende.knowledge.tasks``)


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
                }
            ]
        }
    )
    instructions: str
    llm: EndpointOut | None = Field(description="The company's own LLM endpoint; null: the deployment's.")
    embeddings: EndpointOut | None = Field(
        description="The company's own embeddings endpoint; null: the deployment's offline model."
    )


def _endpoint_out(stored: Endpoint) -> EndpointOut | None:
    if not stored.base_url:
        return None
    return EndpointOut(base_url=stored.base_url, model=stored.model, api_key_set=bool(stored.api_key))


def _assistant_out(settings: Mapping[str, Any]) -> AssistantOut:
    return AssistantOut(
        instructions=read_section(settings, Instructions).instructions,
        llm=_endpoint_out(read_section(settings, LLMEndpoint)),
        embeddings=_endpoint_out(read_section(settings, EmbeddingsEndpoint)),
    )


@router.get("/company/assistant", response_model=AssistantOut)
async def get_assistant(tenant: ViewerTenant) -> AssistantOut:
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id))
        return _assistant_out(company.settings or {})


async def _endpoint(
    tenant: AdminTenant, given: LLMEndpointIn | None, stored: Endpoint, what: str
) -> dict[str, Any] | None:
    """An endpoint as stored (key encrypted; an omitted key keeps the stored one, "" clears it)."""
    if given is None:
        return None
    await netguard.check_public(
        given.base_url,
        allow_private=tenant.runtime.settings.llm_allow_private_networks,
        what=what,
        setting="ATENDE_LLM_ALLOW_PRIVATE_NETWORKS",
    )
    endpoint: dict[str, Any] = {"base_url": given.base_url.rstrip("/"), "model": given.model}
    if given.api_key:
        endpoint["api_key"] = encrypt_secret(tenant.runtime.secret_key, given.api_key)
    elif given.api_key is None and stored.api_key:
        endpoint["api_key"] = stored.api_key
    return endpoint


@router.put("/company/assistant", response_model=AssistantOut)
async def put_assistant(body: AssistantIn, tenant: AdminTenant) -> AssistantOut:
    """Replace the assistant's settings: the instructions and the company's own LLM and
    embeddings endpoints (one left out, or `null`, is removed; an endpoint's `api_key` left
    out keeps the stored key). It answers, as `GET` does, in the shape it takes, so a `GET`
    body edited and sent back changes only what was edited. A different embeddings model
    re-embeds the knowledge base in the background; until a chunk is re-embedded it is
    found by full-text search only."""
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id), for_update=True)
        current = dict(company.settings or {})
        updated = {**current, "instructions": body.instructions}
        sections = ((LLMEndpoint, body.llm, "LLM"), (EmbeddingsEndpoint, body.embeddings, "embeddings"))
        for section, given, what in sections:
            key = str(section.key)
            endpoint = await _endpoint(tenant, given, read_section(current, section), what)
            if endpoint is None:
                updated.pop(key, None)
            else:
                updated[key] = endpoint
        company.settings = updated
        before, after = read_section(current, EmbeddingsEndpoint), read_section(updated, EmbeddingsEndpoint)
        if (before.base_url, before.model) != (after.base_url, after.model):
            # one at a time per company; a second run finds nothing left to embed
            await tenant.runtime.jobs.enqueue(
                session, EMBED_TASK, lock=f"embed:{company.id}", company_id=str(company.id)
            )
        return _assistant_out(updated)
