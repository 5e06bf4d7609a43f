"""What a company sets of its web chat widget, per web chat account (the account's ``config``,
validated here): its colours, title, greeting in each language, whether the visitor is
offered a "Talk to a person" button, whether a visitor who finds the team away may leave
a message with the offline contact form, and whether a thumbs-down on an answer offers a person.

Colours are checked for readability, the way WCAG 2 measures it (relative luminance, contrast
ratio, at least 4.5:1 for text): the text colour on the primary colour (the header, the
launcher, the visitor's own messages, Send), and the accent colour on the widget's white panel
(the "Talk to a person" button's text and border, the keyboard focus ring). A pair a visitor
could not read is refused, not stored.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

HEX = r"^#[0-9a-fA-F]{6}$"
MIN_CONTRAST = 4.5  # WCAG 2 AA, normal text
PANEL = "#ffffff"  # the panel's background, under the accent colour
TITLE_MAX = 60
GREETING_MAX = 500
GreetingLanguage = Literal["pt-BR", "en", "es"]
GREETING_LANGUAGES: tuple[GreetingLanguage, ...] = ("pt-BR", "en", "es")
# the widget's two-letter language (``data-lang``, the browser's) → the greeting's
WIDGET_LANGUAGES: dict[str, GreetingLanguage] = {"pt": "pt-BR", "en": "en", "es": "es"}

Colour = Annotated[str, Field(pattern=HEX, description="`#rrggbb`.")]


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """WCAG 2's relative luminance of ``#rrggbb``: 0 (black) to 1 (white)."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(one: str, other: str) -> float:
    """WCAG 2's contrast ratio of two colours: 1 (the same) to 21 (black on white)."""
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _readable(text: str, background: str, what: str) -> None:
    ratio = contrast(text, background)
    if ratio < MIN_CONTRAST:
        raise PydanticCustomError(
            "low_contrast",
            "{what}: {text} on {background} has a contrast of {ratio}:1, too low to read; "
            "choose colours with at least 4.5:1",
            {"what": what, "text": text, "background": background, "ratio": f"{ratio:.2f}"},
        )


class WebChatConfig(BaseModel):
    """A web chat account's ``config``; every field has a default (``{}`` is the widget as it
    always looked)."""

    model_config = ConfigDict(extra="forbid")
    primary_color: Colour = Field(
        default="#2454d6", description="The header, the launcher, the visitor's messages, Send."
    )
    primary_text_color: Colour = Field(
        default="#ffffff", description="Text on the primary colour; at least 4.5:1 against it."
    )
    accent_color: Colour = Field(
        default="#0f766e",
        description="The 'Talk to a person' button and the focus ring, on the white panel; at "
        "least 4.5:1 against white.",
    )
    title: str = Field(
        default="", max_length=TITLE_MAX, description="The widget's title; empty: 'Atendimento', 'Support'…"
    )
    greeting: dict[GreetingLanguage, Annotated[str, Field(max_length=GREETING_MAX)]] = Field(
        default={},
        description="The first message a visitor reads, by language (`pt-BR`, `en`, `es`).",
    )
    handoff_button: bool = Field(default=True, description="Offer a 'Talk to a person' button.")
    offline_form: bool = Field(
        default=True,
        description="When the team is closed or nobody is online, offer a contact form (name, e-mail, "
        "message) that leaves the message for the team.",
    )
    offer_person_on_thumbs_down: bool = Field(
        default=True,
        description="After a visitor rates an answer 'Not helpful', offer 'Talk to a person' (a "
        "handoff by the business hours and handoff rules).",
    )

    @field_validator("primary_color", "primary_text_color", "accent_color")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("primary_text_color")
    @classmethod
    def _text_readable(cls, value: str, info: ValidationInfo) -> str:
        primary = info.data.get("primary_color")
        if primary is not None:  # else primary_color's own error is reported
            _readable(value, primary, "the text colour on the primary colour")
        return value

    @field_validator("accent_color")
    @classmethod
    def _accent_readable(cls, value: str) -> str:
        _readable(value, PANEL, "the accent colour on the white panel")
        return value

    @field_validator("title")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("greeting")
    @classmethod
    def _drop_empty(cls, value: dict[GreetingLanguage, str]) -> dict[GreetingLanguage, str]:
        return {lang: text.strip() for lang, text in value.items() if text.strip()}

    def greeting_for(self, widget_language: str) -> str | None:
        """The greeting in the widget's language (``pt``, ``en``, ``es``), if there is one."""
        lang = WIDGET_LANGUAGES.get(widget_language[:2].lower(), "pt-BR")
        return self.greeting.get(lang) or None
