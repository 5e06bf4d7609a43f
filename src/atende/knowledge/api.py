"""``/v1/documents``: add, list, read, re-ingest and delete knowledge-base documents."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Response

from atende.errors import InvalidInput
from atende.knowledge import service
from atende.knowledge.fetch import fetch
from atende.knowledge.schemas import ChunkPublic, DocumentIn, DocumentPublic, IngestResultPublic
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


@router.post("/documents", response_model=IngestResultPublic, status_code=201)
async def create_document(body: DocumentIn, tenant: AdminTenant, response: Response) -> IngestResultPublic:
    """Add a document, or replace the one with the same `source` (unchanged content: no-op)."""
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
        result = await service.ingest(
            session,
            source=source,
            data=data,
            max_bytes=settings.max_document_bytes,
            chunk_max_chars=settings.chunk_max_chars,
            title=body.title,
            content_type=kind or ("markdown" if not Path(source).suffix else None),
            lang=body.language,
            meta=body.meta.model_dump(mode="json", exclude_defaults=True),
        )
        out = IngestResultPublic(
            document=DocumentPublic.model_validate(result.document), changed=result.changed
        )
    if not result.changed:
        response.status_code = 200
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
