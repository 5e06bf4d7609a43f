"""API shapes of the knowledge domain."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from atende.knowledge.filters import TAGS, Filters, Match, as_text
from atende.knowledge.models import Document
from atende.knowledge.rules import (
    CONTEXT_KEYS,
    DEFAULT_WINDOWED,
    MAX_RULES,
    PAGE_CHARS,
    ContextRule,
    KnowledgeRules,
    checked_context,
)
from atende.knowledge.service import Metadata, clean_tags, metadata_of


def start_of(value: date | datetime | None) -> datetime | None:
    """An instant a document becomes valid: a date is its first instant (UTC); a datetime
    without a zone is UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def end_of(value: date | datetime | None) -> datetime | None:
    """An instant a document stops being valid: a date is its last instant (UTC), so that
    "valid until 2026-12-31" holds all of that day."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.max)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


Tag = Annotated[str, Field(min_length=1, max_length=60)]
_ContextMap = dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=PAGE_CHARS)]]
# a conversation's context as ``POST /v1/messages`` takes it (the web chat's page and
# product, or any key the company's rules name); ``channel`` is the conversation's own
MessageContext = Annotated[
    _ContextMap,
    Field(
        max_length=CONTEXT_KEYS,
        description="Where the customer is, kept on the conversation for the company's knowledge rules: "
        "`page` (the page's URL or path; only the path is kept), `product` (the product it is about), "
        "or any key your rules name (`region`, `plan`...: lower-case letters, digits, `_`). At most "
        f"{CONTEXT_KEYS} keys, values up to 500 characters (a page's URL up to {PAGE_CHARS}); a key "
        "given again replaces its value, an empty value removes it, keys not given stay.",
        examples=[{"page": "https://shop.example/pro/plans", "product": "pro", "region": "south"}],
    ),
    AfterValidator(lambda given: checked_context(given, channel=False)),
]
# as ``POST /v1/search`` and "Try a question" take it: ``channel`` too, to try its rules
SearchContext = Annotated[
    _ContextMap,
    Field(
        max_length=CONTEXT_KEYS,
        description="A conversation's context to try the company's rules with: `channel` (`webchat`, "
        "`whatsapp`...), `page` (the widget's page), `product`, or a key your rules name; as "
        "`POST /v1/messages`' `context`.",
    ),
    AfterValidator(lambda given: checked_context(given, channel=True)),
]


def _day_or_instant(value: Any) -> Any:
    """``2026-12-31`` is a day (a datetime would read it as its midnight)."""
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value)
    return value


Instant = Annotated[datetime | date, BeforeValidator(_day_or_instant)]
CustomKey = Annotated[str, Field(min_length=1, max_length=60)]
CustomValue = Annotated[str, Field(max_length=500)] | int | float | bool


# what a custom key may not be: the fields of their own
OWN_FIELDS = ("product", "audience", "language", "tags", "tag", "valid_from", "valid_until")


def own_keys(custom: dict[str, Any]) -> dict[str, Any]:
    """Custom keys as given, refused when one has spaces around it or names a field of its own."""
    for key in custom:
        if key.strip() != key:
            raise ValueError(f"custom key {key!r} has spaces around it")
        if key in OWN_FIELDS:
            raise ValueError(f"'{key}' is a field of its own: set `{key}`, not a custom key")
    return custom


class DocumentMeta(BaseModel):
    """What a document is about and for whom; retrieval filters on it (e.g. a product's
    FAQ for that product's customers, a promotion only while it is valid). ``valid_from``
    and ``valid_until`` take a date (all of that day, UTC) or an instant."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(default_factory=list, max_length=30)
    product: str | None = Field(default=None, max_length=200)
    audience: str | None = Field(default=None, max_length=100, description="e.g. customers, resellers, staff")
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    custom: dict[CustomKey, CustomValue] = Field(
        default_factory=dict,
        max_length=30,
        description="Any other key/values (retrieval filters on them: `attributes`); a value of text has "
        "at most 500 characters.",
    )

    @field_validator("custom")
    @classmethod
    def _custom_keys(cls, custom: dict[str, Any]) -> dict[str, Any]:
        return own_keys(custom)

    @model_validator(mode="after")
    def _period(self) -> DocumentMeta:
        start, end = start_of(self.valid_from), end_of(self.valid_until)
        if start and end and end < start:
            raise ValueError("valid_until must not be before valid_from")
        return self

    def metadata(self) -> Metadata:
        return Metadata(
            tags=clean_tags(self.tags),
            product=self.product or None,
            audience=self.audience or None,
            valid_from=start_of(self.valid_from),
            valid_until=end_of(self.valid_until),
            custom=dict(self.custom),
        )


class DocumentMetaPatch(BaseModel):
    """Some of a document's metadata: the keys sent change (``null`` clears), the others stay."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tags": ["frete"], "audience": "customers", "valid_until": "2026-12-31"}]
        },
    )

    tags: list[Tag] | None = Field(default=None, max_length=30)
    product: str | None = Field(default=None, max_length=200)
    audience: str | None = Field(default=None, max_length=100)
    valid_from: Instant | None = None
    valid_until: Instant | None = None
    custom: dict[CustomKey, CustomValue] | None = Field(default=None, max_length=30)
    language: Literal["pt", "en", "es"] | None = Field(
        default=None, description="Index the document again in this language."
    )

    @field_validator("custom")
    @classmethod
    def _custom_keys(cls, custom: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if custom is None else own_keys(custom)

    def changes(self) -> dict[str, object]:
        sent = self.model_fields_set
        out: dict[str, object] = {}
        if "tags" in sent:
            out["tags"] = tuple(self.tags or ())
        for name in ("product", "audience"):
            if name in sent:
                out[name] = getattr(self, name) or None
        if "valid_from" in sent:
            out["valid_from"] = start_of(self.valid_from)
        if "valid_until" in sent:
            out["valid_until"] = end_of(self.valid_until)
        if "custom" in sent:
            out["custom"] = dict(self.custom or {})
        return out


class StoredDocumentMeta(BaseModel):
    """Metadata as stored: the columns, and the key/values of ``custom`` (keys written by
    earlier versions among them)."""

    tags: list[str] = Field(default_factory=list)
    product: str | None = None
    audience: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    custom: dict[str, Any] = Field(default_factory=dict)


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
    status: str = Field(
        description="`queued`, `indexing`, `embedding` (its chunks answer by full text; their "
        "vectors are being stored: `embedded_chunks` of `chunk_count`), `ready` or `failed`."
    )
    error: str | None = Field(description="Why the latest version failed: one line.")
    chunk_count: int
    embedded_chunks: int | None = Field(
        default=None,
        description="While `embedding`: how many of its chunks have their vector (search by "
        "meaning finds those); `null` otherwise.",
    )
    content_hash: str
    meta: StoredDocumentMeta
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_document(cls, value: Any) -> Any:
        """A ``Document``'s metadata columns and ``meta`` JSON, as one ``meta``."""
        if isinstance(value, Document):
            computed = ("meta", "embedded_chunks")  # not columns
            fields = {name: getattr(value, name) for name in cls.model_fields if name not in computed}
            meta = metadata_of(value)
            fields["meta"] = StoredDocumentMeta(
                tags=list(meta.tags),
                product=meta.product,
                audience=meta.audience,
                valid_from=meta.valid_from,
                valid_until=meta.valid_until,
                custom=dict(meta.custom),
            )
            return fields
        return value

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
    token_count: int = Field(description="The words indexed (the length BM25 normalises by).")


class DocumentVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    content_hash: str
    content_type: str
    title: str | None
    language: str | None
    author_id: uuid.UUID | None = Field(description="The dashboard user who sent it; null for an API key.")
    created_at: datetime


AttributeKey = Annotated[str, Field(min_length=1, max_length=60)]
AttributeValue = str | int | float | bool
AttributeValues = AttributeValue | Annotated[list[AttributeValue], Field(min_length=1, max_length=20)]


def _attribute_matches(attributes: dict[str, AttributeValues], *, negate: bool) -> tuple[Match, ...]:
    return tuple(
        Match(
            key,
            tuple(dict.fromkeys(as_text(v) for v in (values if isinstance(values, list) else [values]))),
            negate,
        )
        for key, values in attributes.items()
    )


def _custom_keys(attributes: dict[str, AttributeValues]) -> dict[str, AttributeValues]:
    for key in attributes:
        if key.strip() != key or not key:
            raise ValueError(f"attribute key {key!r} has spaces around it")
        if key in OWN_FIELDS:
            raise ValueError(f"'{key}' is a field of its own: filter on `{key}`, not on an attribute")
    return attributes


class ExcludeIn(BaseModel):
    """Documents that must *not* have any of these (a document without the field passes)."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(default_factory=list, max_length=30)
    products: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=30
    )
    audiences: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=30
    )
    attributes: dict[AttributeKey, AttributeValues] = Field(
        default_factory=dict, max_length=30, description="Custom key → value(s) the document must not have."
    )

    @field_validator("attributes")
    @classmethod
    def _custom(cls, attributes: dict[str, AttributeValues]) -> dict[str, AttributeValues]:
        return _custom_keys(attributes)

    def matches(self) -> tuple[Match, ...]:
        out = [
            Match(key, tuple(dict.fromkeys(values)), negate=True)
            for key, values in ((TAGS, self.tags), ("product", self.products), ("audience", self.audiences))
            if values
        ]
        return (*out, *_attribute_matches(self.attributes, negate=True))


class FiltersIn(BaseModel):
    """Which documents may answer; every filter given must hold. Applied inside both
    retrieval statements, so each stage still returns its full count from what passes. A
    customer's answer also always follows the company's knowledge rules (no internal
    documents, none outside their dates; `GET /v1/company/knowledge-rules`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "product": "pro",
                    "attributes": {"region": ["south", "southeast"]},
                    "exclude": {"tags": ["old"]},
                }
            ]
        },
    )

    language: Literal["pt", "en", "es"] | None = Field(default=None, description="The documents' language.")
    documents: list[uuid.UUID] = Field(
        default_factory=list, max_length=50, description="Only these documents (ids of `GET /v1/documents`)."
    )
    tags: list[Tag] = Field(
        default_factory=list, max_length=30, description="Documents with at least one of these tags."
    )
    product: str | None = Field(default=None, min_length=1, max_length=200)
    audience: str | None = Field(default=None, min_length=1, max_length=100)
    valid_at: Instant | None = Field(
        default=None, description="Only documents valid at this instant or day (`valid_from`/`valid_until`)."
    )
    attributes: dict[AttributeKey, AttributeValues] = Field(
        default_factory=dict,
        max_length=30,
        description="Custom key/values (a document's `meta.custom`): each key must have one of its values.",
    )
    exclude: ExcludeIn = Field(default_factory=ExcludeIn)

    @field_validator("attributes")
    @classmethod
    def _custom(cls, attributes: dict[str, AttributeValues]) -> dict[str, AttributeValues]:
        return _custom_keys(attributes)

    def filters(self) -> Filters:
        return Filters(
            language=self.language,
            documents=tuple(dict.fromkeys(self.documents)),
            tags=tuple(dict.fromkeys(self.tags)),
            product=self.product,
            audience=self.audience,
            valid_at=start_of(self.valid_at),
            matches=(*_attribute_matches(self.attributes, negate=False), *self.exclude.matches()),
        )


