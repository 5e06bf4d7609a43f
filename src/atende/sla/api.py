"""``/v1/sla``: the company's SLA policies, and each conversation's priority and SLA state."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from atende.sla import service
from atende.sla.schemas import ConversationSla, PolicyIn, PolicyPublic, PriorityIn
from atende.tenancy.deps import AdminTenant, AgentTenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["sla"])


@router.get(
    "/sla/policies", response_model=list[PolicyPublic], summary="The SLA policies, in the order tried"
)
async def list_policies(tenant: ViewerTenant) -> list[PolicyPublic]:
    async with tenant.transaction() as session:
        return [service.public(p) for p in await service.list_policies(session)]


@router.post("/sla/policies", response_model=PolicyPublic, status_code=201, summary="Add an SLA policy")
async def create_policy(body: PolicyIn, tenant: AdminTenant) -> PolicyPublic:
    async with tenant.transaction() as session:
        return service.public(await service.create_policy(session, body))


@router.get("/sla/policies/{policy_id}", response_model=PolicyPublic, summary="One SLA policy")
async def get_policy(policy_id: uuid.UUID, tenant: ViewerTenant) -> PolicyPublic:
    async with tenant.transaction() as session:
        return service.public(await service.get_policy(session, policy_id))


@router.put("/sla/policies/{policy_id}", response_model=PolicyPublic, summary="Replace an SLA policy")
async def update_policy(policy_id: uuid.UUID, body: PolicyIn, tenant: AdminTenant) -> PolicyPublic:
    async with tenant.transaction() as session:
        return service.public(await service.update_policy(session, policy_id, body))


@router.delete("/sla/policies/{policy_id}", status_code=204, summary="Delete an SLA policy")
async def delete_policy(policy_id: uuid.UUID, tenant: AdminTenant) -> None:
    async with tenant.transaction() as session:
        await service.delete_policy(session, policy_id)


@router.get(
    "/conversations/{conversation_id}/sla",
    response_model=ConversationSla,
    summary="A conversation's SLA: its policy, clocks and time to breach",
)
async def conversation_sla(conversation_id: uuid.UUID, tenant: ViewerTenant) -> ConversationSla:
    async with tenant.transaction() as session:
        return await service.conversation_sla(session, conversation_id, tenant.runtime.clock())


@router.put(
    "/conversations/{conversation_id}/priority",
    response_model=ConversationSla,
    summary="Set a conversation's priority (low, normal, high, urgent)",
)
async def set_priority(conversation_id: uuid.UUID, body: PriorityIn, tenant: AgentTenant) -> ConversationSla:
    async with tenant.transaction() as session:
        await service.set_priority(session, conversation_id, body.priority)
        return await service.conversation_sla(session, conversation_id, tenant.runtime.clock())
