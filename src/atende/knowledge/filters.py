"""Retrieval filters: which documents a question may be answered from (their language, ids,
the metadata columns ``tags``, ``product``, ``audience``, the validity window
``valid_from``/``valid_until``, and the custom key/values of ``meta``).

A ``Filters`` narrows both retrieval paths to the chunks of matching documents *inside*
their SQL (the BM25 statement's postings and the nearest-vector scan), not afterwards: a
filter that leaves 1 % of the chunks still fills the top k from that 1 %. No filter, no
clause: the unfiltered statements stay exactly as measured (``docs/EVALUATION.md``).
Filters from different places (the caller's, the company's rules, the conversation's
context) are combined with ``&``: every one must hold, and all of them still make one
subquery in each statement (``chunk_clause``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

# the languages a document may be in (``knowledge.text.TS_CONFIG``'s)
LANGUAGES = ("pt", "en", "es")
# the document columns a ``Match`` names by these keys; any other key is one of ``meta``'s
COLUMNS = {"product": "product", "audience": "audience", "language": "language"}
TAGS = "tags"


def as_text(value: object) -> str:
    """A custom value as the filter compares it: text as it is, a number or a boolean as JSON
    writes it (``meta->>'key'`` reads ``true``, ``3``, ``2.5``)."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Match:
    """A condition on one document field: ``key`` is ``product``, ``audience``,
    ``language``, ``tags`` or a custom key; its value is one of ``values`` (``negate``: none
    of them). ``or_unset``: a document that does not set the field passes too (a general
    document next to a product's own). ``audience`` compares without case: an ``Internal``
    document is as internal as an ``internal`` one."""

    key: str
    values: tuple[str, ...]
    negate: bool = False
    or_unset: bool = False


@dataclass(frozen=True)
class Filters:
    """Conditions on a chunk's document; every one given must hold (empty: any).

    ``tags``: the document has at least one of them; ``documents``: one of these ids;
    ``valid_at``: the document is valid at that instant (``valid_from`` not after it,
    ``valid_until`` not before it; an open end holds); ``windowed_tags``: a document with
    one of these tags (a promotion) is used only while its own dates hold, and never when
    it has no end date (at ``valid_at``, else now); ``matches``: conditions on other fields,
    custom key/values among them; ``also``: more filters that must hold as well (``&``)."""

    language: str | None = None
    documents: tuple[uuid.UUID, ...] = ()
    tags: tuple[str, ...] = ()
    product: str | None = None
    audience: str | None = None
    valid_at: datetime | None = None
    windowed_tags: tuple[str, ...] = ()
    matches: tuple[Match, ...] = ()
    also: tuple[Filters, ...] = ()

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def __and__(self, other: Filters) -> Filters:
        """Both filters must hold (an empty one adds nothing)."""
        if not other:
            return self
        if not self:
            return other
        return Filters(also=(self, other))


NO_FILTERS = Filters()


def _match_condition(match: Match, alias: str, name: str, params: dict[str, Any]) -> str:
    params[name] = list(match.values)
    if match.key == TAGS:
        overlap = f"{alias}.tags && CAST(:{name} AS text[])"
        if match.negate:
            return f"NOT ({overlap})"
        return f"({overlap} OR {alias}.tags = '{{}}')" if match.or_unset else overlap
    if match.key in COLUMNS:
        column = f"{alias}.{COLUMNS[match.key]}"
    else:
        params[f"{name}_key"] = match.key
        column = f"({alias}.meta ->> CAST(:{name}_key AS text))"
    if match.key == "audience":
        column = f"lower({column})"
        params[name] = [v.lower() for v in match.values]
    if match.negate:
        return f"({column} IS NULL OR {column} <> ALL(CAST(:{name} AS text[])))"
    found = f"{column} = ANY(CAST(:{name} AS text[]))"
    return f"({found} OR {column} IS NULL)" if match.or_unset else found


