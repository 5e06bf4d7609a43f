"""Knowledge rules: which documents may answer whom, applied inside retrieval's SQL.

Some rules always hold for a customer's answer (the bot's turn, a search "as a customer"):
documents for the ``internal`` audience are never used (agent assist and the dashboard's
"try a question" may use them: an agent reads them, a customer never does); a document
outside its validity window (expired, or not valid yet) is never used; a document with one
of the company's *windowed tags* (such as ``promo``) is used only while its own dates hold,
and never without an end date. A company adds simple rules of its own,
each from the conversation's context to a document field: "on channel ``whatsapp`` only
documents with product ``X``", "widget pages under ``/pro/`` → product ``pro``", "the
widget's product → the documents of that product". The context is the conversation's
channel and what its channel said about it (the web chat: the page the widget sits on,
the product the page names).

The rules live in the company's settings (``settings["knowledge_rules"]``); this module turns
them, with a context and an instant, into ``Filters`` and a list of what applied (for the
turn's trace, ``POST /v1/search`` and the dashboard).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from atende.audit import service as audit
from atende.knowledge.filters import LANGUAGES, TAGS, Filters, Match
from atende.tenancy import service as tenancy
from atende.tenancy.models import Company
from atende.tenancy.settings import Section, read_section

INTERNAL = "internal"  # the audience that never reaches a customer
CHANNEL, PAGE = "channel", "page"  # context keys every conversation (channel) or the widget gives
PRODUCT = "product"  # the context key naming the product the customer's page is about
# a conversation's context as a channel or an API client gives it: at most this many keys, a
# page's URL up to PAGE_CHARS (only its path is kept, up to PATH_CHARS), any other value up to
# VALUE_CHARS (a rule's ``equals`` is at most as long)
CONTEXT_KEYS = 20
PAGE_CHARS, PATH_CHARS, VALUE_CHARS = 2000, 500, 500
KEY = re.compile(r"[a-z][a-z0-9_]{0,39}")
DOCUMENT_FIELDS = ("product", "tag", "audience", "language")  # or a custom key
MAX_RULES = 30
# none until the company names them: a document tagged "promo" before the rule existed, with
# no end date, keeps answering until the company says promotions need one
DEFAULT_WINDOWED: tuple[str, ...] = ()
RULES_KEY = "knowledge_rules"  # where the company's settings keep them

ContextKey = Annotated[
    str, Field(min_length=1, max_length=40, description="`channel`, `page` or a context key.")
]


def valid_key(key: str) -> bool:
    """A context key, or a custom document key a rule names: lower case, digits, ``_``."""
    return KEY.fullmatch(key) is not None


class ContextRule(BaseModel):
    """When the conversation's context has ``when`` equal to ``equals`` (for ``page``: the
    page's path starts with it; empty: any value), only documents whose ``field`` is
    ``value`` (empty: the context's own value) answer; ``or_unset``: documents that do not
    set the field answer too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    when: ContextKey
    equals: str = Field(default="", max_length=500)
    field: str = Field(
        min_length=1, max_length=40, description="`product`, `tag`, `audience`, `language` or a custom key."
    )
    value: str = Field(default="", max_length=200)
    or_unset: bool = False

    @field_validator("when", "field")
    @classmethod
    def _key(cls, value: str) -> str:
        value = value.strip()
        if not valid_key(value):
            raise ValueError("use lower-case letters, digits and _ (such as channel, page, product, region)")
        return value

    @field_validator("equals", "value")
    @classmethod
    def _trimmed(cls, value: str) -> str:
        return value.strip()

    @model_validator(mode="after")
    def _consistent(self) -> ContextRule:
        if self.when == PAGE and self.equals and not self.equals.startswith("/"):
            raise ValueError("a page rule's `equals` is the start of a path, such as /pro/")
        if self.when == PAGE and not self.value:
            raise ValueError("a page rule needs a `value`: the page's path is no document field")
        if self.field == "language" and self.value and self.value not in LANGUAGES:
            raise ValueError(f"a language rule's value is one of {', '.join(LANGUAGES)}")
        return self

    def applies(self, context: Mapping[str, str]) -> str | None:
        """The value documents must have under this context; ``None``: the rule does not apply."""
        given = context.get(self.when, "").strip()
        if not given:
            return None
        if self.when == PAGE:
            path = urlsplit(given).path if "://" in given else given
            return self.value if path.startswith(self.equals or "/") else None
        if self.equals and given.casefold() != self.equals.casefold():
            return None
        return self.value or given

    def match(self, value: str) -> Match:
        key = TAGS if self.field == "tag" else self.field
        return Match(key, (value,), or_unset=self.or_unset)


Tag = Annotated[str, Field(min_length=1, max_length=60)]


class KnowledgeRules(Section):
    """``settings["knowledge_rules"]``: the windowed tags and the company's context rules."""

    key: ClassVar[str | None] = RULES_KEY

    windowed_tags: list[Tag] = Field(default_factory=lambda: list(DEFAULT_WINDOWED), max_length=30)
    rules: list[ContextRule] = Field(default_factory=list, max_length=MAX_RULES)


@dataclass(frozen=True)
class Applied:
    """One rule or filter that narrowed retrieval: ``kind`` (``internal``, ``valid_now``,
    ``windowed_tags``, ``context``, ``requested``) and what it said."""

    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.detail}


