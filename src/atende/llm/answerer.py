"""The ``Answerer`` port: from a question and retrieved passages to a cited answer, or none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from atende.knowledge.passages import Passage

# stems texts the way the index does: [(text, language)] -> lexemes of each
Lexer = Callable[[list[tuple[str, str]]], Awaitable[list[frozenset[str]]]]
# receives a streaming answer so far (shown live as a draft; the stored reply follows)
Drafts = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Question:
    text: str
    language: str
    lexemes: dict[str, frozenset[str]]  # per language of the knowledge base
    # earlier messages of the conversation, oldest first: (author, text), author customer|bot|agent
    history: tuple[tuple[str, str], ...] = ()
    instructions: str = ""  # the company's words to the assistant (persona, tone, rules)
    company: str = ""
    drafts: Drafts | None = None  # where a streaming answerer sends its text as it comes


@dataclass
class Answer:
    """An answer with its citations, or ``text=None`` when the evidence does not suffice."""

    text: str | None
    reason: str
    confidence: float
    citations: list[dict[str, Any]] = field(default_factory=list)
    # the evidence (coverage) an extractive answer needed: ``confidence`` is what it found
    needed: float | None = None
    model: str | None = None  # the LLM model asked, if one was (kept in the turn's trace)
    error: str | None = None  # what failed on the way (the LLM's error), when the answer fell back
    # the language of the quoted passage when it is not the customer's: the turn says so first
    quoted_language: str | None = None


class Answerer(Protocol):
    name: str

    async def answer(self, question: Question, passages: list[Passage], lexer: Lexer) -> Answer: ...
