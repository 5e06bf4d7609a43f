"""The start page, the static files and the dashboard's 404 for paths that do not exist."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse
from starlette.exceptions import HTTPException

from atende.dashboard.auth import PageForbidden, SignedInDep
from atende.dashboard.web import (
    IMMUTABLE,
    STATIC_TYPES,
    PageRoute,
    redirect,
    render,
    static_digest,
    static_files,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
assets = APIRouter(route_class=PageRoute, include_in_schema=False)
fallback = APIRouter(route_class=PageRoute, include_in_schema=False)
FILES = static_files()


@router.get("")
async def home(current: SignedInDep) -> Response:
    person = current.signed_in
    assert person is not None
    if person.company is None:
        if person.is_superadmin:
            return redirect("/app/platform/companies")
        raise PageForbidden(None, no_company=True)
    return render(current, "home.html")


@assets.get("/static/{name}")
async def static(
    name: Annotated[str, Path(max_length=100)], v: Annotated[str | None, Query(max_length=40)] = None
) -> Response:
    """A vendored or own static file; with its content's digest in the URL (``static_url``)
    it never changes, so browsers keep it a year."""
    path = FILES.get(name)
    if path is None:
        raise HTTPException(404)
    cache = IMMUTABLE if v == static_digest(name) else "public, max-age=300"
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": cache})


@fallback.get("/{rest:path}")
async def not_found(rest: str) -> Response:
    raise HTTPException(404)
