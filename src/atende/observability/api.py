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
    summary="Ready to serve: database and migrations; job backlog, LLM circuits and credentials degrade",
    responses={
        200: {"description": "Ready (`status` ok), or `degraded`: a non-critical check fails"},
        503: {"description": "A critical check failed; `failing` names it"},
    },
)
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """Each check with `ok` and `detail`. Critical: database, migrations.
    Degrading only: an old job backlog, open LLM circuits and companies' failing credentials (with company and
    reason in `checks.credentials.failures`), which this instance cannot fix."""
    ok, checks = await readiness(runtime)
    return JSONResponse(as_json(ok, checks), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(runtime: RuntimeDep) -> Response:
    await readiness(runtime)  # refreshes the queue and credential gauges
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