@dataclass(frozen=True)
class Scope:
    """The filters retrieval applies for one reader, and why (``applied``, in order)."""

    filters: Filters
    applied: tuple[Applied, ...]


def page_path(page: str) -> str:
    """A page as the context keeps it: its path alone (a URL's query string and fragment may
    carry a visitor's data: never stored)."""
    page = page.strip()
    path = urlsplit(page).path if "://" in page else page.split("?", 1)[0].split("#", 1)[0]
    return path[:PATH_CHARS]


def checked_context(given: Mapping[str, str], *, channel: bool) -> dict[str, str]:
    """A conversation's context as given (``page``, ``product``, any key the company's rules
    may name, such as ``region``), as it is kept: the page's path alone, values trimmed (an
    empty one forgets the key). ``channel``: whether ``channel`` may be given (a search tries
    one; a conversation's is the channel it came through). ``ValueError`` saying what was
    wrong: a key that is not lower-case letters, digits and ``_``, too many keys, a value too
    long."""
    if len(given) > CONTEXT_KEYS:
        raise ValueError(f"the context has {len(given)} keys; at most {CONTEXT_KEYS}")
    kept: dict[str, str] = {}
    for key, value in given.items():
        if not valid_key(key):
            raise ValueError(
                f"context key {key!r}: use lower-case letters, digits and _ (such as page, product, region)"
            )
        if key == CHANNEL and not channel:
            raise ValueError("context key 'channel': a conversation's channel is the one it came through")
        limit = PAGE_CHARS if key == PAGE else VALUE_CHARS
        if len(value) > limit:
            raise ValueError(f"context {key!r} has {len(value)} characters; at most {limit}")
        kept[key] = page_path(value) if key == PAGE else " ".join(value.split())
    return kept


def context_of(channel: str | None, stored: Mapping[str, Any] | None) -> dict[str, str]:
    """A conversation's context: what its channel stored (``conversations.context``) and the
    channel itself."""
    context = {k: str(v) for k, v in (stored or {}).items() if isinstance(v, str | int | float)}
    if channel:
        context[CHANNEL] = channel
    return context


def scope(
    rules: KnowledgeRules,
    *,
    now: datetime,
    customer: bool,
    context: Mapping[str, str] | None = None,
    requested: Filters | None = None,
) -> Scope:
    """What retrieval may use: for a ``customer`` (the bot's answer) every rule; for an agent
    (agent assist, "try a question" as an agent) the validity window and the windowed tags,
    but internal documents too. The company's context rules apply with a ``context``;
    ``requested`` (the API's ``filters``) narrows it further."""
    applied: list[Applied] = []
    base = Filters(valid_at=now, windowed_tags=tuple(rules.windowed_tags))
    applied.append(Applied("valid_now"))
    if rules.windowed_tags:
        applied.append(Applied("windowed_tags", {"tags": list(rules.windowed_tags)}))
    if customer:
        base = base & Filters(matches=(Match("audience", (INTERNAL,), negate=True),))
        applied.append(Applied("internal"))
    matches = []
    for number, rule in enumerate(rules.rules, start=1):
        value = rule.applies(context or {})
        if value is None:
            continue
        matches.append(rule.match(value))
        applied.append(
            Applied(
                "context",
                {
                    "rule": number,
                    "when": rule.when,
                    "equals": rule.equals,
                    "given": (context or {}).get(rule.when, ""),
                    "field": rule.field,
                    "value": value,
                    "or_unset": rule.or_unset,
                },
            )
        )
    filters = base & Filters(matches=tuple(matches))
    if requested:
        filters = filters & requested
        applied.append(Applied("requested"))
    return Scope(filters, tuple(applied))


def company_rules(company: Company) -> KnowledgeRules:
    return read_section(company, KnowledgeRules)


async def replace_rules(
    session: AsyncSession, company_id: uuid.UUID, rules: KnowledgeRules
) -> KnowledgeRules:
    """Store the company's knowledge rules (all of them); recorded in the audit log by the
    parts that changed. Applies to the next question."""
    company = await tenancy.get_company(session, str(company_id), for_update=True)  # no lost update
    before = dict((company.settings or {}).get(RULES_KEY) or {})
    stored = rules.model_dump(mode="json")
    if fields := audit.changed_fields(before, stored):
        audit.record(session, "settings.knowledge_rules_changed", ("company", company_id), {"fields": fields})
    company.settings = {**(company.settings or {}), RULES_KEY: stored}
    return company_rules(company)
