"""The second stage of retrieval: a ``Reranker`` re-orders the fused candidates before the
answerer sees them (``docs/EVALUATION.md``).

The hybrid retriever hands a re-ranker its best ``candidates`` (fused, best first) and the
question's embedding when it has one; the re-ranker returns them re-ordered, each passage's
``score`` set to its new score (its ``scores`` may gain keys of its own, named after it, such
as the learned one's ``rerank_p``). ``rerank`` runs one step of it within a time budget and
records, on every re-ranked candidate, the stage's score and new rank
(``scores["reranked"]``, ``scores["reranked_rank"]``) beside what the earlier stages gave
it, so that the trace, ``POST /v1/search`` and "try a question" show each candidate's scores
before and after. Whatever goes wrong (over the budget, an exception, a reply that is not
the candidates re-ordered) the previous order stands and the stage says why.

A re-ranker is cut off at its budget (its task is cancelled). It is handed a session of its
own, on a connection of its own opened only if it reads the database: a statement cancelled
midway leaves its connection in an unknown state, and that must never be the turn's. The
exception is a session marked ``IN_TRANSACTION``, one lookup's own (a message's question,
``engine.turn.beside``), which ends with the lookup: the re-ranker reads in it. CPU
work should run in a thread (``asyncio.to_thread``): a re-ranker that never yields to the
event loop cannot be cut off, only recorded as slow.

Which re-ranker a company gets comes from one place, ``knowledge.ranker.default_reranker``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.embedding import Vector
from atende.knowledge.passages import Passage
from atende.observability.logging import describe


class Reranker(Protocol):
    name: str

    async def rerank(
        self,
        session: AsyncSession,
        query: str,
        language: str,
        candidates: Sequence[Passage],
        query_vector: Vector | None = None,
    ) -> list[Passage]:
        """``candidates`` (fused, best first) re-ordered best first."""
        ...


@dataclass(frozen=True)
class RerankStep:
    """One re-ranking stage: ``reranker`` re-orders the first ``candidates`` of the ranking so
    far within ``budget_ms``; ``stage`` names it (``Stage.name`` and the keys it adds to
    ``Passage.scores``)."""

    reranker: Reranker
    candidates: int
    budget_ms: float
    stage: str = "reranked"
    # whether the re-ranker reads the database; one that does not (the LLM's) runs after the
    # turn's reading transaction, holding no connection while it waits (``engine.turn``)
    reads: bool = True


@dataclass
class Reranked:
    """A re-ranking stage's outcome: the whole ranking after it (the re-ordered head, then the
    rest as it was), its time, and why the previous order was kept (``None``: it was not)."""

    passages: list[Passage]
    ms: float
    error: str | None = None


def _copies(passages: Sequence[Passage]) -> list[Passage]:
    """Passages a re-ranker may change (score, scores) without touching the earlier stages'."""
    return [replace(p, scores=dict(p.scores)) for p in passages]


def not_a_reordering(given: Sequence[Passage], returned: Sequence[Passage]) -> str | None:
    """Why ``returned`` is not ``given`` re-ordered (each passage once, none added), or None."""
    ids = [p.chunk_id for p in returned]
    if len(set(ids)) != len(ids):
        return "it returned a passage twice"
    if set(ids) != {p.chunk_id for p in given}:
        return f"it returned {len(ids)} passages that are not the {len(given)} candidates re-ordered"
    return None


# Marks a session whose transaction serves one lookup and ends with it, read-only (a
# message's question looked up on a connection of its own, ``engine.turn.beside``): the
# re-ranker runs on it, since a statement its budget cancels leaves nothing behind that needs
# the transaction. Any other session lends the re-ranker a connection of its own
# (``own_session``), so that the caller's transaction goes on whatever the re-ranker's
# fate; taken while the caller's is held, it is a second connection at once, which a lookup
# already holding an extra one must not wait for (a full pool could then hold nothing but
# such waiters).
IN_TRANSACTION = "atende.rerank_in_transaction"


def own_session(session: AsyncSession | None, *, one_lookup: bool = False) -> AsyncSession:
    """A session of the same company (and cache of question stems) on a connection of its own,
    taken from the pool only if it runs a statement; without ``session`` (a re-ranker that
    reads nothing, run outside any transaction), one bound to no database. ``one_lookup``:
    it serves one lookup and ends with it, and the re-ranker reads in it (``IN_TRANSACTION``)."""
    if session is None:
        return AsyncSession(expire_on_commit=False)
    info = {**session.info, IN_TRANSACTION: True} if one_lookup else dict(session.info)
    return AsyncSession(bind=session.bind, info=info, expire_on_commit=False)


@asynccontextmanager
async def _session_for(session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
    """The session the re-ranker reads with: ``session`` itself when marked
    ``IN_TRANSACTION``, else ``own_session``."""
    if session is not None and session.info.get(IN_TRANSACTION):
        yield session
        return
    async with own_session(session) as own:
        yield own


async def rerank(
    session: AsyncSession | None,
    step: RerankStep,
    query: str,
    language: str | None,
    ranked: Sequence[Passage],
    query_vector: Vector | None = None,
) -> Reranked:
    """``ranked`` after ``step``: its first ``step.candidates`` re-ordered by the re-ranker,
    each marked with the stage's score and rank; on any failure, ``ranked`` as it was, with
    the reason."""
    started = time.perf_counter()
    head, tail = _copies(ranked[: step.candidates]), list(ranked[step.candidates :])
    if len(head) < 2:  # nothing to re-order
        return Reranked([*head, *tail], _ms(started))
    given = _copies(head)
    try:
        async with _session_for(session) as own:
            reordered = await asyncio.wait_for(
                step.reranker.rerank(own, query, language or "", given, query_vector),
                timeout=step.budget_ms / 1000,
            )
    except TimeoutError:
        why = f"{step.reranker.name} took longer than its {step.budget_ms:g} ms budget"
        return Reranked([*head, *tail], _ms(started), why)
    except Exception as exc:  # any failure of a re-ranker: the order so far stands
        return Reranked([*head, *tail], _ms(started), f"{step.reranker.name} failed: {describe(exc)}")
    wrong = not_a_reordering(head, reordered)
    if wrong is not None:
        return Reranked([*head, *tail], _ms(started), f"{step.reranker.name}: {wrong}")
    for rank, passage in enumerate(reordered, start=1):
        passage.scores[step.stage] = round(passage.score, 4)
        passage.scores[f"{step.stage}_rank"] = rank
    return Reranked([*reordered, *tail], _ms(started))


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
