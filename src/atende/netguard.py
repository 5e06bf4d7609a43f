"""Outbound requests to addresses a company typed in (webhooks, its LLM endpoint, a document
or calendar URL) must not reach this deployment's private network: loopback, private ranges,
link-local (cloud metadata at 169.254.169.254), nor the IPv6 forms that lead there (an IPv4
address mapped, translated by NAT64, tunnelled by 6to4 or Teredo, the deprecated IPv4-compatible
and site-local ranges).

A URL is checked when it is saved (``check_public``, for a clear answer then) and again on
every request it is used for: the clients send through ``GuardedTransport`` (``httpx``) or
``GuardedTransport2`` (the ``httpx2`` of the OpenAI SDK), which resolve the host once, refuse
it if any of its addresses is not public, and connect to the address they checked, keeping the
name for the ``Host`` header and for TLS (SNI and certificate verification). Letting the HTTP
client resolve the name again would let a DNS server answer a public address to the check and
127.0.0.1 to the connection (DNS rebinding). ``fetch_limited`` is the careful GET that document
and calendar imports share.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import httpx2

from atende.errors import InvalidInput

MAX_REDIRECTS = 3
RESOLVE_SECONDS = 5.0
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291: deprecated
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: where the IPv4 sits varies
_TEREDO = ipaddress.IPv6Network("2001::/32")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")  # RFC 3879: deprecated
_NOT_PUBLIC = "not a public address"


def why_not_public(address: IPAddress) -> str | None:
    """Why atende must not connect to ``address`` on a company's behalf, or ``None`` when it
    is a public address. An IPv6 form that carries an IPv4 address (mapped, NAT64, 6to4) is
    judged by that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _carried(address.ipv4_mapped, "maps")
        if address in _NAT64:
            return _carried(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "is NAT64 for")
        if address.sixtofour is not None:
            return _carried(address.sixtofour, "is 6to4 for")
        for network, name in (
            (_IPV4_COMPATIBLE, "an IPv4-compatible address (deprecated)"),
            (_NAT64_LOCAL, "a local-use NAT64 address"),
            (_TEREDO, "a Teredo address"),
            (_SITE_LOCAL, "a site-local address (deprecated)"),
        ):
            if address in network and not address.is_loopback and not address.is_unspecified:
                return f"{name}, {_NOT_PUBLIC}"
    if address.is_multicast:
        return f"a multicast address, {_NOT_PUBLIC}"
    if not address.is_global:
        return f"which is {_NOT_PUBLIC}"
    return None


def _carried(inner: ipaddress.IPv4Address, how: str) -> str | None:
    return None if why_not_public(inner) is None else f"which {how} {inner}, {_NOT_PUBLIC}"


@dataclass(frozen=True)
class Guard:
    """How one kind of outbound request is guarded: ``allow_private`` (its setting, named by
    ``setting``) lets it reach any address; ``what`` names it in refusals."""

    allow_private: bool
    what: str
    setting: str


async def resolve_public(host: str, port: int, guard: Guard) -> list[str]:
    """The addresses to connect to for ``host``, in the resolver's order: resolved once, every
    one checked (one private address is enough to refuse: a client could pick it); an IPv4
    address mapped into IPv6 given as the IPv4 one. An ``InvalidInput`` names the host, the
    address and the setting that would allow it."""
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise InvalidInput(f"cannot resolve the {guard.what} host '{host}'") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise InvalidInput(f"cannot resolve the {guard.what} host '{host}'")
    for address in addresses:
        reason = why_not_public(address)
        if reason is not None:
            raise InvalidInput(
                f"the {guard.what} host '{host}' resolves to {address}, {reason} "
                f"(set {guard.setting}=true to allow it)"
            )
    return list(dict.fromkeys(str(_unmapped(a)) for a in addresses))


def _unmapped(address: IPAddress) -> IPAddress:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped or address


async def check_public(url: str, *, allow_private: bool, what: str, setting: str) -> None:
    """Refuse ``url`` when its host resolves to a non-public address, unless allowed: the
    check when a URL is saved. Requests themselves go through a guarded transport."""
    if allow_private:
        return
    parts = urlsplit(url)
    await resolve_public(
        parts.hostname or "", _default_port(parts.scheme, parts.port), Guard(False, what, setting)
    )


