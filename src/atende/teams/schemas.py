"""Request and response bodies of the human side's routes (``teams.api``)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atende.conversations.inbox import COUNT_CAP
from atende.conversations.schemas import SLA_DESCRIPTION, ConversationPublic, LabelPublic, SlaDueOut
from atende.hours import DAYS
from atende.teams.models import Availability

CLOCK = r"^\d{2}:\d{2}$"
Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IntervalIn(_Strict):
    start: str = Field(pattern=CLOCK, examples=["08:00"])
    end: str = Field(pattern=CLOCK, examples=["18:00"], description='"24:00" ends at midnight.')
    overnight: bool = Field(default=False, description="Ends the next day (e.g. 22:00 to 06:00).")


class HolidaysIn(_Strict):
    country: str = Field(min_length=2, max_length=3, examples=["BR"])
    subdiv: str | None = Field(default=None, max_length=10, examples=["SP"])
    categories: list[str] = Field(
        default=["public"],
        max_length=7,
        description='Holiday categories of the `holidays` package; "optional" adds e.g. Carnival in BR.',
    )
    skip: list[Annotated[str, Field(max_length=200)]] = Field(
        default=[], max_length=100, description='Holidays worked anyway, by name (e.g. "Christmas Eve").'
    )


class ClosedDateIn(_Strict):
    date: date
    name: str = Field(default="closed", max_length=200)
    source: Literal["manual", "ics"] = "manual"


class SpecialHoursIn(_Strict):
    date: date
    intervals: list[IntervalIn] = Field(default=[], max_length=12, description="[] closes the day.")


EXAMPLE_HOURS: dict[str, Any] = {
    "timezone": "America/Sao_Paulo",
    "weekly": {d: [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}] for d in DAYS[:5]}
    | {"saturday": [{"start": "09:00", "end": "13:00"}]},
    "holidays": {"country": "BR", "subdiv": "SP", "categories": ["public", "optional"]},
    "closed_dates": [{"date": "2026-12-24", "name": "Véspera de Natal"}],
    "special_hours": [{"date": "2027-02-10", "intervals": [{"start": "14:00", "end": "18:00"}]}],
}


class HoursIn(_Strict):
    """A weekly schedule in an IANA timezone; days left out are closed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_HOURS]})
    timezone: str = Field(max_length=64, examples=["America/Sao_Paulo"])
    weekly: dict[Day, list[IntervalIn]] = Field(default={})
    holidays: HolidaysIn | None = None
    closed_dates: list[ClosedDateIn] = Field(default=[], max_length=3000)
    special_hours: list[SpecialHoursIn] = Field(default=[], max_length=1000)


class HoursOut(BaseModel):
    hours: dict[str, Any] | None = Field(description="The stored schedule; null: always open.")
    open_now: bool
    next_open: datetime | None
    next_close: datetime | None


class IcsImportOut(HoursOut):
    imported: int = Field(description="Closed dates the calendar added (all-day events).")
    skipped: list[str] = Field(description="Events with a time of day, not imported.")


class RuleIn(_Strict):
    name: str = Field(min_length=1, max_length=100, examples=["legal"])
    keywords: list[Annotated[str, Field(min_length=2, max_length=100)]] = Field(
        min_length=1,
        max_length=100,
        examples=[["procon", "advogado", "processo judicial"]],
        description="Words or phrases (any language, accents and case ignored) that always go to a person.",
    )
    team: str | None = Field(default=None, max_length=80, description="The team whose queue it joins.")


