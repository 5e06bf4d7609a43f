"""``/v1/company``: what the caller's key belongs to (and its web chat widget key)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from atende.tenancy import service
from atende.tenancy.deps import ViewerTenant

router = APIRouter(prefix="/v1", tags=["company"])


class CompanyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    name: str
    slug: str
    widget_key: str
    default_language: str


@router.get("/company", response_model=CompanyPublic)
async def get_company(tenant: ViewerTenant) -> CompanyPublic:
    async with tenant.transaction() as session:
        company = await service.get_company(session, str(tenant.principal.company_id))
        return CompanyPublic.model_validate(company)
