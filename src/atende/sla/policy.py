"""SLA policies as plain data, which one a conversation falls under, and its clocks' times
(pure: no database, no clock of its own).

A policy sets up to three targets, in business seconds: the first response (from the
handoff to the first agent reply), the next response (from a customer's message while the
team owes a reply to the agent's reply) and the resolution (from the handoff to resolved).
Its conditions name priorities, channels, teams and labels; a list left empty matches any,
and a conversation must match every list that is not (one of the priorities, one of the
channels...). The company's policies are tried in order of ``position``: the first that
matches wins; none matching, the conversation has no targets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from atende.sla.clock import DueClock

PRIORITIES = ("low", "normal", "high", "urgent")
DEFAULT_PRIORITY = "normal"
DEFAULT_WARNING_PERCENT = 80
MAX_TARGET_SECONDS = 366 * 86400


class Target(StrEnum):
    first_response = "first_response"
    next_response = "next_response"
    resolution = "resolution"


class Escalation(StrEnum):
    none = "none"
    reassign = "reassign"  # the conversation moves to the escalation team's queue
    notify = "notify"  # the escalation team hears of it (live, and by e-mail when asked)


@dataclass(frozen=True)
class Facts:
    """What a policy's conditions read of a conversation."""

    priority: str
    channel: str
    team_id: uuid.UUID | None
    label_ids: frozenset[uuid.UUID] = frozenset()


@dataclass(frozen=True)
class Policy:
    id: uuid.UUID
    name: str
    position: int
    targets: dict[Target, int]  # business seconds; a target left out is not tracked
    priorities: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    team_ids: frozenset[uuid.UUID] = frozenset()
    label_ids: frozenset[uuid.UUID] = frozenset()
    warning_percent: int = DEFAULT_WARNING_PERCENT
    escalation: Escalation = Escalation.none
    escalation_team_id: uuid.UUID | None = None
    email_team: bool = False

    def matches(self, facts: Facts) -> bool:
        return (
            (not self.priorities or facts.priority in self.priorities)
            and (not self.channels or facts.channel in self.channels)
            and (not self.team_ids or facts.team_id in self.team_ids)
            and (not self.label_ids or bool(self.label_ids & facts.label_ids))
        )


def choose(policies: Iterable[Policy], facts: Facts) -> Policy | None:
    """The first policy (by position) whose conditions the conversation meets."""
    for policy in sorted(policies, key=lambda p: (p.position, str(p.id))):
        if policy.matches(facts):
            return policy
    return None


@dataclass(frozen=True)
class Times:
    """A clock's moments: when it falls due, when the warning is raised (``warning_percent``
    of the target's business time), and whether a stopped clock was met."""

    due_at: datetime | None
    warn_at: datetime | None

    def met(self, stopped_at: datetime) -> bool:
        return self.due_at is None or stopped_at <= self.due_at


def times(clock: DueClock, started_at: datetime, seconds: int, warning_percent: int) -> Times:
    """The due and warning instants of a target of ``seconds`` started at ``started_at``."""
    due = clock.due(started_at, seconds)
    warn = clock.due(started_at, seconds * warning_percent / 100) if 0 < warning_percent < 100 else None
    return Times(due, warn)


def next_alarm(times_: Times, *, warned_at: datetime | None, breached_at: datetime | None) -> datetime | None:
    """When the job must next look at a running clock: its warning, then its breach."""
    if warned_at is None and breached_at is None and times_.warn_at is not None:
        return times_.warn_at
    if breached_at is None:
        return times_.due_at
    return None


def parse_duration(value: object) -> int:
    """Business seconds from ``"4h"``, ``"30m"``, ``"1h30m"``, ``"2d"`` (a business day is
    24 hours of open time, as the clock counts) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as 4h, 30m, 1h30m")
    if isinstance(value, int | float):
        seconds = int(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip().lower())
    else:
        raise ValueError("a duration is a number of seconds or text such as 4h, 30m, 1h30m")
    if seconds <= 0:
        raise ValueError("a duration must be longer than zero")
    if seconds > MAX_TARGET_SECONDS:
        raise ValueError(f"a target is at most {MAX_TARGET_SECONDS // 86400} days of business time")
    return seconds


_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _parse_text(text: str) -> int:
    if text.isdigit():
        return int(text)
    total, number = 0, ""
    for char in text:
        if char.isdigit():
            number += char
        elif char in _UNITS and number:
            total += int(number) * _UNITS[char]
            number = ""
        elif not char.isspace():
            raise ValueError(f"{text!r} is not a duration such as 4h, 30m, 1h30m or 2d")
    if number:
        raise ValueError(f"{text!r} is not a duration such as 4h, 30m, 1h30m or 2d (a unit is missing)")
    return total


def duration_text(seconds: int) -> str:
    """``5400`` → ``"1h30m"``: what a person typed, back."""
    parts = []
    for unit, size in _UNITS.items():
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
