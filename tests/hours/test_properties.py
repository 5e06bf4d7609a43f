"""Properties of business-time arithmetic over random schedules and random instants in 2026-2028."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holiday_data
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from atende.hours import DAYS, Schedule, business_time, is_open, next_close, next_open, parse_schedule

ZONES = ("America/Sao_Paulo", "America/New_York", "Europe/Lisbon", "UTC", "Asia/Kolkata")
ZONES_WITHOUT_DST = ("America/Sao_Paulo", "UTC", "Asia/Kolkata")  # in 2026-2030
HOLIDAYS: tuple[dict[str, Any] | None, ...] = (
    None,
    {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
    {"country": "US", "subdiv": "NY"},
    {"country": "PT"},
)
FIRST_DAY, LAST_DAY = date(2026, 1, 1), date(2028, 12, 31)
TICK = timedelta(microseconds=1)
DST_CHANGES = tuple(
    datetime(*parts, tzinfo=UTC)
    for parts in (
        (2026, 3, 8, 7),
        (2026, 11, 1, 6),
        (2027, 3, 14, 7),
        (2027, 11, 7, 6),
        (2028, 3, 12, 7),
        (2028, 11, 5, 6),  # New York
        (2026, 3, 29, 1),
        (2026, 10, 25, 1),
        (2027, 3, 28, 1),
        (2027, 10, 31, 1),
        (2028, 3, 26, 1),
        (2028, 10, 29, 1),  # Lisbon
    )
)
PROPERTIES = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def day_intervals(draw: st.DrawFn) -> list[tuple[int, int]]:
    """0-3 non-overlapping (start, end) minute pairs within a day, in order; end may be 1440."""
    count = draw(st.integers(0, 3))
    bounds = sorted(draw(st.lists(st.integers(0, 1440), min_size=2 * count, max_size=2 * count, unique=True)))
    return list(zip(bounds[::2], bounds[1::2], strict=True))


def as_json(intervals: list[tuple[int, int]], tail: int | None) -> list[dict[str, Any]]:
    """Intervals as stored; ``tail`` turns the last one into an overnight shift ending then."""
    out: list[dict[str, Any]] = [{"start": clock(s), "end": clock(e)} for s, e in intervals]
    if tail is not None:
        out[-1] = {"start": clock(intervals[-1][0]), "end": clock(tail), "overnight": True}
    return out


@st.composite
def overnight_tail(draw: st.DrawFn, intervals: list[tuple[int, int]], limit: int) -> int | None:
    """An end for an overnight version of the day's last interval, at most ``limit`` minutes
    into the next day (where the next day's first interval starts), or ``None``."""
    if not intervals or not draw(st.booleans()):
        return None
    start = intervals[-1][0]
    high = min(start - 1, limit)
    if high < 1:
        return None
    return draw(st.integers(1, high))


@dataclass(frozen=True)
class Drawn:
    data: dict[str, Any]
    schedule: Schedule


@st.composite
def schedules(draw: st.DrawFn, zones: tuple[str, ...] = ZONES) -> Drawn:
    week = [draw(day_intervals()) for _ in DAYS]
    weekly: dict[str, Any] = {}
    for i, day in enumerate(DAYS):
        following = week[(i + 1) % 7]
        limit = following[0][0] if following else 1439
        weekly[day] = as_json(week[i], draw(overnight_tail(week[i], limit)))
    dates = st.dates(FIRST_DAY, LAST_DAY)
    closed = draw(st.lists(dates, max_size=6, unique=True))
    special = draw(st.lists(dates, max_size=4, unique=True))
    special_hours = []
    for day in special:
        intervals = draw(day_intervals())
        special_hours.append(
            {"date": day.isoformat(), "intervals": as_json(intervals, draw(overnight_tail(intervals, 1439)))}
        )
    data = {
        "timezone": draw(st.sampled_from(zones)),
        "weekly": weekly,
        "holidays": draw(st.sampled_from(HOLIDAYS)),
        "closed_dates": [{"date": day.isoformat(), "name": "closed"} for day in closed],
        "special_hours": special_hours,
    }
    return Drawn(data, parse_schedule(data))


zones_for_input = st.sampled_from([UTC, *(ZoneInfo(z) for z in ZONES)])
anywhere = st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31, 23, 59), timezones=zones_for_input)
near_dst = st.builds(
    lambda change, minutes, zone: (change + timedelta(minutes=minutes)).astimezone(zone),
    st.sampled_from(DST_CHANGES),
    st.integers(-36 * 60, 36 * 60),
    zones_for_input,
)
instants = st.one_of(anywhere, near_dst)


