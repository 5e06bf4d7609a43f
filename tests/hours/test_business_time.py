"""Business-time arithmetic at fixed instants: is_open, next_open, next_close, business_seconds.

Every expectation is written as wall-clock time in the schedule's zone; the comments give the
day of the week, because the weekly pattern is what decides.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from atende.hours import (
    ALWAYS_OPEN,
    Schedule,
    business_seconds,
    business_time,
    is_open,
    next_close,
    next_open,
    parse_schedule,
)

SP = ZoneInfo("America/Sao_Paulo")
NY = ZoneInfo("America/New_York")
LISBON = ZoneInfo("Europe/Lisbon")
HOUR = 3600.0
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def iv(start: str, end: str, *, overnight: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"start": start, "end": end}
    if overnight:
        out["overnight"] = True
    return out


def sp(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SP)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, *, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY, fold=fold)


def lis(y: int, mo: int, d: int, h: int = 0, mi: int = 0, *, fold: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=LISBON, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


OFFICE = parse_schedule(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [iv("08:00", "12:00"), iv("13:00", "18:00")] for day in WEEKDAYS},
    }
)

OFFICE_SP_HOLIDAYS = parse_schedule(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [iv("08:00", "12:00"), iv("13:00", "18:00")] for day in WEEKDAYS},
        "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
        "closed_dates": [{"date": "2027-03-15", "name": "Inventory"}],
        "special_hours": [
            {"date": "2027-02-10", "intervals": [iv("14:00", "18:00")]},  # Ash Wednesday, a holiday
            {"date": "2027-03-20", "intervals": [iv("09:00", "13:00")]},  # a Saturday
            {"date": "2027-03-19", "intervals": []},  # a Friday, closed
        ],
    }
)

OFFICE_SP_PUBLIC_ONLY = parse_schedule(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [iv("08:00", "12:00"), iv("13:00", "18:00")] for day in WEEKDAYS},
        "holidays": {"country": "BR", "subdiv": "SP"},
    }
)

OFFICE_SP_SKIP_CARNIVAL = parse_schedule(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [iv("08:00", "12:00"), iv("13:00", "18:00")] for day in WEEKDAYS},
        "holidays": {
            "country": "BR",
            "subdiv": "SP",
            "categories": ["public", "optional"],
            "skip": ["Carnival"],
        },
    }
)

NIGHT_SHIFT = parse_schedule(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [iv("22:00", "06:00", overnight=True)] for day in WEEKDAYS},
        "holidays": {"country": "BR", "subdiv": "SP"},
    }
)

ALWAYS_CLOSED = parse_schedule({"timezone": "America/Sao_Paulo", "weekly": {}})


def whole_day(zone: str, day: str) -> Schedule:
    return parse_schedule({"timezone": zone, "weekly": {day: [iv("00:00", "24:00")]}})


def sunday(zone: str, *intervals: dict[str, Any]) -> Schedule:
    return parse_schedule({"timezone": zone, "weekly": {"sunday": list(intervals)}})


# --- is_open ------------------------------------------------------------------------------------

IS_OPEN = [
    # the office: 2027-03-01 is a Monday
    pytest.param(OFFICE, sp(2027, 3, 1, 7, 59), False, id="office-before-opening"),
    pytest.param(OFFICE, sp(2027, 3, 1, 8, 0), True, id="office-at-opening"),
    pytest.param(OFFICE, sp(2027, 3, 1, 11, 59), True, id="office-late-morning"),
    pytest.param(OFFICE, sp(2027, 3, 1, 12, 0), False, id="office-lunch-starts-closed"),
    pytest.param(OFFICE, sp(2027, 3, 1, 12, 30), False, id="office-at-lunch"),
    pytest.param(OFFICE, sp(2027, 3, 1, 13, 0), True, id="office-after-lunch"),
    pytest.param(OFFICE, sp(2027, 3, 1, 17, 59), True, id="office-before-closing"),
    pytest.param(OFFICE, sp(2027, 3, 1, 18, 0), False, id="office-at-closing"),
    pytest.param(OFFICE, sp(2027, 3, 6, 10, 0), False, id="office-saturday"),
    pytest.param(OFFICE, sp(2027, 3, 7, 10, 0), False, id="office-sunday"),
    pytest.param(OFFICE, utc(2027, 3, 1, 11, 0), True, id="office-utc-instant-is-08:00-local"),
    pytest.param(OFFICE, utc(2027, 3, 1, 10, 59), False, id="office-utc-instant-is-07:59-local"),
    pytest.param(
        OFFICE, datetime(2027, 3, 1, 20, 0, tzinfo=ZoneInfo("Asia/Tokyo")), True, id="office-tokyo-instant"
    ),
    pytest.param(OFFICE, sp(2027, 2, 8, 10, 0), True, id="office-without-holidays-on-carnival"),
    # BR + SP holidays, public and optional
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 8, 10, 0), False, id="carnival-monday-closed"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 9, 10, 0), False, id="carnival-tuesday-closed"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 10, 10, 0), False, id="ash-wednesday-morning-closed"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 10, 14, 0), True, id="ash-wednesday-special-afternoon-open"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 10, 17, 59), True, id="ash-wednesday-special-before-close"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 11, 10, 0), True, id="thursday-after-carnival-open"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 5, 27, 10, 0), False, id="corpus-christi-closed"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 7, 9, 10, 0), False, id="sao-paulo-state-holiday-closed"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 3, 15, 10, 0), False, id="company-closed-date"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 3, 16, 10, 0), True, id="day-after-company-closed-date"),
    pytest.param(
        OFFICE_SP_HOLIDAYS, sp(2027, 3, 19, 10, 0), False, id="special-hours-with-no-interval-close"
    ),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 3, 20, 10, 0), True, id="special-hours-on-a-saturday-open"),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 3, 20, 13, 0), False, id="special-saturday-after-close"),
    pytest.param(
        OFFICE_SP_PUBLIC_ONLY, sp(2027, 2, 8, 10, 0), True, id="carnival-open-without-optional-category"
    ),
    pytest.param(
        OFFICE_SP_PUBLIC_ONLY, sp(2027, 5, 27, 10, 0), True, id="corpus-christi-open-without-optional"
    ),
    pytest.param(OFFICE_SP_PUBLIC_ONLY, sp(2027, 9, 7, 10, 0), False, id="independence-day-public-closed"),
    pytest.param(OFFICE_SP_SKIP_CARNIVAL, sp(2027, 2, 8, 10, 0), True, id="skipped-carnival-monday-open"),
    pytest.param(OFFICE_SP_SKIP_CARNIVAL, sp(2027, 2, 9, 10, 0), True, id="skipped-carnival-tuesday-open"),
    pytest.param(
        OFFICE_SP_SKIP_CARNIVAL, sp(2027, 2, 10, 10, 0), False, id="skip-leaves-ash-wednesday-closed"
    ),
    pytest.param(
        OFFICE_SP_SKIP_CARNIVAL, sp(2027, 5, 27, 10, 0), False, id="skip-leaves-corpus-christi-closed"
    ),
    # the night shift; 2027-09-07 (a Tuesday) is Independence Day
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 6, 21, 59), False, id="night-before-shift"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 6, 22, 0), True, id="night-shift-starts"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 0, 0), True, id="night-shift-at-midnight-into-holiday"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 5, 59), True, id="night-shift-holiday-morning"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 6, 0), False, id="night-shift-ends-on-holiday"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 23, 0), False, id="no-shift-starting-on-the-holiday"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 8, 3, 0), False, id="no-holiday-shift-tail-next-morning"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 8, 22, 0), True, id="wednesday-shift-runs"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 11, 3, 0), True, id="friday-shift-runs-into-saturday"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 11, 23, 0), False, id="no-saturday-shift"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 13, 3, 0), False, id="no-sunday-shift-tail-on-monday"),
    # always closed / always open
    pytest.param(ALWAYS_CLOSED, sp(2027, 3, 1, 10, 0), False, id="always-closed"),
    pytest.param(ALWAYS_OPEN, utc(2027, 3, 1, 10, 0), True, id="always-open"),
    pytest.param(ALWAYS_OPEN, ny(2027, 3, 14, 3, 0), True, id="always-open-across-dst"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), IS_OPEN)
def test_is_open_at_fixed_instants(schedule: Schedule, at: datetime, expected: bool) -> None:
    assert is_open(schedule, at) is expected


def test_sunday_overnight_shift_runs_into_monday_morning() -> None:
    schedule = parse_schedule(
        {"timezone": "America/Sao_Paulo", "weekly": {"sunday": [iv("22:00", "06:00", overnight=True)]}}
    )
    assert is_open(schedule, sp(2027, 3, 8, 3, 0))  # Monday
    assert not is_open(schedule, sp(2027, 3, 8, 6, 0))
    assert next_close(schedule, sp(2027, 3, 8, 3, 0)) == sp(2027, 3, 8, 6, 0)
    assert next_open(schedule, sp(2027, 3, 8, 6, 0)) == sp(2027, 3, 14, 22, 0)


# --- next_open ----------------------------------------------------------------------------------

NEXT_OPEN = [
    pytest.param(OFFICE, sp(2027, 3, 1, 10, 0), sp(2027, 3, 1, 10, 0), id="open-now-is-now"),
    pytest.param(OFFICE, sp(2027, 3, 1, 6, 0), sp(2027, 3, 1, 8, 0), id="early-morning"),
    pytest.param(OFFICE, sp(2027, 3, 1, 12, 0), sp(2027, 3, 1, 13, 0), id="at-lunch"),
    pytest.param(OFFICE, sp(2027, 3, 1, 18, 0), sp(2027, 3, 2, 8, 0), id="evening"),
    pytest.param(OFFICE, sp(2027, 3, 5, 18, 0), sp(2027, 3, 8, 8, 0), id="friday-evening-to-monday"),
    pytest.param(OFFICE, sp(2027, 3, 6, 12, 0), sp(2027, 3, 8, 8, 0), id="saturday-to-monday"),
    pytest.param(
        OFFICE,
        sp(
            2027,
            3,
            1,
            10,
            0,
        )
        + timedelta(microseconds=1),
        sp(2027, 3, 1, 10, 0) + timedelta(microseconds=1),
        id="microseconds-kept",
    ),
    # Friday 2027-02-05 evening: Carnival Mon/Tue closed, Ash Wednesday opens at 14:00
    pytest.param(
        OFFICE_SP_HOLIDAYS, sp(2027, 2, 5, 18, 0), sp(2027, 2, 10, 14, 0), id="over-carnival-to-ash-wednesday"
    ),
    pytest.param(
        OFFICE_SP_PUBLIC_ONLY,
        sp(2027, 2, 5, 18, 0),
        sp(2027, 2, 8, 8, 0),
        id="carnival-works-without-optional",
    ),
    pytest.param(
        OFFICE_SP_SKIP_CARNIVAL, sp(2027, 2, 5, 18, 0), sp(2027, 2, 8, 8, 0), id="skipped-carnival-works"
    ),
    # Wednesday 2027-05-26 evening: Corpus Christi Thursday closed
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 5, 26, 18, 0), sp(2027, 5, 28, 8, 0), id="over-corpus-christi"),
    pytest.param(
        OFFICE_SP_HOLIDAYS, sp(2027, 3, 12, 18, 0), sp(2027, 3, 16, 8, 0), id="over-company-closed-date"
    ),
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 3, 18, 18, 0), sp(2027, 3, 20, 9, 0), id="to-special-saturday"),
    pytest.param(
        OFFICE_SP_HOLIDAYS, sp(2027, 12, 23, 18, 0), sp(2027, 12, 27, 8, 0), id="over-christmas-eve"
    ),
    # the night shift; Tuesday 2027-09-07 is a holiday
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 6, 12, 0), sp(2027, 9, 6, 22, 0), id="night-monday-noon"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 6, 0), sp(2027, 9, 8, 22, 0), id="night-holiday-shift-skipped"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 3, 0), sp(2027, 9, 7, 3, 0), id="night-open-on-holiday-morning"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 11, 6, 0), sp(2027, 9, 13, 22, 0), id="night-weekend"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), NEXT_OPEN)
def test_next_open_at_fixed_instants(schedule: Schedule, at: datetime, expected: datetime) -> None:
    assert next_open(schedule, at) == expected


def test_next_open_is_returned_in_utc() -> None:
    opens = next_open(OFFICE, sp(2027, 3, 1, 6, 0))
    assert opens is not None
    assert opens.utcoffset() == timedelta(0)
    assert opens == utc(2027, 3, 1, 11, 0)


# --- next_close ---------------------------------------------------------------------------------

NEXT_CLOSE = [
    pytest.param(OFFICE, sp(2027, 3, 1, 8, 0), sp(2027, 3, 1, 12, 0), id="morning-closes-at-lunch"),
    pytest.param(OFFICE, sp(2027, 3, 1, 12, 0), sp(2027, 3, 1, 18, 0), id="at-lunch-next-stretch-ends-18"),
    pytest.param(OFFICE, sp(2027, 3, 1, 13, 0), sp(2027, 3, 1, 18, 0), id="afternoon"),
    pytest.param(OFFICE, sp(2027, 3, 1, 18, 0), sp(2027, 3, 2, 12, 0), id="evening-next-morning-stretch"),
    pytest.param(OFFICE, sp(2027, 3, 5, 19, 0), sp(2027, 3, 8, 12, 0), id="friday-evening"),
    pytest.param(
        OFFICE_SP_HOLIDAYS, sp(2027, 2, 5, 19, 0), sp(2027, 2, 10, 18, 0), id="ash-wednesday-special"
    ),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 6, 23, 0), sp(2027, 9, 7, 6, 0), id="night-shift-into-holiday"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 12, 0), sp(2027, 9, 9, 6, 0), id="night-after-holiday"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), NEXT_CLOSE)
def test_next_close_at_fixed_instants(schedule: Schedule, at: datetime, expected: datetime) -> None:
    assert next_close(schedule, at) == expected


def test_next_close_joins_an_overnight_shift_with_the_next_mornings_interval() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Sao_Paulo",
            "weekly": {"monday": [iv("22:00", "06:00", overnight=True)], "tuesday": [iv("06:00", "10:00")]},
        }
    )
    assert next_close(schedule, sp(2027, 3, 1, 23, 0)) == sp(2027, 3, 2, 10, 0)
    assert business_seconds(schedule, sp(2027, 3, 1), sp(2027, 3, 3)) == 12 * HOUR


def test_next_close_joins_intervals_touching_at_midnight() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Sao_Paulo",
            "weekly": {
                "monday": [iv("20:00", "24:00")],
                "tuesday": [iv("00:00", "02:00"), iv("08:00", "09:00")],
            },
        }
    )
    assert next_close(schedule, sp(2027, 3, 1, 21, 0)) == sp(2027, 3, 2, 2, 0)


def test_next_close_of_an_always_open_schedule_is_none() -> None:
    assert next_close(ALWAYS_OPEN, utc(2027, 3, 1)) is None


def test_next_close_of_a_weekday_only_always_open_schedule_is_friday_midnight() -> None:
    schedule = parse_schedule(
        {"timezone": "UTC", "weekly": {day: [iv("00:00", "24:00")] for day in WEEKDAYS}}
    )
    assert next_close(schedule, utc(2027, 3, 2, 9, 0)) == utc(2027, 3, 6)
    assert next_close(schedule, utc(2027, 3, 6, 9, 0)) == utc(2027, 3, 13)


# --- business_seconds ---------------------------------------------------------------------------

BUSINESS = [
    pytest.param(OFFICE, sp(2027, 3, 1, 8, 0), sp(2027, 3, 1, 18, 0), 9 * HOUR, id="one-office-day"),
    pytest.param(OFFICE, sp(2027, 3, 1, 0, 0), sp(2027, 3, 2, 0, 0), 9 * HOUR, id="one-calendar-day"),
    pytest.param(OFFICE, sp(2027, 3, 1, 11, 0), sp(2027, 3, 1, 14, 0), 2 * HOUR, id="across-lunch"),
    pytest.param(OFFICE, sp(2027, 3, 1, 12, 10), sp(2027, 3, 1, 12, 50), 0.0, id="inside-lunch"),
    pytest.param(OFFICE, sp(2027, 3, 5, 17, 0), sp(2027, 3, 8, 9, 0), 2 * HOUR, id="over-a-weekend"),
    pytest.param(OFFICE, sp(2027, 3, 1), sp(2027, 3, 8), 45 * HOUR, id="a-whole-week"),
    pytest.param(OFFICE, sp(2027, 3, 1, 10, 0), sp(2027, 3, 1, 10, 0), 0.0, id="empty-span"),
    pytest.param(
        OFFICE,
        sp(2027, 3, 1, 10, 0),
        sp(
            2027,
            3,
            1,
            10,
            0,
        )
        + timedelta(microseconds=1),
        1e-6,
        id="one-microsecond",
    ),
    pytest.param(OFFICE, sp(2026, 1, 1), sp(2027, 1, 1), 261 * 9 * HOUR, id="the-whole-of-2026"),
    # Carnival week 2027: Mon/Tue closed, Ash Wednesday 14-18, Thu/Fri full
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 8), sp(2027, 2, 13), (4 + 9 + 9) * HOUR, id="carnival-week"),
    pytest.param(
        OFFICE_SP_PUBLIC_ONLY, sp(2027, 2, 8), sp(2027, 2, 13), 45 * HOUR, id="carnival-week-public-only"
    ),
    pytest.param(
        OFFICE_SP_SKIP_CARNIVAL, sp(2027, 2, 8), sp(2027, 2, 13), (9 + 9 + 9 + 9) * HOUR, id="skip-carnival"
    ),
    # Corpus Christi week: Thursday closed
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 5, 24), sp(2027, 5, 29), 36 * HOUR, id="corpus-christi-week"),
    pytest.param(
        OFFICE_SP_PUBLIC_ONLY, sp(2027, 5, 24), sp(2027, 5, 29), 45 * HOUR, id="corpus-christi-public-only"
    ),
    # week of 2027-03-15: Monday closed date, Friday special closed, Saturday special 09-13
    pytest.param(
        OFFICE_SP_HOLIDAYS, sp(2027, 3, 15), sp(2027, 3, 22), (9 * 3 + 4) * HOUR, id="closed-and-special"
    ),
    # the night shift: 8 h a night; the Monday night before the Tuesday holiday still runs
    pytest.param(
        NIGHT_SHIFT, sp(2027, 9, 6, 20, 0), sp(2027, 9, 7, 12, 0), 8 * HOUR, id="night-into-holiday"
    ),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 7, 12, 0), sp(2027, 9, 8, 12, 0), 0.0, id="holiday-night-off"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 6), sp(2027, 9, 13), 4 * 8 * HOUR, id="night-holiday-week"),
    pytest.param(NIGHT_SHIFT, sp(2027, 9, 13), sp(2027, 9, 20), 5 * 8 * HOUR, id="night-ordinary-week"),
    pytest.param(
        NIGHT_SHIFT, sp(2027, 9, 7, 3, 0), sp(2027, 9, 7, 4, 0), 1 * HOUR, id="night-inside-the-tail"
    ),
    pytest.param(ALWAYS_CLOSED, sp(2026, 1, 1), sp(2028, 12, 31), 0.0, id="always-closed"),
    pytest.param(ALWAYS_OPEN, utc(2027, 1, 1), utc(2028, 1, 1), 365 * 24 * HOUR, id="always-open-a-year"),
]


@pytest.mark.parametrize(("schedule", "start", "end", "seconds"), BUSINESS)
def test_business_seconds_between_fixed_instants(
    schedule: Schedule, start: datetime, end: datetime, seconds: float
) -> None:
    assert business_seconds(schedule, start, end) == pytest.approx(seconds, abs=1e-9)
    assert business_time(schedule, start, end) == timedelta(seconds=seconds)


def test_special_hours_count_a_previous_nights_shift_only_once() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Sao_Paulo",
            "weekly": {"monday": [iv("22:00", "06:00", overnight=True)]},
            "special_hours": [{"date": "2027-03-02", "intervals": [iv("00:00", "08:00")]}],  # the Tuesday
        }
    )
    assert business_seconds(schedule, sp(2027, 3, 1, 12, 0), sp(2027, 3, 2, 12, 0)) == 10 * HOUR
    assert next_close(schedule, sp(2027, 3, 1, 23, 0)) == sp(2027, 3, 2, 8, 0)
    assert is_open(schedule, sp(2027, 3, 2, 7, 0))


def test_special_hours_may_open_a_closed_company_date() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Sao_Paulo",
            "weekly": {"monday": [iv("08:00", "18:00")]},
            "closed_dates": [{"date": "2027-03-01"}],
            "special_hours": [{"date": "2027-03-01", "intervals": [iv("10:00", "11:00")]}],
        }
    )
    assert business_seconds(schedule, sp(2027, 3, 1), sp(2027, 3, 2)) == 1 * HOUR


# --- DST: America/New_York and Europe/Lisbon ------------------------------------------------------

DST_BUSINESS = [
    # New York, Sunday 2027-03-14: 02:00 EST becomes 03:00 EDT
    pytest.param(
        whole_day("America/New_York", "sunday"),
        ny(2027, 3, 13),
        ny(2027, 3, 16),
        23 * HOUR,
        id="ny-spring-day-23h",
    ),
    pytest.param(
        whole_day("America/New_York", "sunday"),
        ny(2027, 3, 7),
        ny(2027, 3, 8),
        24 * HOUR,
        id="ny-plain-sunday-24h",
    ),
    pytest.param(
        sunday("America/New_York", iv("01:00", "03:00")),
        ny(2027, 3, 14),
        ny(2027, 3, 15),
        1 * HOUR,
        id="ny-spring-01-03-is-1h",
    ),
    pytest.param(
        sunday("America/New_York", iv("00:00", "06:00")),
        ny(2027, 3, 14),
        ny(2027, 3, 15),
        5 * HOUR,
        id="ny-spring-00-06-is-5h",
    ),
    pytest.param(
        sunday("America/New_York", iv("03:00", "05:00")),
        ny(2027, 3, 14, 1, 30),
        ny(2027, 3, 14, 4, 0),
        1 * HOUR,
        id="ny-spring-from-before-the-gap",
    ),
    # New York, Sunday 2027-11-07: 02:00 EDT becomes 01:00 EST
    pytest.param(
        whole_day("America/New_York", "sunday"),
        ny(2027, 11, 6),
        ny(2027, 11, 9),
        25 * HOUR,
        id="ny-fall-day-25h",
    ),
    pytest.param(
        sunday("America/New_York", iv("01:00", "03:00")),
        ny(2027, 11, 7),
        ny(2027, 11, 8),
        3 * HOUR,
        id="ny-fall-01-03-is-3h",
    ),
    pytest.param(
        sunday("America/New_York", iv("00:00", "06:00")),
        ny(2027, 11, 7),
        ny(2027, 11, 8),
        7 * HOUR,
        id="ny-fall-00-06-is-7h",
    ),
    pytest.param(
        sunday("America/New_York", iv("01:00", "03:00")),
        ny(2027, 11, 7, 1, 30, fold=1),
        ny(2027, 11, 7, 2, 30),
        1 * HOUR,
        id="ny-fall-from-the-second-01:30",
    ),
    pytest.param(
        parse_schedule(
            {"timezone": "America/New_York", "weekly": {"saturday": [iv("22:00", "06:00", overnight=True)]}}
        ),
        ny(2027, 11, 6),
        ny(2027, 11, 8),
        9 * HOUR,
        id="ny-fall-overnight-shift-9h",
    ),
    pytest.param(
        parse_schedule(
            {"timezone": "America/New_York", "weekly": {"saturday": [iv("22:00", "06:00", overnight=True)]}}
        ),
        ny(2027, 3, 13),
        ny(2027, 3, 15),
        7 * HOUR,
        id="ny-spring-overnight-shift-7h",
    ),
    # Lisbon, Sunday 2027-03-28: 01:00 WET becomes 02:00 WEST
    pytest.param(
        whole_day("Europe/Lisbon", "sunday"),
        lis(2027, 3, 27),
        lis(2027, 3, 30),
        23 * HOUR,
        id="lisbon-spring-day-23h",
    ),
    pytest.param(
        sunday("Europe/Lisbon", iv("00:00", "03:00")),
        lis(2027, 3, 28),
        lis(2027, 3, 29),
        2 * HOUR,
        id="lisbon-spring-00-03-is-2h",
    ),
    pytest.param(
        sunday("Europe/Lisbon", iv("02:00", "04:00")),
        lis(2027, 3, 28),
        lis(2027, 3, 29),
        2 * HOUR,
        id="lisbon-spring-02-04-is-2h",
    ),
    # Lisbon, Sunday 2027-10-31: 02:00 WEST becomes 01:00 WET
    pytest.param(
        whole_day("Europe/Lisbon", "sunday"),
        lis(2027, 10, 30),
        lis(2027, 11, 2),
        25 * HOUR,
        id="lisbon-fall-day-25h",
    ),
    pytest.param(
        sunday("Europe/Lisbon", iv("01:00", "03:00")),
        lis(2027, 10, 31),
        lis(2027, 11, 1),
        3 * HOUR,
        id="lisbon-fall-01-03-is-3h",
    ),
    # no DST in São Paulo since 2019: the first Sunday of November used to spring forward
    pytest.param(
        whole_day("America/Sao_Paulo", "sunday"),
        sp(2027, 11, 6),
        sp(2027, 11, 9),
        24 * HOUR,
        id="sao-paulo-no-dst-2027",
    ),
    pytest.param(
        whole_day("America/Sao_Paulo", "sunday"),
        sp(2018, 11, 3),
        sp(2018, 11, 6),
        23 * HOUR,
        id="sao-paulo-had-dst-2018",
    ),
]


@pytest.mark.parametrize(("schedule", "start", "end", "seconds"), DST_BUSINESS)
def test_business_time_is_exact_across_dst_changes(
    schedule: Schedule, start: datetime, end: datetime, seconds: float
) -> None:
    assert business_time(schedule, start, end) == timedelta(seconds=seconds)


def test_next_open_across_the_new_york_spring_gap() -> None:
    schedule = sunday("America/New_York", iv("03:00", "05:00"))
    # 01:59 EST is one minute before 03:00 EDT
    assert next_open(schedule, ny(2027, 3, 14, 1, 59)) == ny(2027, 3, 14, 3, 0)
    assert next_open(schedule, ny(2027, 3, 14, 1, 59)) - ny(2027, 3, 14, 1, 59) == timedelta(minutes=1)
    assert not is_open(schedule, ny(2027, 3, 14, 1, 59))
    assert is_open(schedule, utc(2027, 3, 14, 7, 0))  # 03:00 EDT
    assert next_close(schedule, ny(2027, 3, 14, 1, 59)) == ny(2027, 3, 14, 5, 0)


def test_next_open_and_close_across_the_new_york_fall_back() -> None:
    schedule = sunday("America/New_York", iv("01:00", "03:00"))
    saturday = ny(2027, 11, 6, 12, 0)
    assert next_open(schedule, saturday) == utc(2027, 11, 7, 5, 0)  # the first 01:00, EDT
    assert next_close(schedule, saturday) == utc(2027, 11, 7, 8, 0)  # 03:00 EST
    assert is_open(schedule, ny(2027, 11, 7, 1, 30, fold=1))  # the second 01:30, EST


def test_next_open_across_the_lisbon_spring_gap() -> None:
    schedule = sunday("Europe/Lisbon", iv("02:00", "04:00"))
    assert next_open(schedule, lis(2027, 3, 28, 0, 30)) == utc(2027, 3, 28, 1, 0)  # 02:00 WEST
    assert not is_open(schedule, lis(2027, 3, 28, 0, 59))


@pytest.mark.parametrize(
    ("zone", "start", "saturday_noon", "gap_ends"),
    [
        pytest.param(
            "America/New_York", "02:30", ny(2027, 3, 13, 12, 0), utc(2027, 3, 14, 7, 0), id="new-york"
        ),
        pytest.param("Europe/Lisbon", "01:30", lis(2027, 3, 27, 12, 0), utc(2027, 3, 28, 1, 0), id="lisbon"),
    ],
)
def test_interval_starting_inside_the_spring_gap_opens_when_the_gap_ends(
    zone: str, start: str, saturday_noon: datetime, gap_ends: datetime
) -> None:
    # business_time's docstring: "a wall-clock time skipped by the spring change counts from the
    # same instant as the hour after the gap"
    schedule = sunday(zone, iv(start, "05:00"))
    assert next_open(schedule, saturday_noon) == gap_ends
    assert is_open(schedule, gap_ends)


def test_interval_entirely_inside_the_spring_gap_is_empty() -> None:
    # business_time._day_periods: "an interval inside a DST gap is empty"
    schedule = sunday("America/New_York", iv("02:15", "02:45"))
    assert business_time(schedule, ny(2027, 3, 14), ny(2027, 3, 15)) == timedelta(0)


def test_interval_after_the_spring_gap_is_open_despite_an_interval_inside_the_gap() -> None:
    schedule = sunday("America/New_York", iv("02:15", "02:45"), iv("03:00", "04:00"))
    at = ny(2027, 3, 14, 3, 5)  # inside 03:00-04:00 EDT
    assert is_open(schedule, at)
    assert next_open(schedule, at) == at
    # whatever 02:15-02:45 stands for on that day, 03:00-04:00 EDT is an hour of it
    assert business_time(schedule, ny(2027, 3, 14), ny(2027, 3, 15)) >= timedelta(hours=1)


# --- always closed, naive instants, reversed spans -------------------------------------------------


def test_always_closed_schedule_never_opens() -> None:
    at = sp(2027, 3, 1, 10, 0)
    assert next_open(ALWAYS_CLOSED, at) is None
    assert next_close(ALWAYS_CLOSED, at) is None
    assert not is_open(ALWAYS_CLOSED, at)
    assert business_seconds(ALWAYS_CLOSED, at, at + timedelta(days=3000)) == 0.0


def test_schedule_open_only_on_a_holiday_never_opens() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Sao_Paulo",
            "weekly": {"monday": [iv("08:00", "12:00")]},
            "closed_dates": [{"date": "2027-03-01"}],
        }
    )
    assert next_open(schedule, sp(2027, 2, 28)) == sp(2027, 3, 8, 8, 0)


NAIVE = datetime(2027, 3, 1, 10, 0)
AWARE = sp(2027, 3, 1, 10, 0)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: is_open(OFFICE, NAIVE), id="is_open"),
        pytest.param(lambda: next_open(OFFICE, NAIVE), id="next_open"),
        pytest.param(lambda: next_close(OFFICE, NAIVE), id="next_close"),
        pytest.param(lambda: business_time(OFFICE, NAIVE, AWARE), id="business_time-start"),
        pytest.param(lambda: business_time(OFFICE, AWARE, NAIVE), id="business_time-end"),
        pytest.param(lambda: business_seconds(OFFICE, NAIVE, NAIVE), id="business_seconds"),
        pytest.param(lambda: is_open(ALWAYS_CLOSED, NAIVE), id="always-closed-is_open"),
    ],
)
def test_naive_datetimes_are_refused(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before start"):
        business_time(OFFICE, AWARE, AWARE - timedelta(microseconds=1))
    with pytest.raises(ValueError, match="before start"):
        business_seconds(ALWAYS_CLOSED, AWARE, AWARE - timedelta(days=1))


def test_instants_in_any_zone_give_the_same_answer() -> None:
    start, end = sp(2027, 3, 1, 9, 0), sp(2027, 3, 3, 15, 0)
    for zone in (UTC, NY, LISBON, ZoneInfo("Asia/Kolkata")):
        assert business_time(OFFICE, start.astimezone(zone), end.astimezone(zone)) == timedelta(
            hours=8 + 9 + 6
        )


# --- holiday names and the process locale ----------------------------------------------------------


def test_skip_by_english_name_works_whatever_the_process_locale() -> None:
    # HolidayCalendar: skip names holidays "in the calendar's own English names"; a server started
    # with a Portuguese locale must still skip Carnival
    code = textwrap.dedent(
        """
        from datetime import datetime
        from zoneinfo import ZoneInfo
        from atende.hours import is_open, parse_schedule
        s = parse_schedule({
            "timezone": "America/Sao_Paulo",
            "weekly": {"monday": [{"start": "08:00", "end": "18:00"}]},
            "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"],
                         "skip": ["Carnival"]},
        })
        print(is_open(s, datetime(2027, 2, 8, 10, 0, tzinfo=ZoneInfo("America/Sao_Paulo"))))
        print(s.holidays.name_of(datetime(2027, 12, 25).date()))
        """
    )
    env = {"LANGUAGE": "pt_BR", "LANG": "pt_BR.UTF-8", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    opened_on_carnival, christmas = run.stdout.splitlines()
    assert (opened_on_carnival, christmas) == ("True", "Christmas Day")
