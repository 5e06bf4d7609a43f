"""Validation of stored schedules: what parses, and what is refused with the field named."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from atende.hours import DAYS, InvalidSchedule, parse_schedule
from atende.hours.schedule import MINUTES_A_DAY, HolidayCalendar, Interval


def iv(start: str, end: str, *, overnight: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"start": start, "end": end}
    if overnight:
        out["overnight"] = True
    return out


def schedule(**fields: Any) -> dict[str, Any]:
    return {"timezone": "America/Sao_Paulo", **fields}


def weekly(**days: Any) -> dict[str, Any]:
    return schedule(weekly=days)


def minutes(clock: str) -> int:
    hours, mins = clock.split(":")
    return int(hours) * 60 + int(mins)


# --- what is refused, and where -----------------------------------------------------------------

INVALID: list[Any] = [
    # overlaps inside one day, whatever the order they are listed in
    pytest.param(
        weekly(monday=[iv("08:00", "12:00"), iv("11:00", "14:00")]),
        "weekly.monday",
        id="overlapping-intervals-in-a-day",
    ),
    pytest.param(
        weekly(monday=[iv("13:00", "18:00"), iv("08:00", "13:30")]),
        "weekly.monday",
        id="overlapping-intervals-listed-out-of-order",
    ),
    pytest.param(
        weekly(friday=[iv("08:00", "18:00"), iv("08:00", "18:00")]),
        "weekly.friday",
        id="the-same-interval-twice",
    ),
    pytest.param(
        weekly(monday=[iv("08:00", "18:00"), iv("22:00", "06:00", overnight=True), iv("23:00", "23:30")]),
        "weekly.monday",
        id="an-interval-inside-the-same-days-overnight-shift",
    ),
    # overnight tails running into the next day's intervals
    pytest.param(
        weekly(monday=[iv("22:00", "06:00", overnight=True)], tuesday=[iv("05:00", "12:00")]),
        "weekly.tuesday",
        id="overnight-tail-overlaps-next-morning",
    ),
    pytest.param(
        weekly(tuesday=[iv("20:00", "08:00", overnight=True)], wednesday=[iv("00:00", "01:00")]),
        "weekly.wednesday",
        id="overnight-tail-overlaps-next-midnight-interval",
    ),
    pytest.param(
        weekly(sunday=[iv("22:00", "06:00", overnight=True)], monday=[iv("05:59", "12:00")]),
        "weekly.monday",
        id="sunday-overnight-tail-overlaps-monday",
    ),
    pytest.param(
        weekly(
            monday=[iv("00:00", "01:00"), iv("09:00", "17:00")],
            sunday=[iv("23:00", "00:30", overnight=True)],
        ),
        "weekly.monday",
        id="sunday-overnight-tail-overlaps-monday-midnight",
    ),
    # an interval's own clock times
    pytest.param(
        weekly(monday=[iv("08:00", "12:00"), iv("18:00", "13:00")]),
        "weekly.monday[1].end",
        id="end-before-start",
    ),
    pytest.param(weekly(monday=[iv("09:00", "09:00")]), "weekly.monday[0].end", id="end-equal-to-start"),
    pytest.param(
        weekly(monday=[iv("08:00", "18:00", overnight=True)]),
        "weekly.monday[0].end",
        id="overnight-ending-after-its-start",
    ),
    pytest.param(
        weekly(monday=[iv("08:00", "08:00", overnight=True)]),
        "weekly.monday[0].end",
        id="overnight-ending-at-its-start",
    ),
    pytest.param(
        weekly(monday=[iv("22:00", "24:00", overnight=True)]),
        "weekly.monday[0].end",
        id="overnight-ending-at-24:00",
    ),
    pytest.param(weekly(monday=[iv("24:00", "24:00")]), "weekly.monday[0].start", id="24:00-as-start"),
    pytest.param(weekly(monday=[iv("08:00", "24:30")]), "weekly.monday[0].end", id="24:30"),
    pytest.param(weekly(monday=[iv("8:00", "12:00")]), "weekly.monday[0].start", id="one-digit-hour"),
    pytest.param(weekly(monday=[iv("08:00", "25:00")]), "weekly.monday[0].end", id="hour-25"),
    pytest.param(weekly(monday=[iv("08:60", "12:00")]), "weekly.monday[0].start", id="minute-60"),
    pytest.param(weekly(monday=[iv("0800", "12:00")]), "weekly.monday[0].start", id="no-colon"),
    pytest.param(weekly(monday=[iv("08:00:00", "12:00")]), "weekly.monday[0].start", id="with-seconds"),
    pytest.param(weekly(monday=[iv("8am", "12:00")]), "weekly.monday[0].start", id="am-pm"),
    pytest.param(weekly(monday=[iv("", "12:00")]), "weekly.monday[0].start", id="empty-start"),
    pytest.param(
        weekly(monday=[{"start": 800, "end": "12:00"}]), "weekly.monday[0].start", id="number-start"
    ),
    pytest.param(weekly(monday=[{"end": "12:00"}]), "weekly.monday[0].start", id="missing-start"),
    pytest.param(weekly(monday=[{"start": "08:00"}]), "weekly.monday[0].end", id="missing-end"),
    pytest.param(
        weekly(wednesday=[iv("08:00", "12:00"), iv("13:00", "18h")]), "weekly.wednesday[1].end", id="18h"
    ),
    pytest.param(
        weekly(monday=[{"start": "08:00", "end": "12:00", "overnight": "yes"}]),
        "weekly.monday[0].overnight",
        id="overnight-not-a-boolean",
    ),
    pytest.param(
        weekly(monday=[{"start": "08:00", "end": "12:00", "closed": True}]),
        "weekly.monday[0].closed",
        id="unknown-interval-field",
    ),
    pytest.param(weekly(monday=["08:00-12:00"]), "weekly.monday[0]", id="interval-not-an-object"),
    pytest.param(weekly(monday="08:00-12:00"), "weekly.monday", id="day-not-a-list"),
    pytest.param(weekly(monday={"start": "08:00", "end": "12:00"}), "weekly.monday", id="day-an-object"),
    # day names
    pytest.param(weekly(funday=[iv("08:00", "12:00")]), "weekly.funday", id="unknown-day"),
    pytest.param(weekly(Monday=[iv("08:00", "12:00")]), "weekly.Monday", id="capitalised-day"),
    pytest.param(weekly(segunda=[iv("08:00", "12:00")]), "weekly.segunda", id="day-in-portuguese"),
    pytest.param(weekly(mon=[iv("08:00", "12:00")]), "weekly.mon", id="abbreviated-day"),
    pytest.param(schedule(weekly=[[iv("08:00", "12:00")]]), "weekly", id="weekly-a-list"),
    # timezone
    pytest.param({"timezone": "America/Sao_Pablo"}, "timezone", id="unknown-timezone"),
    pytest.param({"timezone": "BRT"}, "timezone", id="abbreviation-as-timezone"),
    pytest.param({"timezone": "-03:00"}, "timezone", id="offset-as-timezone"),
    pytest.param({"timezone": ""}, "timezone", id="empty-timezone"),
    pytest.param({}, "timezone", id="missing-timezone"),
    pytest.param({"timezone": 3}, "timezone", id="number-timezone"),
    # holidays
    pytest.param(schedule(holidays={"country": "XX"}), "holidays.country", id="unknown-country"),
    pytest.param(schedule(holidays={"country": "Brazil"}), "holidays.country", id="country-name-not-code"),
    pytest.param(schedule(holidays={"subdiv": "SP"}), "holidays.country", id="missing-country"),
    pytest.param(
        schedule(holidays={"country": "BR", "subdiv": "XX"}), "holidays.subdiv", id="unknown-subdivision"
    ),
    pytest.param(
        schedule(holidays={"country": "BR", "subdiv": "CA"}),
        "holidays.subdiv",
        id="other-countrys-subdivision",
    ),
    pytest.param(
        schedule(holidays={"country": "BR", "categories": ["public", "fun"]}),
        "holidays.categories",
        id="unknown-holiday-category",
    ),
    pytest.param(
        schedule(holidays={"country": "BR", "categories": ["bank"]}),
        "holidays.categories",
        id="category-the-country-does-not-have",
    ),
    pytest.param(
        schedule(holidays={"country": "BR", "skip": "Carnival"}), "holidays.skip", id="skip-a-string"
    ),
    pytest.param(schedule(holidays={"country": "BR", "skip": [1]}), "holidays.skip", id="skip-not-names"),
    pytest.param(schedule(holidays="BR"), "holidays", id="holidays-a-string"),
    # closed dates
    pytest.param(
        schedule(closed_dates=[{"date": "2027-02-30", "name": "x"}]),
        "closed_dates[0].date",
        id="closed-feb-30",
    ),
    pytest.param(
        schedule(closed_dates=[{"date": "2027-12-24"}, {"date": "24/12/2027"}]),
        "closed_dates[1].date",
        id="closed-date-day-first",
    ),
    pytest.param(
        schedule(closed_dates=[{"date": "tomorrow"}]), "closed_dates[0].date", id="closed-date-a-word"
    ),
    pytest.param(
        schedule(closed_dates=[{"name": "no date"}]), "closed_dates[0].date", id="closed-date-missing"
    ),
    pytest.param(schedule(closed_dates=["2027-12-24"]), "closed_dates[0]", id="closed-date-not-an-object"),
    # special hours
    pytest.param(
        schedule(special_hours=[{"date": "2027-13-01", "intervals": []}]),
        "special_hours[0].date",
        id="special-month-13",
    ),
    pytest.param(
        schedule(special_hours=[{"intervals": [iv("08:00", "12:00")]}]),
        "special_hours[0].date",
        id="special-date-missing",
    ),
    pytest.param(
        schedule(
            special_hours=[
                {"date": "2027-02-10", "intervals": [iv("14:00", "18:00")]},
                {"date": "2027-02-10", "intervals": [iv("08:00", "12:00")]},
            ]
        ),
        "special_hours[1].date",
        id="duplicate-special-date",
    ),
    pytest.param(
        schedule(special_hours=[{"date": "2027-02-10", "intervals": [iv("14:00", "12:00")]}]),
        "special_hours[0].intervals[0].end",
        id="special-interval-end-before-start",
    ),
    pytest.param(
        schedule(
            special_hours=[{"date": "2027-02-10", "intervals": [iv("08:00", "12:00"), iv("11:00", "13:00")]}]
        ),
        "special_hours[0].intervals",
        id="special-intervals-overlap",
    ),
    pytest.param(schedule(special_hours=[["2027-02-10"]]), "special_hours[0]", id="special-not-an-object"),
]


@pytest.mark.parametrize(("data", "field"), INVALID)
def test_invalid_schedule_is_refused_naming_the_bad_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSchedule) as raised:
        parse_schedule(data)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert raised.value.message


def test_invalid_schedule_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^timezone: "):
        parse_schedule({"timezone": "Mars/Olympus_Mons"})


def test_overlap_message_names_both_intervals() -> None:
    with pytest.raises(InvalidSchedule) as raised:
        parse_schedule(weekly(monday=[iv("08:00", "12:00"), iv("11:00", "14:00")]))
    assert "08:00-12:00" in raised.value.message
    assert "11:00-14:00" in raised.value.message


def test_overnight_tail_overlap_message_names_the_day_it_came_from() -> None:
    with pytest.raises(InvalidSchedule) as raised:
        parse_schedule(weekly(sunday=[iv("22:00", "06:00", overnight=True)], monday=[iv("05:00", "12:00")]))
    assert "sunday" in raised.value.message


# --- what parses --------------------------------------------------------------------------------


def test_office_hours_with_lunch_break_parse_into_each_weekday() -> None:
    office = [iv("08:00", "12:00"), iv("13:00", "18:00")]
    parsed = parse_schedule(weekly(**dict.fromkeys(DAYS[:5], office)))
    assert parsed.timezone == "America/Sao_Paulo"
    assert parsed.weekly[:5] == ((Interval(480, 720), Interval(780, 1080)),) * 5
    assert parsed.weekly[5:] == ((), ())
    assert parsed.holidays is None
    assert parsed.closed == {}
    assert parsed.special == {}


def test_intervals_listed_out_of_order_are_sorted() -> None:
    parsed = parse_schedule(weekly(monday=[iv("13:00", "18:00"), iv("08:00", "12:00")]))
    assert parsed.weekly[0] == (Interval(480, 720), Interval(780, 1080))


def test_touching_intervals_are_not_an_overlap() -> None:
    parsed = parse_schedule(weekly(monday=[iv("08:00", "12:00"), iv("12:00", "18:00")]))
    assert parsed.weekly[0] == (Interval(480, 720), Interval(720, 1080))


def test_overnight_interval_ends_the_next_day() -> None:
    parsed = parse_schedule(weekly(monday=[iv("22:00", "06:00", overnight=True)]))
    (shift,) = parsed.weekly[0]
    assert shift == Interval(22 * 60, MINUTES_A_DAY + 6 * 60)
    assert shift.overnight
    assert shift.as_json() == {"start": "22:00", "end": "06:00", "overnight": True}


def test_overnight_tail_may_touch_the_next_days_first_interval() -> None:
    parsed = parse_schedule(
        weekly(
            monday=[iv("22:00", "06:00", overnight=True)],
            tuesday=[iv("06:00", "10:00"), iv("22:00", "06:00", overnight=True)],
            sunday=[iv("18:00", "22:00", overnight=False), iv("22:00", "06:00", overnight=True)],
        )
    )
    assert parsed.weekly[1][0] == Interval(360, 600)


def test_sunday_overnight_shift_may_end_where_monday_starts() -> None:
    parsed = parse_schedule(
        weekly(sunday=[iv("22:00", "06:00", overnight=True)], monday=[iv("06:00", "12:00")])
    )
    assert parsed.weekly[6] == (Interval(22 * 60, MINUTES_A_DAY + 6 * 60),)


def test_every_night_overnight_shifts_do_not_overlap_each_other() -> None:
    nightly = [iv("20:00", "08:00", overnight=True)]
    parsed = parse_schedule(weekly(**dict.fromkeys(DAYS, nightly)))
    assert all(day == (Interval(1200, 1440 + 480),) for day in parsed.weekly)


def test_24_00_ends_a_whole_day() -> None:
    parsed = parse_schedule(weekly(saturday=[iv("00:00", "24:00")]))
    (whole,) = parsed.weekly[5]
    assert whole == Interval(0, MINUTES_A_DAY)
    assert not whole.overnight
    assert whole.as_json() == {"start": "00:00", "end": "24:00"}


def test_overnight_flag_false_is_an_ordinary_interval() -> None:
    parsed = parse_schedule(weekly(monday=[{"start": "08:00", "end": "12:00", "overnight": False}]))
    assert parsed.weekly[0] == (Interval(480, 720),)


def test_missing_and_empty_days_are_closed() -> None:
    parsed = parse_schedule(weekly(monday=[iv("08:00", "12:00")], tuesday=[]))
    assert parsed.weekly[1:] == ((),) * 6
    assert parse_schedule({"timezone": "UTC"}).weekly == ((),) * 7


@pytest.mark.parametrize(
    "zone", ["America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "UTC", "Asia/Kolkata"]
)
def test_iana_timezones_are_accepted(zone: str) -> None:
    assert parse_schedule({"timezone": zone}).timezone == zone


def test_holidays_parse_with_country_subdivision_categories_and_skip() -> None:
    parsed = parse_schedule(
        schedule(
            holidays={
                "country": "br",
                "subdiv": "sp",
                "categories": ["public", "optional", "public"],
                "skip": ["Carnival"],
            }
        )
    )
    assert parsed.holidays == HolidayCalendar("BR", "SP", ("optional", "public"), frozenset({"Carnival"}))


def test_holidays_default_to_the_public_category() -> None:
    parsed = parse_schedule(schedule(holidays={"country": "US", "subdiv": "NY"}))
    assert parsed.holidays == HolidayCalendar("US", "NY", ("public",))


def test_null_holidays_means_no_holiday_calendar() -> None:
    assert parse_schedule(schedule(holidays=None)).holidays is None


def test_city_subdivision_listed_by_the_holidays_package_is_accepted() -> None:
    # holidays lists "São Paulo Capital" among BR's subdivisions (and the refusal message offers it)
    parsed = parse_schedule(schedule(holidays={"country": "BR", "subdiv": "São Paulo Capital"}))
    assert parsed.holidays is not None
    assert parsed.holidays.name_of(date(2027, 1, 25)) is not None  # the city's anniversary


def test_closed_dates_and_special_hours_parse() -> None:
    parsed = parse_schedule(
        schedule(
            closed_dates=[{"date": "2026-12-24", "name": "Christmas Eve"}, {"date": "2027-03-15"}],
            special_hours=[
                {"date": "2027-02-10", "intervals": [iv("14:00", "18:00")]},
                {"date": "2027-02-11", "intervals": [iv("22:00", "02:00", overnight=True)]},
                {"date": "2027-12-31", "intervals": []},
            ],
        )
    )
    assert parsed.closed == {date(2026, 12, 24): "Christmas Eve", date(2027, 3, 15): "closed"}
    assert parsed.special == {
        date(2027, 2, 10): (Interval(840, 1080),),
        date(2027, 2, 11): (Interval(1320, 1440 + 120),),
        date(2027, 12, 31): (),
    }


def test_intervals_on_prefers_special_hours_then_closures_then_weekly() -> None:
    parsed = parse_schedule(
        schedule(
            weekly={"wednesday": [iv("08:00", "18:00")], "monday": [iv("08:00", "18:00")]},
            holidays={"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
            closed_dates=[{"date": "2027-03-15", "name": "Inventory"}],
            special_hours=[{"date": "2027-02-10", "intervals": [iv("14:00", "18:00")]}],
        )
    )
    assert parsed.intervals_on(date(2027, 2, 10)) == (Interval(840, 1080),)  # Ash Wednesday
    assert parsed.closure_on(date(2027, 2, 10)) is None
    assert parsed.intervals_on(date(2027, 2, 8)) == ()  # Carnival Monday
    assert parsed.closure_on(date(2027, 2, 8)) == "Carnival"
    assert parsed.intervals_on(date(2027, 3, 15)) == ()
    assert parsed.closure_on(date(2027, 3, 15)) == "Inventory"
    assert parsed.intervals_on(date(2027, 3, 17)) == (Interval(480, 1080),)
    assert parsed.closure_on(date(2027, 3, 17)) is None


def test_clock_times_must_be_whole_minutes_in_range() -> None:
    for hour in range(24):
        for minute in (0, 59):
            clock = f"{hour:02d}:{minute:02d}"
            end = "24:00"
            parsed = parse_schedule(weekly(monday=[iv(clock, end)]))
            assert parsed.weekly[0] == (Interval(minutes(clock), MINUTES_A_DAY),)
