"""Follow-up questions measured (``atende eval --follow-ups``): a small multi-turn set built
by rule from a QA set, asked with and without the turn's follow-up rewrite.

**Follow-ups.** For each passage, its first question opens the conversation; of its other
questions, the one sharing most topic words with the first (ties: the earlier) becomes the
follow-up: the words it shares with the first question or with the article's title are
dropped (the conversation carries them) and a cue opens it ("And", "E", "¿Y"). "Which
NFL team represented the AFC at Super Bowl 50?" then "Which NFL team represented the NFC
at Super Bowl 50?" gives "And which represented the NFC at?". A pair whose follow-up would
lose nothing, or keep no topic word, is left out.

**Topic switches.** The control: the same opening questions, each followed by a question
about another article, asked as written and, again, opened by the same cue ("And what
is..."). A standalone question must be left alone: the rewrite must not cost it anything.

Each follow-up is asked three ways: after the opening question without the rewrite step
(what the bot did before), with it, and the original second question on its own (what a
perfect rewrite could reach). Recall is over the bot's own top-k passages; an answer
"cites gold" when the chunk it cites comes from the gold passage.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from atende.engine.followup import is_follow_up, topic_words
from atende.engine.turn import PIPELINE, Ports, Step, Turn, think
from atende.evaluation.datasets import QAQuestion, QASet
from atende.evaluation.scoring import Retrieved, comes_from, first_hit, is_hit
from atende.knowledge.text import fold
from atende.runtime import Runtime

CUES = {"pt": "E", "en": "And", "es": "¿Y"}
CONCURRENCY = 4
KINDS = ("follow_up", "topic_switch", "topic_switch_cued")
WITHOUT_REWRITE = [(name, step) for name, step in PIPELINE if name != "follow_up"]
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Pair:
    """Two customer messages of one conversation: ``first``, then ``asked`` (about ``gold``)."""

    kind: str  # follow_up | topic_switch
    first: str
    asked: str
    gold: QAQuestion  # the question ``asked`` stands for (its passage, its answers)


def elliptical(question: str, carried: set[str], language: str) -> str | None:
    """``question`` without the words the conversation carries, opened by a cue; ``None``
    when it would lose nothing or keep no topic word."""
    text = _WORD.sub(lambda m: "" if fold(m.group()) in carried else m.group(), question)
    if text == question:
        return None
    text = re.sub(r"\s+([?.,!;:])", r"\1", " ".join(text.split())).lstrip("¿¡ ")
    if not topic_words(text):
        return None
    first = text.split(" ", 1)[0]
    if not (len(first) > 1 and first.isupper()):  # "NFL" stays as it is
        text = text[:1].lower() + text[1:]
    return f"{CUES.get(language, 'And')} {text}"


def follow_up_pairs(qa: QASet) -> list[Pair]:
    """The set's follow-ups and as many topic switches (see the module docstring)."""
    by_passage: dict[str, list[QAQuestion]] = {}
    for q in qa.questions:
        by_passage.setdefault(q.passage_id, []).append(q)
    follow_ups: list[Pair] = []
    for passage_id, questions in by_passage.items():
        if len(questions) < 2:
            continue
        first = questions[0]
        opening = set(topic_words(first.question))
        title = set(topic_words(qa.passages[passage_id].title))
        second = max(questions[1:], key=lambda q: len(opening & set(topic_words(q.question))))
        text = elliptical(second.question, (opening & set(topic_words(second.question))) | title, qa.language)
        if text is not None:
            follow_ups.append(Pair("follow_up", first.question, text, second))
    cue = CUES.get(qa.language, "And")
    switches: list[Pair] = []
    cued: list[Pair] = []
    for pair, other in zip(follow_ups, _elsewhere(follow_ups), strict=True):
        question = other.gold.question
        switches.append(Pair("topic_switch", pair.first, question, other.gold))
        bare = question.lstrip("¿¡ ")
        cued.append(Pair("topic_switch_cued", pair.first, f"{cue} {bare[:1].lower()}{bare[1:]}", other.gold))
    return follow_ups + switches + cued


