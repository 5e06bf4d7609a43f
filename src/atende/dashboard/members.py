"""The users page: a company's members with their role and status, invitations, role
changes and deactivation (owners and admins). The rules (nobody acts above their own role,
a company keeps an owner) are the tenancy services'; this only shows and asks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Response

from atende.dashboard import emails
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.web import (
    NOTICES,
    PageRoute,
    context,
    environment,
    explain,
    gettext,
    is_htmx,
    now,
    problem,
    redirect,
    render,
)
from atende.errors import AtendeError, InvalidInput, NotFound
from atende.tenancy import accounts
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def grantable(member: Member) -> list[Role]:
    """The roles this member may give (never above their own)."""
    return [role for role in Role if member.role.allows(role)]


async def _page(
    member: Member,
    *,
    status: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    invite_email: str = "",
) -> Response:
    async with member.tenant.transaction() as session:
        members = await accounts.list_members(session)
        invitations = await accounts.list_invitations(session, now=now(member.visitor))
    return render(
        member.visitor,
        "users.html",
        status=status,
        members=members,
        invitations=invitations,
        grantable=grantable(member),
        actor_role=member.role,
        invitation_days=member.visitor.runtime.settings.invitation_days,
        error=error,
        errors=errors or {},
        invite_email=invite_email,
    )


@router.get("/users")
async def users_page(member: AdminPage) -> Response:
    return await _page(member)


def _role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput(f"no role '{value}'", field="role") from None


@router.post("/users/invite")
async def invite(
    member: AdminPage,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=20)] = "agent",
) -> Response:
    runtime = member.visitor.runtime
    try:
        async with member.tenant.transaction() as session:
            invitation, token = await accounts.invite(
                session,
                secret_key=runtime.secret_key,
                actor=member.tenant.principal,
                email=email,
                role=_role(role),
                now=now(member.visitor),
                valid_for=timedelta(days=runtime.settings.invitation_days),
            )
            company = await tenancy.get_company(session, str(member.tenant.principal.company_id))
            await emails.send_invitation(
                session,
                runtime,
                email=invitation.email,
                token=token,
                company_name=company.name,
                role=Role(invitation.role),
                company_language=company.default_language,
            )
    except AtendeError as exc:
        field = exc.field if exc.field in ("email",) else None
        message = explain(member.visitor, exc)
        return await _page(
            member,
            status=exc.status_code,
            error=None if field else message,
            errors={field: message} if field else {},
            invite_email=email,
        )
    return redirect("/app/users", notice="invitation_sent")


async def _row_action(member: Member, user_id: uuid.UUID, action: str, role: str = "") -> Response:
    """Change one member; HTMX gets the row back (and a notice), a form the page."""
    actor = member.tenant.principal
    try:
        async with member.tenant.transaction() as session:
            if action == "role":
                changed = await accounts.change_role(session, actor=actor, user_id=user_id, role=_role(role))
            elif action == "deactivate":
                changed = await accounts.deactivate_member(
                    session, actor=actor, user_id=user_id, now=now(member.visitor)
                )
            else:
                changed = await accounts.reactivate_member(session, actor=actor, user_id=user_id)
    except AtendeError as exc:
        if isinstance(exc, NotFound):  # another company's member, or nobody: 404
            raise
        if is_htmx(member.visitor.request):
            _ = gettext(member.visitor)
            return problem(
                member.visitor, exc.status_code, _("This could not be done"), explain(member.visitor, exc)
            )
        return await _page(member, status=exc.status_code, error=explain(member.visitor, exc))
    notice = {"role": "role_changed", "deactivate": "member_deactivated", "reactivate": "member_reactivated"}[
        action
    ]
    if not is_htmx(member.visitor.request):
        return redirect("/app/users", notice=notice)
    env = environment(member.visitor.language)
    values = context(member.visitor, member=changed, grantable=grantable(member), actor_role=member.role)
    row = env.get_template("_member_row.html").render(values)
    note = env.get_template("_notice.html").render(
        message=gettext(member.visitor)(NOTICES[notice]), error=False
    )
    return Response(
        row + f'<div id="notice" hx-swap-oob="innerHTML">{note}</div>',
        media_type="text/html",
    )


@router.post("/users/{user_id}/role")
async def change_role(
    member: AdminPage, user_id: uuid.UUID, role: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    return await _row_action(member, user_id, "role", role)


@router.post("/users/{user_id}/deactivate")
async def deactivate(member: AdminPage, user_id: uuid.UUID) -> Response:
    return await _row_action(member, user_id, "deactivate")


@router.post("/users/{user_id}/reactivate")
async def reactivate(member: AdminPage, user_id: uuid.UUID) -> Response:
    return await _row_action(member, user_id, "reactivate")


@router.post("/invitations/{invitation_id}/cancel")
async def cancel_invitation(member: AdminPage, invitation_id: uuid.UUID) -> Response:
    try:
        async with member.tenant.transaction() as session:
            await accounts.cancel_invitation(
                session, actor=member.tenant.principal, invitation_id=invitation_id
            )
    except accounts.AboveYourRole as exc:
        return await _page(member, status=exc.status_code, error=explain(member.visitor, exc))
    return redirect("/app/users", notice="invitation_cancelled")
