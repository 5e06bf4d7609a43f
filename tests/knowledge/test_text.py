"""The pure text functions indexing and querying share: folding, words, queries, sentences."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atende.db.url import libpq_url
from atende.knowledge.text import QUESTION_WORDS, TS_CONFIG, fold, or_query, sentences, topic_text, words

SAFE_QUERY = re.compile(r"[^\W_]+( \| [^\W_]+)*")


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Entregas rápidas", "entregas rapidas"),
        ("CARTÃO de crédito", "cartao de credito"),
        ("Ação, coração e pão", "acao, coracao e pao"),
        ("Ñandú año", "nandu ano"),
        ("Über naïve façade", "uber naive facade"),
        ("ﬁnal", "final"),  # compatibility ligature
        ("Schon gefolded 123", "schon gefolded 123"),
        ("", ""),
    ],
)
def test_fold_lowercases_and_strips_accents(text: str, folded: str) -> None:
    assert fold(text) == folded


@given(st.text())
def test_fold_is_idempotent_and_leaves_no_combining_mark(text: str) -> None:
    folded = fold(text)
    assert fold(folded) == folded
    assert not any(unicodedata.combining(ch) for ch in folded)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126)))
def test_fold_of_plain_ascii_is_just_lowercase(text: str) -> None:
    assert fold(text) == text.lower()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Qual o prazo? São 7 dias.", ["qual", "o", "prazo", "sao", "dias"]),
        ("Parcelo em 10 vezes", ["parcelo", "em", "10", "vezes"]),
        ("e-mail: atendimento@loja.com", ["e", "mail", "atendimento", "loja", "com"]),
        ("!!! ??? ...", []),
    ],
)
def test_words_are_folded_and_drop_lone_digits(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("Entregas rápidas?", "entregas | rapidas"),
        ("cartão, CARTÃO e cartao", "cartao | e"),
        ("it's (a) & !b | c:*", "it | s | a | b | c"),
        ("código ERR_PAGAMENTO", "codigo | err | pagamento"),
        ("??", ""),
    ],
)
def test_or_query_joins_unique_folded_words_with_or(text: str, query: str) -> None:
    assert or_query(text) == query


def test_or_query_keeps_only_the_first_words_up_to_the_limit() -> None:
    text = " ".join(f"palavra{i}" for i in range(50))
    assert or_query(text, limit=3) == "palavra0 | palavra1 | palavra2"
    assert len(or_query(text).split(" | ")) == 32


@given(st.text())
def test_or_query_only_emits_word_tokens_joined_by_or(text: str) -> None:
    query = or_query(text)
    assert query == "" or SAFE_QUERY.fullmatch(query), query


@pytest.fixture(scope="module")
def pg(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_postgresql_accepts_every_or_query_in_every_language(pg: psycopg.Connection, text: str) -> None:
    """Customer text goes into ``to_tsquery``: no input may be a syntax error there."""
    query = or_query(text)
    for config in TS_CONFIG.values():
        pg.execute("SELECT to_tsquery(%s::regconfig, %s)", (config, query))


def test_a_folded_query_matches_the_accented_text_it_was_folded_from(pg: psycopg.Connection) -> None:
    indexed = fold("Entregas rápidas com cartão de crédito")
    for config in TS_CONFIG.values():
        row = pg.execute(
            "SELECT to_tsvector(%s::regconfig, %s) @@ to_tsquery(%s::regconfig, %s)",
            (config, indexed, config, or_query("rapidas")),
        ).fetchone()
        assert row == (True,), config


def test_a_query_with_an_underscored_code_matches_the_code_in_a_document(pg: psycopg.Connection) -> None:
    indexed = fold("Se aparecer o erro ERR_PAGAMENTO_RECUSADO, tente outro cartão.")
    row = pg.execute(
        "SELECT to_tsvector('portuguese', %s) @@ to_tsquery('portuguese', %s)",
        (indexed, or_query("ERR_PAGAMENTO_RECUSADO").replace(" | ", " & ")),
    ).fetchone()
    assert row == (True,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Entregamos no Brasil. O prazo é de 5 dias!", ["Entregamos no Brasil.", "O prazo é de 5 dias!"]),
        ("Aceita Pix? Sim… E boleto.", ["Aceita Pix?", "Sim…", "E boleto."]),
        ("- item um\n- item dois", ["- item um", "- item dois"]),
        ("Custa R$ 199,00 no total.", ["Custa R$ 199,00 no total."]),
        ("  \n\n  ", []),
    ],
)
def test_sentences_split_on_end_marks_and_lines(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@given(st.text())
def test_sentences_keep_every_non_blank_character_in_order(text: str) -> None:
    parts = sentences(text)
    assert all(part == part.strip() and part for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Quanto tempo demora a entrega?", "a entrega"),
        ("How long does shipping take?", "shipping"),
        ("¿Cuánto tarda el envío?", "el envio"),
        ("Qual o prazo de garantia?", "o prazo de garantia"),
        ("Como?", "como?"),  # nothing but question words: keep them all
    ],
)
def test_topic_text_drops_question_words(text: str, topic: str) -> None:
    assert topic_text(text) == topic


def test_question_words_are_folded_like_the_text_they_are_compared_with() -> None:
    assert all(word == fold(word) for word in QUESTION_WORDS)