def _elsewhere(pairs: Sequence[Pair]) -> list[Pair]:
    """For each pair, one about another document: the pairs turned half way round."""
    half = len(pairs) // 2
    turned = list(pairs[half:]) + list(pairs[:half])
    return [
        other if other.gold.doc_id != pair.gold.doc_id else pairs[(i + 1) % len(pairs)]
        for i, (pair, other) in enumerate(zip(pairs, turned, strict=True))
    ]


@dataclass(frozen=True)
class Asked:
    rank: int | None  # of the first hit in the bot's top-k
    answered: bool
    cited_gold: bool
    rewritten: bool  # the follow-up step changed what was looked up


async def _ask(
    runtime: Runtime,
    ports: Ports,
    company_id: uuid.UUID,
    documents: dict[uuid.UUID, str],
    qa: QASet,
    pair: Pair,
    history: tuple[tuple[str, str], ...],
    steps: list[tuple[str, Step]],
) -> Asked:
    async with runtime.db.transaction(company_id) as session:
        turn = Turn(company_id, pair.asked, default_language=qa.language, history=history)
        await think(session, turn, ports, steps)
    gold = qa.passages[pair.gold.passage_id]
    level = qa.passage_level
    rank = first_hit(
        [
            is_hit(Retrieved(documents[p.document_id], p.text), pair.gold, gold, passage_level=level)
            for p in turn.passages
        ]
    )
    answered = turn.decision == "answer" and turn.answer is not None and not turn.small_talk
    texts = {str(p.chunk_id): (documents[p.document_id], p.text) for p in turn.passages}
    cited = turn.answer.citations if answered and turn.answer else []
    cited_gold = any(
        c["chunk_id"] in texts and comes_from(Retrieved(*texts[c["chunk_id"]]), gold, whole_document=level)
        for c in cited
    )
    rewritten = any(s["step"] == "follow_up" and s.get("how") in ("offline", "llm") for s in turn.steps)
    return Asked(rank, answered, cited_gold, rewritten)


def _figures(asked: Sequence[Asked]) -> dict[str, float | int | None]:
    n = len(asked)

    def share(values: list[bool]) -> float | None:
        return round(sum(values) / n, 4) if n else None

    return {
        "questions": n,
        "recall@1": share([a.rank == 1 for a in asked]),
        "recall@5": share([a.rank is not None and a.rank <= 5 for a in asked]),
        "answered": share([a.answered for a in asked]),
        "cited_gold": share([a.cited_gold for a in asked]),
        "rewritten": share([a.rewritten for a in asked]),
    }


async def measure(
    runtime: Runtime,
    ports: Ports,
    company_id: uuid.UUID,
    documents: dict[uuid.UUID, str],
    qa: QASet,
    pairs: Sequence[Pair],
    advance: Callable[[int], None],
) -> dict[str, Any]:
    """Ask every pair's second message after its first, without and with the rewrite (and a
    follow-up's original question alone), on a company holding ``qa``'s documents."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def ask(pair: Pair) -> dict[str, Asked]:
        history = (("customer", pair.first),)
        async with limit:
            ways = {
                "without_rewrite": await _ask(
                    runtime, ports, company_id, documents, qa, pair, history, WITHOUT_REWRITE
                ),
                "with_rewrite": await _ask(
                    runtime, ports, company_id, documents, qa, pair, history, PIPELINE
                ),
            }
            if pair.kind == "follow_up":
                standalone = Pair(pair.kind, "", pair.gold.question, pair.gold)
                ways["original_question_alone"] = await _ask(
                    runtime, ports, company_id, documents, qa, standalone, (), PIPELINE
                )
        advance(1)
        return ways

    answers = await asyncio.gather(*(ask(pair) for pair in pairs))
    result: dict[str, Any] = {}
    for kind in KINDS:
        chosen = [(p, a) for p, a in zip(pairs, answers, strict=True) if p.kind == kind]
        ways = chosen[0][1].keys() if chosen else ()
        result[kind] = {way: _figures([a[way] for _, a in chosen]) for way in ways}
        result[kind]["detected_offline"] = (
            round(sum(is_follow_up(p.asked) for p, _ in chosen) / len(chosen), 4) if chosen else None
        )
    result["examples"] = [{"first": p.first, "asked": p.asked} for p in pairs[:3]]
    return result
