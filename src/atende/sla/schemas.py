"""What the SLA API reads and returns: policies, and a conversation's SLA state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from atende.sla.policy import DEFAULT_WARNING_PERCENT, Escalation, Target, parse_duration


def _duration(value: Any) -> int | None:
    return None if value is None or value == "" else parse_duration(value)


Duration = Annotated[
    int | None,
    BeforeValidator(_duration),
    Field(
        default=None,
        description="Business time: seconds, or text such as `30m`, `4h`, `1h30m`, `2d` "
        "(a day is 24 hours of open time). Empty: not tracked.",
    ),
]


class PolicyIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Urgent",
                    "priorities": ["urgent"],
                    "first_response": "30m",
                    "next_response": "1h",
                    "resolution": "8h",
                    "escalation": "reassign",
                    "escalation_team": "suporte-n2",
                }
            ]
        },
    )
    name: str = Field(min_length=1, max_length=200)
    position: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="Lower first; the first matching policy wins. Default: last.",
    )
    priorities: list[str] = Field(default=[], description="Any of low, normal, high, urgent; empty: any.")
    channels: list[str] = Field(
        default=[], description="Channel kinds (`webchat`, `whatsapp`...); empty: any."
    )
    teams: list[str] = Field(default=[], description="Team slugs or ids; empty: any.")
    labels: list[str] = Field(default=[], description="Label names or ids (any of them); empty: any.")
    first_response: Duration
    next_response: Duration
    resolution: Duration
    warning_percent: int = Field(
        default=DEFAULT_WARNING_PERCENT, ge=1, le=100, description="Warn at this share of a target."
    )
    escalation: Escalation = Field(
        default=Escalation.none, description="On a breach: none, reassign, notify."
    )
    escalation_team: str | None = Field(
        default=None, max_length=100, description="The team reassigned to or notified."
    )
    email_team: bool = Field(default=False, description="E-mail the team on each warning and breach.")


class PolicyPublic(BaseModel):
    id: uuid.UUID
    name: str
    position: int
    priorities: list[str]
    channels: list[str]
    teams: list[uuid.UUID]
    labels: list[uuid.UUID]
    first_response_seconds: int | None
    next_response_seconds: int | None
    resolution_seconds: int | None
    warning_percent: int
    escalation: Escalation
    escalation_team: uuid.UUID | None
    email_team: bool


class ClockPublic(BaseModel):
    target: Target
    started_at: datetime
    due_at: datetime | None = Field(description="When it breaches (business time counted); null: no target.")
    warn_at: datetime | None
    stopped_at: datetime | None = None
    status: str = Field(description="running, warning, breached, met")
    seconds_to_breach: float | None = Field(
        default=None, description="Wall-clock seconds until it breaches (negative: overdue); running only."
    )


class ConversationSla(BaseModel):
    conversation_id: uuid.UUID
    priority: str
    policy_id: uuid.UUID | None
    policy: str | None
    clocks: list[ClockPublic]
    next_due_at: datetime | None = Field(description="The earliest due time of a running clock.")


class PriorityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: str = Field(max_length=20, description="low, normal, high or urgent")
