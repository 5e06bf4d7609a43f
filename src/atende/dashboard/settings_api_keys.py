"""The API keys settings page (owners and admins): the company's keys by name and prefix,
role, creation and last use; create one (the key is shown on the next page only, once:
``shown_once``) and revoke one. The rules (a key's role never above its creator's, a key above
yours is not yours to revoke) are ``tenancy.service``'s, as ``/v1/api-keys`` applies them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Response

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import attempt
from atende.dashboard.shown_once import create_shown_once, take_shown
from atende.dashboard.web import PageRoute, redirect, render
from atende.errors import InvalidInput
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/settings/api-keys"
SHOWN = "api_key"


async def _page(
    member: Member,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
    created: tuple[str, str] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        keys = await tenancy.list_api_keys(session)
    return render(
        member.visitor,
        "settings_api_keys.html",
        status=status,
        keys=keys,
        roles=tenancy.key_roles(member.role),
        revocable={role.value for role in Role if member.role.allows(role)},
        error=error,
        form=form or {"role": Role.agent.value},
        created=created,
    )


@router.get("/settings/api-keys")
async def api_keys_page(member: AdminPage) -> Response:
    return await _page(member, created=take_shown(member.visitor, SHOWN))


@router.post("/settings/api-keys")
async def create_key(
    member: AdminPage,
    name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    async def work() -> tuple[str, str]:
        try:
            chosen = Role(role)
        except ValueError:
            raise InvalidInput(f"role: no role '{role}'", field="role") from None
        async with member.tenant.transaction() as session:
            key, full = await tenancy.issue_api_key(
                session,
                secret_key=member.visitor.runtime.secret_key,
                actor=member.tenant.principal,
                name=name,
                role=chosen,
            )
            return key.prefix, full

    async def again(status: int, error: str) -> Response:
        return await _page(member, status=status, error=error, form={"name": name, "role": role})

    return await create_shown_once(
        member.visitor, work(), again, kind=SHOWN, then=lambda _prefix: HOME, notice="api_key_created"
    )


@router.post("/settings/api-keys/{key_id}/revoke")
async def revoke_key(member: AdminPage, key_id: uuid.UUID) -> Response:
    async def work() -> None:
        await member.tenant.revoke_api_key(key_id)

    async def again(status: int, error: str) -> Response:
        return await _page(member, status=status, error=error)

    return await attempt(member.visitor, work(), again) or redirect(HOME, notice="api_key_revoked")