def _default_port(scheme: str, port: int | None) -> int:
    return port or (80 if scheme == "http" else 443)


class GuardedTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport that sends each request to an address ``resolve_public``
    checked for its host (see the module docstring); with ``allow_private``, unchanged.

    When an address cannot be connected to (an IPv6 one without an IPv6 route), the next
    checked one is tried, as a client resolving by itself would: nothing was sent yet. Each
    host name has a connection pool of its own (``make_inner`` builds them): pools are keyed
    by the address connected to, and a connection whose certificate was verified for one name
    must not carry a request for another name at the same address."""

    def __init__(
        self, guard: Guard, make_inner: Callable[[], httpx.AsyncBaseTransport] = httpx.AsyncHTTPTransport
    ) -> None:
        self.guard = guard
        self.make_inner = make_inner
        self.inners: dict[str, httpx.AsyncBaseTransport] = {}

    def _inner(self, host: str) -> httpx.AsyncBaseTransport:
        if host not in self.inners:
            self.inners[host] = self.make_inner()
        return self.inners[host]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        if self.guard.allow_private:
            return await self._inner(host).handle_async_request(request)
        addresses = await resolve_public(host, _default_port(url.scheme, url.port), self.guard)
        for address in addresses[:-1]:
            try:
                return await self._inner(host).handle_async_request(self._to(request, address, host))
            except httpx.ConnectError:
                continue
        return await self._inner(host).handle_async_request(self._to(request, addresses[-1], host))

    @staticmethod
    def _to(request: httpx.Request, address: str, host: str) -> httpx.Request:
        return httpx.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,  # Host: the name, as built from the original URL
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": host},  # TLS checks the name
        )

    async def aclose(self) -> None:
        for inner in self.inners.values():
            await inner.aclose()


class GuardedTransport2(httpx2.AsyncBaseTransport):
    """``GuardedTransport`` for ``httpx2``, the HTTP client of the OpenAI SDK."""

    def __init__(
        self, guard: Guard, make_inner: Callable[[], httpx2.AsyncBaseTransport] = httpx2.AsyncHTTPTransport
    ) -> None:
        self.guard = guard
        self.make_inner = make_inner
        self.inners: dict[str, httpx2.AsyncBaseTransport] = {}

    def _inner(self, host: str) -> httpx2.AsyncBaseTransport:
        if host not in self.inners:
            self.inners[host] = self.make_inner()
        return self.inners[host]

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        if self.guard.allow_private:
            return await self._inner(host).handle_async_request(request)
        addresses = await resolve_public(host, _default_port(url.scheme, url.port), self.guard)
        for address in addresses[:-1]:
            try:
                return await self._inner(host).handle_async_request(self._to(request, address, host))
            except httpx2.ConnectError:
                continue
        return await self._inner(host).handle_async_request(self._to(request, addresses[-1], host))

    @staticmethod
    def _to(request: httpx2.Request, address: str, host: str) -> httpx2.Request:
        return httpx2.Request(
            request.method,
            request.url.copy_with(host=address),
            headers=request.headers,
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": host},
        )

    async def aclose(self) -> None:
        for inner in self.inners.values():
            await inner.aclose()


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
    redirects each guarded like the first (no private address unless ``allow_private``, the
    connection made to the address checked), the body streamed and cut off past ``max_bytes``,
    its content type one of ``kinds`` (mapped to the kind returned). Every refusal is an
    ``InvalidInput`` naming the reason."""
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                headers={"User-Agent": "atende"},
                transport=GuardedTransport(Guard(allow_private, what, setting)),
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
                raise InvalidInput(f"the {what} is {declared} bytes; the limit is {max_bytes}")
            body = bytearray()
            async for piece in response.aiter_bytes():
                body.extend(piece)
                if len(body) > max_bytes:
                    raise InvalidInput(f"the {what} is larger than {max_bytes} bytes")
            return Fetched(str(response.url), kinds[mime], bytes(body))
    except TimeoutError as exc:
        raise InvalidInput(f"the URL did not answer within {timeout:g} s") from exc
    except httpx.TooManyRedirects as exc:
        raise InvalidInput(f"the URL redirects more than {MAX_REDIRECTS} times") from exc
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"'{url}' is not a valid URL") from exc
    except httpx.HTTPError as exc:
        raise InvalidInput(f"the URL cannot be fetched ({type(exc).__name__})") from exc
