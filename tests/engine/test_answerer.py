"""The extractive answerer on hand-built passages: it answers only with their sentences.

The lexer (PostgreSQL's stemmer in production) is replaced by a pure function that keeps
each folded word of three letters or more as its own "stem" (short words stand in for stop
words); nothing else is faked.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atende.knowledge.passages import Passage
from atende.knowledge.text import sentences, words
from atende.llm.answerer import Question
from atende.llm.extractive import ExtractiveAnswerer, coverage


def stems(text: str) -> frozenset[str]:
    return frozenset(w for w in words(text) if len(w) > 2)


async def word_lexer(texts: list[tuple[str, str]]) -> list[frozenset[str]]:
    return [stems(text) for text, _language in texts]


def passage(
    text: str, *, language: str = "pt", title: str = "Entregas", section: str = "", score: float = 0.1
) -> Passage:
    return Passage(
        chunk_id=uuid.uuid4(),
        document_id=uuid.uuid4(),
        title=title,
        section=section or title,
        text=text,
        language=language,
        score=score,
        lexemes=stems(f"{title} {section} {text}"),
        scores={"fulltext": score},
    )


def question(text: str, language: str = "pt") -> Question:
    terms = stems(text)
    return Question(text, language, {"pt": terms, "en": terms, "es": terms})


SHIPPING = passage(
    "Entregamos para todo o Brasil. Capitais recebem em 2 a 5 dias úteis. "
    "No interior, a entrega leva de 4 a 10 dias úteis. Pedidos até as 14h saem no mesmo dia.",
    section="Entregas › Prazos de entrega",
)
PAYMENTS = passage(
    "Aceitamos cartão, Pix e boleto. O Pix tem 5% de desconto.",
    title="Pagamentos",
    section="Pagamentos › Meios aceitos",
)


async def test_below_the_threshold_there_is_no_answer() -> None:
    answer = await ExtractiveAnswerer(0.6).answer(
        question("interior geladeira usada"), [SHIPPING], word_lexer
    )
    assert answer.text is None
    assert answer.citations == []
    assert answer.confidence == pytest.approx(1 / 3)
    assert answer.reason == "weak evidence: best coverage 0.33 < threshold 0.60"


async def test_without_passages_there_is_no_answer() -> None:
    answer = await ExtractiveAnswerer(0.6).answer(question("prazo interior"), [], word_lexer)
    assert (answer.text, answer.confidence) == (None, 0.0)
    assert answer.reason == "weak evidence: best coverage 0.00 < threshold 0.60"


async def test_a_question_with_no_terms_in_the_passage_language_has_no_evidence() -> None:
    q = Question("prazo interior", "pt", {"pt": frozenset(), "en": frozenset({"prazo", "interior"})})
    assert coverage(q, SHIPPING) == 0.0
    assert (await ExtractiveAnswerer(0.5).answer(q, [SHIPPING], word_lexer)).text is None


async def test_every_passage_is_scored_with_its_coverage() -> None:
    shipping, payments = passage(SHIPPING.text), passage(PAYMENTS.text, title="Pagamentos")
    await ExtractiveAnswerer(0.6).answer(question("entrega interior pix"), [shipping, payments], word_lexer)
    assert shipping.scores == {"fulltext": 0.1, "coverage": pytest.approx(0.6667)}
    assert payments.scores == {"fulltext": 0.1, "coverage": pytest.approx(0.3333)}


async def test_it_answers_with_the_sentences_sharing_the_most_terms_and_cites_them() -> None:
    answer = await ExtractiveAnswerer(0.6).answer(
        question("prazo de entrega no interior"), [PAYMENTS, SHIPPING], word_lexer
    )
    assert answer.text == "No interior, a entrega leva de 4 a 10 dias úteis."
    assert answer.confidence == pytest.approx(2 / 3)  # "prazo" is not in the passage
    assert answer.reason == "answered from 'Entregas' (coverage 0.67)"
    assert answer.citations == [
        {
            "title": "Entregas",
            "section": "Entregas › Prazos de entrega",
            "document_id": str(SHIPPING.document_id),
            "chunk_id": str(SHIPPING.chunk_id),
        }
    ]


async def test_it_keeps_up_to_three_good_sentences_in_passage_order() -> None:
    text = "Um prazo. Dois prazo capitais. Nada aqui. Tres prazo capitais interior. Quatro prazo capitais."
    answer = await ExtractiveAnswerer(0.5).answer(
        question("prazo capitais interior"), [passage(text)], word_lexer
    )
    # hits 1, 2, 0, 3, 2: the top three, in the passage's order; the one-hit sentence is too weak
    assert answer.text == "Dois prazo capitais. Tres prazo capitais interior. Quatro prazo capitais."


async def test_a_passage_found_by_its_heading_alone_answers_with_its_first_sentences() -> None:
    found = passage("Capitais em 2 dias. Interior em 10 dias. Expresso no Sudeste.", title="Prazos")
    answer = await ExtractiveAnswerer(0.5).answer(question("prazos"), [found], word_lexer)
    assert answer.text == "Capitais em 2 dias. Interior em 10 dias."


async def test_list_items_are_answered_one_per_line() -> None:
    items = passage(
        "- Frete grátis acima de R$ 199\n- Retirada na loja sem frete\n- Outro item", title="Frete"
    )
    answer = await ExtractiveAnswerer(0.5).answer(question("frete retirada"), [items], word_lexer)
    assert answer.text == "- Frete grátis acima de R$ 199\n- Retirada na loja sem frete"


async def test_it_prefers_a_passage_in_the_customers_language_over_better_coverage() -> None:
    pt = passage("Pix tem desconto de 5% e boleto vence em 3 dias.", language="pt", title="Pix")
    en = passage("Pix payments get a 5% discount.", language="en", title="Payments")
    q = question("pix discount boleto desconto", language="en")
    assert coverage(q, pt) > coverage(q, en)
    answer = await ExtractiveAnswerer(0.4).answer(q, [pt, en], word_lexer)
    assert answer.text == "Pix payments get a 5% discount."
    assert answer.citations[0]["title"] == "Payments"

    answer = await ExtractiveAnswerer(0.4).answer(
        question("pix discount boleto desconto", "pt"), [en, pt], word_lexer
    )
    assert answer.citations[0]["title"] == "Pix"


async def test_a_passage_in_the_customers_language_below_the_threshold_does_not_win() -> None:
    pt = passage("O Pix tem desconto.", language="pt", title="Pix")
    en = passage("Boleto is due in 3 days and Pix gets a discount.", language="en", title="Boleto")
    answer = await ExtractiveAnswerer(0.75).answer(
        question("boleto pix discount", "pt"), [pt, en], word_lexer
    )
    assert answer.citations[0]["title"] == "Boleto"


async def test_among_passages_in_the_same_language_the_best_covered_then_best_ranked_wins() -> None:
    half = passage("Prazo de entrega em capitais.", title="A", score=0.9)
    full = passage("Prazo de entrega no interior em capitais.", title="B", score=0.1)
    tie = passage("Prazo de entrega no interior em capitais.", title="C", score=0.5)
    q = question("prazo interior capitais")
    assert (await ExtractiveAnswerer(0.5).answer(q, [half, full], word_lexer)).citations[0]["title"] == "B"
    assert (await ExtractiveAnswerer(0.5).answer(q, [full, tie], word_lexer)).citations[0]["title"] == "C"


def is_made_of_sentences(answer: str, text: str) -> bool:
    """Whether ``answer`` is some of ``text``'s sentences, in order, joined by a space or a newline."""
    pieces = sentences(text)

    def rest_matches(rest: str, start: int) -> bool:
        if not rest:
            return True
        for i in range(start, len(pieces)):
            if rest.startswith(pieces[i]):
                tail = rest[len(pieces[i]) :]
                if not tail or (tail[0] in " \n" and rest_matches(tail[1:], i + 1)):
                    return True
        return False

    return bool(answer) and rest_matches(answer, 0)


