"""``/v1/documents``: add, list, read, re-ingest and delete knowledge-base documents."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response

from atende.errors import InvalidInput
from atende.knowledge import service
from atende.knowledge.embedding import embedder_for
from atende.knowledge.fetch import fetch
from atende.knowledge.schemas import ChunkPublic, DocumentIn, DocumentPublic, IngestResultPublic
from atende.knowledge.tasks import chunking, company_settings
from atende.tenancy.deps import AdminTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["knowledge"])


def resolve_under(root: Path | None, path: str) -> Path:
    """``path`` inside ``root``; refuses traversal out of it, symlinks included."""
    if root is None:
        raise InvalidInput("reading server paths is disabled: send `content`, or set ATENDE_INGEST_ROOT")
    if "\x00" in path:
        raise InvalidInput("path must not contain NUL bytes")
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise InvalidInput(f"path '{path}' is outside the ingest root")
    if not target.is_file():
        raise InvalidInput(f"path '{path}' is not a file under the ingest root")
    return target


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
    status `queued`: poll `GET /v1/documents/{id}` for `indexing`, then `ready` or `failed`
    (with the reason). While a new version indexes, or if it fails, the previous one keeps
    answering. The same content again changes nothing (200, `changed: false`). With
    `wait=true` the document is indexed before the answer: 201, or 422 with the reason."""
    settings = tenant.runtime.settings
    if sum(x is not None for x in (body.content, body.path, body.url)) != 1:
        raise InvalidInput("send exactly one of `content`, `path` or `url`")
    kind: str | None = body.content_type
    if body.url is not None:
        fetched = await fetch(
            body.url,
            max_bytes=settings.max_document_bytes,
            timeout=settings.ingest_fetch_timeout_seconds,
            allow_private=settings.ingest_allow_private_networks,
        )
        data, source, kind = fetched.data, body.source or body.url, fetched.kind
    elif body.path is not None:
        target = resolve_under(settings.ingest_root, body.path)
        if target.stat().st_size > settings.max_document_bytes:
            raise InvalidInput(f"the file is larger than {settings.max_document_bytes} bytes")
        data, source = target.read_bytes(), body.source or body.path
    else:
        if not body.source:
            raise InvalidInput("`source` is required with `content` (e.g. 'faq/shipping.md')")
        data, source = (body.content or "").encode(), body.source
    async with tenant.transaction() as session:
        result = await service.submit(
            session,
            source=source,
            data=data,
            max_bytes=settings.max_document_bytes,
            title=body.title,
            content_type=kind or ("markdown" if not Path(source).suffix else None),
            lang=body.language,
            meta=body.meta.model_dump(mode="json", exclude_defaults=True),
            jobs=None if wait else tenant.runtime.jobs,
        )
        document = result.document
        out = IngestResultPublic(document=DocumentPublic.model_validate(document), changed=result.changed)
    if not wait or document.status != "queued":
        response.status_code = 202 if document.status in ("queued", "indexing") else 200
        return out
    runtime, company_id = tenant.runtime, tenant.principal.company_id
    embedder = embedder_for(runtime, await company_settings(runtime, company_id))
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
        raise InvalidInput(f"'{source}' could not be indexed: {failure}")
    response.status_code = 201
    return out


@router.get("/documents", response_model=list[DocumentPublic])
async def list_documents(tenant: ViewerTenant) -> list[DocumentPublic]:
    async with tenant.transaction() as session:
        return [DocumentPublic.model_validate(d) for d in await service.list_documents(session)]


@router.get("/documents/{document_id}", response_model=DocumentPublic)
async def get_document(document_id: uuid.UUID, tenant: ViewerTenant) -> DocumentPublic:
    async with tenant.transaction() as session:
        return DocumentPublic.model_validate(await service.get_document(session, document_id))


@router.get("/documents/{document_id}/chunks", response_model=list[ChunkPublic])
async def list_chunks(document_id: uuid.UUID, tenant: ViewerTenant) -> list[ChunkPublic]:
    async with tenant.transaction() as session:
        return [ChunkPublic.model_validate(c) for c in await service.list_chunks(session, document_id)]


@router.delete("/documents/{document_id}", status_code=204)
async def delete_document(document_id: uuid.UUID, tenant: AdminTenant) -> Response:
    async with tenant.transaction() as session:
        await service.delete_document(session, document_id)
    return Response(status_code=204)
