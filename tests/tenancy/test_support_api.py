"""The human side's settings API through the live server: business hours (validated whole,
with holidays and closed dates, imported from an .ics body or URL), handoff rules, teams and
agents' availability, the roles each route needs, and that one company reaches none of
another's teams or agents."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from atende.errors import Conflict
from atende.runtime import Runtime
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import Clock, CompanyCtx
from tests.fakes.site import Page, Site, running_site
from tests.fixtures.dashboard import arrange_user

BRT = timezone(timedelta(hours=-3))  # America/Sao_Paulo, without daylight saving since 2019
WEEKDAY = [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]

HOURS: dict[str, Any] = {
    "timezone": "America/Sao_Paulo",
    "weekly": {
        "monday": WEEKDAY,
        "tuesday": WEEKDAY,
        "wednesday": WEEKDAY,
        "thursday": WEEKDAY,
        # Friday night shift: 22:00 to Saturday 02:00
        "friday": [*WEEKDAY, {"start": "22:00", "end": "02:00", "overnight": True}],
        "saturday": [{"start": "09:00", "end": "13:00"}],
    },
    "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
    "closed_dates": [{"date": "2026-03-13", "name": "Inventário"}],
    "special_hours": [
        {"date": "2026-03-15", "intervals": [{"start": "10:00", "end": "14:00"}]},  # a Sunday
        {"date": "2026-12-24", "intervals": [{"start": "08:00", "end": "12:00"}]},  # Christmas Eve
    ],
}

WEDNESDAY_10H = datetime(2026, 3, 4, 10, 0, tzinfo=BRT)


def brt(*args: int) -> datetime:
    return datetime(*args, tzinfo=BRT)  # type: ignore[misc]


def instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def normalized(intervals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"overnight": False} | interval for interval in intervals]


def fields_of(response: httpx.Response) -> set[str]:
    """The fields a 422 names: a domain error's ``field``, or each validation error's ``loc``
    (without "body"), dotted."""
    body = response.json()
    if "field" in body:
        return {body["field"]}
    assert isinstance(body["detail"], list), body
    return {".".join(str(part) for part in e["loc"] if part != "body") for e in body["detail"]}


async def add_member(runtime: Runtime, company: CompanyCtx, role: Role, name: str = "") -> tuple[str, str]:
    """A new user, member of ``company`` with ``role``: (user id, e-mail)."""
    email = f"{role.value}-{uuid.uuid4().hex[:10]}@example.com"
    async with runtime.db.transaction() as session:
        user = await arrange_user(
            session, company_id=company.id, email=email, password="password-123", role=role, name=name
        )
        return str(user.id), email


async def new_key(runtime: Runtime, company: CompanyCtx, role: Role, user_email: str | None = None) -> str:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session,
            secret_key=runtime.secret_key,
            company_id=company.id,
            name=f"{role.value} key",
            role=role,
            user_email=user_email,
        )
    return full


async def put_hours(client: httpx.AsyncClient, hours: dict[str, Any]) -> dict[str, Any]:
    r = await client.put("/v1/company/hours", json=hours)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def hours_at(client: httpx.AsyncClient, clock: Clock, at: datetime) -> dict[str, Any]:
    clock.at(at)
    r = await client.get("/v1/company/hours")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# business hours


async def test_a_valid_schedule_is_stored_and_answers_open_and_next_times(
    company: CompanyCtx, clock: Clock
) -> None:
    clock.at(WEDNESDAY_10H)
    r = await company.client.get("/v1/company/hours")
    assert r.status_code == 200, r.text
    assert r.json()["hours"] is None and r.json()["open_now"] is True  # no hours: always open

    put = await put_hours(company.client, HOURS)
    got = (await company.client.get("/v1/company/hours")).json()
    assert got == put
    assert got["hours"] == {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: normalized(intervals) for day, intervals in HOURS["weekly"].items()},
        "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"], "skip": []},
        "closed_dates": [{"date": "2026-03-13", "name": "Inventário", "source": "manual"}],
        "special_hours": [
            {"date": s["date"], "intervals": normalized(s["intervals"])} for s in HOURS["special_hours"]
        ],
    }

    # (instant, open now, next open, next close)
    cases = [
        # Wednesday morning: open until lunch
        (WEDNESDAY_10H, True, WEDNESDAY_10H, brt(2026, 3, 4, 12)),
        # lunch break: opens at 13:00, closes at 18:00
        (brt(2026, 3, 4, 12, 30), False, brt(2026, 3, 4, 13), brt(2026, 3, 4, 18)),
        # Friday evening: the night shift starts at 22:00 and ends Saturday 02:00
        (brt(2026, 3, 6, 19), False, brt(2026, 3, 6, 22), brt(2026, 3, 7, 2)),
        (brt(2026, 3, 6, 23, 30), True, brt(2026, 3, 6, 23, 30), brt(2026, 3, 7, 2)),
        # Saturday 01:00: still Friday's overnight shift
        (brt(2026, 3, 7, 1), True, brt(2026, 3, 7, 1), brt(2026, 3, 7, 2)),
        # Saturday 03:00: closed until 09:00
        (brt(2026, 3, 7, 3), False, brt(2026, 3, 7, 9), brt(2026, 3, 7, 13)),
        # a closed date (Friday 13): closed all day, night shift included; Saturday 09:00 next
        (brt(2026, 3, 13, 10), False, brt(2026, 3, 14, 9), brt(2026, 3, 14, 13)),
        # Saturday afternoon: the special hours of Sunday 15 open next
        (brt(2026, 3, 14, 14), False, brt(2026, 3, 15, 10), brt(2026, 3, 15, 14)),
        (brt(2026, 3, 15, 11), True, brt(2026, 3, 15, 11), brt(2026, 3, 15, 14)),
        # Carnival Monday and Tuesday and Ash Wednesday (category "optional"): Thursday next
        (brt(2026, 2, 16, 10), False, brt(2026, 2, 19, 8), brt(2026, 2, 19, 12)),
        # the São Paulo state holiday (9 July, a Thursday): Friday next
        (brt(2026, 7, 9, 10), False, brt(2026, 7, 10, 8), brt(2026, 7, 10, 12)),
        # Good Friday closes the whole Friday, its night shift too
        (brt(2026, 4, 3, 23), False, brt(2026, 4, 4, 9), brt(2026, 4, 4, 13)),
        # a holiday on Saturday (1 May 2027) does not cut Friday's night shift short
        (brt(2027, 4, 30, 23), True, brt(2027, 4, 30, 23), brt(2027, 5, 1, 2)),
        (brt(2027, 5, 1, 3), False, brt(2027, 5, 3, 8), brt(2027, 5, 3, 12)),
        # special hours win over the Christmas Eve holiday
        (brt(2026, 12, 24, 9), True, brt(2026, 12, 24, 9), brt(2026, 12, 24, 12)),
        (brt(2026, 12, 24, 13), False, brt(2026, 12, 26, 9), brt(2026, 12, 26, 13)),
    ]
    for at, open_now, opens, closes in cases:
        body = await hours_at(company.client, clock, at)
        got_times = (body["open_now"], instant(body["next_open"]), instant(body["next_close"]))
        assert got_times == (open_now, opens, closes), at


async def test_deleting_the_hours_means_always_open(company: CompanyCtx, clock: Clock) -> None:
    clock.at(brt(2026, 3, 8, 3))  # a Sunday night: closed by the schedule
    assert (await put_hours(company.client, HOURS))["open_now"] is False
    r = await company.client.delete("/v1/company/hours")
    assert r.status_code == 200, r.text
    body = (await company.client.get("/v1/company/hours")).json()
    assert body["hours"] is None and body["open_now"] is True
    assert instant(body["next_open"]) == brt(2026, 3, 8, 3)


def _with(path: str, value: Any) -> dict[str, Any]:
    """HOURS with the value at a dotted path replaced (a list index as a number)."""
    hours = copy.deepcopy(HOURS)
    *parents, last = path.split(".")
    node: Any = hours
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return hours


BAD_HOURS = {
    "overlapping intervals": (
        _with("weekly.monday", [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "14:00"}]),
        "weekly.monday",
    ),
    "end before start without overnight": (
        _with("weekly.monday", [{"start": "18:00", "end": "08:00"}]),
        "weekly.monday[0].end",
    ),
    "Sunday's night shift runs into Monday's morning": (
        _with("weekly.sunday", [{"start": "22:00", "end": "09:00", "overnight": True}]),
        "weekly.monday",
    ),
    "unknown timezone": (_with("timezone", "Mars/Olympus"), "timezone"),
    "unknown country": (_with("holidays.country", "XX"), "holidays.country"),
    "unknown subdivision": (_with("holidays.subdiv", "ZZ"), "holidays.subdiv"),
    "category the country lacks": (_with("holidays.categories", ["school"]), "holidays.categories"),
    "hour 25": (_with("weekly.monday", [{"start": "08:00", "end": "25:00"}]), "weekly.monday[0].end"),
    "unknown day name": (_with("weekly.funday", WEEKDAY), "weekly.funday.[key]"),
    "unknown field": (_with("lunch_break", "12:00"), "lunch_break"),
    "month 13": (_with("closed_dates.0.date", "2026-13-01"), "closed_dates.0.date"),
    "special hours twice a day": (
        _with("special_hours.1.date", "2026-03-15"),
        "special_hours[1].date",
    ),
}


@pytest.mark.parametrize(("hours", "field"), BAD_HOURS.values(), ids=BAD_HOURS.keys())
async def test_an_invalid_schedule_answers_422_naming_the_field_and_keeps_the_stored_one(
    company: CompanyCtx, clock: Clock, hours: dict[str, Any], field: str
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    before = (await company.client.get("/v1/company/hours")).json()
    r = await company.client.put("/v1/company/hours", json=hours)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert field in fields_of(r), r.text
    assert (await company.client.get("/v1/company/hours")).json() == before


async def test_a_viewer_reads_the_settings_and_an_agent_cannot_change_them(
    company: CompanyCtx, runtime: Runtime, clock: Clock
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    before = (await company.client.get("/v1/company/hours")).json()
    viewer_key = await new_key(runtime, company, Role.viewer)
    agent_key = await new_key(runtime, company, Role.agent)
    changed = _with("timezone", "UTC")
    async with company.with_key(viewer_key) as viewer, company.with_key(agent_key) as agent:
        for path in ("/v1/company/hours", "/v1/company/handoff", "/v1/teams", "/v1/agents"):
            r = await viewer.get(path)
            assert r.status_code == 200, (path, r.text)
        assert (await viewer.get("/v1/company/hours")).json() == before
        for client in (viewer, agent):
            r = await client.put("/v1/company/hours", json=changed)
            assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
            assert (await client.delete("/v1/company/hours")).status_code == 403
            r = await client.post(
                "/v1/company/hours/ics", content=CALENDAR, headers={"Content-Type": "text/calendar"}
            )
            assert r.status_code == 403, r.text
            assert (await client.put("/v1/company/handoff", json={"rules": []})).status_code == 403
            assert (await client.post("/v1/teams", json={"name": "Vendas"})).status_code == 403
    assert (await company.client.get("/v1/company/hours")).json() == before
    assert (await company.client.get("/v1/teams")).json() == []


# closed dates from iCalendar


def ics_event(uid: str, *lines: str) -> str:
    return "".join(
        f"{line}\r\n"
        for line in ("BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20260101T000000Z", *lines, "END:VEVENT")
    )


def ics_calendar(*events: str) -> bytes:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//atende tests//EN\r\n"
    return (head + "".join(events) + "END:VCALENDAR\r\n").encode()


CALENDAR = ics_calendar(
    ics_event("inv", "DTSTART;VALUE=DATE:20260427", "DTEND;VALUE=DATE:20260429", "SUMMARY:Balanço"),
    ics_event("aniv", "DTSTART;VALUE=DATE:20200615", "RRULE:FREQ=YEARLY", "SUMMARY:Aniversário da empresa"),
    ics_event("past", "DTSTART;VALUE=DATE:20251201", "SUMMARY:Já passou"),
    ics_event("train", "DTSTART:20260505T140000Z", "DTEND:20260505T160000Z", "SUMMARY:Treinamento"),
)
# the dates the calendar closes from 4 March 2026 to two years on
CALENDAR_DATES = {
    "2026-04-27": "Balanço",
    "2026-04-28": "Balanço",
    "2026-06-15": "Aniversário da empresa",
    "2027-06-15": "Aniversário da empresa",
}
MANUAL = {"date": "2026-03-13", "name": "Inventário", "source": "manual"}


async def post_ics(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post("/v1/company/hours/ics", content=data, headers={"Content-Type": "text/calendar"})


def by_source(hours: dict[str, Any], source: str) -> dict[str, str]:
    return {d["date"]: d["name"] for d in hours["closed_dates"] if d.get("source") == source}


async def test_an_ics_body_imports_all_day_events_and_replaces_the_previous_import(
    company: CompanyCtx, clock: Clock
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    r = await post_ics(company.client, CALENDAR)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == len(CALENDAR_DATES)
    assert body["skipped"] == ["Treinamento"]
    assert by_source(body["hours"], "ics") == CALENDAR_DATES
    assert by_source(body["hours"], "manual") == {"2026-03-13": "Inventário"}
    stored = (await company.client.get("/v1/company/hours")).json()["hours"]
    assert stored == body["hours"]
    # an imported date closes the day (Monday 27 April would be open)
    assert (await hours_at(company.client, clock, brt(2026, 4, 27, 10)))["open_now"] is False
    assert (await hours_at(company.client, clock, brt(2026, 4, 29, 10)))["open_now"] is True

    clock.at(WEDNESDAY_10H)
    again = await post_ics(
        company.client,
        ics_calendar(ics_event("ferias", "DTSTART;VALUE=DATE:20260810", "SUMMARY:Férias coletivas")),
    )
    assert again.status_code == 200, again.text
    assert (again.json()["imported"], again.json()["skipped"]) == (1, [])
    stored = (await company.client.get("/v1/company/hours")).json()["hours"]
    assert by_source(stored, "ics") == {"2026-08-10": "Férias coletivas"}
    assert [d for d in stored["closed_dates"] if d.get("source") != "ics"] == [MANUAL]


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is not a calendar",
        b"<html><body>Feriados</body></html>",
        b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n",
        ics_calendar(ics_event("x", "DTSTART;VALUE=DATE:2026XX01", "SUMMARY:Quebrado")),
    ],
    ids=["text", "html", "truncated", "bad date"],
)
async def test_a_malformed_ics_answers_422_and_keeps_the_schedule(
    company: CompanyCtx, clock: Clock, data: bytes
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    assert (await post_ics(company.client, CALENDAR)).status_code == 200
    before = (await company.client.get("/v1/company/hours")).json()
    r = await post_ics(company.client, data)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "ics" and "iCalendar" in r.json()["detail"], r.text
    assert (await company.client.get("/v1/company/hours")).json() == before


async def test_an_empty_ics_body_answers_422(company: CompanyCtx, clock: Clock) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    r = await post_ics(company.client, b"  \r\n")
    assert r.status_code == 422 and r.json()["field"] == "ics", r.text


async def test_an_ics_import_before_any_hours_answers_422_on_hours(company: CompanyCtx, clock: Clock) -> None:
    clock.at(WEDNESDAY_10H)
    r = await post_ics(company.client, CALENDAR)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "hours" and "PUT /v1/company/hours" in r.json()["detail"]
    assert (await company.client.get("/v1/company/hours")).json()["hours"] is None


@pytest.fixture(scope="module")
def calendar_site() -> Iterator[Site]:
    with running_site() as server:
        server.pages = {
            "/feriados.ics": Page(CALENDAR, headers={"Content-Type": "text/calendar; charset=utf-8"}),
            "/feriados.html": Page(
                b"<html><body>Feriados</body></html>", headers={"Content-Type": "text/html; charset=utf-8"}
            ),
            "/sumiu.ics": Page(b"not found", 404, {"Content-Type": "text/plain"}),
        }
        yield server


async def test_an_ics_url_is_fetched_and_imported(
    company: CompanyCtx, clock: Clock, calendar_site: Site
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    r = await company.client.post("/v1/company/hours/ics", params={"url": calendar_site.url("/feriados.ics")})
    assert r.status_code == 200, r.text
    assert (r.json()["imported"], r.json()["skipped"]) == (len(CALENDAR_DATES), ["Treinamento"])
    stored = (await company.client.get("/v1/company/hours")).json()["hours"]
    assert by_source(stored, "ics") == CALENDAR_DATES


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/feriados.html", "serves 'text/html', which atende cannot read"),
        ("/sumiu.ics", "HTTP 404"),
    ],
)
async def test_an_ics_url_that_serves_no_calendar_is_refused_with_the_reason(
    company: CompanyCtx, clock: Clock, calendar_site: Site, path: str, reason: str
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    before = (await company.client.get("/v1/company/hours")).json()
    r = await company.client.post("/v1/company/hours/ics", params={"url": calendar_site.url(path)})
    assert 400 <= r.status_code < 500, r.text
    assert reason in r.json()["detail"], r.text
    assert (await company.client.get("/v1/company/hours")).json() == before


# handoff rules


async def create_team(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post("/v1/teams", json=body)
    assert r.status_code == 201, r.text
    team: dict[str, Any] = r.json()
    return team


async def test_handoff_settings_round_trip_and_reject_unknown_teams_and_empty_keywords(
    company: CompanyCtx,
) -> None:
    r = await company.client.get("/v1/company/handoff")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rules": [],
        "team": None,
        "bot_answers_while_closed": False,
        "hand_off_on_repeat": True,
    }

    await create_team(company.client, name="Jurídico", slug="juridico")
    await create_team(company.client, name="Atendimento", slug="atendimento")
    handoff = {
        "rules": [
            {"name": "legal", "keywords": ["procon", "advogado", "processo judicial"], "team": "juridico"},
            {"name": "cancelar", "keywords": ["cancelar assinatura"], "team": None},
        ],
        "team": "atendimento",
        "bot_answers_while_closed": True,
        "hand_off_on_repeat": False,
    }
    r = await company.client.put("/v1/company/handoff", json=handoff)
    assert r.status_code == 200, r.text
    assert r.json() == handoff
    assert (await company.client.get("/v1/company/handoff")).json() == handoff

    bad = {
        "a rule's unknown team": (
            {**handoff, "rules": [{"name": "x", "keywords": ["xx"], "team": "nenhum"}]},
            "rules[0].team",
        ),
        "an unknown default team": ({**handoff, "team": "nenhum"}, "team"),
        "no keywords": ({**handoff, "rules": [{"name": "x", "keywords": []}]}, "rules.0.keywords"),
        "a one-letter keyword": (
            {**handoff, "rules": [{"name": "x", "keywords": ["a"]}]},
            "rules.0.keywords.0",
        ),
    }
    for what, (body, field) in bad.items():
        r = await company.client.put("/v1/company/handoff", json=body)
        assert r.status_code == 422, (what, r.text)
        assert field in fields_of(r), (what, r.text)
        assert (await company.client.get("/v1/company/handoff")).json() == handoff, what


async def test_a_put_of_one_handoff_setting_keeps_the_others(company: CompanyCtx) -> None:
    """Turning the flag on with `{"bot_answers_while_closed": true}` (as docs/HANDOFF.md shows)
    must not delete the company's rules or default team."""
    await create_team(company.client, name="Jurídico", slug="juridico")
    rules = [{"name": "legal", "keywords": ["procon", "advogado"], "team": "juridico"}]
    r = await company.client.put(
        "/v1/company/handoff", json={"rules": rules, "team": "juridico", "hand_off_on_repeat": False}
    )
    assert r.status_code == 200, r.text

    r = await company.client.put("/v1/company/handoff", json={"bot_answers_while_closed": True})
    assert r.status_code == 200, r.text
    expected = {
        "rules": rules,
        "team": "juridico",
        "bot_answers_while_closed": True,
        "hand_off_on_repeat": False,
    }
    assert r.json() == expected
    assert (await company.client.get("/v1/company/handoff")).json() == expected

    # PATCH does the same; null clears the default team, [] removes every rule
    r = await company.client.patch("/v1/company/handoff", json={"team": None})
    assert r.status_code == 200, r.text
    assert r.json() == {**expected, "team": None}
    r = await company.client.put("/v1/company/handoff", json={"rules": []})
    assert (await company.client.get("/v1/company/handoff")).json() == {**expected, "team": None, "rules": []}
    # a refused change changes nothing
    r = await company.client.put("/v1/company/handoff", json={"team": "nenhum", "hand_off_on_repeat": True})
    assert r.status_code == 422, r.text
    assert (await company.client.get("/v1/company/handoff")).json() == {**expected, "team": None, "rules": []}