VOCABULARY = ["prazo", "entrega", "pix", "boleto", "frete", "capitais", "interior", "dias", "loja", "troca"]
sentence = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6).map(
    lambda ws: " ".join(ws).capitalize() + "."
)
passage_text = st.lists(st.one_of(sentence, sentence.map(lambda s: "- " + s)), min_size=1, max_size=6).map(
    "\n".join
)


@given(
    texts=st.lists(st.tuples(passage_text, st.sampled_from(["pt", "en"])), min_size=1, max_size=4),
    asked=st.lists(st.sampled_from([*VOCABULARY, "geladeira", "wifi"]), min_size=1, max_size=5),
    language=st.sampled_from(["pt", "en", "es"]),
    threshold=st.floats(0.0, 1.0),
)
async def test_it_never_says_anything_that_is_not_in_a_passage(
    texts: list[tuple[str, str]], asked: list[str], language: str, threshold: float
) -> None:
    passages = [passage(text, language=lang, title=f"Doc {i}") for i, (text, lang) in enumerate(texts)]
    answer = await ExtractiveAnswerer(threshold).answer(
        question(" ".join(asked), language), passages, word_lexer
    )
    if answer.text is None:
        assert answer.citations == []
        assert answer.confidence < threshold
        return
    [cited] = [p for p in passages if str(p.chunk_id) == answer.citations[0]["chunk_id"]]
    assert answer.confidence >= threshold
    assert is_made_of_sentences(answer.text, cited.text), (answer.text, cited.text)


