"""What parsing makes of a document: a title and its blocks, each under its heading path;
and ``decode``, the bytes-to-text step every text format shares.

The readers sit on this module: ``knowledge.formats`` (PDF, DOCX, CSV FAQ) builds these
types, and ``knowledge.parsing`` (Markdown, HTML, plain text, and ``parse``, which picks
the reader for a content type) builds them and calls ``formats``. So ``parsing`` imports
``formats`` and ``formats`` never imports ``parsing``: when these types lived in
``parsing``, the two imported each other (see ``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from atende.errors import InvalidInput


@dataclass(frozen=True)
class Block:
    headings: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    blocks: list[Block]


def decode(data: bytes) -> str:
    """Decode UTF-8 (with or without BOM); reject binary or mis-encoded files."""
    if not data.strip():
        raise InvalidInput("the document is empty")
    if b"\x00" in data[:4096]:
        raise InvalidInput("the document looks binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the document is not valid UTF-8 (byte {exc.start})") from exc