# teams


async def test_teams_are_created_listed_replaced_and_deleted(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    ana, _ = await add_member(runtime, company, Role.agent, "Ana")
    bruno, _ = await add_member(runtime, company, Role.agent, "Bruno")
    stranger, _ = await add_member(runtime, other_company, Role.agent, "Outsider")

    financeiro = await create_team(company.client, name="Financeiro", members=[ana, bruno])
    assert financeiro["slug"] == "financeiro" and financeiro["hours"] is None
    assert sorted(financeiro["members"]) == sorted([ana, bruno])
    team_hours = {"timezone": "America/Sao_Paulo", "weekly": {"monday": [{"start": "09:00", "end": "17:00"}]}}
    suporte = await create_team(
        company.client, name="Suporte Técnico", slug="suporte", members=[ana], hours=team_hours
    )
    assert suporte["slug"] == "suporte" and suporte["members"] == [ana]
    assert suporte["hours"]["weekly"]["monday"][0]["start"] == "09:00"

    listed = (await company.client.get("/v1/teams")).json()
    assert [(t["slug"], sorted(t["members"])) for t in listed] == [
        ("financeiro", sorted([ana, bruno])),
        ("suporte", [ana]),
    ]
    agents = {a["user_id"]: a for a in (await company.client.get("/v1/agents")).json()}
    assert sorted(agents[ana]["teams"]) == ["financeiro", "suporte"]
    assert agents[bruno]["teams"] == ["financeiro"]

    # replace by slug: new name, no hours, one member
    r = await company.client.put(
        "/v1/teams/suporte", json={"name": "Suporte", "slug": "suporte", "members": [bruno]}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["name"], r.json()["hours"], r.json()["members"]) == (
        suporte["id"],
        "Suporte",
        None,
        [bruno],
    )
    # and by id
    r = await company.client.put(
        f"/v1/teams/{financeiro['id']}", json={"name": "Financeiro", "members": [ana, ana]}
    )
    assert r.status_code == 200 and r.json()["members"] == [ana], r.text

    snapshot = (await company.client.get("/v1/teams")).json()
    taken = {
        "a slug in use": ("post", "/v1/teams", {"name": "Outro", "slug": "suporte"}),
        "a name whose slug is in use": ("post", "/v1/teams", {"name": "Financeiro"}),
        "renamed onto another's slug": (
            "put",
            "/v1/teams/suporte",
            {"name": "Suporte", "slug": "financeiro"},
        ),
    }
    for what, (method, path, body) in taken.items():
        r = await company.client.request(method.upper(), path, json=body)
        assert r.status_code == 409, (what, r.text)
        assert r.json()["field"] == "slug" and "already exists" in r.json()["detail"], (what, r.text)
        assert (await company.client.get("/v1/teams")).json() == snapshot, what
    bad = {
        "a member of another company": (
            "post",
            "/v1/teams",
            {"name": "Vendas", "members": [stranger]},
            "members[0]",
        ),
        "a second member nobody knows": (
            "put",
            "/v1/teams/suporte",
            {"name": "Suporte", "members": [bruno, str(uuid.uuid4())]},
            "members[1]",
        ),
        "a member id that is no id": (
            "post",
            "/v1/teams",
            {"name": "Vendas", "members": ["ana"]},
            "members.0",
        ),
        "a slug with capitals": ("post", "/v1/teams", {"name": "Vendas", "slug": "Vendas"}, "slug"),
        "an unknown team": ("put", "/v1/teams/nenhum", {"name": "Nenhum"}, "team"),
        "team hours that overlap": (
            "post",
            "/v1/teams",
            {
                "name": "Vendas",
                "hours": _with(
                    "weekly.monday", [{"start": "08:00", "end": "12:00"}, {"start": "10:00", "end": "14:00"}]
                ),
            },
            "hours.weekly.monday",
        ),
        "team hours in no timezone": (
            "post",
            "/v1/teams",
            {"name": "Vendas", "hours": _with("timezone", "Mars/Olympus")},
            "hours.timezone",
        ),
    }
    for what, (method, path, body, field) in bad.items():
        r = await company.client.request(method.upper(), path, json=body)
        assert r.status_code == 422, (what, r.text)
        assert field in fields_of(r), (what, r.text)
        if field.startswith("hours"):
            assert r.json()["field"].startswith("hours."), r.text
        assert (await company.client.get("/v1/teams")).json() == snapshot, what

    r = await company.client.delete("/v1/teams/suporte")
    assert r.status_code == 204, r.text
    assert [t["slug"] for t in (await company.client.get("/v1/teams")).json()] == ["financeiro"]
    r = await company.client.delete("/v1/teams/suporte")
    assert r.status_code == 422 and r.json()["field"] == "team", r.text
    agents = {a["user_id"]: a for a in (await company.client.get("/v1/agents")).json()}
    assert agents[bruno]["teams"] == []


async def test_one_slug_created_twice_at_once_is_refused_with_409_not_a_server_error(
    company: CompanyCtx, runtime: Runtime
) -> None:
    """Both requests pass the "slug in use?" check before either commits; the second's insert
    then meets the first's unique slug, and is answered like any taken slug."""
    body = {"name": "Vendas", "slug": "vendas"}
    both = await asyncio.gather(*(company.client.post("/v1/teams", json=body) for _ in range(2)))
    assert sorted(r.status_code for r in both) == [201, 409], [r.text for r in both]
    [refused] = [r for r in both if r.status_code == 409]
    assert refused.json() == {
        "detail": "slug: a team 'vendas' already exists",
        "code": "conflict",
        "field": "slug",
    }

    # the same race, held open: the second insert waits on the first's uncommitted slug
    async with runtime.db.transaction(company.id) as first:
        await teams.put_team(first, None, name="Suporte", slug="suporte", hours=None, members=[])

        async def second() -> None:
            async with runtime.db.transaction(company.id) as session:
                await teams.put_team(session, None, name="Suporte 2", slug="suporte", hours=None, members=[])

        racing = asyncio.create_task(second())
        deadline = time.monotonic() + 20
        while not await inserting_teams_blocked(runtime):
            assert time.monotonic() < deadline and not racing.done(), "the second insert never waited"
            await asyncio.sleep(0.05)
    with pytest.raises(Conflict) as raised:
        await racing
    assert (raised.value.message, raised.value.field) == ("slug: a team 'suporte' already exists", "slug")
    assert sorted(t["slug"] for t in (await company.client.get("/v1/teams")).json()) == ["suporte", "vendas"]


async def inserting_teams_blocked(runtime: Runtime) -> bool:
    async with runtime.db.transaction() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO teams%'"
            )
        )
    return bool(waiting)


