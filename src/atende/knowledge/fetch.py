"""Fetch a knowledge-base document from a URL, carefully.

A deadline for the whole fetch and a shorter one to connect, at most ``MAX_REDIRECTS``
redirects (each target checked like the first: no private addresses unless allowed), the
body streamed and cut off past the size limit, and only content types atende can read.
Every refusal is an ``InvalidInput`` naming the reason.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from atende import netguard
from atende.errors import InvalidInput

MAX_REDIRECTS = 3
KINDS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/csv": "csv",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    kind: str
    data: bytes


async def fetch(url: str, *, max_bytes: int, timeout: float, allow_private: bool) -> Fetched:
    """The document at ``url`` (see the module docstring)."""

    async def check(request: httpx.Request) -> None:
        await netguard.check_public(
            str(request.url),
            allow_private=allow_private,
            what="document",
            setting="ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS",
        )

    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                event_hooks={"request": [check]},
                headers={"User-Agent": "atende-ingest"},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InvalidInput(f"the URL answered HTTP {response.status_code}")
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if mime not in KINDS:
                raise InvalidInput(f"the URL serves '{mime or 'no content type'}', which atende cannot read")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInput(f"the document is {declared} bytes; the limit is {max_bytes}")
            body = bytearray()
            async for piece in response.aiter_bytes():
                body.extend(piece)
                if len(body) > max_bytes:
                    raise InvalidInput(f"the document is larger than {max_bytes} bytes")
            return Fetched(str(response.url), KINDS[mime], bytes(body))
    except TimeoutError as exc:
        raise InvalidInput(f"the URL did not answer within {timeout:g} s") from exc
    except httpx.TooManyRedirects as exc:
        raise InvalidInput(f"the URL redirects more than {MAX_REDIRECTS} times") from exc
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"'{url}' is not a valid URL") from exc
    except httpx.HTTPError as exc:
        raise InvalidInput(f"the URL cannot be fetched ({type(exc).__name__})") from exc