# Python compares and subtracts two datetimes of the same zone by their wall-clock times
# (PEP 495), so around a DST change ``sorted`` and ``-`` disagree with the instants they name:
# the laws below order and measure instants in UTC, and hand the functions the drawn zones.
def by_instant(*moments: datetime) -> list[datetime]:
    """The moments in the order they happen."""
    return sorted(moments, key=datetime.timestamp)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time from ``start`` to ``end``."""
    return end.astimezone(UTC) - start.astimezone(UTC)


# --- the arithmetic's own laws -----------------------------------------------------------------


def drawn_always_open(zone: str) -> Drawn:
    data = {
        "timezone": zone,
        "weekly": {day: [{"start": "00:00", "end": "24:00"}] for day in DAYS},
        "holidays": None,
        "closed_dates": [],
        "special_hours": [],
    }
    return Drawn(data, parse_schedule(data))


NEW_YORK = ZoneInfo("America/New_York")


@PROPERTIES
@given(schedules(), instants, instants, instants)
# 02:30 does not happen in New York on 2026-03-08 (clocks jump from 02:00 to 03:00): it names
# 07:30 UTC, after 03:10 (07:10 UTC), though its wall time sorts before it
@example(
    drawn_always_open("America/New_York"),
    datetime(2026, 3, 8, 1, 59, tzinfo=NEW_YORK),
    datetime(2026, 3, 8, 2, 30, tzinfo=NEW_YORK),
    datetime(2026, 3, 8, 3, 10, tzinfo=NEW_YORK),
)
def test_business_time_adds_up_over_consecutive_spans(
    drawn: Drawn, x: datetime, y: datetime, z: datetime
) -> None:
    a, b, c = by_instant(x, y, z)
    s = drawn.schedule
    whole = business_time(s, a, c)
    assert whole == business_time(s, a, b) + business_time(s, b, c)
    assert timedelta(0) <= whole <= elapsed(a, c)
    assert timedelta(0) <= business_time(s, a, b) <= elapsed(a, b)


@PROPERTIES
@given(schedules(), instants)
def test_no_business_time_between_a_close_and_the_next_opening(drawn: Drawn, at: datetime) -> None:
    s = drawn.schedule
    closes = next_close(s, at)
    if closes is None:
        return
    assert closes > at
    assert is_open(s, closes - TICK)
    assert not is_open(s, closes)
    opens = next_open(s, closes)
    if opens is not None:
        assert opens > closes
        assert business_time(s, closes, opens) == timedelta(0)


@PROPERTIES
@given(schedules(), instants)
def test_next_open_is_open_and_nothing_before_it_is(drawn: Drawn, at: datetime) -> None:
    s = drawn.schedule
    opens = next_open(s, at)
    if opens is None:
        assert not is_open(s, at)
        assert next_close(s, at) is None
        assert business_time(s, at, at + timedelta(days=400)) == timedelta(0)
        return
    assert opens >= at
    assert is_open(s, opens)
    gap, since = elapsed(at, opens), at.astimezone(UTC)
    if gap > TICK:
        for point in (
            since + TICK,
            since + gap / 7,
            since + gap / 3,
            since + gap / 2,
            since + gap * 0.9,
            opens - TICK,
        ):
            assert since < point < opens
            assert not is_open(s, point), point
    assert business_time(s, at, opens) == timedelta(0)


@PROPERTIES
@given(schedules(), instants)
def test_open_now_means_next_open_is_now_and_the_stretch_counts_in_full(drawn: Drawn, at: datetime) -> None:
    s = drawn.schedule
    if is_open(s, at):
        # compared in UTC: an aware datetime with fold=1 is never == one in another zone (PEP 495)
        assert next_open(s, at) == at.astimezone(UTC)
        closes = next_close(s, at)
        if closes is not None:
            assert closes > at
            assert business_time(s, at, closes) == closes - at
    else:
        opens = next_open(s, at)
        assert opens is None or opens > at


# --- against a model: the union of each day's intervals (zones without DST) ----------------------


def model_periods(data: dict[str, Any], first: date, last: date) -> list[tuple[datetime, datetime]]:
    """Each local day's open periods from ``first`` to ``last``, merged where they overlap or touch."""
    zone = ZoneInfo(data["timezone"])
    spec = data["holidays"]
    calendar = (
        holiday_data.country_holidays(
            spec["country"], subdiv=spec.get("subdiv"), categories=tuple(spec.get("categories", ["public"]))
        )
        if spec
        else {}
    )
    closed = {date.fromisoformat(item["date"]) for item in data["closed_dates"]}
    special = {date.fromisoformat(item["date"]): item["intervals"] for item in data["special_hours"]}

    def minutes(text: str) -> int:
        return int(text[:2]) * 60 + int(text[3:])

    raw: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if day in special:
            intervals = special[day]
        elif day in closed or day in calendar:
            intervals = []
        else:
            intervals = data["weekly"][DAYS[day.weekday()]]
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        for item in intervals:
            opens, closes = minutes(item["start"]), minutes(item["end"])
            if item.get("overnight"):
                closes += 1440
            raw.append((midnight + timedelta(minutes=opens), midnight + timedelta(minutes=closes)))
        day += timedelta(days=1)
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(raw):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@PROPERTIES
@given(schedules(ZONES_WITHOUT_DST), instants, instants)
def test_business_time_and_is_open_match_the_union_of_the_days_intervals(
    drawn: Drawn, x: datetime, y: datetime
) -> None:
    a, c = (moment.astimezone(UTC) for moment in by_instant(x, y))
    s, zone = drawn.schedule, ZoneInfo(drawn.data["timezone"])
    merged = model_periods(
        drawn.data, a.astimezone(zone).date() - timedelta(days=1), c.astimezone(zone).date()
    )
    expected = sum(
        (min(end, c) - max(start, a) for start, end in merged if start < c and end > a), timedelta()
    )
    assert business_time(s, a, c) == expected
    for at in (a, c):
        assert is_open(s, at) == any(start <= at < end for start, end in merged)
