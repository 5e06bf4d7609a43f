"""Business time: a company's or team's opening hours, holidays and the arithmetic over them.

Pure functions over plain data; no database, no web, no clock (callers pass the instant).
"""

from atende.hours.business_time import (
    business_seconds,
    business_time,
    is_open,
    next_close,
    next_day_opening,
    next_open,
)
from atende.hours.schedule import ALWAYS_OPEN, DAYS, InvalidSchedule, Schedule, parse_schedule

__all__ = [
    "ALWAYS_OPEN",
    "DAYS",
    "InvalidSchedule",
    "Schedule",
    "business_seconds",
    "business_time",
    "is_open",
    "next_close",
    "next_day_opening",
    "next_open",
    "parse_schedule",
]