async def test_a_team_slug_from_an_accented_name_keeps_its_letters(company: CompanyCtx) -> None:
    # "Jurídico" is the legal team: its handoff rules name it "juridico", not "jur-dico"
    assert (await create_team(company.client, name="Jurídico"))["slug"] == "juridico"
    assert (await create_team(company.client, name="Suporte Técnico"))["slug"] == "suporte-tecnico"


# agents and availability


async def test_agents_set_their_own_availability_and_admins_anyones(
    company: CompanyCtx, runtime: Runtime, clock: Clock
) -> None:
    at = datetime(2026, 3, 4, 13, 0, tzinfo=UTC)
    clock.at(at)
    ana, ana_email = await add_member(runtime, company, Role.agent, "Ana")
    bruno, _ = await add_member(runtime, company, Role.agent, "Bruno")
    viewer, _ = await add_member(runtime, company, Role.viewer, "Vera")

    agents = (await company.client.get("/v1/agents")).json()
    assert {a["user_id"] for a in agents} == {ana, bruno}  # a viewer is no agent
    ana_row = next(a for a in agents if a["user_id"] == ana)
    assert (ana_row["email"], ana_row["name"], ana_row["role"]) == (ana_email, "Ana", "agent")
    assert all(a["availability"] == "offline" and a["availability_changed_at"] is None for a in agents)

    ana_key = await new_key(runtime, company, Role.agent, user_email=ana_email)
    async with company.with_key(ana_key) as ana_client:
        r = await ana_client.put("/v1/agents/me/availability", json={"availability": "online"})
        assert r.status_code == 200, r.text
        assert (r.json()["user_id"], r.json()["availability"]) == (ana, "online")
        assert instant(r.json()["availability_changed_at"]) == at

        r = await ana_client.put(f"/v1/agents/{bruno}/availability", json={"availability": "online"})
        assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text

        r = await ana_client.put(f"/v1/agents/{ana}/availability", json={"availability": "away"})
        assert r.status_code == 200 and r.json()["availability"] == "away", r.text

        r = await ana_client.put("/v1/agents/me/availability", json={"availability": "busy"})
        assert r.status_code == 422 and "availability" in fields_of(r), r.text
        r = await ana_client.put("/v1/agents/me/availability", json={"availability": "online", "x": 1})
        assert r.status_code == 422 and "x" in fields_of(r), r.text

    # the company's (non-personal) admin key sets anyone's, but has no "me"
    r = await company.client.put(f"/v1/agents/{bruno}/availability", json={"availability": "away"})
    assert r.status_code == 200 and r.json()["availability"] == "away", r.text
    r = await company.client.put("/v1/agents/me/availability", json={"availability": "online"})
    assert r.status_code == 422 and r.json()["field"] == "agent", r.text
    r = await company.client.put("/v1/agents/ana/availability", json={"availability": "online"})
    assert r.status_code == 422 and r.json()["field"] == "agent", r.text
    r = await company.client.put(f"/v1/agents/{viewer}/availability", json={"availability": "online"})
    assert r.status_code == 422 and "is a viewer, not an agent" in r.json()["detail"], r.text
    r = await company.client.put(f"/v1/agents/{uuid.uuid4()}/availability", json={"availability": "online"})
    assert r.status_code == 404, r.text

    # a non-personal agent key is no one: it may set no one's availability
    agent_key = await new_key(runtime, company, Role.agent)
    async with company.with_key(agent_key) as shared:
        r = await shared.put(f"/v1/agents/{bruno}/availability", json={"availability": "online"})
        assert r.status_code == 403, r.text
        r = await shared.put("/v1/agents/me/availability", json={"availability": "online"})
        assert r.status_code == 422 and r.json()["field"] == "agent", r.text

    final = {a["user_id"]: a["availability"] for a in (await company.client.get("/v1/agents")).json()}
    assert final == {ana: "away", bruno: "away"}


