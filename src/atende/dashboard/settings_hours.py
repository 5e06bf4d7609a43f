"""The business hours as a weekly grid, and the dates they close or change (a country's
public holidays, closed dates, special hours, an ``.ics`` import), as settings pages for
owners and admins. They call the services of ``PUT /v1/company/hours`` and ``POST
/v1/company/hours/ics``; a schedule the services refuse comes back with their message beside
the day or field at fault, and nothing is stored."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from starlette.datastructures import UploadFile

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, explain, gettext, redirect, render
from atende.errors import AtendeError, InvalidInput
from atende.hours import DAYS, is_open, next_close, next_open
from atende.hours.schedule import timezones
from atende.teams import calendar
from atende.teams import service as teams
from atende.teams.settings import schedule_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOURS = "/app/settings/hours"
HOLIDAYS = "/app/settings/holidays"
DEFAULT_ZONE = "UTC"
MAX_SLOTS = 12  # intervals a day may have on this page (the API's limit for a special date)
MIN_SLOTS = 2  # a morning and an afternoon
UPCOMING_DAYS, UPCOMING_SHOWN = 366, 12  # the next closures shown: within a year, at most 12
_FIELD = re.compile(r"^weekly\.(\w+)")
DAY_NAMES = {
    "monday": N_("Monday"),
    "tuesday": N_("Tuesday"),
    "wednesday": N_("Wednesday"),
    "thursday": N_("Thursday"),
    "friday": N_("Friday"),
    "saturday": N_("Saturday"),
    "sunday": N_("Sunday"),
}


@dataclass
class Slot:
    start: str = ""
    end: str = ""
    overnight: bool = False

    @property
    def blank(self) -> bool:
        return not self.start.strip() and not self.end.strip()

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start.strip(), "end": self.end.strip()}
        if self.overnight:
            out["overnight"] = True
        return out


def padded(slots: list[Slot]) -> list[Slot]:
    """The slots a day shows: its intervals and one empty slot to add another (two at least)."""
    filled = [slot for slot in slots if not slot.blank]
    wanted = min(MAX_SLOTS, max(MIN_SLOTS, len(filled) + 1))
    return filled + [Slot() for _ in range(wanted - len(filled))]


def grid_of(hours: dict[str, Any] | None) -> dict[str, list[Slot]]:
    weekly = (hours or {}).get("weekly") or {}
    return {
        day: padded(
            [
                Slot(str(i.get("start", "")), str(i.get("end", "")), bool(i.get("overnight")))
                for i in weekly.get(day, [])
            ]
        )
        for day in DAYS
    }


def posted_grid(form: Any) -> dict[str, list[Slot]]:
    """The grid as sent: ``monday-0-start``, ``monday-0-end``, ``monday-0-overnight``..."""
    grid: dict[str, list[Slot]] = {}
    for day in DAYS:
        slots = []
        for i in range(MAX_SLOTS):
            if f"{day}-{i}-start" not in form and f"{day}-{i}-end" not in form:
                break
            slots.append(
                Slot(
                    str(form.get(f"{day}-{i}-start", ""))[:20],
                    str(form.get(f"{day}-{i}-end", ""))[:20],
                    form.get(f"{day}-{i}-overnight") == "on",
                )
            )
        grid[day] = slots
    return grid


def beside(exc: AtendeError) -> str:
    """The service's message without the field it names (the page shows it beside it)."""
    if exc.field and exc.message.startswith(f"{exc.field}: "):
        return exc.message[len(exc.field) + 2 :]
    return exc.message


