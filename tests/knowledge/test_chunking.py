"""Chunking: blocks packed under their heading path, never losing text, never over the size."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atende.knowledge.chunking import SECTION_SEPARATOR, ChunkDraft, chunk_blocks
from atende.knowledge.parsed import Block
from atende.knowledge.parsing import parse
from tests.conftest import DEMO_KB


def non_blank(text: str) -> str:
    return "".join(text.split())


def collapse(items: Iterable[str]) -> list[str]:
    """``items`` with each run of equal neighbours kept once."""
    return [key for key, _ in itertools.groupby(items)]


def test_blocks_under_the_same_headings_are_packed_into_one_chunk() -> None:
    blocks = [Block(("Frete",), "Grátis acima de R$ 199."), Block(("Frete",), "- Expresso no Sudeste")]
    assert chunk_blocks(blocks) == [ChunkDraft("Frete", "Grátis acima de R$ 199.\n- Expresso no Sudeste")]


def test_a_new_heading_path_always_starts_a_new_chunk() -> None:
    blocks = [
        Block(("Entregas", "Prazos"), "2 a 5 dias."),
        Block(("Entregas", "Frete"), "Grátis."),
        Block(("Entregas", "Prazos"), "Interior: 10 dias."),
        Block((), "Sem seção."),
    ]
    assert chunk_blocks(blocks) == [
        ChunkDraft("Entregas › Prazos", "2 a 5 dias."),
        ChunkDraft("Entregas › Frete", "Grátis."),
        ChunkDraft("Entregas › Prazos", "Interior: 10 dias."),
        ChunkDraft("", "Sem seção."),
    ]


def test_blocks_that_would_pass_the_size_go_to_the_next_chunk_of_the_same_section() -> None:
    blocks = [Block(("A",), "x" * 10), Block(("A",), "y" * 10), Block(("A",), "z" * 10)]
    assert chunk_blocks(blocks, max_chars=21) == [
        ChunkDraft("A", "x" * 10 + "\n" + "y" * 10),
        ChunkDraft("A", "z" * 10),
    ]


def test_a_long_block_is_cut_between_sentences() -> None:
    text = "Primeira frase aqui. Segunda frase aqui. Terceira frase aqui."
    assert [c.text for c in chunk_blocks([Block(("S",), text)], max_chars=42)] == [
        "Primeira frase aqui. Segunda frase aqui.",
        "Terceira frase aqui.",
    ]


def test_a_sentence_longer_than_the_size_is_cut_hard() -> None:
    assert [c.text for c in chunk_blocks([Block((), "abcdefghij")], max_chars=4)] == ["abcd", "efgh", "ij"]


def test_no_blocks_make_no_chunks() -> None:
    assert chunk_blocks([]) == []


def test_the_demo_knowledge_base_makes_one_chunk_per_section() -> None:
    parsed = parse((DEMO_KB / "pt" / "entregas.md").read_bytes(), "markdown", "entregas.md")
    assert [c.section for c in chunk_blocks(parsed.blocks)] == [
        "Entregas › Prazos de entrega",
        "Entregas › Frete",
        "Entregas › Rastreamento do pedido",
    ]


headings = st.lists(st.sampled_from(["Entregas", "Frete", "Prazos", "Pix"]), max_size=3).map(tuple)
# sentences of words of any length (some longer than a chunk), or any text at all
word = st.text(alphabet="abcçdeéfgh0123", min_size=1, max_size=30)
sentence_text = st.lists(
    st.tuples(word, st.sampled_from(["", "", "", ",", ".", "!", "?"])).map("".join), min_size=1, max_size=25
).map(" ".join)
any_text = st.text(
    alphabet=st.characters(categories=["L", "N", "P", "Zs"], exclude_characters="\x85"), min_size=1
).filter(lambda t: t.strip())
block_text = st.one_of(sentence_text, any_text)
blocks = st.lists(
    st.builds(Block, headings, block_text.map(lambda t: " ".join(t.split()))), min_size=1, max_size=12
)


@given(blocks, st.integers(min_value=1, max_value=200))
def test_chunking_never_loses_text_and_respects_the_size(blocks: list[Block], max_chars: int) -> None:
    chunks = chunk_blocks(blocks, max_chars)
    assert all(0 < len(c.text) <= max_chars for c in chunks)
    assert non_blank("".join(c.text for c in chunks)) == non_blank("".join(b.text for b in blocks))


@given(blocks, st.integers(min_value=1, max_value=200))
def test_every_chunk_cites_the_heading_path_of_the_blocks_it_holds(
    blocks: list[Block], max_chars: int
) -> None:
    chunks = chunk_blocks(blocks, max_chars)
    paths = {SECTION_SEPARATOR.join(b.headings) for b in blocks}
    assert {c.section for c in chunks} == paths
    # one run of chunks for each run of blocks with the same headings, in the same order
    assert collapse(c.section for c in chunks) == collapse(SECTION_SEPARATOR.join(b.headings) for b in blocks)


@pytest.mark.parametrize("max_chars", [40, 120, 1200])
def test_chunks_of_the_real_knowledge_base_stay_within_the_size(max_chars: int) -> None:
    for path in sorted(DEMO_KB.glob("*/*.md")):
        parsed = parse(path.read_bytes(), "markdown", path.name)
        chunks = chunk_blocks(parsed.blocks, max_chars)
        assert all(len(c.text) <= max_chars for c in chunks), path
        assert non_blank("".join(c.text for c in chunks)) == non_blank("".join(b.text for b in parsed.blocks))