def reranked(p: Passage, probability: float) -> Passage:
    return Passage(**{**p.__dict__, "scores": {**p.scores, "rerank_p": probability}})


async def test_a_passage_the_reranker_is_sure_of_is_answered_from_though_it_covers_little() -> None:
    # a long e-mail: most of its words are not in the passage (coverage 2/6), but the
    # re-ranker's calibrated probability clears the gate
    asked = question("Boa tarde, moro no interior e queria saber o prazo da entrega do meu pedido")
    sure = reranked(SHIPPING, 0.9)
    answer = await ExtractiveAnswerer(0.6, rerank_threshold=0.5).answer(
        asked, [sure, reranked(PAYMENTS, 0.1)], word_lexer
    )
    assert answer.text is not None and "interior" in answer.text
    assert answer.citations[0]["chunk_id"] == str(sure.chunk_id)
    assert (answer.confidence, answer.needed) == (0.9, 0.5)
    assert answer.reason == "answered from 'Entregas' (re-ranker p 0.90)"


async def test_below_the_rerankers_gate_the_coverage_rule_still_decides() -> None:
    asked = question("Boa tarde, moro no interior e queria saber o prazo da entrega do meu pedido")
    unsure = [reranked(SHIPPING, 0.3), reranked(PAYMENTS, 0.2)]
    assert (
        await ExtractiveAnswerer(0.6, rerank_threshold=0.5).answer(asked, unsure, word_lexer)
    ).text is None
    # and without a re-ranker's probability (re-ranking off) nothing changes
    assert (await ExtractiveAnswerer(0.6).answer(asked, [SHIPPING, PAYMENTS], word_lexer)).text is None
    covered = await ExtractiveAnswerer(0.6, rerank_threshold=0.5).answer(
        question("prazo entrega interior"), unsure, word_lexer
    )
    assert covered.citations[0]["chunk_id"] == str(SHIPPING.chunk_id)
    # the gate can be turned off
    off = ExtractiveAnswerer(0.6, rerank_threshold=None)
    assert (await off.answer(asked, [reranked(SHIPPING, 0.99)], word_lexer)).text is None


async def test_a_long_message_needs_less_of_the_rerankers_probability_than_a_short_question() -> None:
    # a customer e-mail with a story: many topic terms, few of them in any passage, so the
    # coverage rule cannot answer it; the re-ranker's gate is lower for it than for a short
    # question, and a short question at the same probability is still handed off
    story = question(
        "Bom dia, comprei uma geladeira para minha mãe que mora numa fazenda perto de Montes "
        "Claros, pago sempre no boleto, e gostaria de saber o prazo da entrega no interior"
    )
    assert len(story.lexemes["pt"]) >= 12
    short = question("prazo entrega interior Montes Claros")
    gate = ExtractiveAnswerer(0.9, rerank_threshold=0.9, long_rerank_threshold=0.5)
    middling = [reranked(SHIPPING, 0.6), reranked(PAYMENTS, 0.1)]
    answered = await gate.answer(story, middling, word_lexer)
    assert answered.citations[0]["chunk_id"] == str(SHIPPING.chunk_id)
    assert answered.needed == 0.5
    assert (await gate.answer(short, middling, word_lexer)).text is None
    # below the long messages' gate the e-mail is handed off too
    unsure = [reranked(SHIPPING, 0.4), reranked(PAYMENTS, 0.1)]
    assert (await gate.answer(story, unsure, word_lexer)).text is None
    # without a gate of their own, long messages need what short ones need
    same = ExtractiveAnswerer(0.9, rerank_threshold=0.9, long_rerank_threshold=None)
    assert (await same.answer(story, middling, word_lexer)).text is None
