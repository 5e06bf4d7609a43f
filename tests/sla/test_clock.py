"""Due times in exact business time: a weekend, a national and a state holiday, an overnight
shift and both DST changes of a company in New York, each exact to the second; and the due
time is the inverse of the business time the hours module measures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atende.hours import business_seconds, parse_schedule
from atende.sla.clock import DueClock
from atende.sla.policy import times

NY = ZoneInfo("America/New_York")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
DAYS = (*WEEKDAYS, "saturday", "sunday")
OFFICE = parse_schedule(
    {
        "timezone": "America/New_York",
        "weekly": {d: [{"start": "09:00", "end": "18:00"}] for d in WEEKDAYS},
        "holidays": {"country": "US", "subdiv": "MA"},  # Patriots' Day is Massachusetts' own
    }
)
OFFICE_NATIONAL_ONLY = parse_schedule(
    {
        "timezone": "America/New_York",
        "weekly": {d: [{"start": "09:00", "end": "18:00"}] for d in WEEKDAYS},
        "holidays": {"country": "US"},
    }
)
NIGHTS = parse_schedule(
    {
        "timezone": "America/New_York",
        "weekly": {d: [{"start": "22:00", "end": "06:00", "overnight": True}] for d in DAYS},
    }
)
ROUND_THE_CLOCK = parse_schedule(
    {"timezone": "America/New_York", "weekly": {d: [{"start": "00:00", "end": "24:00"}] for d in DAYS}}
)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


CASES = [
    # (what, schedule, start, business seconds, due)
    ("over a weekend", OFFICE, ny(2027, 3, 5, 17, 30), 3600, ny(2027, 3, 8, 9, 30)),
    ("to the second, over a weekend", OFFICE, ny(2027, 3, 5, 17, 59, 59), 2, ny(2027, 3, 8, 9, 0, 1)),
    ("ending as the day closes", OFFICE, ny(2027, 3, 8, 9, 0), 9 * 3600, ny(2027, 3, 8, 18, 0)),
    ("from a closed night", OFFICE, ny(2027, 3, 8, 23, 0), 60, ny(2027, 3, 9, 9, 1)),
    # the weekend of the spring change: Monday 10:00 is EDT (14:00 UTC), not EST (15:00 UTC)
    ("over the spring DST weekend", OFFICE, ny(2027, 3, 12, 17, 0), 2 * 3600, ny(2027, 3, 15, 10, 0)),
    # Monday 5 July 2027: Independence Day (observed), national
    ("over a national holiday", OFFICE, ny(2027, 7, 2, 17, 0), 4 * 3600, ny(2027, 7, 6, 12, 0)),
    # Monday 19 April 2027: Patriots' Day, a Massachusetts holiday only
    ("over a state holiday", OFFICE, ny(2027, 4, 16, 17, 0), 2 * 3600, ny(2027, 4, 20, 10, 0)),
    (
        "no state holiday without it",
        OFFICE_NATIONAL_ONLY,
        ny(2027, 4, 16, 17, 0),
        7200,
        ny(2027, 4, 19, 10, 0),
    ),
    ("into the next overnight shift", NIGHTS, ny(2027, 3, 9, 5, 30), 3600, ny(2027, 3, 9, 22, 30)),
    # the night of 13-14 March 2027 skips 02:00-03:00: its 22:00-06:00 shift is 7 hours long
    ("a spring-DST night shift, whole", NIGHTS, ny(2027, 3, 13, 22, 0), 7 * 3600, ny(2027, 3, 14, 6, 0)),
    (
        "a spring-DST night shift, plus 1 s",
        NIGHTS,
        ny(2027, 3, 13, 22, 0),
        7 * 3600 + 1,
        ny(2027, 3, 14, 22, 0, 1),
    ),
    # the night of 6-7 November 2027 repeats 01:00-02:00: its shift is 9 hours long
    ("an autumn-DST night shift, whole", NIGHTS, ny(2027, 11, 6, 22, 0), 9 * 3600, ny(2027, 11, 7, 6, 0)),
    (
        "round the clock across spring DST",
        ROUND_THE_CLOCK,
        ny(2027, 3, 13, 22, 0),
        8 * 3600,
        ny(2027, 3, 14, 7, 0),
    ),
]


@pytest.mark.parametrize(("what", "schedule", "start", "seconds", "due"), CASES, ids=[c[0] for c in CASES])
def test_due_times_are_exact_to_the_second(what, schedule, start, seconds, due) -> None:  # type: ignore[no-untyped-def]
    found = DueClock(schedule).due(start, seconds)
    assert found == due, f"{what}: {found.astimezone(NY) if found else None} != {due}"
    assert business_seconds(schedule, start, due) == seconds


def test_the_autumn_night_is_an_hour_longer_in_absolute_time() -> None:
    due = DueClock(NIGHTS).due(ny(2027, 11, 6, 22, 0), 9 * 3600)
    assert due is not None
    assert due - ny(2027, 11, 6, 22, 0) == timedelta(hours=9)  # 02:00 UTC to 11:00 UTC
    assert due.astimezone(UTC) == datetime(2027, 11, 7, 11, 0, tzinfo=UTC)


def test_the_warning_falls_at_its_share_of_business_time() -> None:
    # 80 % of an hour is 48 minutes: 30 on Friday, 18 on Monday
    t = times(DueClock(OFFICE), ny(2027, 3, 5, 17, 30), 3600, 80)
    assert t.warn_at == ny(2027, 3, 8, 9, 18)
    assert t.due_at == ny(2027, 3, 8, 9, 30)


def test_a_schedule_that_never_opens_is_never_due() -> None:
    closed = parse_schedule({"timezone": "America/New_York", "weekly": {}})
    assert DueClock(closed).due(ny(2027, 3, 5, 17, 30), 60) is None


def test_one_clock_answers_starts_in_any_order() -> None:
    clock = DueClock(OFFICE)
    later = clock.due(ny(2027, 7, 2, 17, 0), 4 * 3600)
    earlier = clock.due(ny(2027, 3, 5, 17, 30), 3600)
    assert (earlier, later) == (ny(2027, 3, 8, 9, 30), ny(2027, 7, 6, 12, 0))


@settings(max_examples=40, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
    seconds=st.integers(min_value=1, max_value=5 * 86400),
    schedule=st.sampled_from([OFFICE, NIGHTS, ROUND_THE_CLOCK]),
)
def test_the_due_time_is_the_inverse_of_business_time(start: datetime, seconds: int, schedule) -> None:  # type: ignore[no-untyped-def]
    start = start.replace(microsecond=0)
    clock = DueClock(schedule)
    due = clock.due(start, seconds)
    assert due is not None
    assert business_seconds(schedule, start, due) == seconds
    assert clock.elapsed(start, due) == seconds
    # nothing earlier has that much open time: the due time is the first such instant
    assert business_seconds(schedule, start, due - timedelta(seconds=1)) < seconds
