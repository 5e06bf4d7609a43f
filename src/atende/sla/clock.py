"""When a target counted in business time falls due: the instant ``seconds`` of open time
after a start, over one schedule (pure; the inverse of ``hours.business_time``).

A ``DueClock`` lays a schedule's open stretches out once (touching or overlapping periods
merged, as absolute instants in whole microseconds), with the open time before each; a due
time is then one binary search, whatever the target's length: microseconds, which the SLA job
needs over tens of thousands of conversations. Closed stretches, holidays, special hours and
DST changes are the schedule's periods themselves (``hours.business_time.periods``), so the
answer is exact to the microsecond.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from atende.hours import Schedule
from atende.hours.business_time import periods

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000


def _us(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")
    return (at - _EPOCH) // _US


def _instant(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class DueClock:
    """Due times and elapsed business time over ``schedule`` (laid out on demand)."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self._since: int | None = None
        self._starts: list[int] = []
        self._ends: list[int] = []
        self._open_by_end: list[int] = []  # open microseconds from the layout's start to each end
        self._source: Iterator[tuple[datetime, datetime]] = iter(())
        self._exhausted = True

    def _lay_out(self, since_us: int) -> None:
        self._since = since_us - _DAY_US  # yesterday's overnight shift may still run
        self._starts, self._ends, self._open_by_end = [], [], []
        self._source = periods(self.schedule, _instant(self._since))
        self._exhausted = False

    def _pull(self) -> bool:
        """Lay out the next period (a new stretch, or the last one made longer); ``False``
        when the schedule never opens again."""
        for opens, closes in self._source:
            a, b = _us(opens), _us(closes)
            if self._ends and a <= self._ends[-1]:  # touching or overlapping: one stretch
                if b > self._ends[-1]:
                    self._open_by_end[-1] += b - self._ends[-1]
                    self._ends[-1] = b
                return True
            self._starts.append(a)
            self._ends.append(b)
            self._open_by_end.append((self._open_by_end[-1] if self._open_by_end else 0) + b - a)
            return True
        self._exhausted = True
        return False

    def _cover(self, at: int) -> None:
        """Lay out every stretch that starts by ``at``, up to one that ends after it."""
        if self._since is None or at < self._since + _DAY_US:
            self._lay_out(at)
        while not self._exhausted and (not self._ends or self._ends[-1] <= at):
            self._pull()

    def _open_before(self, at: int) -> int:
        i = bisect_right(self._starts, at) - 1
        if i < 0:
            return 0
        before = self._open_by_end[i] - (self._ends[i] - self._starts[i])
        return before + min(at, self._ends[i]) - self._starts[i]

    def due(self, start: datetime, seconds: float) -> datetime | None:
        """The instant when ``seconds`` of open time have passed since ``start`` (``start``
        itself for no time at all); ``None`` when the schedule never gives that much."""
        begin = _us(start)
        if seconds <= 0:
            return start
        self._cover(begin)
        target = self._open_before(begin) + round(seconds * 1_000_000)
        while not self._open_by_end or self._open_by_end[-1] < target:
            if not self._pull():
                return None
        i = bisect_left(self._open_by_end, target)
        before = self._open_by_end[i] - (self._ends[i] - self._starts[i])
        return _instant(self._starts[i] + target - before)

    def elapsed(self, start: datetime, end: datetime) -> float:
        """Open seconds between ``start`` and ``end`` (none when ``end`` is not after it)."""
        a, b = _us(start), _us(end)
        if b <= a:
            return 0.0
        self._cover(a)
        self._cover(b)
        return (self._open_before(b) - self._open_before(a)) / 1_000_000
