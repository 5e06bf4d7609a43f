"""The "Try a question" page of the knowledge base (agents and above): a question run through
the bot's own turn (``engine.search``, as ``POST /v1/search``), with nothing stored. It
shows what each retrieval stage found, with scores and ranks, the answer the bot would give
with its citations, and why it would answer or hand off, in the reader's language, with the
time of each step. The form is a GET: a tried question is a link to share."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from babel.numbers import format_decimal, format_percent
from fastapi import APIRouter, Query, Response

from atende.dashboard import i18n
from atende.dashboard.auth import AgentPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, explain, gettext, render
from atende.dashboard.wording import handoff_reason, rule_applied, turn_reason
from atende.engine import assist, search
from atende.engine.messages import phrase
from atende.errors import InvalidInput
from atende.knowledge import rules
from atende.knowledge import service as knowledge
from atende.knowledge.filters import Filters, Match
from atende.knowledge.retrieval import Stage

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PATH = "/app/knowledge/try"
SHOWN = 10  # candidates listed per stage
STAGE_NAMES = {
    "fulltext": N_("Full text (BM25)"),
    "dense": N_("Meaning (dense vectors)"),
    "fused": N_("Fused (hybrid)"),
    "reranked": N_("After re-ranking"),
    "llm_reranked": N_("After LLM re-ranking"),
}
RERANKED = ("reranked", "llm_reranked")  # stages that re-order the one before them
STEP_NAMES = {
    "normalise": N_("Tidy the text"),
    "detect_language": N_("Detect the language"),
    "small_talk": N_("Recognise small talk"),
    "handoff_signal": N_("Look for handoff signals"),
    "follow_up": N_("Resolve a follow-up question"),
    "retrieve": N_("Search the knowledge base"),
    "answer": N_("Write the answer"),
    "decide": N_("Decide"),
}
SIGNALS = ("asked_for_person", "handoff_rule", "repeated_question")
READERS = (
    (search.CUSTOMER, N_("A customer (the bot's answer: internal documents left out)")),
    (search.AGENT, N_("An agent (agent assist: internal documents too)")),
)
CHANNELS = (
    ("webchat", N_("Web chat")),
    ("whatsapp", N_("WhatsApp")),
    ("email", N_("E-mail")),
    ("api", N_("API")),
)
Text = Annotated[str, Query(max_length=20_000)]
Short = Annotated[str, Query(max_length=1000)]


def _filters(
    documents_language: str, document: str, tags: str, product: str, audience: str, attributes: str = ""
) -> Filters:
    """The form's filters (tags separated by commas, attributes one ``key = value`` a line,
    a key given twice: any of its values); ``InvalidInput`` for a document that is not an
    id or a line that is no key/value."""
    documents: tuple[uuid.UUID, ...] = ()
    if document:
        try:
            documents = (uuid.UUID(document),)
        except ValueError:
            raise InvalidInput("not a document id", field="document") from None
    wanted: dict[str, list[str]] = {}
    for line in attributes.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInput("each attribute line is key = value", field="attributes")
        wanted.setdefault(key.strip(), []).append(value.strip())
    return Filters(
        language=documents_language or None,
        documents=documents,
        tags=tuple(dict.fromkeys(t.strip() for t in tags.split(",") if t.strip())),
        product=product.strip() or None,
        audience=audience.strip() or None,
        matches=tuple(Match(key, tuple(dict.fromkeys(values))) for key, values in wanted.items()),
    )


def _context(channel: str, page: str, product: str, details: str) -> dict[str, str]:
    """The conversation's context to try the rules with: the channel, the widget's page and
    product, and other details one ``key = value`` a line (as ``POST /v1/search``'s
    ``context``); ``InvalidInput`` for a line that is no key/value or a key the rules cannot
    name."""
    given = {
        key: value
        for key, value in ((rules.CHANNEL, channel), (rules.PAGE, page), (rules.PRODUCT, product))
        if value.strip()
    }
    for line in details.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip() or not value.strip() or key.strip() in given:
            raise InvalidInput("each line of the context is key = value, once a key", field="context")
        given[key.strip()] = value
    try:
        return rules.checked_context(given, channel=True)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="context") from None


def why_said(found: search.Search, _: Callable[[str], str], language: str) -> str:
    """Why the bot would answer or hand off, in plain words of the reader's language."""
    turn, why = found.turn, found.why
    locale = i18n.locale(language)
    answer = turn.answer

    def percent(value: float | None) -> str:
        return format_percent(value or 0.0, locale=locale)

    if why == "small_talk":
        return _(
            "It is small talk, such as a greeting or thanks: the bot answers with a phrase of its own, "
            "without searching the knowledge base."
        )
    if why in SIGNALS:
        before = _("The bot hands off before searching the knowledge base.")
        return f"{handoff_reason(turn.reason, _)} {before}"
    if why == "partly_answered":
        asked = len(turn.parts)
        return _(
            "The message asks %(asked)s questions; the knowledge base answers %(answered)s of them, each "
            "from its own passage. The bot sends those answers and hands the conversation to a person "
            "for the rest."
        ) % {"asked": asked, "answered": asked - len(turn.unanswered)}
    if why == "answered" and search.outcomes(turn):
        return _(
            "The message asks %(asked)s questions; the knowledge base answers each of them from its own "
            "passage."
        ) % {"asked": len(turn.parts)}
    if (
        why == "answered"
        and answer is not None
        and answer.needed is not None
        and "re-ranker p" in answer.reason
    ):
        return _(
            "The re-ranker puts the chance that “%(title)s” is the passage that answers at %(found)s; "
            "%(needed)s is enough to answer from it, however few of the question's words it holds."
        ) % {
            "title": answer.citations[0]["title"],
            "found": percent(answer.confidence),
            "needed": percent(answer.needed),
        }
    if why == "answered" and answer is not None and answer.needed is not None and answer.quoted_language:
        return _(
            "The passage “%(title)s” is in another language, close in meaning to the question "
            "(%(found)s; %(needed)s is enough): it is quoted as it is, after a notice."
        ) % {
            "title": answer.citations[0]["title"],
            "found": percent(answer.confidence),
            "needed": percent(answer.needed),
        }
    if why == "answered" and answer is not None and answer.needed is not None:
        return _(
            "The passage “%(title)s” contains %(found)s of the question's words; %(needed)s are enough "
            "to answer from it."
        ) % {
            "title": answer.citations[0]["title"],
            "found": percent(answer.confidence),
            "needed": percent(answer.needed),
        }
    if why == "answered":
        return _("The company's LLM answered from the passages it cites.")
    if why == "nothing_found":
        return _(
            "No passage of the knowledge base matches the question (with these filters): a person answers."
        )
    if why == "weak_evidence":
        return _(
            "The best passage contains only %(found)s of the question's words; %(needed)s are needed "
            "to answer from it. A person answers instead."
        ) % {
            "found": percent(answer.confidence if answer else 0.0),
            "needed": percent(answer.needed if answer else 0.0),
        }
    if why == "no_answer":
        return _("The company's LLM found no answer in the passages: a person answers.")
    return ""


