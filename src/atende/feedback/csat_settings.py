"""A company's CSAT settings: ``companies.settings["csat"]``, read through ``CsatSettings``.

Off until the company turns it on. ``delay_seconds`` after a resolution the survey goes out
on the conversation's channel, if that channel is one of ``channels`` and the conversation is
still resolved; the customer may answer, and change the answer, until ``answer_window_hours``
after it went out. ``questions``: the company's own question per language (``pt``, ``en``,
``es``); a language left out asks the default (``DEFAULT_QUESTIONS``). ``whatsapp_template``:
the approved template sent when the WhatsApp customer-service window has closed (without
one, such a conversation is not surveyed). ``enabled_at``: set when the surveys are turned on,
so that turning them on never surveys the resolutions that came before.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from atende.tenancy.settings import Section

LANGUAGES = ("pt", "en", "es")
SURVEYED_CHANNELS = ("webchat", "api", "whatsapp", "email")
DEFAULT_QUESTIONS = {
    "pt": "Como você avalia o atendimento que recebeu? Dê uma nota de 1 (muito ruim) a 5 (excelente).",
    "en": "How would you rate the help you received? Give a score from 1 (very poor) to 5 (excellent).",
    "es": "¿Cómo calificarías la atención que recibiste? Da una nota de 1 (muy mala) a 5 (excelente).",
}
DELAY_MAX_SECONDS = 7 * 24 * 3600
WINDOW_MAX_HOURS = 90 * 24
QUESTION_MAX = 500


class WhatsAppTemplate(BaseModel):
    """An approved template of the company's WhatsApp Business Account, by name and language;
    its quick-reply buttons (2 to 5, worst first) carry the scores."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")
    language: str = Field(min_length=2, max_length=15, pattern=r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
    buttons: int = Field(
        default=3, ge=2, le=5, description="Its quick-reply buttons: the scores, worst first."
    )


class CsatSettings(Section):
    key: ClassVar[str | None] = "csat"
    enabled: bool = False
    delay_seconds: int = Field(default=300, ge=0, le=DELAY_MAX_SECONDS)
    questions: dict[str, str] = Field(default_factory=dict)
    channels: list[str] = Field(default_factory=lambda: list(SURVEYED_CHANNELS))
    answer_window_hours: int = Field(default=168, ge=1, le=WINDOW_MAX_HOURS)
    whatsapp_template: WhatsAppTemplate | None = None
    enabled_at: datetime | None = None

    @field_validator("questions")
    @classmethod
    def _questions(cls, value: dict[str, str]) -> dict[str, str]:
        if unknown := sorted(set(value) - set(LANGUAGES)):
            raise ValueError(f"questions are per language, one of {', '.join(LANGUAGES)}; got {unknown}")
        cleaned = {lang: " ".join(text.split()) for lang, text in value.items()}
        for lang, text in cleaned.items():
            if "\x00" in text:
                raise ValueError(f"the {lang} question contains a NUL character")
            if len(text) > QUESTION_MAX:
                raise ValueError(f"the {lang} question is longer than {QUESTION_MAX} characters")
        return {lang: text for lang, text in cleaned.items() if text}

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        if unknown := sorted(set(value) - set(SURVEYED_CHANNELS)):
            raise ValueError(f"channels are any of {', '.join(SURVEYED_CHANNELS)}; got {unknown}")
        return [kind for kind in SURVEYED_CHANNELS if kind in value]

    def question(self, language: str | None) -> str:
        """The question in ``language`` (the company's own, else the default; English when the
        language is none of ``LANGUAGES``)."""
        lang = language if language in LANGUAGES else "en"
        return self.questions.get(lang) or DEFAULT_QUESTIONS[lang]
