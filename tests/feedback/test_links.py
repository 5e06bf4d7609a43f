"""The pure parts of the surveys: the e-mail links' signature and expiry, the scores of a
template's buttons, a reply that is only a score, and the question per language."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from atende.channels.email.csat import score_in
from atende.channels.whatsapp.csat import answer_of, scores_for
from atende.feedback import links
from atende.feedback.csat_settings import DEFAULT_QUESTIONS, CsatSettings

SECRET = "a-secret-of-the-deployment"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
COMPANY, SURVEY = uuid.uuid4(), uuid.uuid4()


def test_a_link_reads_back_what_was_signed() -> None:
    token = links.make(SECRET, COMPANY, SURVEY, 4, NOW + timedelta(days=1))
    link = links.read(SECRET, token, NOW)
    assert (link.company_id, link.survey_id, link.score) == (COMPANY, SURVEY, 4)
    assert link.key != links.read(SECRET, links.make(SECRET, COMPANY, SURVEY, 5, link.expires), NOW).key


@pytest.mark.parametrize(
    "change",
    [
        lambda parts: [parts[0], parts[1], "5", parts[3], parts[4]],  # another score
        lambda parts: [parts[0], parts[1], parts[2], str(int(parts[3]) + 1), parts[4]],  # longer life
        lambda parts: [uuid.uuid4().hex, parts[1], parts[2], parts[3], parts[4]],  # another company
        lambda parts: [parts[0], parts[1], parts[2], parts[3], parts[4][:-1] + "A"],  # signature
        lambda parts: parts[:4],
    ],
)
def test_an_altered_link_is_refused(change: object) -> None:
    parts = links.make(SECRET, COMPANY, SURVEY, 1, NOW + timedelta(days=1)).split(".")
    with pytest.raises(links.BadLink):
        links.read(SECRET, ".".join(change(parts)), NOW)  # type: ignore[operator]


def test_a_link_of_another_deployment_or_past_its_expiry_is_refused() -> None:
    token = links.make(SECRET, COMPANY, SURVEY, 3, NOW + timedelta(hours=1))
    with pytest.raises(links.BadLink):
        links.read("another-secret", token, NOW)
    with pytest.raises(links.ExpiredLink):
        links.read(SECRET, token, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("buttons", "scores"), [(2, [1, 5]), (3, [1, 3, 5]), (4, [1, 2, 4, 5]), (5, [1, 2, 3, 4, 5])]
)
def test_a_templates_buttons_spread_over_the_scale(buttons: int, scores: list[int]) -> None:
    assert scores_for(buttons) == scores


def test_only_a_surveys_payload_is_an_answer() -> None:
    survey = uuid.uuid4()
    assert answer_of({"choice": {"type": "button_reply", "id": f"csat:{survey.hex}:5"}}) == (survey, 5)
    assert answer_of({"choice": {"type": "quick_reply", "payload": f"csat:{survey.hex}:2"}}) == (survey, 2)
    for other in (f"csat:{survey.hex}:6", f"csat:{survey.hex}:0", "callback_data", f"x{survey.hex}:5"):
        assert answer_of({"choice": {"id": other}}) is None
    assert answer_of({}) is None


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("5", 5),
        (" 4/5 ", 4),
        ("3 de 5", 3),
        ("2 of 5.", 2),
        ("1!", 1),
        ("6", None),
        ("5 stars, great", None),
        ("", None),
    ],
)
def test_a_reply_is_a_score_only_when_it_is_nothing_else(text: str, score: int | None) -> None:
    assert score_in(text) == score


def test_the_question_is_the_companys_in_the_language_else_the_default() -> None:
    settings = CsatSettings(questions={"pt": "Nota?"})
    assert settings.question("pt") == "Nota?"
    assert settings.question("es") == DEFAULT_QUESTIONS["es"]
    assert settings.question("de") == DEFAULT_QUESTIONS["en"]
    assert settings.question(None) == DEFAULT_QUESTIONS["en"]
