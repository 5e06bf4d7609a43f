"""When the team is back, said in the customer's language and the company's time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from atende.engine.handoff import Routing
from atende.engine.messages import handoff_text, phrase, when_back

NOW = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)  # Friday 18:00 in São Paulo


def routing(*, is_open: bool, staffed: bool, opens: datetime | None) -> Routing:
    return Routing(None, "America/Sao_Paulo", is_open, staffed, opens, bot_assists=False)


@pytest.mark.parametrize(
    ("opens", "language", "said"),
    [
        (datetime(2026, 12, 4, 23, 0, tzinfo=UTC), "pt", "hoje às 20:00"),
        (datetime(2026, 12, 5, 11, 0, tzinfo=UTC), "pt", "amanhã às 08:00"),
        (datetime(2026, 12, 7, 11, 0, tzinfo=UTC), "pt", "segunda-feira às 08:00"),
        (datetime(2026, 12, 7, 11, 0, tzinfo=UTC), "en", "on Monday at 8:00 AM"),
        (datetime(2026, 12, 7, 11, 0, tzinfo=UTC), "es", "el lunes a las 08:00"),
        (datetime(2026, 12, 5, 11, 0, tzinfo=UTC), "en", "tomorrow at 8:00 AM"),
        (datetime(2026, 12, 5, 11, 0, tzinfo=UTC), "es", "mañana a las 08:00"),
        (datetime(2026, 12, 28, 11, 0, tzinfo=UTC), "pt", "segunda-feira, 28 de dezembro, às 08:00"),
        (datetime(2026, 12, 28, 11, 0, tzinfo=UTC), "en", "on Monday, December 28 at 8:00 AM"),
        (datetime(2026, 12, 28, 4, 0, tzinfo=UTC), "es", "el lunes 28 de diciembre a la 01:00"),
    ],
)
def test_the_reopening_is_said_in_the_customers_language_and_the_companys_time(
    opens: datetime, language: str, said: str
) -> None:
    assert when_back(NOW, opens, "America/Sao_Paulo", language) == said


def test_a_closed_handoff_says_when_the_team_is_back_and_that_the_message_is_kept() -> None:
    opens = datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    text = handoff_text("requested", "pt", routing(is_open=False, staffed=True, opens=opens), NOW)
    assert text.startswith("Claro!")
    assert "volta segunda-feira às 08:00" in text
    assert "Sua mensagem fica guardada" in text


def test_an_open_handoff_with_nobody_online_says_so() -> None:
    text = handoff_text("evidence", "en", routing(is_open=True, staffed=False, opens=None), NOW)
    assert text == f"{phrase('lead:evidence', 'en')} {phrase('next:nobody', 'en')}"


def test_an_open_staffed_handoff_for_weak_evidence_is_the_classic_handoff_phrase() -> None:
    for language in ("pt", "en", "es"):
        text = handoff_text("evidence", language, routing(is_open=True, staffed=True, opens=None), NOW)
        assert text == phrase("handoff", language)
