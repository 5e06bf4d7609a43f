"""``/v1/media/{id}``: a company's stored file, for its API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from atende.media import service, serving
from atende.tenancy.deps import ViewerTenant

router = APIRouter(prefix="/v1", tags=["media"])


@router.get(
    "/media/{media_id}",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file's bytes, with its type", "content": {"application/octet-stream": {}}},
        404: {"description": "No media of this company has this id"},
        503: {"description": "The media store is unavailable (`media_unavailable`)"},
    },
)
async def get_media(media_id: uuid.UUID, tenant: ViewerTenant) -> StreamingResponse:
    """A file the company received or sent (a WhatsApp image, an e-mail attachment), with
    its type. Only images, audio and video are `inline`; anything else (HTML, SVG, PDF...)
    is an `attachment`, and every file is sandboxed (`Content-Security-Policy: sandbox`)."""
    async with tenant.transaction() as session:
        media = await service.get(session, media_id)
    return await serving.stream(service.media_store(tenant.runtime), media)