def _stages(
    found: list[Stage], number: Callable[[float | None], str], _: Callable[[str], str]
) -> list[dict[str, Any]]:
    """What each retrieval stage ``found`` returned, for the template: its first ``SHOWN``
    candidates with their scores and ranks, and a re-ranking stage's ranks before it."""
    stages = []
    for index, stage in enumerate(found):
        before = found[index - 1] if stage.name in RERANKED and index else None
        places = {p.chunk_id: rank for rank, p in enumerate(before.passages, start=1)} if before else {}
        stages.append(
            {
                "name": stage.name,
                "label": _(STAGE_NAMES.get(stage.name, stage.name)),
                "ms": number(stage.ms),
                "found": len(stage.passages),
                "kept": min(stage.kept, len(stage.passages)) if stage.kept is not None else None,
                # where the kept ones go: the answerer after the last stage, else re-ranking
                "to_answerer": index == len(found) - 1,
                "error": stage.error,
                "reorders": before is not None,
                "rows": [
                    {
                        "rank": rank,
                        "score": number(p.score),
                        "title": p.title,
                        "section": p.section,
                        "snippet": p.text[: assist.SNIPPET_CHARS],
                        "bm25_rank": p.scores.get("bm25_rank"),
                        "dense_rank": p.scores.get("dense_rank"),
                        "before": places.get(p.chunk_id),
                        "fused": number(p.scores.get("fused")),
                    }
                    for rank, p in enumerate(stage.passages[:SHOWN], start=1)
                ],
            }
        )
    return stages


