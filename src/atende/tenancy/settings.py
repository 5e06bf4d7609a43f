"""A company's settings (``companies.settings``, one JSON object) read through typed models,
one per section, instead of raw dicts scattered over the engine, the LLM client, the
embedder and the API.

Each section is a ``Section`` subclass naming the key it is stored under; ``read_section``
reads one from a company. The stored JSON does not change shape: a section that was written
by an older version, or that no longer validates, reads as the section's defaults and is
logged (``company_settings.section_invalid``), as the business hours always were: a turn
must still answer and a handoff still reach people when one setting went bad.

The sections of the assistant (its instructions, its own LLM and embeddings endpoints, its
re-ranking) live here because ``llm`` and ``knowledge`` read them and sit below every domain
but ``tenancy``; the human side's sections (business hours, handoff rules) live in
``atende.teams.settings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from atende.tenancy.models import Company

log = structlog.get_logger(__name__)

S = TypeVar("S", bound="Section")


class Section(BaseModel):
    """One section of ``companies.settings``. ``key`` is where it is stored; ``None``: its
    fields sit at the top level of the settings (how ``instructions`` has always been
    stored). Every field has a default: a company that never set a section reads the
    defaults."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    key: ClassVar[str | None]


def stored_settings(source: Company | Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The raw settings of a company (or the settings themselves), ``{}`` for none."""
    if source is None:
        return {}
    if isinstance(source, Company):
        return source.settings or {}
    return source


def read_section(source: Company | Mapping[str, Any] | None, kind: type[S]) -> S:
    """The section ``kind`` of a company's settings: its defaults when it was never set, or
    when what is stored no longer validates (logged, naming the section and the fields)."""
    settings = stored_settings(source)
    stored: Any = settings if kind.key is None else settings.get(kind.key)
    if stored is None:
        return kind()
    try:
        return kind.model_validate(stored)
    except ValidationError as exc:
        log.error(
            "company_settings.section_invalid",
            section=kind.key or kind.__name__,
            fields=[".".join(str(p) for p in e["loc"]) for e in exc.errors()],
        )
        return kind()


class Instructions(Section):
    """The assistant's persona, tone and rules (``settings["instructions"]``)."""

    key: ClassVar[str | None] = None
    instructions: str = ""


class Endpoint(Section):
    """An OpenAI-compatible endpoint of the company's own; its key stored encrypted
    (``tenancy.crypto``). Without a base URL and a model it is not set: the deployment's
    applies."""

    base_url: str = ""
    model: str = ""
    api_key: str | None = None  # encrypted

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)


class LLMEndpoint(Endpoint):
    """The company's own LLM (``settings["llm"]``)."""

    key: ClassVar[str | None] = "llm"


class EmbeddingsEndpoint(Endpoint):
    """The company's own embeddings endpoint (``settings["embeddings"]``)."""

    key: ClassVar[str | None] = "embeddings"


ENDPOINTS: tuple[type[Endpoint], ...] = (LLMEndpoint, EmbeddingsEndpoint)


class Reranking(Section):
    """Whether the company's retrieval re-ranks the fused candidates (``settings["rerank"]``,
    on unless turned off), and whether its LLM then re-orders the first few (off unless
    turned on: it adds an LLM request to every question). ``knowledge.rerank``."""

    key: ClassVar[str | None] = "rerank"
    enabled: bool = True
    llm: bool = False