class HandoffIn(_Strict):
    """The handoff settings. A `PUT` changes only the fields it sends: a field left out keeps
    its stored value (the defaults shown are those of a company that never set it)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"bot_answers_while_closed": True},
                {
                    "rules": [{"name": "legal", "keywords": ["procon", "advogado"], "team": "juridico"}],
                    "team": "atendimento",
                    "bot_answers_while_closed": True,
                    "hand_off_on_repeat": True,
                },
            ]
        },
    )
    rules: list[RuleIn] = Field(
        default=[], max_length=100, description="Replaces every rule when sent; `[]` removes them all."
    )
    team: str | None = Field(
        default=None, max_length=80, description="The queue handoffs join by default; `null`: the company's."
    )
    bot_answers_while_closed: bool = Field(
        default=False,
        description="While the team is closed, the bot keeps answering what the knowledge base "
        "covers in conversations waiting for a person (those already waiting too).",
    )
    hand_off_on_repeat: bool = Field(
        default=True, description="A customer repeating a question the bot answered goes to a person."
    )


class TeamIn(_Strict):
    name: str = Field(min_length=1, max_length=200, examples=["Financeiro"])
    slug: str | None = Field(default=None, max_length=60, pattern=r"^[a-z0-9-]+$")
    hours: HoursIn | None = Field(default=None, description="The team's own hours; null: the company's.")
    members: list[uuid.UUID] = Field(default=[], max_length=500, description="User ids of company members.")


class TeamOut(BaseModel):
    id: uuid.UUID
    name: str
    slug: str
    hours: dict[str, Any] | None
    members: list[uuid.UUID]


class AgentOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    availability: Availability
    availability_changed_at: datetime | None
    teams: list[str]


class AvailabilityIn(_Strict):
    availability: Availability


# snoozing, giving a conversation to a team, canned responses (``teams.actions_api``)


class TeamRefIn(_Strict):
    team: str = Field(min_length=1, max_length=80, description="The team's slug or id.")


class SnoozeIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"until": "2026-12-01T09:00:00-03:00"}, {"until": "next_business_day"}]
        },
    )
    until: datetime | Literal["next_business_day"] = Field(
        description="An instant with its timezone, or `next_business_day`: when the team's next "
        "business day opens (its hours, else the company's)."
    )


class CannedIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "prazo",
                    "title": "Prazo de entrega",
                    "text": "Olá {{contact.name | cliente}}, o prazo é de 2 a 5 dias úteis. {{agent.name}}, "
                    "{{company.name}}",
                }
            ]
        },
    )
    code: str = Field(
        min_length=1, max_length=40, description="What agents type after `/`: letters, digits, `-`, `_`."
    )
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(
        min_length=1,
        max_length=20000,
        description="The reply; variables: `{{contact.name}}`, `{{contact.email}}`, "
        "`{{contact.phone}}`, `{{agent.name}}`, `{{company.name}}`, each optionally with fallback "
        "words: `{{contact.name | cliente}}`.",
    )


class CannedOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    title: str
    text: str
    variables: list[str] = Field(description="The variables the text uses, in order.")
    created_at: datetime
    updated_at: datetime


class RenderIn(_Strict):
    conversation_id: uuid.UUID


class RenderedOut(BaseModel):
    code: str
    text: str = Field(description="The text with its variables filled, for the agent to edit and send.")
    missing: list[str] = Field(
        description="Variables without a value in this conversation (and no fallback words): left empty."
    )


class StateFilter(StrEnum):
    """A state, or ``open``: every state but ``resolved``."""

    open = "open"
    bot = "bot"
    waiting_human = "waiting_human"
    human = "human"
    resolved = "resolved"


class Snoozed(StrEnum):
    """Whether a list shows snoozed conversations (out of the lists until they wake)."""

    exclude = "exclude"
    only = "only"
    include = "include"


class Language(StrEnum):
    pt = "pt"
    en = "en"
    es = "es"


class TeamRef(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class PersonRef(BaseModel):
    id: uuid.UUID
    name: str
    email: str


class LastMessageOut(BaseModel):
    author: str = Field(description="`customer`, `bot`, `agent`, `system`, or `note` (the team's).")
    preview: str = Field(description="Its first 160 characters.")
    at: datetime


class InboxRowOut(ConversationPublic):
    """A conversation as an inbox row shows it."""

    contact_name: str | None
    team: TeamRef | None = Field(description="The team whose queue it is in.")
    assignee: PersonRef | None = Field(description="Who owns it.")
    last_message: LastMessageOut | None
    unanswered: int = Field(description="Customer messages since the last reply (bot's or agent's).")
    labels: list[LabelPublic]
    sla: list[SlaDueOut] = Field(default=[], description=SLA_DESCRIPTION)


class ViewCount(BaseModel):
    count: int = Field(description=f"Conversations in the view, counted up to {COUNT_CAP}.")
    capped: bool = Field(description=f"There are more than {COUNT_CAP}: show it as {COUNT_CAP:,}+.")


class InboxCounts(BaseModel):
    cap: int = Field(description="Counts stop here.")
    mine: ViewCount | None = Field(description="null with a company key, which is nobody.")
    unassigned: ViewCount
    my_teams: ViewCount | None = Field(description="null with a company key.")
    all: ViewCount
