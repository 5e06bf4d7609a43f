"""Outbound requests to addresses a company typed in (webhooks, its LLM endpoint) must not
reach this deployment's private network: loopback, private ranges, link-local (cloud
metadata at 169.254.169.254). Checked when the URL is saved and again before each request,
since a name may point elsewhere later."""

from __future__ import annotations

import asyncio
import ipaddress
from urllib.parse import urlsplit

from atende.errors import InvalidInput


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
