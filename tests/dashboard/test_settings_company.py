"""The company's settings pages over HTTP: the profile (name, default language, timezone),
the business hours' weekly grid, holidays and dates (public holidays, closed dates, special
hours, ``.ics`` import by file and URL) and the handoff rules. Each form: saved, refused with
the reason on the page and nothing changed, denied to roles below admin, and blind to another
company's things."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from atende.runtime import Runtime
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Company, Role
from tests.conftest import CompanyCtx
from tests.fakes.site import Page, Site, running_site
from tests.fixtures.dashboard import Team, csrf_of, signed_in
from tests.tenancy.test_support_api import ics_calendar, ics_event

WEEKDAY = [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]
HOURS: dict[str, Any] = {"timezone": "America/Sao_Paulo", "weekly": {"monday": WEEKDAY, "tuesday": WEEKDAY}}
SOON = date.today() + timedelta(days=40)


async def company_row(runtime: Runtime, company_id: uuid.UUID) -> Company:
    async with runtime.db.transaction() as session:
        return await tenancy.get_company(session, str(company_id))


async def stored_hours(runtime: Runtime, company_id: uuid.UUID) -> dict[str, Any] | None:
    return (await company_row(runtime, company_id)).settings.get("hours")


async def set_hours(runtime: Runtime, company_id: uuid.UUID, hours: dict[str, Any] | None = None) -> None:
    async with runtime.db.transaction() as session:
        await teams.save_company_hours(session, company_id, hours or HOURS)


async def send(
    client: httpx.AsyncClient, path: str, data: Any = None, *, page: str, files: Any = None
) -> httpx.Response:
    """Send a form of ``page`` (``data`` a dict or a list of pairs) with its CSRF token."""
    token = csrf_of((await client.get(page)).text)
    pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
    fields: dict[str, list[str]] = {"csrf_token": [token]}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return await client.post(path, data=fields, files=files)


def notice(response: httpx.Response, key: str, path: str) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"{path}?notice={key}"


# the profile

PROFILE = "/app/settings/company"


async def test_an_admin_renames_the_company_and_sets_its_language_and_timezone(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.admin) as client:
        page = await client.get(PROFILE)
        assert page.status_code == 200
        assert 'value="Loja da Olga"' in page.text
        assert "always open" in page.text
        response = await send(
            client,
            PROFILE,
            {"name": "  Loja Nova  ", "default_language": "es", "timezone": "America/Recife"},
            page=PROFILE,
        )
        notice(response, "company_saved", PROFILE)
        shown = (await client.get(response.headers["location"])).text
        assert "Company profile saved." in shown
        assert 'value="Loja Nova"' in shown
        assert "<option selected>America/Recife</option>" in shown
    company = await company_row(runtime, team.company_id)
    assert (company.name, company.default_language) == ("Loja Nova", "es")
    hours = company.settings["hours"]
    assert hours["timezone"] == "America/Recife"  # always open still, in that zone
    assert hours["weekly"]["sunday"] == [{"start": "00:00", "end": "24:00"}]


async def test_a_new_name_alone_gives_no_business_hours(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.owner) as client:
        form = {"name": "Loja da Olga e Filhos", "default_language": "pt", "timezone": "UTC"}
        notice(await send(client, PROFILE, form, page=PROFILE), "company_saved", PROFILE)
        # a form without its token changes nothing
        response = await client.post(
            PROFILE, data={"name": "Forged", "default_language": "en", "timezone": "UTC"}
        )
        assert response.status_code == 403
        assert "This form has expired" in response.text
    company = await company_row(runtime, team.company_id)
    assert (company.name, company.default_language) == ("Loja da Olga e Filhos", "pt")
    assert company.settings.get("hours") is None  # still always open, no hours made up


async def test_a_timezone_change_keeps_the_business_hours(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.owner) as client:
        response = await send(
            client,
            PROFILE,
            {"name": "Loja da Olga", "default_language": "pt", "timezone": "Europe/Lisbon"},
            page=PROFILE,
        )
        notice(response, "company_saved", PROFILE)
    assert await stored_hours(runtime, team.company_id) == {**HOURS, "timezone": "Europe/Lisbon"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "   ", "Type a name of 1 to 200 characters."),
        ("name", "x" * 201, "Type a name of 1 to 200 characters."),
        ("default_language", "fr", "one of pt, en, es"),
        ("timezone", "Mars/Olympus", "is not an IANA timezone"),
    ],
)
async def test_a_bad_profile_is_refused_beside_its_field_and_nothing_changes(
    live_server: str, team: Team, runtime: Runtime, field: str, value: str, message: str
) -> None:
    form = {"name": "Renamed", "default_language": "en", "timezone": "Europe/Paris", field: value}
    async with signed_in(live_server, team.admin) as client:
        response = await send(client, PROFILE, form, page=PROFILE)
    assert response.status_code == 422
    assert message in response.text
    assert f'id="{field}-error"' in response.text  # beside the field
    assert form["name"][:50] in response.text  # the form is kept
    company = await company_row(runtime, team.company_id)
    assert (company.name, company.default_language, company.settings.get("hours")) == (
        "Loja da Olga",
        "pt",
        None,
    )


async def test_the_profile_is_changed_through_the_api_too(company: CompanyCtx, runtime: Runtime) -> None:
    response = await company.client.patch(
        "/v1/company", json={"name": "Bicicletaria", "default_language": "en"}
    )
    assert response.status_code == 200, response.text
    assert response.json() | {"id": None} == {
        "id": None,
        "name": "Bicicletaria",
        "slug": company.slug,
        "default_language": "en",
    }
    assert (await company.client.patch("/v1/company", json={"name": ""})).status_code == 422
    assert (await company.client.patch("/v1/company", json={"default_language": "fr"})).status_code == 422
    async with runtime.db.transaction() as session:
        _key, viewer_key = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name="v", role=Role.viewer
        )
    async with company.with_key(viewer_key) as viewer:
        assert (await viewer.patch("/v1/company", json={"name": "Not mine"})).status_code == 403
        assert (await viewer.get("/v1/company")).json()["name"] == "Bicicletaria"


# the roles: every page and form of this module is the admins' and owners'

FORMS = [
    ("GET", PROFILE),
    ("POST", PROFILE),
    ("GET", "/app/settings/hours"),
    ("POST", "/app/settings/hours"),
    ("POST", "/app/settings/hours/remove"),
    ("GET", "/app/settings/holidays"),
    ("POST", "/app/settings/holidays/calendar"),
    ("POST", "/app/settings/holidays/calendar/remove"),
    ("POST", "/app/settings/holidays/closed"),
    ("POST", f"/app/settings/holidays/closed/{SOON}/remove"),
    ("POST", "/app/settings/holidays/special"),
    ("POST", f"/app/settings/holidays/special/{SOON}/remove"),
    ("POST", "/app/settings/holidays/ics"),
    ("POST", "/app/settings/holidays/ics-url"),
    ("GET", "/app/settings/handoff"),
    ("POST", "/app/settings/handoff"),
    ("GET", "/app/settings/email"),
    ("POST", "/app/settings/email"),
]


@pytest.mark.parametrize("role", [Role.agent, Role.viewer])
async def test_agents_and_viewers_are_refused_every_settings_form(
    live_server: str, team: Team, runtime: Runtime, role: Role
) -> None:
    await set_hours(runtime, team.company_id)
    before = (await company_row(runtime, team.company_id)).settings
    async with signed_in(live_server, team.person(role)) as client:
        token = csrf_of((await client.get("/app")).text)
        for method, path in FORMS:
            data = {"csrf_token": token, "name": "Taken over", "timezone": "UTC", "country": "US"}
            response = await (client.get(path) if method == "GET" else client.post(path, data=data))
            assert response.status_code == 403, (path, response.text)
            assert "This page needs the Admin role" in response.text
    after = await company_row(runtime, team.company_id)
    assert (after.name, after.settings) == ("Loja da Olga", before)


# business hours

HOURS_PAGE = "/app/settings/hours"


def grid(**days: list[tuple[str, str, bool]]) -> list[tuple[str, str]]:
    pairs = [("timezone", "America/Sao_Paulo")]
    for day, slots in days.items():
        for i, (start, end, overnight) in enumerate(slots):
            pairs += [(f"{day}-{i}-start", start), (f"{day}-{i}-end", end)]
            if overnight:
                pairs.append((f"{day}-{i}-overnight", "on"))
    return pairs


async def test_the_weekly_grid_is_saved_as_the_api_stores_it(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.admin) as client:
        page = (await client.get(HOURS_PAGE)).text
        assert "No business hours are set" in page
        assert page.count('name="monday-') == 6  # two empty rows: a morning and an afternoon
        form = grid(
            monday=[("08:00", "12:00", False), ("13:00", "18:00", False)],
            wednesday=[("", "", False), ("09:00", "17:00", False)],
            friday=[("22:00", "06:00", True)],
            sunday=[("00:00", "24:00", False)],
        )
        response = await send(client, HOURS_PAGE, form, page=HOURS_PAGE)
        notice(response, "hours_saved", HOURS_PAGE)
        shown = (await client.get(response.headers["location"])).text
        assert "Business hours saved." in shown
        assert 'name="monday-2-start"' in shown  # a third, empty row to add an interval
        assert 'id="friday-0-overnight" name="friday-0-overnight" checked' in shown
    assert await stored_hours(runtime, team.company_id) == {
        "timezone": "America/Sao_Paulo",
        "weekly": {
            "monday": WEEKDAY,
            "tuesday": [],
            "wednesday": [{"start": "09:00", "end": "17:00"}],
            "thursday": [],
            "friday": [{"start": "22:00", "end": "06:00", "overnight": True}],
            "saturday": [],
            "sunday": [{"start": "00:00", "end": "24:00"}],
        },
    }


async def test_the_grid_keeps_the_holidays_and_dates(live_server: str, team: Team, runtime: Runtime) -> None:
    dated = {
        **HOURS,
        "holidays": {"country": "BR"},
        "closed_dates": [{"date": str(SOON), "name": "Inventário"}],
    }
    await set_hours(runtime, team.company_id, dated)
    async with signed_in(live_server, team.owner) as client:
        response = await send(client, HOURS_PAGE, grid(monday=[("10:00", "16:00", False)]), page=HOURS_PAGE)
        notice(response, "hours_saved", HOURS_PAGE)
    stored = await stored_hours(runtime, team.company_id)
    assert stored is not None
    assert stored["weekly"]["monday"] == [{"start": "10:00", "end": "16:00"}]
    assert (stored["holidays"], stored["closed_dates"]) == (dated["holidays"], dated["closed_dates"])


@pytest.mark.parametrize(
    ("form", "day", "message"),
    [
        (
            grid(tuesday=[("18:00", "09:00", False)]),
            "tuesday",
            "09:00 is not after 18:00",
        ),  # without overnight
        (grid(monday=[("08:00", "12:00", False), ("11:00", "14:00", False)]), "monday", "intervals overlap"),
        (grid(thursday=[("8h", "12:00", False)]), "thursday", "is not a time of day as HH:MM"),
        (grid(thursday=[("08:00", "", False)]), "thursday", "is not a time of day as HH:MM"),
        (grid(saturday=[("22:00", "23:00", True)]), "saturday", "an overnight interval ends the next day"),
        (
            grid(sunday=[("22:00", "09:00", True)], monday=[("08:00", "12:00", False)]),
            "monday",
            "overlaps sunday",
        ),
        (
            [*grid(monday=[("08:00", "12:00", False)])[1:], ("timezone", "Brasil")],
            "timezone",
            "not an IANA timezone",
        ),
    ],
)
async def test_a_grid_the_api_refuses_comes_back_with_its_message_beside_the_day(
    live_server: str, team: Team, runtime: Runtime, form: list[tuple[str, str]], day: str, message: str
) -> None:
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        response = await send(client, HOURS_PAGE, form, page=HOURS_PAGE)
    assert response.status_code == 422
    assert f'<p class="field-error" id="{day}-error"' in response.text
    assert message in response.text.replace("&#39;", "'")
    sent = dict(form)
    for name, value in sent.items():
        if name.endswith("-start") and value:
            assert f'name="{name}" value="{value}"' in response.text  # what was typed stays
    assert await stored_hours(runtime, team.company_id) == HOURS


async def test_removing_the_hours_leaves_the_company_always_open(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        response = await send(client, f"{HOURS_PAGE}/remove", page=HOURS_PAGE)
        notice(response, "hours_removed", HOURS_PAGE)
    assert await stored_hours(runtime, team.company_id) is None


# holidays and dates

HOLIDAYS = "/app/settings/holidays"


async def test_without_hours_no_date_can_be_added(live_server: str, team: Team, runtime: Runtime) -> None:
    async with signed_in(live_server, team.admin) as client:
        page = await client.get(HOLIDAYS)
        assert "Set the business hours first." in page.text
        response = await send(client, f"{HOLIDAYS}/closed", {"date": str(SOON), "name": "x"}, page=HOLIDAYS)
    assert response.status_code == 422
    assert "set the business hours" in response.text
    assert await stored_hours(runtime, team.company_id) is None


async def test_a_country_and_state_calendar_is_chosen_and_removed(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        form = {"country": "br", "subdiv": "sp", "categories": "public, optional", "skip": "Christmas Eve\n"}
        response = await send(client, f"{HOLIDAYS}/calendar", form, page=HOLIDAYS)
        notice(response, "holidays_saved", HOLIDAYS)
        shown = (await client.get(HOLIDAYS)).text
        assert 'value="BR"' in shown and 'value="sp"' in shown
        upcoming = shown[shown.index('id="upcoming-heading"') : shown.index('id="closed-heading"')]
        assert "Christmas Day" in upcoming  # among the next closed days, within a year
        assert "Christmas Eve" not in upcoming  # worked anyway
        stored = await stored_hours(runtime, team.company_id)
        assert stored is not None
        assert stored["holidays"] == {
            "country": "BR",
            "subdiv": "sp",  # as sent; the schedule reads it as SP
            "categories": ["public", "optional"],
            "skip": ["Christmas Eve"],
        }
        response = await send(client, f"{HOLIDAYS}/calendar/remove", page=HOLIDAYS)
        notice(response, "holidays_removed", HOLIDAYS)
    assert "holidays" not in (await stored_hours(runtime, team.company_id) or {})


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"country": "XX"}, "&#39;XX&#39; is not a supported country code"),
        ({"country": "BR", "subdiv": "ZZ"}, "&#39;ZZ&#39; is not a subdivision of BR"),
        ({"country": "BR", "categories": "public, imaginary"}, "&#39;imaginary&#39; is not a category of BR"),
        ({"country": "BRAZ"}, "country"),  # longer than a code: refused before the service
    ],
)
async def test_a_calendar_that_does_not_exist_is_refused(
    live_server: str, team: Team, runtime: Runtime, form: dict[str, str], message: str
) -> None:
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        response = await send(client, f"{HOLIDAYS}/calendar", form, page=HOLIDAYS)
    assert response.status_code == 422
    assert message in response.text
    assert await stored_hours(runtime, team.company_id) == HOURS


async def test_closed_dates_and_special_hours_are_added_and_removed_one_by_one(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    await set_hours(runtime, team.company_id)
    later = SOON + timedelta(days=3)
    async with signed_in(live_server, team.admin) as client:
        for day, name in ((later, "Balanço"), (SOON, "Inventário"), (later, "Balanço anual")):
            response = await send(
                client, f"{HOLIDAYS}/closed", {"date": str(day), "name": name}, page=HOLIDAYS
            )
            notice(response, "closed_date_added", HOLIDAYS)
        form = {"date": str(later), "special-0-start": "14:00", "special-0-end": "18:00"}
        response = await send(client, f"{HOLIDAYS}/special", form, page=HOLIDAYS)
        notice(response, "special_hours_added", HOLIDAYS)
        shown = (await client.get(HOLIDAYS)).text
        assert "Balanço anual" in shown and "14:00–18:00" in shown
        stored = await stored_hours(runtime, team.company_id)
        assert stored is not None
        assert stored["closed_dates"] == [
            {"date": str(SOON), "name": "Inventário"},
            {"date": str(later), "name": "Balanço anual"},  # renamed, not twice
        ]
        assert stored["special_hours"] == [
            {"date": str(later), "intervals": [{"start": "14:00", "end": "18:00"}]}
        ]
        response = await send(client, f"{HOLIDAYS}/closed/{SOON}/remove", page=HOLIDAYS)
        notice(response, "closed_date_removed", HOLIDAYS)
        response = await send(client, f"{HOLIDAYS}/special/{later}/remove", page=HOLIDAYS)
        notice(response, "special_hours_removed", HOLIDAYS)
        for path in (f"{HOLIDAYS}/closed/{SOON}/remove", f"{HOLIDAYS}/special/2020-02-31/remove"):
            assert (await send(client, path, page=HOLIDAYS)).status_code == 404  # not there, not a date
    stored = await stored_hours(runtime, team.company_id)
    assert stored is not None
    assert (stored["closed_dates"], stored["special_hours"]) == (
        [{"date": str(later), "name": "Balanço anual"}],
        [],
    )


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("closed", {"date": "31/12/2026", "name": "x"}, "is not a date as YYYY-MM-DD"),
        ("closed", {"date": "", "name": "x"}, "is not a date as YYYY-MM-DD"),
        ("closed", {"date": "2026-12-31", "name": "x" * 201}, "name"),
        ("special", {"date": "2026-13-01"}, "is not a date as YYYY-MM-DD"),
        (
            "special",
            {"date": "2026-12-31", "special-0-start": "18:00", "special-0-end": "14:00"},
            "is not after",
        ),
        (
            "special",
            {"date": "2026-12-31", "special-0-start": "9", "special-0-end": "14:00"},
            "is not a time of day",
        ),
    ],
)
async def test_a_bad_date_or_interval_is_refused_and_nothing_changes(
    live_server: str, team: Team, runtime: Runtime, path: str, form: dict[str, str], message: str
) -> None:
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.admin) as client:
        response = await send(client, f"{HOLIDAYS}/{path}", form, page=HOLIDAYS)
    assert response.status_code == 422, response.text
    assert message in response.text
    assert await stored_hours(runtime, team.company_id) == HOURS


@pytest.fixture(scope="module")
def calendar_site() -> Iterator[Site]:
    with running_site() as site:
        yield site


def holiday_calendar() -> bytes:
    day = (SOON + timedelta(days=10)).strftime("%Y%m%d")
    return ics_calendar(
        ics_event("ferias", f"DTSTART;VALUE=DATE:{day}", "SUMMARY:Férias coletivas"),
        ics_event("meeting", f"DTSTART:{day}T140000Z", f"DTEND:{day}T150000Z", "SUMMARY:Reunião"),
    )


@pytest.mark.parametrize("via", ["file", "url"])
async def test_a_calendar_is_imported_from_a_file_or_an_address(
    live_server: str, team: Team, runtime: Runtime, calendar_site: Site, via: str
) -> None:
    await set_hours(
        runtime, team.company_id, {**HOURS, "closed_dates": [{"date": str(SOON), "name": "à mão"}]}
    )
    calendar_site.pages["/feriados.ics"] = Page(holiday_calendar(), headers={"Content-Type": "text/calendar"})
    async with signed_in(live_server, team.admin) as client:
        if via == "file":
            files = {"file": ("feriados.ics", holiday_calendar(), "text/calendar")}
            response = await send(client, f"{HOLIDAYS}/ics", page=HOLIDAYS, files=files)
        else:
            form = {"url": calendar_site.url("/feriados.ics")}
            response = await send(client, f"{HOLIDAYS}/ics-url", form, page=HOLIDAYS)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == f"{HOLIDAYS}?imported=1&skipped=1&notice=calendar_imported"
        shown = (await client.get(response.headers["location"])).text
        assert "Calendar imported." in shown
        assert "1 closed dates imported; 1 events with a time of day were skipped." in shown
        assert "Férias coletivas" in shown and "calendar import" in shown
    stored = await stored_hours(runtime, team.company_id)
    assert stored is not None
    assert [d["name"] for d in stored["closed_dates"]] == ["à mão", "Férias coletivas"]


async def test_a_calendar_that_cannot_be_imported_says_why(
    live_server: str, team: Team, runtime: Runtime, calendar_site: Site
) -> None:
    await set_hours(runtime, team.company_id)
    calendar_site.pages["/page.html"] = Page(b"<html></html>", headers={"Content-Type": "text/html"})
    calendar_site.pages["/gone.ics"] = Page(b"", status=404)
    cases: list[tuple[str, dict[str, Any], dict[str, Any] | None, str]] = [
        (
            "ics",
            {},
            {"file": ("notes.ics", b"just some notes", "text/calendar")},
            "is not a valid iCalendar file",
        ),
        ("ics", {}, {"file": ("empty.ics", b"  ", "text/calendar")}, "The file is empty."),
        ("ics", {}, None, "Choose a calendar file (.ics) to import."),
        ("ics-url", {"url": ""}, None, "Type the calendar&#39;s address."),
        ("ics-url", {"url": calendar_site.url("/page.html")}, None, "serves &#39;text/html&#39;"),
        ("ics-url", {"url": calendar_site.url("/gone.ics")}, None, "the URL answered HTTP 404"),
        ("ics-url", {"url": "feriados.ics"}, None, "is not an http(s) address"),
    ]
    async with signed_in(live_server, team.admin) as client:
        for path, form, files, message in cases:
            response = await send(client, f"{HOLIDAYS}/{path}", form, page=HOLIDAYS, files=files)
            assert response.status_code == 422, (path, message, response.text)
            assert message in response.text, (path, message)
    assert await stored_hours(runtime, team.company_id) == HOURS


async def test_a_calendar_file_over_the_body_limit_gets_a_page_saying_so(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    """The body limit refuses it before any page runs: still a page in the person's
    language, with the dashboard's headers, not the API's JSON; nothing changes."""
    await set_hours(runtime, team.company_id)
    limit = runtime.settings.max_body_bytes
    big = holiday_calendar() + b"X-FILLER:" + b"x" * limit + b"\r\n"
    async with signed_in(live_server, team.admin) as client:
        client.headers["Accept-Language"] = "pt-BR"
        response = await send(
            client, f"{HOLIDAYS}/ics", page=HOLIDAYS, files={"file": ("feriados.ics", big, "text/calendar")}
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "Nada foi alterado" in response.text
    assert await stored_hours(runtime, team.company_id) == HOURS


async def test_another_companys_dates_are_not_found(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    theirs = {
        **HOURS,
        "closed_dates": [{"date": str(SOON), "name": "Rival's"}],
        "special_hours": [{"date": str(SOON), "intervals": []}],
    }
    await set_hours(runtime, rival.company_id, theirs)
    await set_hours(runtime, team.company_id)
    async with signed_in(live_server, team.owner) as client:
        page = (await client.get(HOLIDAYS)).text
        assert "Rival&#39;s" not in page
        for kind in ("closed", "special"):
            response = await send(client, f"{HOLIDAYS}/{kind}/{SOON}/remove", page=HOLIDAYS)
            assert response.status_code == 404
            assert "Not found" in response.text
    assert await stored_hours(runtime, rival.company_id) == theirs


# handoff rules

HANDOFF = "/app/settings/handoff"


async def make_team_named(runtime: Runtime, company_id: uuid.UUID, name: str) -> str:
    async with runtime.db.transaction(company_id) as session:
        team, _members = await teams.put_team(session, None, name=name, slug=None, hours=None, members=[])
        return team.slug


def handoff_form(**values: str) -> dict[str, str]:
    return {
        "team": "",
        "bot_answers_while_closed": "on",
        "rule-0-name": "",
        "rule-0-keywords": "",
        "rule-0-team": "",
        **values,
    }


async def stored_handoff(runtime: Runtime, company_id: uuid.UUID) -> dict[str, Any] | None:
    return (await company_row(runtime, company_id)).settings.get("handoff")


async def test_every_handoff_setting_is_saved(live_server: str, team: Team, runtime: Runtime) -> None:
    legal = await make_team_named(runtime, team.company_id, "Jurídico")
    support = await make_team_named(runtime, team.company_id, "Atendimento")
    async with signed_in(live_server, team.admin) as client:
        page = (await client.get(HANDOFF)).text
        assert "Jurídico" in page and 'id="hand_off_on_repeat" name="hand_off_on_repeat" checked' in page
        form = handoff_form(
            team=support,
            **{
                "rule-0-name": "legal",
                "rule-0-keywords": "procon\nadvogado, processo judicial",
                "rule-0-team": legal,
            },
        )
        response = await send(client, HANDOFF, form, page=HANDOFF)
        notice(response, "handoff_saved", HANDOFF)
        shown = (await client.get(response.headers["location"])).text
        assert await stored_handoff(runtime, team.company_id) == {
            "rules": [
                {"name": "legal", "keywords": ["procon", "advogado", "processo judicial"], "team": legal}
            ],
            "team": support,
            "bot_answers_while_closed": True,
            "hand_off_on_repeat": False,  # left unchecked
        }
        assert "Handoff rules saved." in shown
        assert "procon\nadvogado\nprocesso judicial</textarea>" in shown
        assert 'name="rule-1-name"' in shown  # an empty rule to add another
        # the rule removed, the default team cleared
        form = handoff_form(
            **{
                "rule-0-name": "legal",
                "rule-0-keywords": "procon",
                "rule-0-remove": "on",
                "hand_off_on_repeat": "on",
            }
        )
        notice(await send(client, HANDOFF, form, page=HANDOFF), "handoff_saved", HANDOFF)
    assert await stored_handoff(runtime, team.company_id) == {
        "rules": [],
        "bot_answers_while_closed": True,
        "hand_off_on_repeat": True,
    }


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"rule-0-name": "legal", "rule-0-keywords": "a"}, "rule-0-keywords", "each of 2 to 100 characters"),
        ({"rule-0-name": "", "rule-0-keywords": "procon"}, "rule-0-name", "a name of 1 to 100 characters"),
        (
            {"rule-0-name": "x" * 101, "rule-0-keywords": "procon"},
            "rule-0-name",
            "a name of 1 to 100 characters",
        ),
        (
            {"rule-0-name": "legal", "rule-0-keywords": "procon", "rule-0-team": "nobody"},
            "rule-0-team",
            "there is no team",
        ),
        ({"team": "nobody"}, "team", "there is no team &#39;nobody&#39;"),
    ],
)
async def test_bad_handoff_rules_are_refused_beside_the_field(
    live_server: str, team: Team, runtime: Runtime, values: dict[str, str], field: str, message: str
) -> None:
    async with signed_in(live_server, team.admin) as client:
        response = await send(client, HANDOFF, handoff_form(**values), page=HANDOFF)
    assert response.status_code == 422
    assert f'id="{field}-error">' in response.text
    assert message in response.text
    if values.get("rule-0-keywords"):
        assert f">{values['rule-0-keywords']}</textarea>" in response.text  # kept to fix
    assert await stored_handoff(runtime, team.company_id) is None


async def test_another_companys_team_is_no_team_here(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    theirs = await make_team_named(runtime, rival.company_id, "Rival Support")
    async with signed_in(live_server, team.admin) as client:
        assert "Rival Support" not in (await client.get(HANDOFF)).text
        response = await send(client, HANDOFF, handoff_form(team=theirs), page=HANDOFF)
    assert response.status_code == 422
    assert f"there is no team &#39;{theirs}&#39;" in response.text
    assert await stored_handoff(runtime, team.company_id) is None
