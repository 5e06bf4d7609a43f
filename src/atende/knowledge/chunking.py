"""Group parsed blocks into chunks: one heading path a chunk, up to a target size.

Blocks under the same headings are packed together until the next would pass
``max_chars``; a block longer than that is cut between sentences. Each chunk keeps its
heading path as the section it cites.
"""

from __future__ import annotations

from dataclasses import dataclass

from atende.knowledge.parsed import Block
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


def _tail(text: str, overlap_chars: int) -> str:
    """The last whole sentences of ``text`` that fit in ``overlap_chars``."""
    kept: list[str] = []
    size = 0
    for sentence in reversed(sentences(text)):
        if size + len(sentence) + 1 > overlap_chars:
            break
        kept.insert(0, sentence)
        size += len(sentence) + 1
    return " ".join(kept)


def chunk_blocks(blocks: list[Block], max_chars: int = 1200, overlap_chars: int = 0) -> list[ChunkDraft]:
    """Chunks of at most ``max_chars`` (a block is cut only when it alone is longer). When a
    section continues in a next chunk, that chunk starts with the previous one's last whole
    sentences, up to ``overlap_chars``: an answer cut at the boundary is still found whole."""
    chunks: list[ChunkDraft] = []
    section: tuple[str, ...] | None = None
    buffer: list[str] = []

    def flush(continued: bool = False) -> None:
        body = "\n".join(buffer)
        if buffer and section is not None:
            chunks.append(ChunkDraft(SECTION_SEPARATOR.join(section), body))
        buffer.clear()
        tail = _tail(body, overlap_chars) if continued and overlap_chars else ""
        if tail:
            buffer.append(tail)

    for block in blocks:
        if block.headings != section:
            flush()
            section = block.headings
        # a long block is cut into pieces that leave room for the overlap before them
        room = max(max_chars - overlap_chars, max_chars // 2)
        for piece in _split_long(block.text, room) if len(block.text) > max_chars else [block.text]:
            if buffer and sum(len(b) + 1 for b in buffer) + len(piece) > max_chars:
                flush(continued=True)
                if buffer and sum(len(b) + 1 for b in buffer) + len(piece) > max_chars:
                    buffer.clear()  # no room for the overlap beside this piece
            buffer.append(piece)
    flush()
    return chunks
