"""LLM re-ranking: a company's OpenAI-compatible LLM orders the first few passages by how well
they answer the question (a ``knowledge.rerank.Reranker``; the company turns it on,
``tenancy.settings.Reranking``).

The prompt numbers the passages and asks for their numbers only, best first, separated by
commas. The reply is read strictly: numbers of passages that were given, each at most once,
and nothing else (a passage it leaves out keeps its place after the ones it ranked). Any
other reply, an error, an open circuit or the deadline raises, and the re-ranking stage
keeps the order it had (``knowledge.rerank.rerank`` records why). One request, no retry:
every second of it is a second the customer waits. It shares the answerer's circuit breaker:
an endpoint that is down opens it for both.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from purgatory import AsyncCircuitBreakerFactory
from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge.passages import Passage
from atende.llm.grounded import MalformedReply, not_the_providers_fault

if TYPE_CHECKING:  # the SDK is imported where a client is made (atende.openai_compat)
    import openai

PASSAGE_CHARS = 700  # of each passage in the prompt: enough to judge it, few tokens
QUESTION_CHARS = 2000
_ORDER = re.compile(r"\[?\s*(\d{1,3}(?:\s*(?:,|\s)\s*\d{1,3})*)\s*\]?\.?")

RULES = (
    "You rank passages from a company's knowledge base by how well each one answers a "
    "customer's question. Passages are numbered [1] to [{n}]. Reply with the passage numbers "
    "only, the passage that best answers the question first, separated by commas, each number "
    "once, for example: 2, 1, 3. No other words."
)


def rerank_messages(query: str, candidates: Sequence[Passage]) -> list[dict[str, str]]:
    """The chat messages asking for ``candidates`` ordered by how well they answer ``query``."""
    numbered = []
    for n, passage in enumerate(candidates, start=1):
        where = " — ".join(part for part in (passage.title, passage.section) if part)
        numbered.append(f"[{n}] {where}\n{passage.text[:PASSAGE_CHARS]}")
    question = query[:QUESTION_CHARS]
    return [
        {"role": "system", "content": RULES.format(n=len(candidates))},
        {"role": "user", "content": "Passages:\n\n" + "\n\n".join(numbered) + f"\n\nQuestion: {question}"},
    ]


def parse_order(reply: str, count: int) -> list[int]:
    """The passages a reply lists, best first, 0-based. ``MalformedReply`` for anything but a
    list of distinct numbers of the ``count`` passages given."""
    match = _ORDER.fullmatch(reply.strip())
    if match is None:
        raise MalformedReply(f"the LLM's re-ranking is not a list of passage numbers: {reply[:80]!r}")
    listed = [int(n) for n in re.findall(r"\d+", match.group(1))]
    wrong = [n for n in listed if not 1 <= n <= count]
    if wrong:
        raise MalformedReply(f"the LLM's re-ranking names passage {wrong[0]}, not one of 1 to {count}")
    if len(set(listed)) != len(listed):
        raise MalformedReply("the LLM's re-ranking names a passage twice")
    return [n - 1 for n in listed]


class LLMReranker:
    """Re-orders the candidates it is given (the stage gives it the first few) with one LLM
    request within ``timeout`` seconds; each passage's new score is its place, 1 for the
    first down to ``1/len``, and ``scores["llm_rank"]`` the LLM's own rank (absent for the
    passages it left out)."""

    name = "llm"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        breakers: AsyncCircuitBreakerFactory,
        circuit: str,
        timeout: float,
        precheck: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.model = model
        self.breakers = breakers
        self.circuit = circuit
        self.timeout = timeout
        self.precheck = precheck

    async def _reply(self, messages: list[dict[str, str]]) -> str:
        breaker = await self.breakers.get_breaker(self.circuit, exclude=not_the_providers_fault())
        async with breaker, asyncio.timeout(self.timeout):
            if self.precheck is not None:
                await self.precheck()
            client = self.client.with_options(timeout=self.timeout, max_retries=0)
            response: Any = await client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=60,
            )
            choices = getattr(response, "choices", None)
            if not isinstance(choices, list) or not choices:
                raise MalformedReply(
                    f"the endpoint answered {type(response).__name__}, not a chat completion"
                )
            return str(choices[0].message.content or "")

    async def rerank(
        self,
        session: AsyncSession,
        query: str,
        language: str,
        candidates: Sequence[Passage],
        query_vector: Sequence[float] | None = None,
    ) -> list[Passage]:
        if len(candidates) < 2:
            return list(candidates)
        listed = parse_order(await self._reply(rerank_messages(query, candidates)), len(candidates))
        order = listed + [i for i in range(len(candidates)) if i not in set(listed)]
        ranked = []
        for place, index in enumerate(order):
            passage = candidates[index]
            passage.score = round(1 - place / len(candidates), 4)
            if place < len(listed):
                passage.scores["llm_rank"] = place + 1
            ranked.append(passage)
        return ranked