class KnowledgeRulesIn(BaseModel):
    """The company's knowledge rules. Always, for a customer's answer: no document for the
    `internal` audience, none outside its dates. `windowed_tags`: a document with one of these
    tags is used only within its own dates, never without an end date. `rules`: from the
    conversation's context to a document field (`when` `channel` `equals` `whatsapp` → `field`
    `product` `value` `X`; `when` `page` `equals` `/pro/` → `product` `pro`; `when` `product`
    → `field` `product` with no `value`: the widget's product)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "windowed_tags": ["promo"],
                    "rules": [
                        {"when": "channel", "equals": "whatsapp", "field": "product", "value": "X"},
                        {
                            "when": "page",
                            "equals": "/pro/",
                            "field": "product",
                            "value": "pro",
                            "or_unset": True,
                        },
                    ],
                }
            ]
        },
    )

    windowed_tags: list[Tag] = Field(default_factory=lambda: list(DEFAULT_WINDOWED), max_length=30)
    rules: list[ContextRule] = Field(default_factory=list, max_length=MAX_RULES)

    @field_validator("windowed_tags")
    @classmethod
    def _tags(cls, tags: list[str]) -> list[str]:
        return list(clean_tags(tags))

    def section(self) -> KnowledgeRules:
        return KnowledgeRules(windowed_tags=self.windowed_tags, rules=self.rules)
