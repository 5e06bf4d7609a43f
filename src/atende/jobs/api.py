"""``/v1/jobs/failed``: the dead letters of the caller's company."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
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


class RetriedJob(BaseModel):
    id: int
    task: str
    status: str = "todo"


@router.post("/jobs/{job_id}/retry", response_model=RetriedJob, status_code=202)
async def retry_failed_job(
    tenant: AdminTenant, job_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> RetriedJob:
    """Queue a dead letter of this company again, to run now (404: no failed job of this
    company with that id, or it was retried already)."""
    job = await tenant.runtime.jobs.retry_failed(job_id, company_id=str(tenant.principal.company_id))
    return RetriedJob(id=job.id, task=job.task)