def document_conditions(
    filters: Filters, alias: str = "fd", prefix: str = "f_"
) -> tuple[list[str], dict[str, Any]]:
    """The SQL conditions on a ``documents`` row (``alias``) and their parameters (named
    with ``prefix``; each of ``also`` gets one of its own)."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if filters.language:
        conditions.append(f"{alias}.language = :{prefix}language")
        params[f"{prefix}language"] = filters.language
    if filters.documents:
        conditions.append(f"{alias}.id = ANY(CAST(:{prefix}documents AS uuid[]))")
        params[f"{prefix}documents"] = [str(d) for d in filters.documents]
    if filters.tags:
        conditions.append(f"{alias}.tags && CAST(:{prefix}tags AS text[])")
        params[f"{prefix}tags"] = list(filters.tags)
    if filters.product:
        conditions.append(f"{alias}.product = :{prefix}product")
        params[f"{prefix}product"] = filters.product
    if filters.audience:
        conditions.append(f"{alias}.audience = :{prefix}audience")
        params[f"{prefix}audience"] = filters.audience
    at = f"CAST(:{prefix}valid_at AS timestamptz)"
    if filters.valid_at is not None or filters.windowed_tags:
        params[f"{prefix}valid_at"] = filters.valid_at
        at = f"coalesce({at}, now())"
    if filters.valid_at is not None:
        conditions.append(
            f"({alias}.valid_from IS NULL OR {alias}.valid_from <= {at})"
            f" AND ({alias}.valid_until IS NULL OR {alias}.valid_until >= {at})"
        )
    if filters.windowed_tags:
        params[f"{prefix}windowed"] = list(filters.windowed_tags)
        conditions.append(
            f"(NOT ({alias}.tags && CAST(:{prefix}windowed AS text[]))"
            f" OR ({alias}.valid_until >= {at}"
            f" AND ({alias}.valid_from IS NULL OR {alias}.valid_from <= {at})))"
        )
    for j, match in enumerate(filters.matches):
        conditions.append(_match_condition(match, alias, f"{prefix}m{j}", params))
    for i, more in enumerate(filters.also):
        inner, inner_params = document_conditions(more, alias, f"{prefix}{i}_")
        conditions.extend(inner)
        params.update(inner_params)
    return conditions, params


def chunk_clause(filters: Filters, chunk_id: str, *, hashed: bool = False) -> tuple[str, dict[str, Any]]:
    """The condition that the chunk ``chunk_id`` (an SQL expression) belongs to a document of
    the company (``:company``) that passes ``filters``; ``''`` when nothing is filtered.

    ``hashed`` (BM25, which reads every posting of the question's terms): ``AND chunk NOT IN
    (the chunks of the documents that fail)``, found from the documents first (a company has
    few; a condition that is unknown, a NULL, fails) and hashed once by PostgreSQL, so each
    posting is one hash probe. A correlated ``EXISTS`` there was an index probe per posting:
    BM25 6× slower on 10,000 chunks (``docs/KNOWLEDGE_RULES.md``). Otherwise (the nearest-
    vector scan, which looks at few more candidates than it returns): ``AND EXISTS`` on the
    chunk's document, two primary-key probes per candidate, cheaper there than building the
    set."""
    if not filters:
        return "", {}
    conditions, params = document_conditions(filters)
    if not conditions:  # only empty filters nested in ``also``
        return "", {}
    where = " AND ".join(conditions)
    if hashed:
        clause = f"""
           AND {chunk_id} NOT IN (SELECT fc.id FROM documents fd
                                   JOIN chunks fc ON fc.document_id = fd.id AND fc.company_id = :company
                                  WHERE fd.company_id = :company AND NOT coalesce(({where}), false))"""
    else:
        clause = f"""
           AND EXISTS (SELECT 1 FROM chunks fc
                         JOIN documents fd ON fd.id = fc.document_id AND fd.company_id = :company
                        WHERE fc.id = {chunk_id} AND fc.company_id = :company AND {where})"""
    return clause, params


def failing_documents_sql(filters: Filters) -> tuple[str, dict[str, Any]]:
    """Whether any of the company's indexed documents fails ``filters`` (one row, a boolean):
    when none does, retrieval leaves its statements unfiltered (``knowledge.retrieval``)."""
    conditions, params = document_conditions(filters)
    where = " AND ".join(conditions) or "true"
    return (
        "SELECT EXISTS (SELECT 1 FROM documents fd WHERE fd.company_id = :company AND fd.chunk_count > 0"
        f" AND NOT coalesce(({where}), false))",
        params,
    )
