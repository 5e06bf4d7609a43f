"""``/health/live``, ``/health/ready`` and Prometheus ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from atende.observability.health import as_json, readiness
from atende.tenancy.deps import RuntimeDep

router = APIRouter(tags=["operations"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Ready to serve: database, migrations and job backlog",
    responses={503: {"description": "A check failed; `failing` names it"}},
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    ok, checks = await readiness(runtime)
    return JSONResponse(as_json(ok, checks), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(runtime: RuntimeDep) -> Response:
    await readiness(runtime)  # refreshes the queue gauges
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