async def _hours_page(
    member: Member,
    *,
    status: int = 200,
    grid: dict[str, list[Slot]] | None = None,
    zone: str | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        stored = await teams.company_hours(session, member.tenant.principal.company_id)
    now = member.visitor.runtime.clock()
    schedule = schedule_of(stored)
    return render(
        member.visitor,
        "settings_hours.html",
        status=status,
        has_hours=stored is not None,
        grid=grid or grid_of(stored),
        days=DAYS,
        day_names=DAY_NAMES,
        zone=zone or str((stored or {}).get("timezone") or DEFAULT_ZONE),
        timezones=timezones(),
        open_now=is_open(schedule, now),
        next_open=next_open(schedule, now),
        next_close=next_close(schedule, now),
        shown_zone=schedule.zone,
        errors=errors or {},
    )


@router.get("/settings/hours")
async def hours_page(member: AdminPage) -> Response:
    return await _hours_page(member)


def _grid_place(field: str | None) -> str:
    """Where the grid shows a refusal of ``field``: beside its day (``weekly.monday[1].end``
    → ``monday``), beside the timezone, or above the form."""
    found = _FIELD.match(field or "")
    if found and found.group(1) in DAYS:
        return found.group(1)
    return "timezone" if field == "timezone" else "form"


@router.post("/settings/hours")
async def save_hours(member: AdminPage, request: Request) -> Response:
    form = await request.form()
    grid = posted_grid(form)
    zone = str(form.get("timezone", ""))[:200]
    weekly = {day: [slot.as_json() for slot in slots if not slot.blank] for day, slots in grid.items()}
    company_id = member.tenant.principal.company_id
    try:
        async with member.tenant.transaction() as session:
            current = await teams.company_hours(session, company_id)
            await teams.save_company_hours(session, company_id, teams.with_weekly(current, zone, weekly))
    except AtendeError as exc:
        key = _grid_place(exc.field)
        message = beside(exc) if key != "form" else explain(member.visitor, exc)
        shown = {day: padded(slots) for day, slots in grid.items()}
        return await _hours_page(member, status=exc.status_code, grid=shown, zone=zone, errors={key: message})
    return redirect(HOURS, notice="hours_saved")


@router.post("/settings/hours/remove")
async def remove_hours(member: AdminPage) -> Response:
    async with member.tenant.transaction() as session:
        await teams.save_company_hours(session, member.tenant.principal.company_id, None)
    return redirect(HOURS, notice="hours_removed")


# holidays, closed dates, special hours, calendar import


def _count(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 7 else None


async def _holidays_page(
    member: Member,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    async with member.tenant.transaction() as session:
        stored = await teams.company_hours(session, member.tenant.principal.company_id)
    query = member.visitor.request.query_params
    calendar_values = (stored or {}).get("holidays") or {}
    shown = {
        "country": str(calendar_values.get("country") or ""),
        "subdiv": str(calendar_values.get("subdiv") or ""),
        "categories": ", ".join(calendar_values.get("categories") or ["public"]),
        "skip": "\n".join(calendar_values.get("skip") or []),
        **(values or {}),
    }
    special = [
        {
            "date": item["date"],
            "intervals": [Slot(i["start"], i["end"], bool(i.get("overnight"))) for i in item["intervals"]],
        }
        for item in (stored or {}).get("special_hours", [])
    ]
    schedule = schedule_of(stored)
    today = member.visitor.runtime.clock().astimezone(schedule.zone).date()
    return render(
        member.visitor,
        "settings_holidays.html",
        status=status,
        has_hours=stored is not None,
        upcoming=schedule.closures(today, UPCOMING_DAYS)[:UPCOMING_SHOWN],
        calendar_set=bool(calendar_values),
        values=shown,
        closed_dates=(stored or {}).get("closed_dates", []),
        special_hours=special,
        special_slots=[Slot(), Slot()],
        imported=_count(query.get("imported")),
        skipped=_count(query.get("skipped")),
        max_calendar_kb=calendar.max_calendar_bytes(member.tenant) // 1024,
        errors=errors or {},
    )


@router.get("/settings/holidays")
async def holidays_page(member: AdminPage) -> Response:
    return await _holidays_page(member)


async def _edit(
    member: Member,
    edit: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    field: str,
    values: dict[str, str] | None = None,
    notice: str,
) -> Response:
    """Apply one edit to the stored hours; a refusal is shown beside ``field``'s form."""
    try:
        async with member.tenant.transaction() as session:
            await teams.edit_company_hours(session, member.tenant.principal.company_id, edit)
    except InvalidInput as exc:
        message = beside(exc) if exc.field and exc.field != "hours" else explain(member.visitor, exc)
        return await _holidays_page(member, status=exc.status_code, errors={field: message}, values=values)
    return redirect(HOLIDAYS, notice=notice)


def _words(text: str, *, lines: bool = False) -> list[str]:
    parts = text.splitlines() if lines else text.split(",")
    return [part.strip() for part in parts if part.strip()]


@router.post("/settings/holidays/calendar")
async def save_calendar(
    member: AdminPage,
    country: Annotated[str, Form(max_length=3)] = "",
    subdiv: Annotated[str, Form(max_length=40)] = "",
    categories: Annotated[str, Form(max_length=200)] = "",
    skip: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    values = {"country": country, "subdiv": subdiv, "categories": categories, "skip": skip}
    chosen = {
        "country": country.strip().upper(),
        "subdiv": subdiv.strip() or None,
        "categories": _words(categories) or ["public"],
        "skip": [name[:200] for name in _words(skip, lines=True)][:100],
    }
    return await _edit(
        member,
        lambda hours: teams.with_holidays(hours, chosen),
        field="calendar",
        values=values,
        notice="holidays_saved",
    )


@router.post("/settings/holidays/calendar/remove")
async def remove_calendar(member: AdminPage) -> Response:
    return await _edit(
        member, lambda hours: teams.with_holidays(hours, None), field="calendar", notice="holidays_removed"
    )


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{field}: '{value}' is not a date as YYYY-MM-DD", field=field) from None


async def _add_on_date(
    member: Member,
    day: str,
    edit: Callable[[dict[str, Any], date], dict[str, Any]],
    *,
    field: str,
    values: dict[str, str],
    notice: str,
) -> Response:
    """Add something dated (a closed date, special hours): a date that does not read is shown
    beside ``field``'s form, with what was typed kept; else ``edit`` gets the hours and the
    date, as ``_edit`` applies it."""
    try:
        chosen = _day(day, "date")
    except InvalidInput as exc:
        return await _holidays_page(member, status=422, errors={field: beside(exc)}, values=values)
    return await _edit(member, lambda hours: edit(hours, chosen), field=field, values=values, notice=notice)


@router.post("/settings/holidays/closed")
async def add_closed_date(
    member: AdminPage,
    day: Annotated[str, Form(alias="date", max_length=20)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return await _add_on_date(
        member,
        day,
        lambda hours, chosen: teams.with_closed_date(hours, chosen, name),
        field="closed",
        values={"closed_date": day, "closed_name": name},
        notice="closed_date_added",
    )


@router.post("/settings/holidays/closed/{day}/remove")
async def remove_closed_date(member: AdminPage, day: date) -> Response:
    return await _edit(
        member,
        lambda hours: teams.without_closed_date(hours, day),
        field="closed",
        notice="closed_date_removed",
    )


@router.post("/settings/holidays/special")
async def add_special_hours(member: AdminPage, request: Request) -> Response:
    form = await request.form()
    day = str(form.get("date", ""))[:20]
    slots = [
        Slot(
            str(form.get(f"special-{i}-start", ""))[:20],
            str(form.get(f"special-{i}-end", ""))[:20],
            form.get(f"special-{i}-overnight") == "on",
        )
        for i in range(2)
    ]
    values = {"special_date": day}
    for i, slot in enumerate(slots):
        values |= {f"special-{i}-start": slot.start, f"special-{i}-end": slot.end}
        values |= {f"special-{i}-overnight": "on"} if slot.overnight else {}
    intervals = [slot.as_json() for slot in slots if not slot.blank]
    return await _add_on_date(
        member,
        day,
        lambda hours, chosen: teams.with_special_hours(hours, chosen, intervals),
        field="special",
        values=values,
        notice="special_hours_added",
    )


@router.post("/settings/holidays/special/{day}/remove")
async def remove_special_hours(member: AdminPage, day: date) -> Response:
    return await _edit(
        member,
        lambda hours: teams.without_special_hours(hours, day),
        field="special",
        notice="special_hours_removed",
    )


async def _import(
    member: Member, *, data: bytes | None = None, url: str | None = None, values: dict[str, str] | None = None
) -> Response:
    field = "ics_url" if url else "ics"
    try:
        done = await calendar.import_calendar(member.tenant, data=data, url=url)
    except InvalidInput as exc:
        message = beside(exc) if exc.field not in (None, "hours") else explain(member.visitor, exc)
        return await _holidays_page(member, status=exc.status_code, errors={field: message}, values=values)
    return redirect(
        f"{HOLIDAYS}?imported={done.imported}&skipped={len(done.skipped)}", notice="calendar_imported"
    )


@router.post("/settings/holidays/ics")
async def import_file(member: AdminPage, request: Request) -> Response:
    _ = gettext(member.visitor)
    form = await request.form()
    sent = form.get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        return await _holidays_page(
            member, status=422, errors={"ics": _("Choose a calendar file (.ics) to import.")}
        )
    limit = calendar.max_calendar_bytes(member.tenant)
    data = await sent.read(limit + 1)
    if len(data) > limit:
        message = _("The file is larger than %(kb)s KB: export only the holidays.") % {"kb": limit // 1024}
        return await _holidays_page(member, status=422, errors={"ics": message})
    if not data.strip():
        return await _holidays_page(member, status=422, errors={"ics": _("The file is empty.")})
    return await _import(member, data=data)


@router.post("/settings/holidays/ics-url")
async def import_url(member: AdminPage, url: Annotated[str, Form(max_length=1000)] = "") -> Response:
    if not url.strip():
        _ = gettext(member.visitor)
        return await _holidays_page(member, status=422, errors={"ics_url": _("Type the calendar's address.")})
    return await _import(member, url=url.strip(), values={"url": url})
