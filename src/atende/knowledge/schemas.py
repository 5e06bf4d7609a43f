"""API shapes of the knowledge domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class DocumentIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "source": "faq/entregas.md",
                    "content": "# Entregas\n\nEntregamos em todo o Brasil em até 7 dias úteis.",
                    "language": "pt",
                }
            ]
        },
    )

    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="A name that identifies the document (re-posting it replaces it).",
    )
    content: str | None = Field(default=None, description="The document text (Markdown, HTML or plain).")
    path: str | None = Field(
        default=None,
        max_length=1000,
        description="A file under the server's ATENDE_INGEST_ROOT, instead of `content`.",
    )
    url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description="Fetch the document from this URL (HTML, text, Markdown, CSV, PDF or DOCX) instead.",
    )
    title: str | None = Field(default=None, max_length=500)
    content_type: Literal["markdown", "html", "text", "csv"] | None = Field(
        default=None, description="How to read `content` (default: from the source's extension)."
    )
    language: Literal["pt", "en", "es"] | None = Field(default=None, description="Detected if omitted.")
    meta: dict[str, Any] = Field(default_factory=dict)


class DocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    source: str
    content_type: str
    language: str
    status: str
    error: str | None
    chunk_count: int
    content_hash: str
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class IngestResultPublic(BaseModel):
    document: DocumentPublic
    changed: bool = Field(description="False when the same content was already indexed.")


class ChunkPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    ordinal: int
    section: str
    text: str
    language: str
