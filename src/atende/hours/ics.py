"""Closed dates from an iCalendar (``.ics``) file: a company's holiday calendar exported from
Google Calendar, Outlook or a government site.

Every all-day event (yearly recurring ones expanded with ``recurring-ical-events``) closes
the dates it covers. Events with a time of day are not closures of a whole day: they are
counted and named as skipped, so the caller can say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import icalendar
import recurring_ical_events

from atende.hours.schedule import InvalidSchedule

MAX_EVENTS = 5000


@dataclass(frozen=True)
class Imported:
    closed: dict[date, str]
    skipped: list[str] = field(default_factory=list)  # summaries of timed events


def closures_from_ics(data: bytes, first: date, last: date, where: str = "ics") -> Imported:
    """The dates between ``first`` and ``last`` (inclusive) that the calendar's all-day events
    close; ``InvalidSchedule`` (naming ``where``) when the file is not an iCalendar."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
        if calendar.name != "VCALENDAR":
            raise ValueError("it does not start with BEGIN:VCALENDAR")
        events = recurring_ical_events.of(calendar).between(first, last + timedelta(days=1))
        closed: dict[date, str] = {}
        skipped: list[str] = []
        for count, event in enumerate(events):
            if count >= MAX_EVENTS:
                raise ValueError(f"it has more than {MAX_EVENTS} events in the period")
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
    except InvalidSchedule:
        raise
    except Exception as exc:  # icalendar raises ValueError, KeyError, TypeError... on bad input
        raise InvalidSchedule(where, f"is not a valid iCalendar file ({exc})") from None
    return Imported(closed, skipped)
