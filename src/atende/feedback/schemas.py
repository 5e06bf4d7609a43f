"""Shapes of the CSAT routes: the settings a company sends and reads, a survey and its answer."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from atende.feedback.csat_settings import DELAY_MAX_SECONDS, QUESTION_MAX, WINDOW_MAX_HOURS, WhatsAppTemplate
from atende.feedback.service import COMMENT_MAX

ChannelName = Literal["webchat", "api", "whatsapp", "email"]


class CsatSettingsIn(BaseModel):
    """The CSAT settings. A `PUT` changes only the fields it sends: a field left out keeps its
    stored value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"enabled": True},
                {
                    "enabled": True,
                    "delay_seconds": 600,
                    "questions": {"pt": "De 1 a 5, como foi o nosso atendimento?"},
                    "channels": ["webchat", "whatsapp", "email"],
                    "answer_window_hours": 72,
                    "whatsapp_template": {"name": "pesquisa_satisfacao", "language": "pt_BR"},
                },
            ]
        },
    )
    enabled: bool = Field(default=False, description="Send a survey after each resolution.")
    delay_seconds: int = Field(
        default=300, ge=0, le=DELAY_MAX_SECONDS, description="How long after the resolution it goes out."
    )
    questions: dict[Literal["pt", "en", "es"], str] = Field(
        default={},
        description=f"The question per language (`pt`, `en`, `es`; at most {QUESTION_MAX} characters); "
        "a language left out (or empty) asks the default question.",
    )
    channels: list[ChannelName] = Field(
        default=["webchat", "api", "whatsapp", "email"],
        description="The channels whose conversations are surveyed.",
    )
    answer_window_hours: int = Field(
        default=168,
        ge=1,
        le=WINDOW_MAX_HOURS,
        description="For how long after it went out the survey may be answered, and its answer changed.",
    )
    whatsapp_template: WhatsAppTemplate | None = Field(
        default=None,
        description="The approved template sent when a WhatsApp customer's 24-hour window has closed "
        "(its quick-reply buttons, worst first, carry the scores); without one, such conversations "
        "are not surveyed.",
    )


class CsatSettingsOut(CsatSettingsIn):
    model_config = ConfigDict(extra="forbid")
    enabled_at: datetime | None = Field(
        default=None, description="When the surveys were turned on: earlier resolutions are never surveyed."
    )


class CsatAnswerIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"score": 5, "comment": "Resolveu rápido, obrigado!"}]},
    )
    score: int | None = Field(
        default=None, ge=1, le=5, description="1 (very poor) to 5 (excellent); omit to add only a comment."
    )
    comment: str | None = Field(default=None, max_length=COMMENT_MAX, description='Optional; `""` clears it.')


class CsatSurveyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    conversation_id: uuid.UUID
    channel: str
    language: str
    message_id: uuid.UUID | None
    resolved_at: datetime
    sent_at: datetime
    closes_at: datetime = Field(description="Answers (and changes) are taken until then.")
    score: int | None
    comment: str | None
    answered_at: datetime | None
    changed_at: datetime | None
    answered_via: str | None
