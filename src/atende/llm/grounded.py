"""The LLM answerer: any OpenAI-compatible chat endpoint, grounded in the retrieved passages.

The prompt numbers the passages, gives the company's instructions, asks for an answer in
the customer's language (translated, when the passages are in another) citing passages as
``[n]``, and for the word ``NO_ANSWER`` when the passages do not answer. A guard checks
the reply: it must cite at least one retrieved passage and nothing else; otherwise the
offline extractive answerer answers instead (which hands off when its evidence is weak).
The endpoint sits behind a circuit breaker: after ``threshold`` consecutive failures it
opens and turns fail fast to the fallback for ``reset_seconds``, then one request probes
it and a success closes it again. Every request has a deadline and the SDK retries 429,
5xx and lost connections a bounded number of times.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState

from atende.knowledge.passages import Passage
from atende.knowledge.text import sentences
from atende.llm.answerer import Answer, Answerer, Drafts, Lexer, Question
from atende.llm.extractive import citation
from atende.observability.logging import describe

if TYPE_CHECKING:  # the SDK is imported where a client is made (atende.openai_compat)
    import openai

log = structlog.get_logger(__name__)

NO_ANSWER = "NO_ANSWER"
LANGUAGE_NAMES = {"pt": "Brazilian Portuguese", "en": "English", "es": "Spanish"}
_CITE = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
_ROLES = {"customer": "user", "bot": "assistant", "agent": "assistant"}

# (outcome, seconds) of each LLM request, for the metrics the wiring layer exports
Observer = Callable[[str, float], None]


def _fit(parts: list[str], budget: int) -> list[str]:
    """The leading parts that fit in ``budget`` characters (the first one always, cut)."""
    kept: list[str] = []
    used = 0
    for part in parts:
        if used + len(part) > budget:
            if not kept:
                kept.append(part[:budget])
            break
        kept.append(part)
        used += len(part)
    return kept


def build_messages(question: Question, passages: list[Passage], budget_chars: int) -> list[dict[str, str]]:
    """The chat messages: rules and numbered passages, then history, then the question."""
    language = LANGUAGE_NAMES.get(question.language, question.language)
    who = f" of {question.company}" if question.company else ""
    rules = (
        f"You are the customer-support assistant{who}. {question.instructions}".strip()
        + "\nAnswer the customer's last message using ONLY the numbered passages below. "
        f"Write the answer in {language}, briefly and politely, even when the passages are in "
        f"another language (translate what you use). Cite each passage you use with "
        "its number in square brackets, like [1]. Never use knowledge that is not in the passages. "
        f"If the passages do not answer the message, reply with exactly {NO_ANSWER} and nothing else."
    )
    numbered = [
        f"[{i}] {p.title}{' — ' + p.section if p.section and p.section != p.title else ''}\n{p.text}"
        for i, p in enumerate(passages, 1)
    ]
    budget = max(budget_chars - len(rules) - len(question.text), 500)
    passages_text = "\n\n".join(_fit(numbered, int(budget * 0.75)))
    history_budget = budget - len(passages_text)
    recent = list(reversed(_fit([text for _, text in reversed(question.history)], history_budget)))
    history = question.history[len(question.history) - len(recent) :] if recent else ()
    messages = [{"role": "system", "content": f"{rules}\n\nPassages:\n\n{passages_text}"}]
    messages += [{"role": _ROLES.get(author, "user"), "content": text} for author, text in history]
    messages.append({"role": "user", "content": question.text})
    return messages


SUPPORT = 0.5  # share of a sentence's indexed words its cited passages must contain
MIN_TERMS = 3  # shorter sentences ("Sim, claro.") are not checked


async def unsupported_sentence(text: str, cited: list[Passage], language: str, lexer: Lexer) -> str | None:
    """The first sentence of ``text`` whose words are mostly absent from the cited passages
    (stemmed as the index stems them), or ``None``: a citation alone proves nothing, since the
    model can be talked into citing [1] under a promise of its own. Passages in another
    language than the answer cannot be compared word by word and are not checked."""
    same_language = [p for p in cited if p.language == language]
    if not same_language or len(same_language) < len(cited):
        return None
    support = frozenset().union(*(p.lexemes for p in same_language))
    lines = sentences(text)
    for line, stems in zip(lines, await lexer([(line, language) for line in lines]), strict=True):
        if len(stems) >= MIN_TERMS and len(stems & support) < SUPPORT * len(stems):
            return line
    return None


def check_citations(reply: str, passages: int) -> tuple[list[int], list[int]]:
    """The passage numbers a reply cites: (valid, invalid)."""
    cited = sorted({int(n) for group in _CITE.findall(reply) for n in group.split(",")})
    return [n for n in cited if 1 <= n <= passages], [n for n in cited if not 1 <= n <= passages]


class LLMAnswerer:
    name = "llm"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        *,
        breakers: AsyncCircuitBreakerFactory,
        circuit: str,
        fallback: Answerer,
        context_chars: int,
        deadline: float,
        observe: Observer | None = None,
        precheck: Callable[[], Awaitable[None]] | None = None,
        stream: bool = False,
    ) -> None:
        self.client = client
        self.model = model
        self.breakers = breakers
        self.circuit = circuit
        self.fallback = fallback
        self.context_chars = context_chars
        self.deadline = deadline  # for the whole call, retries and their waits included
        self.observe = observe or (lambda _outcome, _seconds: None)
        self.precheck = precheck
        self.stream = stream  # send the answer as it is written to the question's drafts

    async def _complete(self, messages: list[dict[str, str]], drafts: Drafts | None = None) -> str:
        breaker = await self.breakers.get_breaker(self.circuit, exclude=not_the_providers_fault())
        async with breaker, asyncio.timeout(self.deadline):
            if self.precheck is not None:
                await self.precheck()
            if self.stream and drafts is not None:
                return await self._streamed(messages, drafts)
            response = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
            )
            # a 200 that is not a chat completion (an HTML page at a wrong base URL) is a failure
            choices = getattr(response, "choices", None)
            if not isinstance(choices, list):
                raise MalformedReply(
                    f"the endpoint answered {type(response).__name__}, not a chat completion"
                )
            return (choices[0].message.content or "").strip() if choices else ""

    async def _streamed(self, messages: list[dict[str, str]], drafts: Drafts) -> str:
        """The answer as server-sent chunks; the text so far goes to ``drafts`` at most every
        ``DRAFT_SECONDS`` (without citation markers; never a ``NO_ANSWER`` on its way)."""
        import openai

        stream = await self.client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            temperature=0,
            stream=True,
        )
        if not isinstance(stream, openai.AsyncStream):
            raise MalformedReply(f"the endpoint answered {type(stream).__name__}, not a stream")
        parts: list[str] = []
        shown = 0.0
        async for chunk in stream:
            choices = getattr(chunk, "choices", None)
            if not isinstance(choices, list):
                raise MalformedReply(f"the endpoint streamed {type(chunk).__name__}, not completion chunks")
            if choices and choices[0].delta is not None and choices[0].delta.content:
                parts.append(choices[0].delta.content)
                if time.monotonic() - shown >= DRAFT_SECONDS:
                    shown = time.monotonic()
                    await _show(drafts, "".join(parts))
        return "".join(parts).strip()

    async def answer(self, question: Question, passages: list[Passage], lexer: Lexer) -> Answer:
        if not passages:
            return await self.fallback.answer(question, passages, lexer)
        messages = build_messages(question, passages, self.context_chars)
        started = time.perf_counter()
        try:
            reply = await self._complete(messages, question.drafts)
        except OpenedState:
            self.observe("circuit_open", time.perf_counter() - started)
            return await self._fall_back(
                "the LLM circuit is open", question, passages, lexer, error="the LLM circuit is open"
            )
        except Exception as exc:  # any failure of the provider, its reply or our deadline: fall back
            self.observe(_failure_kind(exc), time.perf_counter() - started)
            log.warning("llm.failed", error=f"{type(exc).__name__}: {exc}"[:300], circuit=self.circuit)
            return await self._fall_back(
                f"the LLM failed ({type(exc).__name__})", question, passages, lexer, error=describe(exc)
            )
        elapsed = time.perf_counter() - started
        if reply.rstrip(".").upper() == NO_ANSWER:
            self.observe("no_answer", elapsed)
            return Answer(
                None, reason="the LLM found no answer in the passages", confidence=0.0, model=self.model
            )
        valid, invalid = check_citations(reply, len(passages))
        if not valid or invalid:
            self.observe("guard_failed", elapsed)
            why = f"cited {invalid}" if invalid else "cited no passage"
            return await self._fall_back(f"the LLM answer {why}", question, passages, lexer)
        text = without_citations(reply)
        cited = [passages[n - 1] for n in valid]
        unsupported = await unsupported_sentence(text, cited, question.language, lexer)
        if unsupported is not None:
            self.observe("guard_failed", elapsed)
            why = f"says what its passages do not ({unsupported[:80]!r})"
            return await self._fall_back(f"the LLM answer {why}", question, passages, lexer)
        self.observe("answered", elapsed)
        return Answer(
            text,
            reason=f"answered by the LLM citing passages {', '.join(map(str, valid))}",
            confidence=1.0,
            citations=[citation(p) for p in cited],
            model=self.model,
        )

    async def _fall_back(
        self, why: str, question: Question, passages: list[Passage], lexer: Lexer, *, error: str | None = None
    ) -> Answer:
        answer = await self.fallback.answer(question, passages, lexer)
        answer.reason = f"{why}; {self.fallback.name}: {answer.reason}"
        answer.model, answer.error = self.model, error
        return answer


DRAFT_SECONDS = 0.15


def without_citations(text: str) -> str:
    """``text`` without its ``[n]`` marks, spaces before punctuation and runs of spaces."""
    return " ".join(re.sub(r"\s+([.,;:!?])", r"\1", _CITE.sub("", text)).split())


async def _show(drafts: Drafts, text: str) -> None:
    if NO_ANSWER.startswith(text.strip()[: len(NO_ANSWER)].upper()):
        return  # maybe the start of NO_ANSWER: nothing to show
    try:
        await drafts(without_citations(text))
    except Exception as exc:  # a draft that cannot be shown must not cost the answer
        log.warning("llm.draft_not_shown", error=f"{type(exc).__name__}: {exc}"[:200])


class MalformedReply(ValueError):
    """The endpoint answered something that is not a chat completion."""


def not_the_providers_fault() -> list[type[BaseException] | tuple[type[BaseException], Callable[..., bool]]]:
    """Errors that say the request is wrong (a bad key, model or body), not that the provider
    is down: they fall back like any failure but do not count towards opening the circuit."""
    import openai

    return [
        openai.BadRequestError,
        openai.AuthenticationError,
        openai.PermissionDeniedError,
        openai.NotFoundError,
        openai.UnprocessableEntityError,
    ]


def _failure_kind(exc: BaseException) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError | openai.NotFoundError):
        return "misconfigured"
    if isinstance(exc, ValueError):  # MalformedReply, or a body that is not JSON
        return "malformed"
    return "error"
