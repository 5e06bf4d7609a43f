"""The Teams settings pages (owners and admins): the company's teams with their members;
create, rename, delete a team; add and remove its agents. The rules (unique slugs, members
must answer conversations, a deleted team's conversations join the company queue) are
``teams.service``'s, the same the ``/v1/teams`` API applies."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Response

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.errors import NotFound
from atende.teams import service as teams
from atende.teams.models import Team

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/settings/teams"


async def _list_page(
    member: Member, *, status: int = 200, error: str | None = None, form: dict[str, str] | None = None
) -> Response:
    async with member.tenant.transaction() as session:
        listed = await teams.list_teams(session)
        people = {agent.member.user_id: agent.user for agent in await teams.agents(session)}
    rows = [(team, [people[u] for u in ids if u in people]) for team, ids in listed]
    return render(
        member.visitor, "settings_teams.html", status=status, rows=rows, error=error, form=form or {}
    )


async def _team_page(
    member: Member,
    team_id: uuid.UUID,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        team = await teams.team_by_id(session, team_id)
        agents = await teams.agents(session)
    return render(
        member.visitor,
        "settings_team.html",
        status=status,
        team=team,
        inside=[agent for agent in agents if team.slug in agent.teams],
        outside=[agent for agent in agents if team.slug not in agent.teams],
        error=error,
        form=form or {"name": team.name, "slug": team.slug},
    )


@router.get("/settings/teams")
async def teams_page(member: AdminPage) -> Response:
    return await _list_page(member)


@router.post("/settings/teams")
async def create_team(
    member: AdminPage,
    name: Annotated[str, Form(max_length=1000)] = "",
    slug: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    async def work() -> Team:
        async with member.tenant.transaction() as session:
            created, _members = await teams.put_team(
                session, None, name=name, slug=slug.strip() or None, hours=None, members=[]
            )
            return created

    async def again(status: int, error: str) -> Response:
        return await _list_page(member, status=status, error=error, form={"name": name, "slug": slug})

    created = await attempt(member.visitor, work(), again)
    if isinstance(created, Response):
        return created
    return redirect(f"{HOME}/{created.id}", notice="team_created")


@router.get("/settings/teams/{team_id}")
async def team_page(member: AdminPage, team_id: uuid.UUID) -> Response:
    return await _team_page(member, team_id)


@router.post("/settings/teams/{team_id}")
async def rename_team(
    member: AdminPage,
    team_id: uuid.UUID,
    name: Annotated[str, Form(max_length=1000)] = "",
    slug: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    async def work() -> None:
        async with member.tenant.transaction() as session:
            await teams.rename_team(session, team_id, name=name, slug=slug.strip() or None)

    async def again(status: int, error: str) -> Response:
        return await _team_page(
            member, team_id, status=status, error=error, form={"name": name, "slug": slug}
        )

    return await attempt(member.visitor, work(), again) or redirect(f"{HOME}/{team_id}", notice="team_saved")


@router.post("/settings/teams/{team_id}/delete")
async def delete_team(member: AdminPage, team_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        team = await teams.team_by_id(session, team_id)
        await teams.delete_team(session, str(team.id))
    return redirect(HOME, notice="team_deleted")


@router.post("/settings/teams/{team_id}/members")
async def add_member(
    member: AdminPage, team_id: uuid.UUID, user_id: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    async def work() -> None:
        _ = gettext(member.visitor)
        if not user_id:
            raise Refused(_("Choose who joins the team."))
        try:
            person = uuid.UUID(user_id)
        except ValueError:
            raise NotFound("no such member") from None
        async with member.tenant.transaction() as session:
            await teams.add_team_member(session, team_id, person)

    async def again(status: int, error: str) -> Response:
        return await _team_page(member, team_id, status=status, error=error)

    return await attempt(member.visitor, work(), again) or redirect(
        f"{HOME}/{team_id}", notice="team_member_added"
    )


@router.post("/settings/teams/{team_id}/members/{user_id}/remove")
async def remove_member(member: AdminPage, team_id: uuid.UUID, user_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        await teams.remove_team_member(session, team_id, user_id)
    return redirect(f"{HOME}/{team_id}", notice="team_member_removed")
