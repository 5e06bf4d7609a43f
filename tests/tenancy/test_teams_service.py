"""The human side's service functions that the route handlers (and the dashboard next) call:
the availability permission rule, the assignee lookup, and ``Tenant`` from an API key."""

from __future__ import annotations

import uuid

import pytest

from atende.errors import Forbidden, InvalidInput, Unauthorized
from atende.runtime import Runtime
from atende.teams.service import availability_target
from atende.tenancy.deps import tenant_from_api_key
from atende.tenancy.models import Role
from atende.tenancy.service import Principal
from tests.conftest import CompanyCtx

COMPANY = uuid.uuid4()
ME, OTHER = uuid.uuid4(), uuid.uuid4()


def caller(role: Role, user_id: uuid.UUID | None = ME) -> Principal:
    return Principal(company_id=COMPANY, role=role, key_prefix="atd_x", user_id=user_id)


def test_an_agent_sets_only_their_own_availability() -> None:
    agent = caller(Role.agent)
    assert availability_target(agent, "me") == ME
    assert availability_target(agent, str(ME)) == ME
    with pytest.raises(Forbidden, match="sets their own availability"):
        availability_target(agent, str(OTHER))


def test_an_admin_or_owner_sets_anyones() -> None:
    for role in (Role.admin, Role.owner):
        assert availability_target(caller(role), str(OTHER)) == OTHER
        assert availability_target(caller(role, None), str(OTHER)) == OTHER  # a company key


def test_me_needs_a_personal_key_and_a_ref_must_be_a_user_id() -> None:
    with pytest.raises(InvalidInput, match="'me' needs a personal key") as needs_key:
        availability_target(caller(Role.admin, None), "me")
    assert needs_key.value.field == "agent"
    with pytest.raises(InvalidInput, match="is not a user id or 'me'"):
        availability_target(caller(Role.admin), "ana@example.com")


async def test_a_tenant_is_built_from_an_api_key(runtime: Runtime, company: CompanyCtx) -> None:
    tenant = await tenant_from_api_key(runtime, company.api_key)
    assert tenant.principal.company_id == company.id
    assert tenant.principal.role == Role.admin
    assert (await tenant_from_api_key(runtime, company.api_key)).principal == tenant.principal  # cached
    with pytest.raises(Unauthorized):
        await tenant_from_api_key(runtime, "atd_not-a-key")