# tenancy isolation


async def test_one_company_reaches_none_of_anothers_teams_or_agents(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    b_agent, _ = await add_member(runtime, other_company, Role.agent, "Beatriz")
    b_team = await create_team(other_company.client, name="Suporte", slug="suporte", members=[b_agent])
    b_teams = (await other_company.client.get("/v1/teams")).json()
    b_agents = (await other_company.client.get("/v1/agents")).json()

    assert (await company.client.get("/v1/teams")).json() == []
    assert (await company.client.get("/v1/agents")).json() == []
    for ref in ("suporte", b_team["id"]):
        r = await company.client.put(f"/v1/teams/{ref}", json={"name": "Tomado", "members": []})
        assert r.status_code in (404, 422), r.text
        r = await company.client.delete(f"/v1/teams/{ref}")
        assert r.status_code in (404, 422), r.text
    r = await company.client.put(
        "/v1/company/handoff", json={"rules": [{"name": "x", "keywords": ["xx"], "team": b_team["id"]}]}
    )
    assert r.status_code == 422 and r.json()["field"] == "rules[0].team", r.text
    r = await company.client.post("/v1/teams", json={"name": "Vendas", "members": [b_agent]})
    assert r.status_code == 422 and r.json()["field"] == "members[0]", r.text
    r = await company.client.put(f"/v1/agents/{b_agent}/availability", json={"availability": "online"})
    assert r.status_code == 404, r.text

    # the same slug in A is A's own team
    a_team = await create_team(company.client, name="Suporte", slug="suporte")
    assert a_team["id"] != b_team["id"]
    r = await company.client.put("/v1/teams/suporte", json={"name": "Suporte A", "slug": "suporte"})
    assert r.status_code == 200 and r.json()["id"] == a_team["id"], r.text
    assert (await company.client.delete("/v1/teams/suporte")).status_code == 204

    assert (await other_company.client.get("/v1/teams")).json() == b_teams
    assert (await other_company.client.get("/v1/agents")).json() == b_agents
    assert b_agents[0]["availability"] == "offline"


def test_a_stored_schedule_that_no_longer_validates_reads_as_always_open() -> None:
    """(A ``holidays`` upgrade may drop a subdivision): a handoff must still reach people."""
    from atende.hours import ALWAYS_OPEN
    from atende.teams.settings import schedule_of

    stored = {"timezone": "America/Sao_Paulo", "holidays": {"country": "BR", "subdiv": "GONE"}}
    assert schedule_of(stored) is ALWAYS_OPEN
