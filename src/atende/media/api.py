"""``/v1/media``: a company's stored files, for its API keys: upload one, read one."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from atende.media import service, serving
from atende.media.schemas import MediaPublic
from atende.media.store import spool
from atende.tenancy.deps import AgentTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["media"])
UPLOAD_PATH = "/v1/media"  # its bodies may be as large as ATENDE_MEDIA_MAX_BYTES (atende.app)


@router.post(
    "/media",
    status_code=201,
    response_model=MediaPublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The file's bytes; its type in `Content-Type`.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        413: {"description": "Larger than `ATENDE_MEDIA_MAX_BYTES`: nothing stored"},
        503: {"description": "The media store is unavailable (`media_unavailable`)"},
    },
)
async def upload_media(
    request: Request,
    tenant: AgentTenant,
    filename: Annotated[
        str | None, Query(max_length=255, description="The file's name, shown and offered on download.")
    ] = None,
) -> MediaPublic:
    """Store a file (the raw body, its type in `Content-Type`) for the company: a document or
    a picture an agent sends. Answers its id, size and SHA-256; read it back with
    `GET /v1/media/{id}`."""
    settings = tenant.runtime.settings
    # received whole before the transaction: a slow upload holds no database connection
    received = await spool(request.stream(), settings.media_max_bytes)
    async with tenant.transaction() as session:
        media = await service.put(
            session,
            service.media_store(tenant.runtime),
            received,
            content_type=request.headers.get("content-type"),
            filename=filename,
            max_bytes=settings.media_max_bytes,
        )
        return MediaPublic.model_validate(media)


@router.get(
    "/media/{media_id}",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file's bytes, with its type", "content": {"application/octet-stream": {}}},
        206: {"description": "The byte range asked for (`Range`)"},
        416: {"description": "The range asked for starts past the end of the file"},
        404: {"description": "No media of this company has this id"},
        503: {"description": "The media store is unavailable (`media_unavailable`)"},
    },
)
async def get_media(
    media_id: uuid.UUID,
    tenant: ViewerTenant,
    byte_range: Annotated[str | None, Header(alias="Range", include_in_schema=False)] = None,
) -> Response:
    """A file the company received or sent (a WhatsApp image, an e-mail attachment), with
    its type. Only images, audio and video are `inline`; anything else (HTML, SVG, PDF...)
    is an `attachment`, and every file is sandboxed (`Content-Security-Policy: sandbox`).
    One byte range (`Range: bytes=0-1023`) answers `206` with just those bytes."""
    async with tenant.transaction() as session:
        media = await service.get(session, media_id)
    return await serving.stream(service.media_store(tenant.runtime), media, byte_range)
