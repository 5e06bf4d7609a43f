"""A company's (or a team's) business hours as plain data, and their validation.

A ``Schedule`` is a weekly pattern of opening intervals in an IANA timezone, plus the dates
it is closed (public holidays of a country and state from the ``holidays`` package, the
company's own closed dates, dates imported from an iCalendar file) and dates with special
hours (which win over both the weekly pattern and any holiday). ``parse_schedule`` builds
one from the JSON shape the settings API stores and rejects what cannot be a schedule with
an ``InvalidSchedule`` naming the field.

An interval belongs to the day it starts on. ``{"start": "22:00", "end": "06:00",
"overnight": true}`` on a Monday is open from Monday 22:00 to Tuesday 06:00, and a holiday on
the Tuesday does not cut it short; a holiday on the Monday closes all of it. ``"24:00"`` ends
an interval at midnight.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import holidays as holiday_data

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_A_DAY = 24 * 60
MINUTES_A_WEEK = 7 * MINUTES_A_DAY
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


class InvalidSchedule(ValueError):
    """A schedule that cannot be: ``field`` names where (e.g. ``weekly.monday[1].end``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidSchedule], tuple[str, str]]:
        """Pickled by its two parts (an ``.ics`` is read in a worker process and its error
        comes back to the server pickled; the default would call it with one argument)."""
        return (InvalidSchedule, (self.field, self.message))


@dataclass(frozen=True, order=True)
class Interval:
    """Open from ``start`` to ``end``, in minutes after the local midnight of its day;
    ``end`` exceeds a day's minutes when the interval crosses midnight."""

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end > MINUTES_A_DAY

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": clock_text(self.start), "end": clock_text(self.end % MINUTES_A_DAY)}
        if self.end == MINUTES_A_DAY:
            out["end"] = "24:00"
        if self.overnight:
            out["overnight"] = True
        return out


@dataclass(frozen=True)
class HolidayCalendar:
    """Public holidays of ``country`` (ISO 3166-1 alpha-2) and optionally one of its
    subdivisions, in the ``holidays`` package's categories; ``skip`` names holidays the
    company works on anyway (in the calendar's own English names, e.g. "Christmas Eve")."""

    country: str
    subdiv: str | None = None
    categories: tuple[str, ...] = ("public",)
    skip: frozenset[str] = frozenset()

    def name_of(self, day: date) -> str | None:
        """The holiday on ``day``, or ``None`` when it is a working day."""
        calendar = _calendar(self.country, self.subdiv, self.categories)
        name = calendar.get(day)
        if name is None:
            return None
        # several holidays on one date come joined by "; "
        names = [n for n in str(name).split("; ") if n not in self.skip]
        return "; ".join(names) or None


@lru_cache(maxsize=256)
def _calendar(country: str, subdiv: str | None, categories: tuple[str, ...]) -> holiday_data.HolidayBase:
    # years expand lazily on lookup; one cached calendar per distinct configuration
    # English names whatever the server's locale: ``skip`` names holidays in English
    return holiday_data.country_holidays(country, subdiv=subdiv, categories=categories, language="en_US")


