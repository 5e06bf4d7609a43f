"""Business seconds between many pairs of instants, fast: a schedule's open periods over a
span are laid out once, with the open time before each, so that each duration is two binary
searches instead of a walk over the days (``hours.business_seconds``, which it equals).
The periodic refresh measures three durations of every changed conversation with it."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta

from atende.hours import Schedule
from atende.hours.business_time import periods


class BusinessClock:
    """Open time of ``schedule`` between instants inside ``[since, until]`` (wider ones are
    answered too: the span grows on demand)."""

    def __init__(self, schedule: Schedule, since: datetime, until: datetime) -> None:
        self.schedule = schedule
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._before: list[float] = []  # open seconds before each period starts
        self._since = self._until = since.astimezone(UTC)
        self._lay_out(since, until)

    def _lay_out(self, since: datetime, until: datetime) -> None:
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        starts: list[float] = []
        ends: list[float] = []
        for opens, closes in periods(self.schedule, since - timedelta(days=1)):
            a, b = opens.timestamp(), closes.timestamp()
            if ends and a <= ends[-1]:  # touching or overlapping periods: one stretch
                ends[-1] = max(ends[-1], b)
            else:
                starts.append(a)
                ends.append(b)
            if opens > until + timedelta(days=1):
                break
        before: list[float] = []
        total = 0.0
        for a, b in zip(starts, ends, strict=True):
            before.append(total)
            total += b - a
        self._starts, self._ends, self._before = starts, ends, before
        self._since, self._until = since, until

    def _open_before(self, at: float) -> float:
        i = bisect_right(self._starts, at) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(at, self._ends[i]) - self._starts[i]

    def seconds(self, start: datetime, end: datetime) -> float:
        """Open seconds between ``start`` and ``end`` (``end`` not before ``start``)."""
        if end < start:
            raise ValueError("end must not be before start")
        if start < self._since or end > self._until:
            self._lay_out(min(start, self._since), max(end, self._until))
        return self._open_before(end.timestamp()) - self._open_before(start.timestamp())
