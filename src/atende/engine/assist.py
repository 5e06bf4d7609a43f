"""Agent assist: a suggested reply to the customer's last question, drafted from the company's
knowledge base for an agent to edit and send as their own reply.

It is the bot's turn without its writing half: the same steps (normalise, language, small
talk, retrieval) and the same answerer as the company's bot (the company's LLM when one is
configured, else the offline extractive answerer: ``engine.tasks.ports_for``), over the same
history the bot would read (the team's notes are no part of it). Nothing is stored and nothing
changes: no message, no trace, no state, no language, no live event. A customer's request
for a person is not a reason to give no draft here (the person is asking), so the handoff
signal step is left out; weak evidence still gives no draft, with the reason. The agent may
read documents for the ``internal`` audience, which a customer's answer never uses; the
other knowledge rules (validity, windowed tags, the context's rules) hold as for the bot.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import structlog

from atende.conversations import service as conversations
from atende.engine.messages import phrase
from atende.engine.tasks import ports_for
from atende.engine.turn import (
    Step,
    Turn,
    conclude,
    detect_language,
    normalise,
    recognise_small_talk,
    retrieve,
    think,
)
from atende.errors import InvalidInput
from atende.knowledge import rules
from atende.knowledge.retrieval import question_stems
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.settings import Instructions, read_section

log = structlog.get_logger(__name__)
SNIPPET_CHARS = 300
STEPS: list[tuple[str, Step]] = [
    ("normalise", normalise),
    ("detect_language", detect_language),
    ("small_talk", recognise_small_talk),
    ("retrieve", retrieve),
]


@dataclass(frozen=True)
class Suggestion:
    """A draft reply (``text=None``: the knowledge base does not answer it; ``reason`` says
    why) to the customer message ``question_id``, with the passages it cites."""

    question_id: uuid.UUID
    question: str
    text: str | None
    reason: str
    language: str
    answerer: str
    confidence: float
    citations: list[dict[str, Any]] = field(default_factory=list)


def cited(turn: Turn) -> list[dict[str, Any]]:
    """The answer's citations, each with a snippet of the passage it cites."""
    assert turn.answer is not None
    return with_snippets(turn, turn.answer.citations)


def with_snippets(turn: Turn, citations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``citations`` of the turn's answer (or of one of its questions'), each with a snippet
    of the passage it cites (the whole message's passages, or a question's own)."""
    passages = {str(p.chunk_id): p for p in turn.retrieved()}
    cited = []
    for citation in citations:
        passage = passages.get(str(citation.get("chunk_id")))
        snippet = passage.text[:SNIPPET_CHARS] if passage is not None else ""
        cited.append({**citation, "snippet": snippet})
    return cited


async def suggest_reply(runtime: Runtime, company_id: uuid.UUID, conversation_id: uuid.UUID) -> Suggestion:
    """Draft a reply to the customer's last message in the conversation; stores nothing.
    ``NotFound`` for a conversation not of this company, ``InvalidInput`` when the customer
    has not written yet."""
    async with runtime.db.transaction(company_id) as session:
        conversation = await conversations.get_conversation(session, conversation_id)
        question = await conversations.last_customer_message(session, conversation_id)
        if question is None:
            raise InvalidInput("the customer has not written yet: there is no question to draft a reply to")
        company = await tenancy.get_company(session, str(company_id))
        ports = ports_for(runtime, company)
        earlier = await conversations.messages_before(
            session, conversation.id, question.seq, limit=runtime.settings.llm_history_messages
        )
        # an agent may read internal documents; the dates, windows and context rules still hold
        scope = rules.scope(
            rules.company_rules(company),
            now=runtime.clock(),
            customer=False,
            context=rules.context_of(conversation.channel, conversation.context),
        )
        turn = Turn(
            company_id,
            question.text,
            known_language=conversation.language,
            default_language=company.default_language,
            history=tuple((m.author, m.text) for m in earlier if m.author != "system"),
            instructions=read_section(company, Instructions).instructions,
            company_name=company.name,
            filters=scope.filters,
            applied=scope.applied,
        )
        await think(session, turn, ports, STEPS)
        stems = {} if turn.small_talk else await question_stems(session, turn.query)

    if turn.small_talk:
        return Suggestion(
            question.id,
            question.text,
            phrase(turn.small_talk, turn.language),
            f"small talk: {turn.small_talk}",
            turn.language,
            "smalltalk",
            1.0,
        )

    await conclude(runtime, turn, ports, stems)  # no transaction held: an LLM may take seconds
    assert turn.answer is not None
    log.info(
        "assist.suggested",
        conversation_id=str(conversation_id),
        drafted=turn.answer.text is not None,
        answerer=ports.answerer.name,
    )
    return Suggestion(
        question.id,
        question.text,
        turn.answer.text,
        turn.answer.reason,
        turn.language,
        ports.answerer.name,
        turn.answer.confidence,
        cited(turn) if turn.answer.text else [],
    )
