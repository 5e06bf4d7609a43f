"""Outbound requests to addresses a company typed in (webhooks, its LLM endpoint, a document
or calendar URL) must not reach this deployment's private network: loopback, private ranges,
link-local (cloud metadata at 169.254.169.254). Checked when the URL is saved and again before
each request, since a name may point elsewhere later. ``fetch_limited`` is the careful GET
that document and calendar imports share."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from atende.errors import InvalidInput

MAX_REDIRECTS = 3


async def check_public(url: str, *, allow_private: bool, what: str, setting: str) -> None:
    """Refuse ``url`` when its host resolves to a non-public address, unless allowed."""
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        async with asyncio.timeout(5):
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443)
    except (OSError, TimeoutError) as exc:
        raise InvalidInput(f"cannot resolve the {what} host '{host}'") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise InvalidInput(
                f"the {what} host '{host}' resolves to {address}, which is not a public address "
                f"(set {setting}=true to allow it)"
            )


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    kind: str
    data: bytes


async def fetch_limited(
    url: str,
    *,
    kinds: Mapping[str, str],
    max_bytes: int,
    timeout: float,
    allow_private: bool,
    what: str,
    setting: str,
) -> Fetched:
    """GET ``url`` within a deadline (5 s at most to connect), at most ``MAX_REDIRECTS``
    redirects each checked like the first (no private address unless ``allow_private``), the
    body streamed and cut off past ``max_bytes``, its content type one of ``kinds`` (mapped to
    the kind returned). Every refusal is an ``InvalidInput`` naming the reason."""

    async def check(request: httpx.Request) -> None:
        await check_public(
            str(request.url),
            allow_private=allow_private,
            what=what,
            setting=setting,
        )

    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                event_hooks={"request": [check]},
                headers={"User-Agent": "atende"},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InvalidInput(f"the URL answered HTTP {response.status_code}")
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if mime not in kinds:
                raise InvalidInput(f"the URL serves '{mime or 'no content type'}', which atende cannot read")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInput(f"the document is {declared} bytes; the limit is {max_bytes}")
            body = bytearray()
            async for piece in response.aiter_bytes():
                body.extend(piece)
                if len(body) > max_bytes:
                    raise InvalidInput(f"the document is larger than {max_bytes} bytes")
            return Fetched(str(response.url), kinds[mime], bytes(body))
    except TimeoutError as exc:
        raise InvalidInput(f"the URL did not answer within {timeout:g} s") from exc
    except httpx.TooManyRedirects as exc:
        raise InvalidInput(f"the URL redirects more than {MAX_REDIRECTS} times") from exc
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"'{url}' is not a valid URL") from exc
    except httpx.HTTPError as exc:
        raise InvalidInput(f"the URL cannot be fetched ({type(exc).__name__})") from exc
