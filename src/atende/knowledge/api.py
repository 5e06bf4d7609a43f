"""``/v1/documents``: add, list, read, re-ingest and delete knowledge-base documents;
``/v1/company/knowledge-rules``: which documents may answer whom."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from atende.errors import InvalidInput
from atende.knowledge import rules, service
from atende.knowledge.models import Document
from atende.knowledge.schemas import (
    ChunkPublic,
    DocumentIn,
    DocumentMetaPatch,
    DocumentPublic,
    DocumentVersionPublic,
    IngestResultPublic,
    KnowledgeRulesIn,
)
from atende.knowledge.sources import read_submission
from atende.knowledge.tasks import chunking, company_embedder
from atende.tenancy import service as tenancy
from atende.tenancy.deps import AdminTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["knowledge"])


@router.post(
    "/documents",
    response_model=IngestResultPublic,
    status_code=202,
    responses={
        200: {
            "description": "Unchanged (the same content is indexed or waiting)",
            "model": IngestResultPublic,
        },
        201: {"description": "Indexed (`wait=true`): status `ready`", "model": IngestResultPublic},
    },
)
async def create_document(
    body: DocumentIn,
    tenant: AdminTenant,
    response: Response,
    wait: Annotated[
        bool,
        Query(
            description="Index before answering (status `ready` or `failed`) instead of in the background."
        ),
    ] = False,
) -> IngestResultPublic:
    """Add a document, or a new version of the one with the same `source`. Answers 202 with
    status `queued`: poll `GET /v1/documents/{id}` for `indexing`, `embedding` (it answers
    by full text already; `embedded_chunks` of `chunk_count` have their vectors), then
    `ready` or `failed` (with the reason). While a new version indexes, or if it fails, the previous one keeps
    answering. The same content again changes nothing (200, `changed: false`). With
    `wait=true` the document is indexed before the answer: 201, or 422 with the reason."""
    settings = tenant.runtime.settings
    submitted = await read_submission(body, settings)
    async with tenant.transaction() as session:
        result = await service.submit(
            session,
            source=submitted.source,
            data=submitted.data,
            max_bytes=settings.max_document_bytes,
            title=body.title,
            content_type=submitted.content_type,
            lang=body.language,
            meta=body.meta.metadata(),
            jobs=None if wait else tenant.runtime.jobs,
        )
        document = result.document
        out = IngestResultPublic(document=DocumentPublic.model_validate(document), changed=result.changed)
    if not wait or document.status != "queued":
        response.status_code = 202 if document.status in ("queued", "indexing") else 200
        return out
    runtime, company_id = tenant.runtime, tenant.principal.company_id
    embedder = await company_embedder(runtime, company_id)
    await service.index_now(
        runtime.db, company_id, document.id, chunking=chunking(runtime), embedder=embedder
    )
    async with tenant.transaction() as session:
        indexed = await service.get_document(session, document.id)
        failure = indexed.error if indexed.status == "failed" else None
        if failure is None:
            out = IngestResultPublic(document=DocumentPublic.model_validate(indexed), changed=True)
        else:
            # refused while the caller waited: as if never sent (the previous version, if any, stays ready)
            await service.withdraw_failed(session, document.id)
    if failure is not None:
        raise InvalidInput(f"'{submitted.source}' could not be indexed: {failure}")
    response.status_code = 201
    return out


async def _public(session: AsyncSession, documents: list[Document]) -> list[DocumentPublic]:
    """Documents as the API shows them, with the progress of those being embedded."""
    embedded = await service.embedding_progress(session, documents)
    return [
        DocumentPublic.model_validate(d).model_copy(update={"embedded_chunks": embedded.get(d.id)})
        for d in documents
    ]


@router.get("/documents", response_model=list[DocumentPublic])
async def list_documents(tenant: ViewerTenant) -> list[DocumentPublic]:
    async with tenant.transaction() as session:
        return await _public(session, await service.list_documents(session))


@router.get("/documents/{document_id}", response_model=DocumentPublic)
async def get_document(document_id: uuid.UUID, tenant: ViewerTenant) -> DocumentPublic:
    """A document: its status (while `embedding`, it answers by full text and
    `embedded_chunks` says how many of its chunks can be found by meaning yet)."""
    async with tenant.transaction() as session:
        return (await _public(session, [await service.get_document(session, document_id)]))[0]


@router.get("/documents/{document_id}/chunks", response_model=list[ChunkPublic])
async def list_chunks(document_id: uuid.UUID, tenant: ViewerTenant) -> list[ChunkPublic]:
    async with tenant.transaction() as session:
        return [ChunkPublic.model_validate(c) for c in await service.list_chunks(session, document_id)]


@router.patch("/documents/{document_id}", response_model=DocumentPublic)
async def update_document(
    document_id: uuid.UUID, body: DocumentMetaPatch, tenant: AdminTenant
) -> DocumentPublic:
    """Change some of a document's metadata (the keys sent; `null` clears one); at once, no
    re-indexing. A new `language` indexes the document again in it (status `queued`)."""
    async with tenant.transaction() as session:
        document = await service.update_metadata(session, document_id, body.changes())
        if body.language is not None and body.language != document.language:
            document = await service.reindex(session, document_id, tenant.runtime.jobs, lang=body.language)
        return DocumentPublic.model_validate(document)


@router.post("/documents/{document_id}/reindex", response_model=DocumentPublic, status_code=202)
async def reindex_document(document_id: uuid.UUID, tenant: AdminTenant) -> DocumentPublic:
    """Index the document's newest version again (status `queued`, then as after an upload)."""
    async with tenant.transaction() as session:
        return DocumentPublic.model_validate(await service.reindex(session, document_id, tenant.runtime.jobs))


@router.get("/documents/{document_id}/versions", response_model=list[DocumentVersionPublic])
async def list_versions(document_id: uuid.UUID, tenant: ViewerTenant) -> list[DocumentVersionPublic]:
    async with tenant.transaction() as session:
        return [
            DocumentVersionPublic.model_validate(v) for v in await service.list_versions(session, document_id)
        ]


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: uuid.UUID, tenant: AdminTenant) -> Response:
    async with tenant.transaction() as session:
        await service.delete_document(session, document_id)
    return Response(status_code=204)


@router.get("/company/knowledge-rules", response_model=KnowledgeRulesIn, summary="Knowledge rules")
async def get_knowledge_rules(tenant: ViewerTenant) -> KnowledgeRulesIn:
    """Which documents may answer whom: the windowed tags and the company's context rules
    (the fixed rules, no internal documents and none outside their dates for customers, hold
    always)."""
    async with tenant.transaction() as session:
        company = await tenancy.get_company(session, str(tenant.principal.company_id))
        return KnowledgeRulesIn.model_validate(rules.company_rules(company).model_dump())


@router.put(
    "/company/knowledge-rules", response_model=KnowledgeRulesIn, summary="Replace the knowledge rules"
)
async def put_knowledge_rules(body: KnowledgeRulesIn, tenant: AdminTenant) -> KnowledgeRulesIn:
    """Replace the windowed tags and every context rule; applies to the next question."""
    async with tenant.transaction() as session:
        stored = await rules.replace_rules(session, tenant.principal.company_id, body.section())
    return KnowledgeRulesIn.model_validate(stored.model_dump())
