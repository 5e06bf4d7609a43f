"""How a company's assistant answers: its instructions, its own LLM and embeddings
endpoints and its re-ranking, read and replaced as one (``GET``/``PUT /v1/company/assistant``
and the dashboard's Bot page call these). Endpoint keys are stored encrypted and never read
back: callers see only whether one is set. Services never commit: callers own the
transaction."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atende import netguard
from atende.audit import service as audit
from atende.jobs.queue import JobQueue
from atende.tenancy.crypto import encrypt_secret
from atende.tenancy.service import get_company
from atende.tenancy.settings import (
    EmbeddingsEndpoint,
    Endpoint,
    Instructions,
    LLMEndpoint,
    Reranking,
    read_section,
)

EMBED_TASK = "knowledge:embed_company"  # re-embeds the knowledge base (``atende.knowledge.tasks``)


@dataclass(frozen=True)
class EndpointShown:
    """An endpoint as it may be shown: its key only as whether one is stored."""

    base_url: str
    model: str
    api_key_set: bool


@dataclass(frozen=True)
class RerankShown:
    """Whether retrieval re-ranks its candidates, and whether the LLM re-orders the first few."""

    enabled: bool = True
    llm: bool = False


@dataclass(frozen=True)
class AssistantShown:
    instructions: str
    llm: EndpointShown | None
    embeddings: EndpointShown | None
    rerank: RerankShown


@dataclass(frozen=True)
class EndpointChange:
    """An endpoint to store; ``api_key`` None keeps the stored key, ``""`` removes it."""

    base_url: str
    model: str
    api_key: str | None = None


def _shown(stored: Endpoint) -> EndpointShown | None:
    if not stored.base_url:
        return None
    return EndpointShown(base_url=stored.base_url, model=stored.model, api_key_set=bool(stored.api_key))


def shown(settings: Mapping[str, Any]) -> AssistantShown:
    return AssistantShown(
        instructions=read_section(settings, Instructions).instructions,
        llm=_shown(read_section(settings, LLMEndpoint)),
        embeddings=_shown(read_section(settings, EmbeddingsEndpoint)),
        rerank=RerankShown(**read_section(settings, Reranking).model_dump()),
    )


async def read_assistant(session: AsyncSession, company_id: uuid.UUID) -> AssistantShown:
    company = await get_company(session, str(company_id))
    return shown(company.settings or {})


async def _stored_endpoint(
    given: EndpointChange | None, stored: Endpoint, *, secret_key: str, allow_private: bool, what: str
) -> dict[str, Any] | None:
    """An endpoint as stored (key encrypted; an omitted key keeps the stored one, "" clears it)."""
    if given is None:
        return None
    await netguard.check_public(
        given.base_url, allow_private=allow_private, what=what, setting="ATENDE_LLM_ALLOW_PRIVATE_NETWORKS"
    )
    endpoint: dict[str, Any] = {"base_url": given.base_url.rstrip("/"), "model": given.model}
    if given.api_key:
        endpoint["api_key"] = encrypt_secret(secret_key, given.api_key)
    elif given.api_key is None and stored.api_key:
        endpoint["api_key"] = stored.api_key
    return endpoint


async def replace_assistant(
    session: AsyncSession,
    jobs: JobQueue,
    *,
    company_id: uuid.UUID,
    secret_key: str,
    allow_private: bool,
    instructions: str,
    llm: EndpointChange | None,
    embeddings: EndpointChange | None,
    rerank: RerankShown | None = None,
) -> AssistantShown:
    """Replace the assistant's settings (an endpoint ``None`` is removed; ``rerank`` ``None``
    is the defaults: re-ranking on, the LLM's off) and answer them as shown. A different
    embeddings model re-embeds the knowledge base in the background."""
    company = await get_company(session, str(company_id), for_update=True)
    current = dict(company.settings or {})
    updated = {**current, "instructions": instructions}
    sections = ((LLMEndpoint, llm, "LLM"), (EmbeddingsEndpoint, embeddings, "embeddings"))
    for section, given, what in sections:
        key = str(section.key)
        endpoint = await _stored_endpoint(
            given,
            read_section(current, section),
            secret_key=secret_key,
            allow_private=allow_private,
            what=what,
        )
        if endpoint is None:
            updated.pop(key, None)
        else:
            updated[key] = endpoint
    chosen = Reranking(**asdict(rerank or RerankShown()))
    if chosen == Reranking():  # the defaults are not stored: a company that never chose reads them
        updated.pop(str(Reranking.key), None)
    else:
        updated[str(Reranking.key)] = chosen.model_dump()
    company.settings = updated
    if fields := audit.changed_fields(current, updated):  # names only: an endpoint holds its key
        audit.record(session, "settings.bot_changed", ("company", company.id), {"fields": fields})
    before, after = read_section(current, EmbeddingsEndpoint), read_section(updated, EmbeddingsEndpoint)
    if (before.base_url, before.model) != (after.base_url, after.model):
        # one at a time per company; a second run finds nothing left to embed
        await jobs.enqueue(session, EMBED_TASK, lock=f"embed:{company.id}", company_id=str(company.id))
    return shown(updated)
