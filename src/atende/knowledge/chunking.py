"""Group parsed blocks into chunks: one heading path a chunk, up to a target size.

Blocks under the same headings are packed together until the next would pass
``max_chars``; a block longer than that is cut between sentences. Each chunk keeps its
heading path as the section it cites.
"""

from __future__ import annotations

from dataclasses import dataclass

from atende.knowledge.parsing import Block
from atende.knowledge.text import sentences

SECTION_SEPARATOR = " › "


@dataclass(frozen=True)
class ChunkDraft:
    section: str
    text: str


def _split_long(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    current = ""
    for whole in sentences(text):
        sentence = whole
        if len(sentence) > max_chars and current:  # keep the text in order: what came before goes first
            pieces.append(current)
            current = ""
        while len(sentence) > max_chars:  # one huge "sentence": cut it hard
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def chunk_blocks(blocks: list[Block], max_chars: int = 1200) -> list[ChunkDraft]:
    chunks: list[ChunkDraft] = []
    section: tuple[str, ...] | None = None
    buffer: list[str] = []

    def flush() -> None:
        if buffer and section is not None:
            chunks.append(ChunkDraft(SECTION_SEPARATOR.join(section), "\n".join(buffer)))
        buffer.clear()

    for block in blocks:
        if block.headings != section:
            flush()
            section = block.headings
        for piece in _split_long(block.text, max_chars) if len(block.text) > max_chars else [block.text]:
            if buffer and sum(len(b) + 1 for b in buffer) + len(piece) > max_chars:
                flush()
            buffer.append(piece)
    flush()
    return chunks
