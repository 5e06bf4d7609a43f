"""``Passage``: a retrieved chunk with its scores, what retrieval hands to the answerers.

A value type and nothing else, so that ``atende.llm`` can take passages without importing
retrieval. The dependency runs one way: ``llm`` may import this module and
``knowledge.text`` (pure text helpers); ``knowledge`` never imports ``llm``. It used to run
both ways (the answerers imported ``Passage`` from ``knowledge.retrieval``, the embedder
imported the OpenAI client from ``llm.grounded``); the client now lives below both, in
``atende.openai_compat``. ``pyproject.toml``'s import-linter contracts keep it so.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class Passage:
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    section: str
    text: str
    language: str
    score: float
    lexemes: frozenset[str] = field(default_factory=frozenset)
    scores: dict[str, float] = field(default_factory=dict)
