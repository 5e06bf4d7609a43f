"""The pure text functions indexing and querying share: folding, words, queries, sentences."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atende.db.url import libpq_url
from atende.knowledge.text import QUESTION_WORDS, TS_CONFIG, fold, lexeme_query, sentences, topic_text, words


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


@given(st.text() | st.text(alphabet=st.characters(min_codepoint=0x2FF, max_codepoint=0x370)))
def test_fold_is_its_definition_for_any_text(text: str) -> None:
    """Its fast paths (ASCII, the combining diacritics' block, a table for other marks) give
    what the definition gives: decomposed, every combining mark dropped, lower-cased (U+034F,
    the grapheme joiner, sits in the diacritics' block but is no combining mark: kept)."""
    decomposed = unicodedata.normalize("NFKD", text)
    assert fold(text) == "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    assert fold("a\u034fe\u0301\u1dc0") == "a\u034fe"


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
    ("lexemes", "query"),
    [
        (["entreg", "rapid"], "'entreg' | 'rapid'"),
        (["it's"], "'it''s'"),
        (["a\\b"], "'a\\\\b'"),
        ([], ""),
    ],
)
def test_lexeme_query_quotes_each_lexeme_and_joins_them_with_or(lexemes: list[str], query: str) -> None:
    assert lexeme_query(lexemes) == query


@pytest.fixture(scope="module")
def pg(db_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        yield conn


def _lexemes(pg: psycopg.Connection, config: str, text: str) -> list[str]:
    row = pg.execute(
        "SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s))", (config, fold(text))
    ).fetchone()
    assert row is not None
    return list(row[0])


def _matches(pg: psycopg.Connection, config: str, indexed: str, lexemes: list[str]) -> bool:
    row = pg.execute(
        "SELECT to_tsvector(%s::regconfig, %s) @@ to_tsquery('simple', %s)",
        (config, fold(indexed), lexeme_query(lexemes)),
    ).fetchone()
    return bool(row and row[0])


@settings(max_examples=150, deadline=None)
# NUL and lone surrogates are refused at the API (422) before any query is built
@given(text=st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=80))
def test_any_customer_text_becomes_a_valid_query_that_matches_its_own_words(
    pg: psycopg.Connection, text: str
) -> None:
    """Customer text ends up in ``to_tsquery``: no input may be a syntax error there."""
    for config in TS_CONFIG.values():
        lexemes = _lexemes(pg, config, text)
        if lexemes:
            assert _matches(pg, config, text, lexemes)


def test_a_folded_query_matches_the_accented_text_it_was_folded_from(pg: psycopg.Connection) -> None:
    indexed = "Entregas rápidas com cartão de crédito"
    for config in TS_CONFIG.values():
        assert _matches(pg, config, indexed, _lexemes(pg, config, "rapidas")), config
        assert _matches(pg, config, indexed, _lexemes(pg, config, "cartao")), config


def test_a_query_with_an_underscored_code_finds_every_part_of_the_code(pg: psycopg.Connection) -> None:
    document = _lexemes(pg, "portuguese", "Se aparecer o erro ERR_PAGAMENTO_RECUSADO, tente outro cartão.")
    question = _lexemes(pg, "portuguese", "ERR_PAGAMENTO_RECUSADO")
    assert question
    assert set(question) <= set(document)


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


def test_folding_every_character_keeps_the_table_of_those_met_bounded() -> None:
    """Text in every script folds as before, and the table of characters met stays small
    (crafted input cannot make every process hold the whole of Unicode)."""
    from atende.knowledge import text as module

    sample = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 20_000))  # CJK: no marks to strip
    assert fold(sample + "ção") == sample + "cao"
    assert len(module._STRIP_COMBINING) <= module._Combining.LIMIT
