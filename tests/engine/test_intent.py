"""Recognising a request for a person, company rules and repeated questions (pure functions),
and the measured quality of the request detector on labelled messages (``data/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from atende.engine.handoff import matching_rule, repeats, signal
from atende.engine.intent import asks_for_a_person
from benchmarks.handoff_intent import SETS, measure

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "text",
    [
        "falar com atendente",
        "quero um humano",
        "atendnte",  # a typo
        "QUERO FALAR COM UMA PESSOA!!!",
        "não quero falar com robô",
        "Já tentei de tudo e meu pedido não chegou, quero falar com um atendente agora",
        "agent please",
        "Can I talk to a real person?",
        "I don't want to talk to a bot",
        "hablar con una persona",
        "pásame con un asesor",
        "ablar con una persona",  # a typo
    ],
)
def test_a_request_for_a_person_is_recognised(text: str) -> None:
    assert asks_for_a_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "Qual o horário do atendimento humano?",
        "O atendente de ontem foi grosseiro comigo",
        "Quantas pessoas cabem na barraca?",
        "How do I add an agent to my account?",
        "What time do your agents work on Saturdays?",
        "¿El producto es apto para consumo humano?",
        "Qual o prazo de entrega?",
        "",
    ],
)
def test_a_question_about_people_is_not_a_request_for_one(text: str) -> None:
    assert not asks_for_a_person(text)


@pytest.mark.parametrize("name", SETS)
def test_the_detector_meets_its_targets_on_each_labelled_set(name: str) -> None:
    """Precision ≥ 0.95 and recall ≥ 0.90 on every set, the untouched test set included
    (figures: ``python -m benchmarks.handoff_intent``)."""
    figures = measure(DATA / name)["all"]
    assert figures.total >= 150
    assert figures.precision >= 0.95, figures
    assert figures.recall >= 0.90, figures


RULES = [
    {"name": "legal", "keywords": ["procon", "processo judicial"], "team": "juridico"},
    {"name": "cancel", "keywords": ["cancelar contrato"]},
]


def test_a_rule_matches_whole_words_whatever_the_accents_and_case() -> None:
    assert matching_rule("Vou abrir um PROCESSO JUDICIAL!", RULES) == RULES[0]
    assert matching_rule("quero cancelar contrato", RULES) == RULES[1]
    assert matching_rule("procongelado", RULES) is None  # not a whole word
    assert matching_rule("qual o prazo?", RULES) is None


def test_a_question_asked_again_after_the_bots_answer_is_a_repeat() -> None:
    history = (("customer", "Qual o prazo de entrega para o interior?"), ("bot", "De 4 a 10 dias úteis."))
    assert repeats("qual o prazo de entrega para o interior??", history)
    assert not repeats("Vocês aceitam Pix?", history)
    # asked before but never answered by the bot (an agent did): not the bot's failure
    assert not repeats("Qual o prazo de entrega para o interior?", (history[0], ("agent", "4 a 10 dias")))


def test_signals_come_in_order_request_rule_repeat() -> None:
    settings = {"rules": RULES}
    requested = signal("quero falar com um atendente sobre o procon", (), settings)
    assert requested is not None
    assert requested.lead == "requested"
    ruled = signal("vou reclamar no procon", (), settings)
    assert ruled is not None
    assert (ruled.lead, ruled.team) == ("rule", "juridico")
    history = (("customer", "Qual o prazo de entrega para o interior?"), ("bot", "De 4 a 10 dias úteis."))
    repeated = signal("Qual o prazo de entrega para o interior?", history, settings)
    assert repeated is not None
    assert repeated.lead == "repeat"
    assert signal("Qual o prazo de entrega para o interior?", history, {"hand_off_on_repeat": False}) is None
