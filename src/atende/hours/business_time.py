"""Business-time arithmetic over a ``Schedule``: is it open, when does it open or close next,
and how much open time lies between two instants (the SLA clocks' measure).

Every instant in and out is timezone-aware. Each day's intervals are wall-clock times in the
schedule's timezone, turned into absolute instants with ``zoneinfo``, so a day with a DST
change is 23 or 25 hours long as it really is: a wall-clock time skipped by the spring change
is the moment the clocks jump (an interval wholly inside the gap is empty), a repeated one is
its first occurrence. The arithmetic itself is done on absolute instants, so it is exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from atende.hours.schedule import Schedule

HORIZON = timedelta(days=2 * 366)  # looking further for an opening means the schedule is never open
_DAY = timedelta(days=1)
_RESOLUTION = timedelta(seconds=1)  # offsets change on whole seconds


def _aware(at: datetime, name: str = "at") -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return at.astimezone(UTC)


def instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall-clock time: a time that happens twice (autumn)
    is its first occurrence; a time that never happens (the spring gap) is the moment the
    clocks jump, the end of the gap."""
    first = wall.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # inside a gap: fold=1 reads it with the offset before the change, fold=0 after; the jump
    # lies between the two instants, where the offset changes
    before, after = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), first
    if before > after:
        before, after = after, before
    offset_after = after.astimezone(zone).utcoffset()
    while after - before > _RESOLUTION:
        middle = before + (after - before) / 2
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after.replace(microsecond=0) if after.microsecond else after


def _day_periods(schedule: Schedule, day: date) -> list[tuple[datetime, datetime]]:
    zone = schedule.zone
    midnight = datetime(day.year, day.month, day.day)  # naive wall clock of the local day
    periods = []
    for interval in schedule.intervals_on(day):
        start = instant(midnight + timedelta(minutes=interval.start), zone)
        end = instant(midnight + timedelta(minutes=interval.end), zone)
        if end > start:  # an interval inside a DST gap is empty
            periods.append((start, end))
    return periods


def periods(schedule: Schedule, since: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Each day's open periods that end after ``since``, as absolute instants, in order of
    their start (periods may touch: Monday's 22:00-24:00 and Tuesday's 00:00-06:00). Ends
    when nothing opens within ``HORIZON`` (a schedule with no open day yields nothing)."""
    since = _aware(since, "since")
    day = since.astimezone(schedule.zone).date() - _DAY  # yesterday's overnight shift may still run
    last_seen = since
    while True:
        for start, end in _day_periods(schedule, day):
            if end > since:
                last_seen = max(last_seen, end)
                yield start, end
        day += _DAY
        if datetime(day.year, day.month, day.day, tzinfo=UTC) - last_seen > HORIZON + _DAY:
            return


def is_open(schedule: Schedule, at: datetime) -> bool:
    at = _aware(at)
    for start, _end in periods(schedule, at):
        return start <= at
    return False


def next_open(schedule: Schedule, at: datetime) -> datetime | None:
    """``at`` itself when open then, else the next instant it opens (``None``: never)."""
    at = _aware(at)
    for start, _end in periods(schedule, at):
        return max(start, at)
    return None


def next_close(schedule: Schedule, at: datetime) -> datetime | None:
    """When the open stretch running at ``at`` (or the next one) ends; ``None`` when it never
    opens, or stays open past ``HORIZON``."""
    at = _aware(at)
    closes: datetime | None = None
    for start, end in periods(schedule, at):
        if closes is not None and start > closes:
            return closes
        closes = end if closes is None else max(closes, end)
        if closes - at > HORIZON:
            return None
    return closes


def next_day_opening(schedule: Schedule, at: datetime) -> datetime | None:
    """When the next business day opens: the first open period that starts on a later day
    than ``at``'s (in the schedule's timezone) and is not the continuation of a stretch
    already open (Tuesday's 00:00 after Monday's shift to 24:00 opens nothing). A schedule
    open round the clock has no such opening: the start of the next day then. ``None`` when
    it never opens."""
    at = _aware(at)
    zone = schedule.zone
    today = at.astimezone(zone).date()
    first_later: datetime | None = None
    open_until: datetime | None = None
    for start, end in periods(schedule, at):
        day = start.astimezone(zone).date()
        if day > today:
            if open_until is None or start > open_until:
                return start
            first_later = first_later or start
            if (day - today).days > 7:  # a week without a break: open round the clock
                return first_later
        open_until = end if open_until is None else max(open_until, end)
    return first_later


def business_time(schedule: Schedule, start: datetime, end: datetime) -> timedelta:
    """Open time between ``start`` and ``end`` (exact; ``end`` must not precede ``start``)."""
    start, end = _aware(start, "start"), _aware(end, "end")
    if end < start:
        raise ValueError("end must not be before start")
    total = timedelta()
    counted_until = start  # special hours may overlap a previous night's shift: count once
    for opens, closes in periods(schedule, start):
        if opens >= end:
            break
        a, b = max(opens, counted_until), min(closes, end)
        if b > a:
            total += b - a
            counted_until = b
    return total


def business_seconds(schedule: Schedule, start: datetime, end: datetime) -> float:
    """``business_time`` in seconds."""
    return business_time(schedule, start, end).total_seconds()
