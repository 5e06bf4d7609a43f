"""Long answers cut into WhatsApp-sized messages (a text body holds at most 4,096 characters).

A cut falls at the last paragraph break, else line break, else sentence end, else space
before the limit, and never inside a citation marker (``[1]``, ``[2, 3]``) or a link: a
marker that would start the next part stays with the sentence it belongs to.
"""

from __future__ import annotations

import re

TEXT_MAX = 4096
_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_UNBREAKABLE = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]|https?://\S+")


def _protected(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _UNBREAKABLE.finditer(text)]


def _inside(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < position < end for start, end in spans)


def _cut(text: str, limit: int) -> int:
    """Where the first part of ``text`` (longer than ``limit``) ends."""
    spans = _protected(text)
    window = text[:limit]
    for separator in ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " "):
        at = window.rfind(separator)
        while at > 0:
            end = at + len(separator.rstrip(" ")) if separator.strip() else at
            # a citation right after the cut belongs to the part before it
            marker = _MARKER.match(text, end)
            if marker is not None:
                end = marker.end()
            if end <= limit and not _inside(end, spans) and end > 0:
                return end
            at = window.rfind(separator, 0, at)
    # one unbroken run longer than the limit: cut it hard, outside a marker or link, and not
    # right before a citation (which would open the next part, away from its sentence)
    end = limit
    while end > 1 and (_inside(end, spans) or _MARKER.match(text, end)):
        end -= 1
    return end if end > 1 else limit


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, each stripped, none empty."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        end = _cut(rest, limit)
        part = rest[:end].rstrip()
        if part:
            parts.append(part)
        rest = rest[end:].lstrip()
    if rest:
        parts.append(rest)
    return parts
