"""When the bot hands a conversation to people, and where it goes.

Signals read from the customer's message before anything is looked up: they asked for a
person (``intent.asks_for_a_person``), a company rule's keyword matched (rules may name the
team that takes it), or they repeat a question the bot already answered (its answer did not
help). Weak evidence is the fourth reason, found by the answerer.

Routing reads the team's (else the company's) business hours at the turn's instant and who
is online: open and staffed, the conversation joins the queue and a person answers soon;
closed, or nobody online, it waits as a ticket and the customer is told when the team is back.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from atende.engine.intent import asks_for_a_person
from atende.errors import InvalidInput
from atende.hours import is_open, next_open
from atende.knowledge.text import words
from atende.teams import service as staffing
from atende.teams.settings import (
    HandoffRule,
    HandoffSettings,
    company_schedule,
    handoff_settings,
    schedule_of,
)
from atende.tenancy.models import Company

REPEAT_SIMILARITY = 0.6  # share of words two questions have in common to be "the same question"


@dataclass(frozen=True)
class Signal:
    lead: str  # requested | rule | repeat: the first words of the reply
    reason: str  # for the trace and the state change
    team: str | None = None  # a rule's team


def _plain(text: str) -> str:
    return " " + " ".join(words(text)) + " "


R = TypeVar("R", HandoffRule, Mapping[str, Any])


def matching_rule(text: str, rules: Iterable[R]) -> R | None:
    """The first rule one of whose keywords is in ``text`` (whole words; accents and case
    ignored: "Procon" matches "procon", "processo judicial" matches "Processo Judicial!")."""
    plain = _plain(text)
    for rule in rules:
        keywords = rule.keywords if isinstance(rule, HandoffRule) else rule.get("keywords", ())
        for keyword in keywords:
            wanted = _plain(keyword)
            if wanted.strip() and wanted in plain:
                return rule
    return None


def _content_words(text: str) -> set[str]:
    return {w for w in words(text) if len(w) > 2}


def repeats(text: str, history: Sequence[tuple[str, str]]) -> bool:
    """Whether ``text`` asks again what an earlier customer message asked and the bot answered
    (``history``: (author, text) pairs, oldest first)."""
    words = _content_words(text)
    if len(words) < 2:
        return False
    for (author, earlier), (next_author, _) in itertools.pairwise(history):
        if author != "customer" or next_author != "bot":
            continue
        others = _content_words(earlier)
        if others and len(words & others) / len(words | others) >= REPEAT_SIMILARITY:
            return True
    return False


def signal(
    text: str, history: Sequence[tuple[str, str]], settings: HandoffSettings | Mapping[str, Any]
) -> Signal | None:
    """Why this message goes to a person before the knowledge base is even searched, if it
    does. ``settings``: the company's handoff section (a mapping is read as one)."""
    if not isinstance(settings, HandoffSettings):
        settings = HandoffSettings.model_validate(settings)
    if asks_for_a_person(text):
        return Signal("requested", "the customer asked for a person")
    rule = matching_rule(text, settings.rules)
    if rule is not None:
        return Signal("rule", f"handoff rule '{rule.name}' matched", rule.team)
    if settings.hand_off_on_repeat and repeats(text, history):
        return Signal("repeat", "the customer repeated a question the bot had answered")
    return None


@dataclass(frozen=True)
class Routing:
    """Where a handoff goes at one instant, and what the customer is told."""

    team_id: uuid.UUID | None
    timezone: str
    is_open: bool
    staffed: bool
    opens: datetime | None  # when closed: the next opening (None: no opening ahead)
    bot_assists: bool  # the bot keeps answering knowledge-base questions meanwhile

    @property
    def ticket(self) -> bool:
        """Waits for the team (closed, or nobody online) rather than being answered soon."""
        return not (self.is_open and self.staffed)


async def route(session: AsyncSession, company: Company, team: str | None, now: datetime) -> Routing:
    """The routing of a handoff to ``team`` (else the company's default team, else the
    company queue) at ``now``. A team named by a rule that no longer exists falls back."""
    settings = handoff_settings(company)
    schedule = company_schedule(company)
    team_id = None
    for ref in (team, settings.team):
        if not ref:
            continue
        try:
            found = await staffing.get_team(session, ref)
        except InvalidInput:  # deleted since the rule was saved: the next choice
            continue
        team_id = found.id
        if found.hours:
            schedule = schedule_of(found.hours)
        break
    open_now = is_open(schedule, now)
    staff = await staffing.staffing(session, team_id) if open_now else None
    return Routing(
        team_id=team_id,
        timezone=schedule.timezone,
        is_open=open_now,
        staffed=staff.staffed if staff is not None else False,
        opens=None if open_now else next_open(schedule, now),
        bot_assists=settings.bot_answers_while_closed and not open_now,
    )
