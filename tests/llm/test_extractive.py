"""The offline answerer across languages: a passage in another language than the question is
quoted when it is close enough in meaning (its dense score), never on words it cannot share."""

from __future__ import annotations

import uuid

import pytest

from atende.knowledge.passages import Passage
from atende.llm.answerer import Question
from atende.llm.extractive import ExtractiveAnswerer, cross_lingual

EVIDENCE = 0.78


def passage(text: str, language: str, dense: float | None, title: str = "Shipping") -> Passage:
    scores = {"fused": 1.0, **({"dense": dense} if dense is not None else {})}
    stems = frozenset(w.strip(".,").lower() for w in text.split())
    return Passage(
        uuid.uuid4(), uuid.uuid4(), title, title, text, language, 1.0, lexemes=stems, scores=scores
    )


async def lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    return [frozenset(w.strip(".,").lower() for w in t.split()) for t, _ in texts]


# stemmed as English, a Spanish question shares only its names and numbers with English passages
SPANISH = Question(
    "¿Cuánto tarda el envío a Manaus?",
    "es",
    {"en": frozenset({"tarda", "envio", "manaus"}), "es": frozenset()},
)
SHIPPING = "We deliver everywhere in Brazil. Delivery to Manaus takes 8 days. Orders ship the same day."


async def test_a_passage_in_another_language_close_in_meaning_is_quoted_with_its_language() -> None:
    answer = await ExtractiveAnswerer(0.5, cross_lingual_evidence=EVIDENCE).answer(
        SPANISH, [passage(SHIPPING, "en", 0.81)], lexer
    )
    assert answer.text == "Delivery to Manaus takes 8 days."  # the sentence naming what both share
    assert answer.quoted_language == "en"
    assert [c["title"] for c in answer.citations] == ["Shipping"]
    assert answer.reason.startswith("answered across languages from 'Shipping' (en; dense 0.810)")


@pytest.mark.parametrize(
    ("passages", "evidence"),
    [
        ([passage(SHIPPING, "en", 0.74)], EVIDENCE),  # too far in meaning
        ([passage(SHIPPING, "en", None)], EVIDENCE),  # found by its words only: no meaning score
        ([passage(SHIPPING, "en", 0.9)], None),  # turned off
        ([passage(SHIPPING, "en", 0.9)], 1.0),  # turned off by the setting's 1
        ([passage("Enviamos a todo Brasil.", "es", 0.9)], EVIDENCE),  # same language: coverage decides
        ([], EVIDENCE),
    ],
)
async def test_no_quote_across_languages_without_strong_meaning(
    passages: list[Passage], evidence: float | None
) -> None:
    assert await cross_lingual(SPANISH, passages, lexer, evidence) is None
    answer = await ExtractiveAnswerer(0.5, cross_lingual_evidence=evidence).answer(SPANISH, passages, lexer)
    assert answer.text is None and answer.quoted_language is None


async def test_a_passage_sharing_no_word_gives_its_first_sentences() -> None:
    question = Question("¿Hacen envíos?", "es", {"en": frozenset({"hacen", "envio"})})
    answer = await cross_lingual(question, [passage(SHIPPING, "en", 0.8)], lexer, EVIDENCE)
    assert answer is not None
    assert answer.text == "We deliver everywhere in Brazil. Delivery to Manaus takes 8 days."


async def test_an_answer_quoting_another_languages_words_says_which_language_it_quotes() -> None:
    question = Question("¿Envío a Manaus?", "es", {"en": frozenset({"manaus"})})  # the name covers it
    answer = await ExtractiveAnswerer(0.5).answer(question, [passage(SHIPPING, "en", None)], lexer)
    assert answer.text == "Delivery to Manaus takes 8 days."
    assert answer.quoted_language == "en"
