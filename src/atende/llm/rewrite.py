"""The LLM's rewrite of a follow-up ("e para o Nordeste?") into a standalone question
("Qual o prazo de entrega para o Nordeste?") from the last turns of the conversation, for
retrieval to look up. It shares the answerer's endpoint and circuit breaker, and has a
short deadline of its own: the turn falls back to the offline rewrite on any failure
(``engine.followup.resolve``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from purgatory import AsyncCircuitBreakerFactory

from atende.llm.grounded import LANGUAGE_NAMES, MalformedReply, not_the_providers_fault

if TYPE_CHECKING:
    import openai

HISTORY_MESSAGES = 4  # the last messages the rewrite reads
MESSAGE_CHARS = 600  # of each
_WHO = {"customer": "Customer", "bot": "Assistant", "agent": "Agent"}


def rewrite_messages(
    message: str, language: str, history: tuple[tuple[str, str], ...]
) -> list[dict[str, str]]:
    """The chat messages asking for a standalone question."""
    name = LANGUAGE_NAMES.get(language, language)
    conversation = "\n".join(
        f"{_WHO.get(author, 'Customer')}: {' '.join(text.split())[:MESSAGE_CHARS]}"
        for author, text in history[-HISTORY_MESSAGES:]
    )
    rules = (
        "You rewrite a customer's last message into a standalone question for searching a "
        "help center. Use the conversation only to fill in what the last message leaves out "
        f"(the product, the topic, what 'it' or 'that' refers to). Write it in {name}. If the "
        "last message already stands on its own, return it unchanged. Reply with the question "
        "only: no explanation, no quotes."
    )
    return [
        {"role": "system", "content": rules},
        {
            "role": "user",
            "content": f"Conversation:\n{conversation}\n\nLast message: {message[:MESSAGE_CHARS]}",
        },
    ]


class LLMRewriter:
    name = "llm"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        breakers: AsyncCircuitBreakerFactory,
        circuit: str,
        deadline: float,
    ) -> None:
        self.client = client
        self.model = model
        self.breakers = breakers
        self.circuit = circuit
        self.deadline = deadline  # short: the customer waits for it before retrieval starts

    async def rewrite(self, message: str, language: str, history: tuple[tuple[str, str], ...]) -> str:
        """The standalone question; raises on any failure (the caller falls back)."""
        breaker = await self.breakers.get_breaker(self.circuit, exclude=not_the_providers_fault())
        async with breaker, asyncio.timeout(self.deadline):
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=rewrite_messages(message, language, history),  # type: ignore[arg-type]
                temperature=0,
                max_tokens=120,
            )
            choices = getattr(response, "choices", None)
            if not isinstance(choices, list) or not choices:
                raise MalformedReply(
                    f"the endpoint answered {type(response).__name__}, not a chat completion"
                )
            text = (choices[0].message.content or "").strip()
        return text.splitlines()[0].strip().strip('"“”') if text else ""
