"""``/v1/company``: what the caller's key belongs to (its web chat widget key), and how its
assistant answers (instructions, its own LLM endpoint)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende import netguard
from atende.tenancy import service
from atende.tenancy.crypto import encrypt_secret
from atende.tenancy.deps import AdminTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["company"])


class CompanyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    slug: str
    widget_key: str
    default_language: str


@router.get("/company", response_model=CompanyPublic)
async def get_company(tenant: ViewerTenant) -> CompanyPublic:
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id))
        return CompanyPublic.model_validate(company)


class LLMEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(min_length=8, max_length=500, pattern=r"^https?://", description="e.g. .../v1")
    model: str = Field(min_length=1, max_length=200)
    api_key: str | None = Field(
        default=None, max_length=500, description="Stored encrypted; never shown again."
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


class AssistantOut(BaseModel):
    instructions: str
    llm_base_url: str | None
    llm_model: str | None
    llm_api_key_set: bool


def _assistant_out(settings: dict[str, Any]) -> AssistantOut:
    llm = settings.get("llm") or {}
    return AssistantOut(
        instructions=str(settings.get("instructions", "")),
        llm_base_url=llm.get("base_url"),
        llm_model=llm.get("model"),
        llm_api_key_set=bool(llm.get("api_key")),
    )


@router.get("/company/assistant", response_model=AssistantOut)
async def get_assistant(tenant: ViewerTenant) -> AssistantOut:
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id))
        return _assistant_out(company.settings or {})


@router.put("/company/assistant", response_model=AssistantOut)
async def put_assistant(body: AssistantIn, tenant: AdminTenant) -> AssistantOut:
    """Set the assistant's instructions and (or, with `llm: null`, remove) the company's LLM."""
    settings = tenant.runtime.settings
    llm: dict[str, Any] | None = None
    if body.llm is not None:
        await netguard.check_public(
            body.llm.base_url,
            allow_private=settings.llm_allow_private_networks,
            what="LLM",
            setting="ATENDE_LLM_ALLOW_PRIVATE_NETWORKS",
        )
        llm = {"base_url": body.llm.base_url.rstrip("/"), "model": body.llm.model}
        if body.llm.api_key:
            llm["api_key"] = encrypt_secret(tenant.runtime.secret_key, body.llm.api_key)
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id), for_update=True)
        stored = (company.settings or {}).get("llm") or {}
        if llm is not None and body.llm is not None and body.llm.api_key is None and stored.get("api_key"):
            llm["api_key"] = stored["api_key"]  # omitted: keep the key ("" clears it)
        updated = {**(company.settings or {}), "instructions": body.instructions}
        if llm is None:
            updated.pop("llm", None)
        else:
            updated["llm"] = llm
        company.settings = updated
        return _assistant_out(updated)
