"""Retrieval filters: which documents a question may be answered from (their language, ids,
and the metadata columns ``tags``, ``product``, ``audience``).

A ``Filters`` narrows both retrieval paths to the chunks of matching documents *inside*
their SQL (the BM25 statement's postings and the nearest-vector scan), not afterwards: a
filter that leaves 1 % of the chunks still fills the top k from that 1 %. No filter, no
clause: the unfiltered statements stay exactly as measured (``docs/EVALUATION.md``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

# the languages a document may be in (``knowledge.text.TS_CONFIG``'s)
LANGUAGES = ("pt", "en", "es")


@dataclass(frozen=True)
class Filters:
    """Conditions on a chunk's document; every one given must hold (empty: any).

    ``tags``: the document has at least one of them; ``documents``: one of these ids.
    """

    language: str | None = None
    documents: tuple[uuid.UUID, ...] = ()
    tags: tuple[str, ...] = ()
    product: str | None = None
    audience: str | None = None

    def __bool__(self) -> bool:
        return bool(self.language or self.documents or self.tags or self.product or self.audience)


NO_FILTERS = Filters()


def document_conditions(filters: Filters, alias: str = "fd") -> tuple[list[str], dict[str, Any]]:
    """The SQL conditions on a ``documents`` row (``alias``) and their parameters."""
    conditions: list[str] = []
    params: dict[str, Any] = {}
    if filters.language:
        conditions.append(f"{alias}.language = :f_language")
        params["f_language"] = filters.language
    if filters.documents:
        conditions.append(f"{alias}.id = ANY(CAST(:f_documents AS uuid[]))")
        params["f_documents"] = [str(d) for d in filters.documents]
    if filters.tags:
        conditions.append(f"{alias}.tags && CAST(:f_tags AS text[])")
        params["f_tags"] = list(filters.tags)
    if filters.product:
        conditions.append(f"{alias}.product = :f_product")
        params["f_product"] = filters.product
    if filters.audience:
        conditions.append(f"{alias}.audience = :f_audience")
        params["f_audience"] = filters.audience
    return conditions, params


def chunk_clause(filters: Filters, chunk_id: str) -> tuple[str, dict[str, Any]]:
    """``AND EXISTS (...)``: the chunk ``chunk_id`` (an SQL expression) belongs to a document
    that passes ``filters``, in the company ``:company``; ``''`` when nothing is filtered."""
    if not filters:
        return "", {}
    conditions, params = document_conditions(filters)
    where = " AND ".join(conditions)
    clause = f"""
           AND EXISTS (SELECT 1 FROM chunks fc
                         JOIN documents fd ON fd.id = fc.document_id AND fd.company_id = :company
                        WHERE fc.id = {chunk_id} AND fc.company_id = :company AND {where})"""
    return clause, params
