"""Search: a question run through the bot's own turn, with nothing stored.

``POST /v1/search`` and the dashboard's "try a question" show what the bot would do with a
question: what each stage of retrieval returned (full text, dense, fused, then each
re-ranking stage, with every candidate's scores before and after), the answer it would
give with its citations, and why it would answer or hand off. It is the real turn, not a
copy: the same steps (``turn.GATHER``) with the company's retriever and answerer
(``engine.tasks.ports_for``), then the same ``turn.conclude``; only there is no
conversation. Nothing is written: no message, no trace, no conversation, no live event. A
history-free question cannot repeat an earlier one, so the repeat rule never fires here;
the company's other handoff rules do. The company's knowledge rules apply as for a customer
(or, asked, as for agent assist), under the context given (a channel, a page): what applied
is on the turn (``Turn.applied``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.engine.assist import with_snippets
from atende.engine.tasks import ports_for
from atende.engine.turn import GATHER, Turn, conclude, finish_retrieval, think
from atende.errors import InvalidInput, NotFound
from atende.knowledge import rules
from atende.knowledge.filters import LANGUAGES, NO_FILTERS, Filters
from atende.knowledge.models import Document
from atende.knowledge.retrieval import question_stems
from atende.runtime import Runtime
from atende.teams.settings import handoff_settings
from atende.tenancy import service as tenancy
from atende.tenancy.settings import Instructions, read_section

MAX_QUESTION_CHARS = 2000
CUSTOMER, AGENT = "customer", "agent"
READERS = (CUSTOMER, AGENT)  # whom the search answers as: the bot to a customer, agent assist

# why the bot would answer or hand off, for a person to read (the dashboard translates each)
WHYS = (
    "small_talk",  # a greeting, thanks: answered with the bot's own phrase
    "asked_for_person",  # the customer asks for a person: handed off before any search
    "handoff_rule",  # one of the company's handoff rules matched
    "repeated_question",  # the customer asked again what the bot had answered
    "answered",  # the knowledge base answers it (``answer.citations``)
    "partly_answered",  # some of the message's questions answered, a person answers the rest
    "nothing_found",  # no passage matched the question
    "weak_evidence",  # passages matched, too weakly to answer from
    "no_answer",  # the LLM found no answer in the passages
    "not_asked",  # the answer step was not run (``answer=False``)
)
_SIGNALS = {"requested": "asked_for_person", "rule": "handoff_rule", "repeat": "repeated_question"}


@dataclass(frozen=True)
class Outcome:
    """One question of a message that asks several: answered (with its own ``citations``) or
    left for a person, and why (``reason``, as the trace says it)."""

    question: str
    answered: bool
    reason: str
    citations: list[dict[str, Any]]


@dataclass(frozen=True)
class Search:
    """A question's turn, run without a conversation: ``turn`` holds its language, stages,
    passages, answer, decision, reason and step times."""

    turn: Turn
    retriever: str
    answerer: str
    language_detected: bool
    total_ms: float
    reader: str = CUSTOMER

    @property
    def why(self) -> str:
        turn = self.turn
        if turn.small_talk:
            return "small_talk"
        if turn.signal is not None:
            return _SIGNALS.get(turn.signal.lead, "handoff_rule")
        if turn.answer is None:
            return "not_asked"
        if turn.answer.text:
            return "partly_answered" if turn.unanswered else "answered"
        if not turn.passages:
            return "nothing_found"
        return "weak_evidence" if turn.answer.needed is not None else "no_answer"


def outcomes(turn: Turn) -> list[Outcome]:
    """Each question's own outcome when the message was answered question by question (some
    of them answered); else none: the message was answered, or handed off, whole."""
    answers = [part.answer for part in turn.parts]
    if not any(a is not None and a.text for a in answers):
        return []
    return [
        Outcome(
            part.asked.text,
            answered=bool(answer and answer.text),
            reason=answer.reason if answer else "",
            citations=with_snippets(turn, answer.citations) if answer and answer.text else [],
        )
        for part, answer in zip(turn.parts, answers, strict=True)
    ]


def checked_question(question: str) -> str:
    """The question to search for; ``InvalidInput`` when it is blank or too long."""
    stripped = question.strip()
    if not stripped:
        raise InvalidInput("the question is empty: type what a customer would ask", field="question")
    if len(stripped) > MAX_QUESTION_CHARS:
        raise InvalidInput(
            f"the question has {len(stripped)} characters; at most {MAX_QUESTION_CHARS} are searched",
            field="question",
        )
    return stripped


def checked_language(language: str | None, what: str = "language") -> str | None:
    if language and language not in LANGUAGES:
        raise InvalidInput(f"unknown {what} '{language}': one of {', '.join(LANGUAGES)}", field=what)
    return language or None


async def check_documents(session: AsyncSession, documents: tuple[uuid.UUID, ...]) -> None:
    """``NotFound`` unless every id is one of the company's documents (another company's
    id is as unknown as a made-up one)."""
    if not documents:
        return
    found = set(await session.scalars(select(Document.id).where(Document.id.in_(documents))))
    missing = [str(d) for d in documents if d not in found]
    if missing:
        raise NotFound(f"no document {missing[0]}", field="filters.documents")


async def search(
    runtime: Runtime,
    company_id: uuid.UUID,
    question: str,
    *,
    language: str | None = None,
    filters: Filters = NO_FILTERS,
    answer: bool = True,
    reader: str = CUSTOMER,
    context: Mapping[str, str] | None = None,
) -> Search:
    """Run ``question`` through the company's bot turn (``answer=False``: retrieval only),
    under the company's knowledge rules for ``reader`` (``customer``: as the bot answers a
    customer, internal documents left out; ``agent``: as agent assist drafts, with them) and
    the conversation ``context`` given (``channel``, ``page``, ``product``...), narrowed by
    ``filters``. ``InvalidInput`` for a blank or too long question or an unknown language;
    ``NotFound`` for a document filter that is not the company's."""
    started = time.perf_counter()
    question = checked_question(question)
    language = checked_language(language)
    checked_language(filters.language, "filters.language")
    if reader not in READERS:
        raise InvalidInput(f"unknown reader '{reader}': one of {', '.join(READERS)}", field="reader")
    async with runtime.db.transaction(company_id) as session:
        await check_documents(session, filters.documents)
        company = await tenancy.get_company(session, str(company_id))
        ports = ports_for(runtime, company)
        scope = rules.scope(
            rules.company_rules(company),
            now=runtime.clock(),
            customer=reader == CUSTOMER,
            context=context,
            requested=filters or None,
        )
        turn = Turn(
            company_id,
            question,
            default_language=company.default_language,
            instructions=read_section(company, Instructions).instructions,
            company_name=company.name,
            handoff_settings=handoff_settings(company),
            asked_language=language,
            filters=scope.filters,
            applied=scope.applied,
        )
        await think(session, turn, ports, GATHER)
        stems = {} if turn.small_talk or not answer else await question_stems(session, turn.query)
    if answer:
        await conclude(runtime, turn, ports, stems)
    else:
        await finish_retrieval(turn, ports)  # the late re-ranking stages (the LLM's)
    return Search(
        turn,
        retriever=ports.retriever.name,
        answerer="smalltalk" if turn.small_talk else ports.answerer.name,
        language_detected=language is None,
        total_ms=round((time.perf_counter() - started) * 1000, 3),
        reader=reader,
    )
