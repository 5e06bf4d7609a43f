"""API shapes of the knowledge domain."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class DocumentMeta(BaseModel):
    """What a document is about and for whom; retrieval will filter on it (e.g. a product's
    FAQ for that product's customers, a promotion only while it is valid)."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=30
    )
    product: str | None = Field(default=None, max_length=200)
    audience: str | None = Field(default=None, max_length=100, description="e.g. customers, resellers, staff")
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _period(self) -> DocumentMeta:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        return self


class StoredDocumentMeta(DocumentMeta):
    """Metadata as stored: keys written by earlier versions are kept and shown."""

    model_config = ConfigDict(extra="allow")


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
        max_length=1000,  # it becomes the document's source
        pattern=r"^https?://",
        description="Fetch the document from this URL (HTML, text, Markdown, CSV, PDF or DOCX) instead.",
    )
    title: str | None = Field(default=None, max_length=500)
    content_type: Literal["markdown", "html", "text", "csv"] | None = Field(
        default=None, description="How to read `content` (default: from the source's extension)."
    )
    language: Literal["pt", "en", "es"] | None = Field(default=None, description="Detected if omitted.")
    meta: DocumentMeta = Field(default_factory=DocumentMeta)


# a driver's class name in an error stored by an earlier version, "(psycopg.errors.X) "
_DRIVER_PREFIX = re.compile(r"\((?:psycopg|sqlalchemy)[\w.]*\)\s*")


class DocumentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    source: str
    content_type: str
    language: str
    status: str
    error: str | None = Field(description="Why the latest version failed: one line.")
    chunk_count: int
    content_hash: str
    meta: StoredDocumentMeta
    created_at: datetime
    updated_at: datetime

    @field_validator("error")
    @classmethod
    def _one_line(cls, error: str | None) -> str | None:
        """Earlier versions stored a database error whole (its statement and parameters on
        the lines after the first): only its first line is shown, without the driver's name."""
        if not error:
            return error
        return _DRIVER_PREFIX.sub("", error.splitlines()[0]).strip()


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
