"""``atende eval-questions``: what splitting a message into its questions does to the answers.

One language of a QA set (the support e-mails, ``../shared/data/support``) goes into one
scratch company; every message runs the bot's read-only pipeline (``engine.turn.think``)
twice: looked up whole (``ATENDE_QUESTIONS_PER_MESSAGE=1``, the bot before splitting) and
split into its questions (each looked up and answered on its own). Per mode: the share of
messages answered (all or part), answered citing the gold passage, handed off (wholly, or
partly: some questions answered, the rest left for a person); then with every other
document left out, the same for the messages the knowledge base can still answer and those
it cannot. Also the share of messages found to ask more than one question, and the time the
split and the turn took. Customer-message statistics are learnt as in ``atende eval`` (each
half of the questions asked with the other half's).
"""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.table import Table

from atende.engine.questions import MAX_QUESTIONS, split
from atende.engine.tasks import ports_for
from atende.engine.turn import Ports, Turn, normalised, think
from atende.evaluation.datasets import QAQuestion, QASet, load
from atende.evaluation.run import CONCURRENCY, Progress, Scratch, _build, _drop, no_progress, sample
from atende.evaluation.scoring import Retrieved, comes_from
from atende.knowledge import message_terms
from atende.knowledge import service as knowledge
from atende.knowledge.embedding import embedder_for
from atende.runtime import Runtime

MODES = ("whole", "split")


@dataclass
class Outcome:
    """What the bot did with one message in one mode."""

    questions: int  # the questions it looked up (1: the message whole)
    answered: bool  # it sent an answer (to all of the message, or to some of its questions)
    cited_gold: bool
    partial: bool  # some questions answered, the rest handed off
    split_ms: float
    turn_ms: float


async def _ask(runtime: Runtime, ports: Ports, scratch: Scratch, question: QAQuestion) -> Outcome:
    async with runtime.db.transaction(scratch.company_id) as session:
        turn = await think(
            session, Turn(scratch.company_id, question.question, default_language=scratch.qa.language), ports
        )
    answer = turn.answer
    answered = bool(answer is not None and answer.text) and not turn.small_talk and not turn.signal
    texts = {str(p.chunk_id): p.text for p in turn.retrieved()}
    gold = scratch.qa.passages[question.passage_id]
    cited_gold = answered and any(
        comes_from(
            Retrieved(scratch.documents[uuid.UUID(c["document_id"])], texts.get(c["chunk_id"], "")),
            gold,
            whole_document=scratch.qa.passage_level,
        )
        for c in (answer.citations if answer else [])
    )
    retrieve = next((s for s in turn.steps if s["step"] == "retrieve"), {})
    return Outcome(
        questions=max(1, len(turn.parts)),
        answered=answered,
        cited_gold=cited_gold,
        partial=answered and bool(turn.unanswered),
        split_ms=float(retrieve.get("split_ms", 0.0)),
        turn_ms=sum(float(s["ms"]) for s in turn.steps),
    )


async def _ask_all(
    runtime: Runtime,
    modes: dict[str, Ports],
    scratch: Scratch,
    questions: Sequence[QAQuestion],
    progress: Progress,
    label: str,
) -> dict[str, list[Outcome]]:
    """Every question in every mode, the statistics of customer messages learnt from the
    other half of the questions (as ``atende eval`` does)."""
    found: dict[str, list[Outcome | None]] = {mode: [None] * len(questions) for mode in modes}
    advance = progress(f"{label}: asking {len(questions)} messages, {len(modes)} ways", len(questions))
    limit = asyncio.Semaphore(CONCURRENCY)
    for first in (0, 1):
        seen = [normalised(q.question) for q in questions[1 - first :: 2]]
        async with runtime.db.transaction(scratch.company_id) as session:
            await message_terms.learn(session, [[question] for question in seen])

        async def both(i: int) -> None:
            async with limit:
                for mode, ports in modes.items():
                    found[mode][i] = await _ask(runtime, ports, scratch, questions[i])
            advance(1)

        await asyncio.gather(*(both(i) for i in range(first, len(questions), 2)))
    return {mode: [o for o in outcomes if o is not None] for mode, outcomes in found.items()}


