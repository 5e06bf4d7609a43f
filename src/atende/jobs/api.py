"""``/v1/jobs/failed``: the dead letters of the caller's company."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from atende.jobs.queue import failed_jobs
from atende.tenancy.deps import AdminTenant

router = APIRouter(prefix="/v1", tags=["jobs"])


class FailedJobPublic(BaseModel):
    id: int
    task: str
    args: dict[str, Any]
    attempts: int
    queued_at: datetime | None


@router.get("/jobs/failed", response_model=list[FailedJobPublic])
async def list_failed_jobs(tenant: AdminTenant) -> list[FailedJobPublic]:
    """Jobs of this company that failed every retry (newest first)."""
    async with tenant.runtime.db.transaction() as session:
        jobs = await failed_jobs(session, company_id=str(tenant.principal.company_id))
    return [
        FailedJobPublic(id=j.id, task=j.task, args=j.args, attempts=j.attempts, queued_at=j.queued_at)
        for j in jobs
    ]
