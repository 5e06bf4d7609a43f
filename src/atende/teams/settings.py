"""The human side's sections of a company's settings: business hours (with holidays and
closed dates) and handoff rules, read through ``atende.tenancy.settings.read_section``.

``settings["hours"]`` holds a schedule in the shape ``atende.hours.parse_schedule`` reads
(no hours set: always open); its typed form is ``atende.hours.Schedule``. One that no longer
validates (a country's subdivision gone in a ``holidays`` upgrade) is logged and read as
always open: a handoff must still reach people and tell the customer something.
``settings["handoff"]`` holds the handoff rules (``HandoffSettings``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from pydantic import Field

from atende.hours import ALWAYS_OPEN, InvalidSchedule, Schedule, parse_schedule
from atende.tenancy.models import Company
from atende.tenancy.settings import Section, read_section, stored_settings

log = structlog.get_logger(__name__)


class HandoffRule(Section):
    """Keywords that always send a message to a person, to a team's queue or the company's."""

    key: ClassVar[str | None] = None
    name: str = ""
    keywords: list[str] = Field(default_factory=list)
    team: str | None = None


class HandoffSettings(Section):
    """``settings["handoff"]``: the rules, the default team, and what the bot does around a
    handoff. The defaults are those of a company that never set them."""

    key: ClassVar[str | None] = "handoff"
    rules: list[HandoffRule] = Field(default_factory=list)
    team: str | None = None
    bot_answers_while_closed: bool = False
    hand_off_on_repeat: bool = True


def handoff_settings(company: Company) -> HandoffSettings:
    return read_section(company, HandoffSettings)


def stored_hours(company: Company) -> dict[str, Any] | None:
    """The business hours as stored (the API shows them as sent); ``None``: always open."""
    hours: dict[str, Any] | None = stored_settings(company).get("hours")
    return hours


def schedule_of(stored: dict[str, Any] | None) -> Schedule:
    """The schedule stored (validated when saved), or always open when none is. One that no
    longer validates is logged and read as always open."""
    if not stored:
        return ALWAYS_OPEN
    try:
        return parse_schedule(stored)
    except InvalidSchedule as exc:
        log.error("hours.stored_schedule_invalid", field=exc.field, error=exc.message)
        return ALWAYS_OPEN


def company_schedule(company: Company) -> Schedule:
    """The company's business hours (a team without hours of its own works to them)."""
    return schedule_of(stored_hours(company))
