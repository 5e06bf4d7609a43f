"""``/app/media/{id}``: a company's stored file (a customer's photo, voice note, document),
for its signed-in people, any role. The conversation page links and embeds it from here.

Served with the API's rules (``media.serving``): its own type, images, audio and video in
place, anything else as a download, always sandboxed; another company's id is the
dashboard's 404 page, as for every other id.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from atende.dashboard.auth import ViewerPage
from atende.dashboard.web import PageRoute
from atende.media import service, serving

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/media/{media_id}")
async def media_file(media_id: uuid.UUID, member: ViewerPage, request: Request) -> Response:
    async with member.tenant.transaction() as session:
        media = await service.get(session, media_id)
    return await serving.stream(
        service.media_store(member.tenant.runtime), media, request.headers.get("range")
    )