def _shown(found: search.Search, current_language: str, _: Callable[[str], str]) -> dict[str, Any]:
    """What the template shows of a search: numbers formatted for the reader."""
    locale = i18n.locale(current_language)
    turn = found.turn

    def number(value: float | None) -> str:
        return "" if value is None else format_decimal(value, "#,##0.###", locale=locale)

    stages = _stages(turn.stages, number, _)
    # a message that asks several questions: each one's lookup and outcome (its citations
    # when some of them were answered; when none was, the message was answered whole)
    outcomes = search.outcomes(turn)
    questions = [
        {
            "question": part.asked.text,
            "query": part.asked.query,
            "answered": bool(part.answer and part.answer.text),
            "why": turn_reason(part.answer.reason, _) if part.answer else "",
            "citations": outcomes[index].citations if outcomes else [],
            "stages": _stages(part.stages, number, _),
        }
        for index, part in enumerate(turn.parts)
    ]
    reply = turn.answer.text if turn.answer else None
    if turn.small_talk:
        reply = phrase(turn.small_talk, turn.language)
    return {
        "stages": stages,
        "reranked": any(s["reorders"] for s in stages),
        "fused_kept": next((s["kept"] for s in stages if s["kept"]), None),
        "decision": turn.decision,
        "partly": found.why == "partly_answered",
        "questions": questions,
        "answered_count": sum(q["answered"] for q in questions),
        "why": why_said(found, _, current_language),
        "reply": reply,
        "citations": assist.cited(turn) if turn.answer and turn.answer.text else [],
        "language": turn.language,
        "language_detected": found.language_detected,
        "retriever": found.retriever,
        "answerer": found.answerer,
        "searched": bool(turn.stages) or not (turn.small_talk or turn.signal),
        "steps": [
            {"label": _(STEP_NAMES.get(s["step"], s["step"])), "ms": number(s["ms"])} for s in turn.steps
        ],
        "total_ms": number(found.total_ms),
    }


@router.get("/knowledge/try")
async def try_page(
    member: AgentPage,
    question: Text = "",
    language: Short = "",
    documents_language: Short = "",
    document: Short = "",
    tags: Short = "",
    product: Short = "",
    audience: Short = "",
    attributes: Short = "",
    reader: Short = search.CUSTOMER,
    channel: Short = "",
    page: Short = "",
    page_product: Short = "",
    context: Short = "",
) -> Response:
    _ = gettext(member.visitor)
    form = {
        "question": question,
        "language": language,
        "documents_language": documents_language,
        "document": document,
        "tags": tags,
        "product": product,
        "audience": audience,
        "attributes": attributes,
        "reader": reader,
        "channel": channel,
        "page": page,
        "page_product": page_product,
        "context": context,
    }
    async with member.tenant.transaction() as session:
        documents = [(str(d.id), d.title) for d in await knowledge.list_documents(session)]
    result, error, status = None, None, 200
    if "question" in member.visitor.request.query_params:
        try:
            filters = _filters(documents_language, document, tags, product, audience, attributes)
            given = _context(channel, page, page_product, context)
            found = await search.search(
                member.visitor.runtime,
                member.tenant.principal.company_id,
                question,
                language=language or None,
                filters=filters,
                reader=reader,
                context=given,
            )
            result = _shown(found, member.visitor.language, _)
            result["rules"] = [rule_applied(a.kind, a.detail, _) for a in found.turn.applied]
        except InvalidInput as exc:
            error, status = _problem(member, exc), 422
    return render(
        member.visitor,
        "knowledge_try.html",
        status=status,
        form=form,
        documents=documents,
        result=result,
        error=error,
        readers=READERS,
        channels=CHANNELS,
    )


FIELD_PROBLEMS = {
    "question": N_("Type a question of up to %(max)s characters."),
    "language": N_("Choose the question's language from the list."),
    "filters.language": N_("Choose the documents' language from the list."),
    "document": N_("Choose a document from the list."),
    "attributes": N_("Write one key = value a line, such as region = south."),
    "reader": N_("Choose whom to search as from the list."),
    "context": N_(
        "Write one key = value a line, the key in lower-case letters, digits and _ (such as "
        "region = south), each key once; at most 20, values up to 500 characters."
    ),
}


def _problem(member: Member, exc: InvalidInput) -> str:
    """What was wrong with the form, in the reader's language."""
    said = FIELD_PROBLEMS.get(exc.field or "")
    if said is None:
        return explain(member.visitor, exc)
    return gettext(member.visitor)(said) % {"max": search.MAX_QUESTION_CHARS}
