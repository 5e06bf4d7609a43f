"""How the dashboard words SLAs: a time to breach ("due in 1h 20m", "breached 5m ago") and
the priorities' names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from atende.dashboard.i18n import N_
from atende.sla.policy import PRIORITIES

PRIORITY_NAMES = {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")}
TARGET_NAMES = {
    "first_response": N_("First response"),
    "next_response": N_("Next response"),
    "resolution": N_("Resolution"),
}
STATUS_NAMES = {
    "running": N_("running"),
    "warning": N_("warning"),
    "breached": N_("breached"),
    "met": N_("met"),
}
DUE_IN = N_("SLA due in %(time)s")
BREACHED_AGO = N_("SLA breached %(time)s ago")


@dataclass(frozen=True)
class TimeToBreach:
    text: str
    overdue: bool
    due_at: datetime


def span(seconds: float) -> str:
    """A span as its two largest units: ``2d 3h``, ``1h 20m``, ``45s``."""
    seconds = int(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def time_to_breach(due_at: datetime, now: datetime, _: Callable[[str], str]) -> TimeToBreach:
    left = (due_at - now).total_seconds()
    if left > 0:
        return TimeToBreach(_(DUE_IN) % {"time": span(left)}, False, due_at)
    return TimeToBreach(_(BREACHED_AGO) % {"time": span(left)}, True, due_at)


def priority_names(_: Callable[[str], str]) -> dict[str, str]:
    """Each priority's name in the reader's language."""
    return {p: _(PRIORITY_NAMES[p]) for p in PRIORITIES}
