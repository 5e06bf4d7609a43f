"""The OpenAI SDK client for an OpenAI-compatible endpoint, shared by the LLM answerer
(``llm.grounded``), the endpoint checks (``llm.credentials``) and a company's embeddings
endpoint (``knowledge.embedding``).

It sits below ``knowledge`` and ``llm`` and imports neither: the embedder once took it from
``llm.grounded``, which made ``knowledge`` and ``llm`` import each other (see
``docs/ARCHITECTURE.md``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from atende.netguard import Guard, GuardedTransport2

if TYPE_CHECKING:  # the SDK takes a second to import: only code that makes a client pays it
    import openai


def cached_client(
    cache: dict[tuple[str, str, float, int, Guard | None], openai.AsyncOpenAI],
    base_url: str,
    api_key: str,
    *,
    timeout: float,
    max_retries: int,
    guard: Guard | None = None,
) -> openai.AsyncOpenAI:
    """``client_for``, made once per endpoint, key (by fingerprint) and guard, kept in ``cache``."""
    entry = (base_url, hashlib.sha256(api_key.encode()).hexdigest(), timeout, max_retries, guard)
    if entry not in cache:
        cache[entry] = client_for(base_url, api_key, timeout=timeout, max_retries=max_retries, guard=guard)
    return cache[entry]


def client_for(
    base_url: str, api_key: str, *, timeout: float, max_retries: int, guard: Guard | None = None
) -> openai.AsyncOpenAI:
    """An SDK client with a deadline per request (3 s of it to connect) and bounded retries
    (the SDK retries only 408/409/429/5xx and lost connections, with backoff and Retry-After).
    With a ``guard`` (a company's own endpoint), every request goes to the public address its
    host was resolved to and checked at that moment (``atende.netguard``); without one (the
    deployment's endpoint, chosen by the operator), anywhere."""
    import httpx2
    import openai

    timeouts = httpx2.Timeout(timeout, connect=min(3.0, timeout))
    return openai.AsyncOpenAI(
        base_url=base_url,
        api_key=api_key or "unused",
        timeout=timeouts,
        max_retries=max_retries,
        # never follow a redirect: a company's endpoint must not bounce requests elsewhere
        http_client=openai.DefaultAsyncHttpxClient(
            timeout=timeouts,
            follow_redirects=False,
            transport=GuardedTransport2(guard) if guard is not None else None,
        ),
    )
