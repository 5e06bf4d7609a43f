"""Closed dates from an iCalendar (``.ics``) file: a company's holiday calendar exported from
Google Calendar, Outlook or a government site.

Every all-day event (yearly recurring ones expanded with ``recurring-ical-events``) closes
the dates it covers. Events with a time of day are not closures of a whole day: they are
counted and named as skipped, so the caller can say so.

A file of a few bytes can describe millions of occurrences (``RRULE:FREQ=MINUTELY``), so
nothing is expanded into a list before it is counted: each event's recurrence rule is first
walked lazily and counted (``MAX_RECURRENCES`` from its start to the end of the period,
``MAX_EVENTS`` inside the period, across the whole file), and only a rule within both limits
is handed to the library, which materialises what it expands. A time budget is checked on
every step. One step of the rule library cannot be interrupted (a rule that never matches,
such as the 30th of February, is searched to the year 9999), so callers that serve requests
run this in a process they can stop (``atende.teams.service.read_calendar``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import icalendar
import recurring_ical_events

from atende.hours.schedule import InvalidSchedule

MAX_EVENTS = 5000  # occurrences inside the period, the whole file together
MAX_RECURRENCES = 100_000  # occurrences of one rule from its first to the end of the period
SECONDS = 5.0  # time budget of one file


@dataclass(frozen=True)
class Imported:
    closed: dict[date, str]
    skipped: list[str] = field(default_factory=list)  # summaries of timed events


class _TooBig(Exception):
    """The calendar is past a limit; the message says which and what to do."""


@dataclass
class _Budget:
    """The limits of one file: occurrences counted so far and the deadline."""

    first: date
    last: date
    max_events: int
    max_recurrences: int
    seconds: float
    deadline: float
    events: int = 0  # occurrences inside the period, expanded or about to be

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _TooBig(
                f"takes more than {self.seconds:g} s to read; export only the holidays (all-day "
                "events), without events that repeat many times a day"
            )

    def too_many_events(self) -> _TooBig:
        return _TooBig(
            f"has more than {self.max_events} events between {self.first} and {self.last}; atende "
            f"imports at most {self.max_events}: export only the holidays (all-day events), without "
            "events that repeat every day, hour or minute"
        )


def closures_from_ics(
    data: bytes,
    first: date,
    last: date,
    where: str = "ics",
    *,
    max_events: int = MAX_EVENTS,
    max_recurrences: int = MAX_RECURRENCES,
    seconds: float = SECONDS,
) -> Imported:
    """The dates between ``first`` and ``last`` (inclusive) that the calendar's all-day events
    close; ``InvalidSchedule`` (naming ``where``) when the file is not an iCalendar, has more
    than ``max_events`` occurrences in the period (or a rule more than ``max_recurrences``
    up to its end), or takes more than ``seconds`` to read."""
    budget = _Budget(first, last, max_events, max_recurrences, seconds, time.monotonic() + seconds)
    try:
        calendar = icalendar.Calendar.from_ical(data)
        if calendar.name != "VCALENDAR":
            raise ValueError("it does not start with BEGIN:VCALENDAR")
        budget.tick()
        closed: dict[date, str] = {}
        skipped: list[str] = []
        for event in _occurrences(recurring_ical_events.of(calendar), budget):
            summary = str(event.get("SUMMARY") or "closed").strip()[:200] or "closed"
            start = event.decoded("DTSTART")
            if isinstance(start, datetime):
                skipped.append(summary)
                continue
            end = event.decoded("DTEND") if event.get("DTEND") else start + timedelta(days=1)
            end = end.date() if isinstance(end, datetime) else end
            # only the days inside the period (an event may span centuries)
            day, until = max(start, first), min(max(end, start + timedelta(days=1)), last + timedelta(days=1))
            while day < until:
                closed.setdefault(day, summary)
                day += timedelta(days=1)
    except _TooBig as exc:
        raise InvalidSchedule(where, f"the calendar {exc}") from None
    except Exception as exc:  # icalendar raises ValueError, KeyError, TypeError... on bad input
        raise InvalidSchedule(where, f"is not a valid iCalendar file ({exc})") from None
    return Imported(closed, skipped)


def _occurrences(query: Any, budget: _Budget) -> Iterator[Any]:
    """The calendar's occurrences in the period, one series (an event and its recurrences) at
    a time, each series counted before the library expands it (``CalendarQuery.between``
    expands every series into one list first, which is what froze the server)."""
    stop = budget.last + timedelta(days=1)
    for series in query.series:
        budget.tick()
        _count(series, budget)
        for occurrence in series.between(budget.first, stop):
            budget.tick()
            budget.events += 1
            if budget.events > budget.max_events:
                raise budget.too_many_events()
            yield occurrence.as_component(False)


def _count(series: Any, budget: _Budget) -> None:
    """Walk the series' recurrence rules lazily, as far as the library will expand them (the
    period's end, later when a RANGE=THISANDFUTURE change moves occurrences), and raise
    ``_TooBig`` before a rule would expand past the limits. The rules are walked through an
    uncached copy: dateutil's cache would keep every date walked, however many."""
    rules = getattr(series.recurrence, "rrules", ())  # none: an event changed, not its rule
    later = getattr(series, "_add_to_stop", timedelta(0))
    try:
        horizon = budget.last + timedelta(days=1) + later
    except OverflowError:
        horizon = date.max
    in_period = 0
    for rule in rules:
        walked = rule.replace(cache=False) if hasattr(rule, "replace") else rule
        for number, start in enumerate(walked, 1):
            budget.tick()
            day = start.date() if isinstance(start, datetime) else start
            if day > horizon:
                break
            if number > budget.max_recurrences:
                raise _TooBig(
                    f"repeats the event with UID '{str(series.uid)[:80]}' more than "
                    f"{budget.max_recurrences} times before {horizon}; start its rule later or "
                    "export only the holidays"
                )
            if budget.first <= day <= budget.last:
                in_period += 1
                if budget.events + in_period > budget.max_events:
                    raise budget.too_many_events()
