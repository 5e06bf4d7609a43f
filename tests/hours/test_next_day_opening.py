"""``next_day_opening``: when the next business day opens (what "snooze until the next business
day" waits for), at fixed instants. 2027-03-01 is a Monday."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from atende.hours import ALWAYS_OPEN, DAYS, Schedule, next_day_opening, parse_schedule
from tests.hours.test_business_time import (
    ALWAYS_CLOSED,
    NIGHT_SHIFT,
    OFFICE,
    OFFICE_SP_HOLIDAYS,
    SP,
    iv,
    sp,
    utc,
)

# a shift to midnight that goes on after it, then the day's own opening
LATE_THEN_DAY = parse_schedule(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {
            "monday": [iv("20:00", "24:00")],
            "tuesday": [iv("00:00", "06:00"), iv("09:00", "17:00")],
        },
    }
)
ROUND_THE_CLOCK = parse_schedule(
    {"timezone": "America/Sao_Paulo", "weekly": {day: [iv("00:00", "24:00")] for day in DAYS}}
)

CASES = [
    pytest.param(
        OFFICE, sp(2027, 3, 1, 10, 0), sp(2027, 3, 2, 8, 0), id="open-now: tomorrow, not after lunch"
    ),
    pytest.param(OFFICE, sp(2027, 3, 1, 7, 0), sp(2027, 3, 2, 8, 0), id="before-opening: a later day"),
    pytest.param(OFFICE, sp(2027, 3, 1, 20, 0), sp(2027, 3, 2, 8, 0), id="after-closing"),
    pytest.param(OFFICE, sp(2027, 3, 5, 17, 0), sp(2027, 3, 8, 8, 0), id="friday: monday"),
    pytest.param(OFFICE, sp(2027, 3, 6, 11, 0), sp(2027, 3, 8, 8, 0), id="saturday: monday"),
    # Carnival Monday and Tuesday are holidays; Ash Wednesday opens at 14:00 (special hours)
    pytest.param(OFFICE_SP_HOLIDAYS, sp(2027, 2, 5, 10, 0), sp(2027, 2, 10, 14, 0), id="holidays-skipped"),
    # Monday's 22:00-06:00 shift runs now; Tuesday's starts at 22:00
    pytest.param(NIGHT_SHIFT, sp(2027, 3, 1, 23, 0), sp(2027, 3, 2, 22, 0), id="night-shift"),
    pytest.param(LATE_THEN_DAY, sp(2027, 3, 1, 21, 0), sp(2027, 3, 2, 9, 0), id="midnight-continues-nothing"),
    pytest.param(
        ROUND_THE_CLOCK, sp(2027, 3, 1, 15, 0), sp(2027, 3, 2, 0, 0), id="round-the-clock: midnight"
    ),
    pytest.param(ALWAYS_OPEN, utc(2027, 3, 1, 15, 0), utc(2027, 3, 2, 0, 0), id="always-open: utc midnight"),
]


@pytest.mark.parametrize(("schedule", "at", "expected"), CASES)
def test_next_day_opening_at_fixed_instants(schedule: Schedule, at: datetime, expected: datetime) -> None:
    assert next_day_opening(schedule, at) == expected


def test_the_answer_does_not_depend_on_the_zone_the_instant_is_given_in() -> None:
    at = sp(2027, 3, 1, 22, 30)  # Monday evening in São Paulo is already Tuesday in UTC
    assert next_day_opening(OFFICE, at.astimezone(UTC)) == sp(2027, 3, 2, 8, 0)
    assert next_day_opening(OFFICE, at).astimezone(SP).hour == 8  # type: ignore[union-attr]


def test_a_schedule_that_never_opens_has_no_next_day_opening() -> None:
    assert next_day_opening(ALWAYS_CLOSED, sp(2027, 3, 1, 10, 0)) is None


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_day_opening(OFFICE, datetime(2027, 3, 1, 10, 0))