def _share(flags: Sequence[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _figures(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    return {
        "messages": len(outcomes),
        "answered": _share([o.answered for o in outcomes]),
        "cited_gold": _share([o.cited_gold for o in outcomes]),
        "handed_off": _share([not o.answered or o.partial for o in outcomes]),
        "handed_off_wholly": _share([not o.answered for o in outcomes]),
        "partly_answered": _share([o.partial for o in outcomes]),
    }


def _ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "mean": round(statistics.fmean(ordered), 1),
        "p50": round(ordered[len(ordered) // 2], 1),
        "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
    }


def split_shares(qa: QASet, limit: int = MAX_QUESTIONS) -> dict[str, Any]:
    """How many questions the rules find in each of the set's messages (no model, no database)."""
    counts = Counter(max(1, len(split(q.question, limit * 2))) for q in qa.questions)
    total = len(qa.questions)
    return {
        "messages": total,
        "more_than_one": round(sum(n for k, n in counts.items() if k > 1) / total, 4) if total else None,
        "by_count": {str(k): n for k, n in sorted(counts.items())},
    }


async def measure(
    runtime: Runtime,
    directory: Path,
    language: str = "pt",
    *,
    limit: int | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Split against whole on ``language`` of the set in ``directory`` (the module's docstring)."""
    qa = load(directory, language)
    questions = sample(qa.questions, limit)
    ports = ports_for(runtime)
    modes = {
        "whole": replace(ports, questions=1),
        "split": replace(ports, questions=max(2, runtime.settings.questions_per_message)),
    }
    embedder = embedder_for(runtime, None)
    doc_ids = sorted(qa.documents)
    scratch = await _build(runtime, qa, doc_ids, language, progress, embedder)
    try:
        full = await _ask_all(runtime, modes, scratch, questions, progress, language)
        kept = set(doc_ids[::2])
        async with runtime.db.transaction(scratch.company_id) as session:
            for document_id, doc_id in scratch.documents.items():
                if doc_id not in kept:
                    await knowledge.delete_document(session, document_id)
        half = await _ask_all(runtime, modes, scratch, questions, progress, f"{language}, half left out")
    finally:
        await _drop(runtime, scratch)
    answerable = [i for i, q in enumerate(questions) if q.doc_id in kept]
    unanswerable = [i for i, q in enumerate(questions) if q.doc_id not in kept]
    several = [i for i, o in enumerate(full["split"]) if o.questions > 1]
    return {
        "dataset": str(directory),
        "language": language,
        "questions_per_message": modes["split"].questions,
        "split_rules": split_shares(qa),
        "results": {
            mode: {
                "all": _figures(full[mode]),
                "several_questions": _figures([full[mode][i] for i in several]),
                "half_left_out": {
                    "answerable": _figures([half[mode][i] for i in answerable]),
                    "unanswerable": _figures([half[mode][i] for i in unanswerable]),
                },
                "turn_ms": _ms([o.turn_ms for o in full[mode]]),
            }
            for mode in modes
        },
        "split_ms_several": _ms([full["split"][i].split_ms for i in several]),
        "turn_ms_several": {mode: _ms([full[mode][i].turn_ms for i in several]) for mode in modes},
        "several_questions_found": _share([i in several for i in range(len(questions))]),
    }


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def questions_table(result: dict[str, Any]) -> Table:
    """The answers looked up whole against split into questions, one row per mode."""
    several = result["several_questions_found"]
    table = Table(
        title=f"Messages split into their questions ({result['language']}; {_pct(several)} ask several)",
        title_justify="left",
        caption="handed off: wholly or partly (some questions answered, the rest left for a person); "
        "half: every other document left out, ans. = messages it can answer, unans. = the others",
        caption_justify="left",
    )
    columns = (
        "mode",
        "n",
        "answered",
        "cites gold",
        "handed off",
        "partly",
        "several: cites gold",
        "half: ans. cites gold",
        "half: unans. nothing answered",
        "turn ms p50/p95",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, figures_ in result["results"].items():
        every, many, half = figures_["all"], figures_["several_questions"], figures_["half_left_out"]
        ms = figures_["turn_ms"]
        table.add_row(
            mode,
            str(every["messages"]),
            _pct(every["answered"]),
            _pct(every["cited_gold"]),
            _pct(every["handed_off"]),
            _pct(every["partly_answered"]),
            _pct(many["cited_gold"]),
            _pct(half["answerable"]["cited_gold"]),
            _pct(half["unanswerable"]["handed_off_wholly"]),
            f"{ms.get('p50', 0):.0f} / {ms.get('p95', 0):.0f}",
        )
    return table
