"""The company's profile (name, default language, timezone) and its handoff rules, as
settings pages for owners and admins. They call the services of ``PATCH /v1/company``,
``PUT /v1/company/hours`` (the timezone is the business hours') and ``PUT
/v1/company/handoff``, and show their refusals beside the fields."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, explain, gettext, redirect, render
from atende.errors import AtendeError
from atende.hours.schedule import timezones
from atende.teams import service as teams
from atende.teams.schemas import HandoffIn
from atende.tenancy import service as tenancy

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PROFILE = "/app/settings/company"
HANDOFF = "/app/settings/handoff"
DEFAULT_ZONE = "UTC"  # a company without business hours shows its times in UTC
BLANK_RULES = 1  # empty rows under the rules, to add one without JavaScript


def zone_of(hours: dict[str, Any] | None) -> str:
    return str((hours or {}).get("timezone") or DEFAULT_ZONE)


# the profile


async def _profile(
    member: Member,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        company = await tenancy.get_company(session, str(member.tenant.principal.company_id))
        hours = await teams.company_hours(session, company.id)
        shown = {
            "name": company.name,
            "default_language": company.default_language,
            "timezone": zone_of(hours),
        }
    return render(
        member.visitor,
        "settings_company.html",
        status=status,
        values={**shown, **(values or {})},
        has_hours=hours is not None,
        timezones=timezones(),
        errors=errors or {},
    )


@router.get("/settings/company")
async def profile_page(member: AdminPage) -> Response:
    return await _profile(member)


PROFILE_FIELDS = {"name", "default_language", "timezone"}


@router.post("/settings/company")
async def save_profile(
    member: AdminPage,
    name: Annotated[str, Form(max_length=1000)] = "",
    default_language: Annotated[str, Form(max_length=20)] = "",
    timezone: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    company_id = member.tenant.principal.company_id
    try:
        async with member.tenant.transaction() as session:
            await tenancy.update_company(session, company_id, name=name, default_language=default_language)
            if timezone != zone_of(await teams.company_hours(session, company_id)):
                await teams.set_company_timezone(session, company_id, timezone)
    except AtendeError as exc:
        field = exc.field if exc.field in PROFILE_FIELDS else "name"
        values = {"name": name, "default_language": default_language, "timezone": timezone}
        return await _profile(
            member, status=exc.status_code, errors={field: explain(member.visitor, exc)}, values=values
        )
    return redirect(PROFILE, notice="company_saved")


# handoff rules


def _rule_rows(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [
        {"name": r.get("name", ""), "keywords": "\n".join(r.get("keywords", [])), "team": r.get("team") or ""}
        for r in rules
    ]
    return rows + [{"name": "", "keywords": "", "team": ""} for _ in range(BLANK_RULES)]


async def _handoff(
    member: Member,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        stored = await teams.company_handoff(session, member.tenant.principal.company_id)
        team_list = [team for team, _members in await teams.list_teams(session)]
    shown = form or {
        "team": stored.team or "",
        "bot_answers_while_closed": stored.bot_answers_while_closed,
        "hand_off_on_repeat": stored.hand_off_on_repeat,
        "rules": _rule_rows([rule.model_dump() for rule in stored.rules]),
    }
    return render(
        member.visitor,
        "settings_handoff.html",
        status=status,
        form=shown,
        teams=[(team.slug, team.name, str(team.id)) for team in team_list],
        team_refs={ref for team in team_list for ref in (team.slug, str(team.id))},
        errors=errors or {},
    )


@router.get("/settings/handoff")
async def handoff_page(member: AdminPage) -> Response:
    return await _handoff(member)


MAX_RULE_ROWS = 101  # the API's 100 rules, and the blank row


def _posted_rules(form: Any) -> list[dict[str, Any]]:
    """The rule rows as sent (``rule-N-name``, ``rule-N-keywords``, ``rule-N-team``,
    ``rule-N-remove``), in order; a row left empty or marked for removal is no rule."""
    rows = []
    for i in range(MAX_RULE_ROWS + 1):
        if f"rule-{i}-name" not in form:
            break
        rows.append(
            {
                "name": str(form.get(f"rule-{i}-name", "")).strip(),
                "keywords": str(form.get(f"rule-{i}-keywords", "")),
                "team": str(form.get(f"rule-{i}-team", "")),
                "remove": form.get(f"rule-{i}-remove") == "on",
            }
        )
    return rows


def _keywords(text: str) -> list[str]:
    return [word.strip() for line in text.splitlines() for word in line.split(",") if word.strip()]


RULE_PROBLEMS = {
    "name": N_("Give the rule a name of 1 to 100 characters."),
    "keywords": N_("Give the rule 1 to 100 keywords, each of 2 to 100 characters."),
    "team": N_("Choose one of the company's teams."),
}


@router.post("/settings/handoff")
async def save_handoff(member: AdminPage, request: Request) -> Response:
    _ = gettext(member.visitor)
    form = await request.form()
    rows = _posted_rules(form)
    kept = [
        (i, row)
        for i, row in enumerate(rows)
        if not row["remove"] and (row["name"] or row["keywords"].strip())
    ]
    body = {
        "rules": [
            {"name": row["name"], "keywords": _keywords(row["keywords"]), "team": row["team"] or None}
            for _i, row in kept
        ],
        "team": str(form.get("team", "")) or None,
        "bot_answers_while_closed": form.get("bot_answers_while_closed") == "on",
        "hand_off_on_repeat": form.get("hand_off_on_repeat") == "on",
    }
    shown = {
        **body,
        "rules": [*rows, {"name": "", "keywords": "", "team": ""}] if len(rows) < MAX_RULE_ROWS else rows,
    }
    errors: dict[str, str] = {}
    try:
        checked = HandoffIn.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            where = [str(part) for part in error["loc"]]
            if where[0] == "rules" and len(where) > 2 and where[1].isdigit():
                row = kept[int(where[1])][0]
                errors[f"rule-{row}-{where[2]}"] = _(RULE_PROBLEMS.get(where[2], RULE_PROBLEMS["name"]))
            elif where[0] == "rules":
                errors["rules"] = _("At most 100 rules.")
            else:
                errors["team"] = _(RULE_PROBLEMS["team"])
        return await _handoff(member, status=422, errors=errors, form=shown)
    try:
        async with member.tenant.transaction() as session:
            await teams.update_handoff_settings(
                session, member.tenant.principal.company_id, checked.model_dump(mode="json")
            )
    except AtendeError as exc:
        field = exc.field or "team"
        if field.startswith("rules["):  # rules[3].team: that row's team
            row = kept[int(field[len("rules[") : field.index("]")])][0]
            field = f"rule-{row}-team"
        return await _handoff(
            member, status=exc.status_code, errors={field: explain(member.visitor, exc)}, form=shown
        )
    return redirect(HANDOFF, notice="handoff_saved")