@dataclass(frozen=True)
class Schedule:
    timezone: str
    weekly: tuple[tuple[Interval, ...], ...]  # Monday first; an empty tuple is a closed day
    holidays: HolidayCalendar | None = None
    closed: Mapping[date, str] = field(default_factory=dict)  # the company's own, and imported
    special: Mapping[date, tuple[Interval, ...]] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The intervals that start on ``day`` (special hours, else none on a closed date or
        holiday, else the weekly pattern)."""
        if day in self.special:
            return self.special[day]
        if day in self.closed:
            return ()
        if self.holidays is not None and self.holidays.name_of(day) is not None:
            return ()
        return self.weekly[day.weekday()]

    def closure_on(self, day: date) -> str | None:
        """Why ``day`` is closed when its weekday would be open: a closed date or a holiday."""
        if day in self.special:
            return None
        if day in self.closed:
            return self.closed[day] or "closed"
        return self.holidays.name_of(day) if self.holidays is not None else None

    def closures(self, first: date, days: int) -> list[tuple[date, str]]:
        """The dates from ``first`` on (``days`` of them) closed by a holiday or a closed
        date, each with why: what a person checks after choosing a calendar."""
        found = ((first + timedelta(days=n), self.closure_on(first + timedelta(days=n))) for n in range(days))
        return [(day, reason) for day, reason in found if reason is not None]


ALWAYS_OPEN = Schedule("UTC", tuple((Interval(0, MINUTES_A_DAY),) for _ in DAYS))


def clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _clock(value: Any, where: str, *, allow_24: bool) -> int:
    if not isinstance(value, str) or not (match := _CLOCK.match(value.strip())):
        raise InvalidSchedule(where, f"{value!r} is not a time of day as HH:MM (e.g. 08:30)")
    hours, minutes = int(match[1]), int(match[2])
    if hours == 24 and (minutes or not allow_24):
        raise InvalidSchedule(where, f"{value} is not a time of day; only an end may be 24:00")
    return hours * 60 + minutes


def parse_interval(data: Any, where: str) -> Interval:
    if not isinstance(data, Mapping):
        raise InvalidSchedule(where, 'an interval is {"start": "HH:MM", "end": "HH:MM"}')
    unknown = set(data) - {"start", "end", "overnight"}
    if unknown:
        raise InvalidSchedule(f"{where}.{sorted(unknown)[0]}", "unknown field; use start, end, overnight")
    start = _clock(data.get("start"), f"{where}.start", allow_24=False)
    end = _clock(data.get("end"), f"{where}.end", allow_24=True)
    overnight = data.get("overnight", False)
    if not isinstance(overnight, bool):
        raise InvalidSchedule(f"{where}.overnight", "must be true or false")
    if overnight:
        if end == MINUTES_A_DAY or end >= start:
            raise InvalidSchedule(
                f"{where}.end",
                f"an overnight interval ends the next day, before it starts ({clock_text(start)}); "
                "for a whole day use 00:00 to 24:00",
            )
        return Interval(start, end + MINUTES_A_DAY)
    if end <= start:
        raise InvalidSchedule(
            f"{where}.end",
            f"{clock_text(end)} is not after {clock_text(start)}; "
            'for a shift that crosses midnight set "overnight": true',
        )
    return Interval(start, end)


def parse_intervals(data: Any, where: str) -> tuple[Interval, ...]:
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise InvalidSchedule(where, "must be a list of intervals (an empty list: closed)")
    intervals = sorted(parse_interval(item, f"{where}[{i}]") for i, item in enumerate(data))
    for earlier, later in itertools.pairwise(intervals):
        if later.start < earlier.end:
            raise InvalidSchedule(where, f"intervals overlap: {_describe(earlier)} and {_describe(later)}")
    return tuple(intervals)


def _describe(interval: Interval) -> str:
    return f"{clock_text(interval.start)}-{clock_text(interval.end % MINUTES_A_DAY)}"


def _check_week(weekly: tuple[tuple[Interval, ...], ...]) -> None:
    """No two intervals of the week overlap, overnight tails included (Sunday's wraps to Monday)."""
    spans = sorted(
        (day * MINUTES_A_DAY + iv.start, day * MINUTES_A_DAY + iv.end, day, iv)
        for day, intervals in enumerate(weekly)
        for iv in intervals
    )
    for (_, end, day, iv), (start, _, later_day, later) in itertools.pairwise(spans):
        if start < end:
            raise InvalidSchedule(
                f"weekly.{DAYS[later_day]}",
                f"{_describe(later)} overlaps {DAYS[day]}'s {_describe(iv)}",
            )
    if spans:
        start, _, first_day, first = spans[0]
        _, end, last_day, last = max(spans, key=lambda span: span[1])
        if end - MINUTES_A_WEEK > start:
            raise InvalidSchedule(
                f"weekly.{DAYS[first_day]}",
                f"{_describe(first)} overlaps {DAYS[last_day]}'s overnight {_describe(last)}",
            )


def check_timezone(name: Any, where: str = "timezone") -> str:
    if not isinstance(name, str) or name not in _timezones():
        raise InvalidSchedule(where, f"{name!r} is not an IANA timezone (e.g. America/Sao_Paulo)")
    return name


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """Every IANA timezone name, sorted (for a person to choose one)."""
    return tuple(sorted(name for name in _timezones() if "/" in name or name == "UTC"))


def parse_holidays(data: Any, where: str = "holidays") -> HolidayCalendar | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise InvalidSchedule(where, 'must be {"country": "BR", "subdiv": "SP"} or null')
    country = str(data.get("country") or "").upper()
    supported = holiday_data.list_supported_countries()
    if country not in supported:
        raise InvalidSchedule(f"{where}.country", f"{country or 'nothing'!r} is not a supported country code")
    subdiv = data.get("subdiv")
    if subdiv is not None:
        # "sp" is "SP", "são paulo capital" is "São Paulo Capital"
        spelled = {s.upper(): s for s in supported[country]}
        subdiv = spelled.get(str(subdiv).upper(), str(subdiv))
        if subdiv not in supported[country]:
            raise InvalidSchedule(
                f"{where}.subdiv",
                f"{subdiv!r} is not a subdivision of {country} (one of {', '.join(supported[country])})",
            )
    categories = tuple(data.get("categories") or ("public",))
    allowed = holiday_data.country_holidays(country).supported_categories
    for category in categories:
        if category not in allowed:
            raise InvalidSchedule(
                f"{where}.categories",
                f"{category!r} is not a category of {country} (one of {', '.join(allowed)})",
            )
    skip = data.get("skip") or []
    if not isinstance(skip, Sequence) or isinstance(skip, str) or not all(isinstance(s, str) for s in skip):
        raise InvalidSchedule(f"{where}.skip", "must be a list of holiday names")
    return HolidayCalendar(country, subdiv, tuple(sorted(set(categories))), frozenset(skip))


def _date(value: Any, where: str) -> date:
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
            raise ValueError
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidSchedule(where, f"{value!r} is not a date as YYYY-MM-DD") from None


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """A schedule from its stored JSON shape::

        {"timezone": "America/Sao_Paulo",
         "weekly": {"monday": [{"start": "08:00", "end": "18:00"}], ..., "sunday": []},
         "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
         "closed_dates": [{"date": "2026-12-24", "name": "Christmas Eve"}],
         "special_hours": [{"date": "2027-02-10", "intervals": [{"start": "14:00", "end": "18:00"}]}]}

    Days missing from ``weekly`` are closed.
    """
    timezone = check_timezone(data.get("timezone"))
    weekly_data = data.get("weekly") or {}
    if not isinstance(weekly_data, Mapping):
        raise InvalidSchedule("weekly", "must map day names (monday ... sunday) to lists of intervals")
    for day in weekly_data:
        if day not in DAYS:
            raise InvalidSchedule(f"weekly.{day}", f"unknown day; use {', '.join(DAYS)}")
    weekly = tuple(parse_intervals(weekly_data.get(day, []), f"weekly.{day}") for day in DAYS)
    _check_week(weekly)
    closed: dict[date, str] = {}
    for i, item in enumerate(data.get("closed_dates") or []):
        where = f"closed_dates[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSchedule(where, 'must be {"date": "YYYY-MM-DD", "name": "..."}')
        closed[_date(item.get("date"), f"{where}.date")] = str(item.get("name") or "closed")
    special: dict[date, tuple[Interval, ...]] = {}
    for i, item in enumerate(data.get("special_hours") or []):
        where = f"special_hours[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidSchedule(where, 'must be {"date": "YYYY-MM-DD", "intervals": [...]}')
        day = _date(item.get("date"), f"{where}.date")
        if day in special:
            raise InvalidSchedule(f"{where}.date", f"{day} has special hours twice")
        special[day] = parse_intervals(item.get("intervals", []), f"{where}.intervals")
    return Schedule(timezone, weekly, parse_holidays(data.get("holidays")), closed, special)
