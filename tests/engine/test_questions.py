"""Finding the questions of a customer's message: greetings, stories, signatures and quoted
replies dropped; each question kept with the subject line and the context it needs. The
messages are written for these tests (pt, en, es)."""

from __future__ import annotations

import pytest

from atende.engine.questions import Asked, asks, distinct, split

EMAIL_PT = """Dúvida sobre meu pedido
Bom dia, tudo bem?

Comprei uma cafeteira elétrica no dia 3 e ela ainda não chegou. Moro em Campinas, no
interior de São Paulo, e já faz uma semana. Qual o prazo de entrega para o interior? E o
Pix tem desconto na próxima compra?

Obrigada desde já,
Mariana Souza
(19) 99999-0000"""

EMAIL_EN = """Hi team,

I ordered a standing desk last Monday and paid by card. I would like to know when it will
be shipped. Also, can you tell me whether the desk has a warranty against defects?

Thanks,
John

On Mon, 1 Dec 2026 at 10:00, Support <help@example.com> wrote:
> What is your order number? Can you send a photo?"""

EMAIL_ES = """Hola, buenas tardes.
Quisiera saber cuánto cuesta el envío a Sevilla. ¿Y puedo pagar con tarjeta de crédito?
Saludos,
María"""


def test_a_portuguese_email_gives_its_two_questions_with_the_subject_and_without_greeting_or_signature() -> (
    None
):
    first, second = split(EMAIL_PT)
    assert first.text == "Qual o prazo de entrega para o interior?"
    assert second.text == "E o Pix tem desconto na próxima compra?"
    for asked in (first, second):
        assert asked.query.startswith("Dúvida sobre meu pedido\n")
        assert "Bom dia" not in asked.query and "Mariana" not in asked.query and "99999" not in asked.query


def test_an_english_email_gives_its_request_and_its_question_and_not_the_quoted_reply() -> None:
    asked = split(EMAIL_EN)
    assert [a.text for a in asked] == [
        "I would like to know when it will be shipped.",
        "Also, can you tell me whether the desk has a warranty against defects?",
    ]
    assert not any("order number" in a.query or "photo" in a.query for a in asked)


def test_a_spanish_message_gives_its_request_and_its_question() -> None:
    asked = split(EMAIL_ES)
    assert [a.text for a in asked] == [
        "Quisiera saber cuánto cuesta el envío a Sevilla.",
        "¿Y puedo pagar con tarjeta de crédito?",
    ]


@pytest.mark.parametrize(
    "message",
    [
        "Qual o prazo de entrega?",
        "Bom dia! Gostaria de saber se aceitam Pix.",
        "How long does delivery take?",
        "¿Tienen tienda física en Madrid?",
        # one question in a long e-mail: looked up whole, as before
        "Entrega atrasada\nOlá, comprei um ventilador há dez dias e não recebi. Preciso de ajuda "
        "urgente. Qual o prazo para o interior?\nAtenciosamente,\nCarlos",
        # a statement that asks nothing
        "Meu pedido chegou quebrado e estou muito chateado com a loja.",
    ],
)
def test_a_message_that_asks_at_most_one_question_is_not_split(message: str) -> None:
    assert split(message) == []


def test_a_bare_request_for_help_is_not_a_question() -> None:
    asked = split(
        "Por favor, preciso de sua ajuda urgente. Qual o prazo de troca por tamanho? Como devolvo um produto?"
    )
    assert [a.text for a in asked] == [
        "Qual o prazo de troca por tamanho?",
        "Como devolvo um produto?",
    ]


def test_an_elliptical_question_joins_the_question_before_it_or_takes_the_sentence_before() -> None:
    joined = split("Qual a garantia dos eletrônicos? E dos outros? Como aciono a garantia pelo chat?")
    assert [a.text for a in joined] == [
        "Qual a garantia dos eletrônicos? E dos outros?",
        "Como aciono a garantia pelo chat?",
    ]
    leaning = split(
        "Qual o prazo de devolução? Pelo que li, o reembolso no cartão aparece em até duas faturas. "
        "Está correto?"
    )
    assert leaning[1] == Asked(
        "Está correto?",
        "Pelo que li, o reembolso no cartão aparece em até duas faturas. Está correto?",
    )


def test_questions_in_a_list_are_found_one_by_one() -> None:
    asked = split(
        "Frete\nTenho algumas perguntas:\n1) Qual o valor do frete para Manaus\n"
        "2) Vocês entregam aos sábados?\n- onde acompanho meu pedido",
        limit=5,
    )
    assert [a.text for a in asked] == [
        "1) Qual o valor do frete para Manaus",
        "2) Vocês entregam aos sábados?",
        "- onde acompanho meu pedido",
    ]


def test_splitting_off_looks_every_message_up_whole() -> None:
    assert split(EMAIL_PT, limit=1) == []


def test_near_duplicate_questions_are_merged_and_the_cap_keeps_those_closest_to_the_topic() -> None:
    asked = [Asked(f"q{i}", f"q{i}") for i in range(5)]
    vectors = [
        [1.0, 0.0, 0.0],
        [0.99, 0.05, 0.0],  # the first one again, in other words
        [0.8, 0.6, 0.0],
        [0.0, 0.0, 1.0],  # off the message's topic
        [0.6, 0.3, 0.4],
    ]
    kept = distinct(asked, vectors, limit=3)
    assert [a.text for a in kept] == ["q0 q1", "q2", "q4"]
    assert [a.query for a in kept] == ["q0", "q2", "q4"]
    assert [a.text for a in distinct(asked, None, limit=3)] == ["q0", "q1", "q2"]


@pytest.mark.parametrize(
    "message",
    [
        "One more thing: when does my order arrive?",
        "Quando chega meu pedido",
        "Boa tarde, gostaria de saber o prazo de entrega",
        "Can you send me the invoice",
        "¿Cuándo llega mi pedido?",
    ],
)
def test_a_message_with_a_question_asks(message: str) -> None:
    assert asks(message)


@pytest.mark.parametrize(
    "message",
    ["Demorou um pouco, mas resolveu.", "Muito bom, obrigado!", "Great service, thanks", "Todo bien."],
)
def test_a_comment_or_a_thank_you_asks_nothing(message: str) -> None:
    assert not asks(message)
