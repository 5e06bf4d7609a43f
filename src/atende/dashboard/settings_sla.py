"""The SLA settings pages (owners and admins): the company's SLA policies in the order they
are tried; add, edit and delete one. The rules (durations, conditions, escalation) are
``sla.service``'s, the same the ``/v1/sla/policies`` API applies (docs/SLA.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Response
from pydantic import ValidationError

from atende.conversations import labels as conversation_labels
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.sla_time import priority_names
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.sla import service as sla
from atende.sla.models import SlaPolicy
from atende.sla.policy import PRIORITIES, duration_text
from atende.sla.schemas import PolicyIn
from atende.teams import service as teams

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/settings/sla"
TARGETS = ("first_response", "next_response", "resolution")


def _form_of(policy: SlaPolicy) -> dict[str, Any]:
    """A stored policy as the form shows it."""
    return {
        "name": policy.name,
        "position": str(policy.position),
        "priorities": list(policy.priorities or []),
        "channels": ", ".join(policy.channels or []),
        "teams": [str(t) for t in policy.team_ids or []],
        "labels": [str(label) for label in policy.label_ids or []],
        "first_response": duration_text(policy.first_response_seconds)
        if policy.first_response_seconds
        else "",
        "next_response": duration_text(policy.next_response_seconds) if policy.next_response_seconds else "",
        "resolution": duration_text(policy.resolution_seconds) if policy.resolution_seconds else "",
        "warning_percent": str(policy.warning_percent),
        "escalation": policy.escalation,
        "escalation_team": str(policy.escalation_team_id or ""),
        "email_team": policy.email_team,
    }


async def _page(
    member: Member,
    template: str,
    *,
    policy_id: uuid.UUID | None = None,
    status: int = 200,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        policies = await sla.list_policies(session)
        listed_teams = [team for team, _members in await teams.list_teams(session)]
        labels = await conversation_labels.list_labels(session)
        policy = await sla.get_policy(session, policy_id) if policy_id else None
    team_names = {t.id: t.name for t in listed_teams}
    label_names = {label.id: label.name for label in labels}
    return render(
        member.visitor,
        template,
        status=status,
        policies=policies,
        policy=policy,
        teams=listed_teams,
        labels=labels,
        team_names=team_names,
        label_names=label_names,
        priorities=PRIORITIES,
        priority_names=priority_names(gettext(member.visitor)),
        duration_text=duration_text,
        error=error,
        form=form if form is not None else (_form_of(policy) if policy else {"warning_percent": "80"}),
    )


def _policy_in(member: Member, form: dict[str, Any]) -> PolicyIn:
    """The form as the API's body; what cannot be one is refused, saying which field."""
    _ = gettext(member.visitor)
    try:
        position = int(form["position"]) if str(form.get("position") or "").strip() else None
        percent = int(form.get("warning_percent") or 80)
    except ValueError:
        raise Refused(_("Position and warning share are whole numbers.")) from None
    body = {
        "name": form.get("name", ""),
        "position": position,
        "priorities": form.get("priorities") or [],
        "channels": [c.strip() for c in str(form.get("channels") or "").split(",") if c.strip()],
        "teams": form.get("teams") or [],
        "labels": form.get("labels") or [],
        **{t: str(form.get(t) or "").strip() or None for t in TARGETS},
        "warning_percent": percent,
        "escalation": form.get("escalation") or "none",
        "escalation_team": form.get("escalation_team") or None,
        "email_team": bool(form.get("email_team")),
    }
    try:
        return PolicyIn.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Refused(_("%(field)s: %(problem)s") % {"field": where, "problem": first["msg"]}) from None


Text = Annotated[str, Form(max_length=1000)]
Many = Annotated[list[str], Form(max_length=200)]


def _posted(
    name: Text = "",
    position: Text = "",
    priorities: Many = [],  # noqa: B006  # FastAPI copies a Form default per request
    channels: Text = "",
    team_refs: Annotated[list[str], Form(alias="teams", max_length=200)] = [],  # noqa: B006
    label_refs: Annotated[list[str], Form(alias="labels", max_length=200)] = [],  # noqa: B006
    first_response: Text = "",
    next_response: Text = "",
    resolution: Text = "",
    warning_percent: Text = "80",
    escalation: Text = "none",
    escalation_team: Text = "",
    email_team: Text = "",
) -> dict[str, Any]:
    """The policy form as sent (kept as typed, to show again when refused)."""
    return {
        "name": name,
        "position": position,
        "priorities": priorities,
        "channels": channels,
        "teams": team_refs,
        "labels": label_refs,
        "first_response": first_response,
        "next_response": next_response,
        "resolution": resolution,
        "warning_percent": warning_percent,
        "escalation": escalation,
        "escalation_team": escalation_team,
        "email_team": bool(email_team),
    }


PolicyForm = Annotated[dict[str, Any], Depends(_posted)]


@router.get("/settings/sla")
async def sla_page(member: AdminPage) -> Response:
    return await _page(member, "settings_sla.html")


@router.post("/settings/sla")
async def create_policy(member: AdminPage, form: PolicyForm) -> Response:
    async def work() -> None:
        body = _policy_in(member, form)
        async with member.tenant.transaction() as session:
            await sla.create_policy(session, body)

    async def again(status: int, error: str) -> Response:
        return await _page(member, "settings_sla.html", status=status, error=error, form=form)

    return await attempt(member.visitor, work(), again) or redirect(HOME, notice="sla_policy_created")


@router.get("/settings/sla/{policy_id}")
async def policy_page(member: AdminPage, policy_id: uuid.UUID) -> Response:
    return await _page(member, "settings_sla_policy.html", policy_id=policy_id)


@router.post("/settings/sla/{policy_id}")
async def update_policy(
    member: AdminPage,
    policy_id: uuid.UUID,
    form: PolicyForm,
) -> Response:
    async with member.tenant.transaction() as session:
        await sla.get_policy(session, policy_id)  # another company's: 404 before anything

    async def work() -> None:
        body = _policy_in(member, form)
        async with member.tenant.transaction() as session:
            await sla.update_policy(session, policy_id, body)

    async def again(status: int, error: str) -> Response:
        return await _page(
            member, "settings_sla_policy.html", policy_id=policy_id, status=status, error=error, form=form
        )

    return await attempt(member.visitor, work(), again) or redirect(HOME, notice="sla_policy_saved")


@router.post("/settings/sla/{policy_id}/delete")
async def delete_policy(member: AdminPage, policy_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        await sla.delete_policy(session, policy_id)
    return redirect(HOME, notice="sla_policy_deleted")
