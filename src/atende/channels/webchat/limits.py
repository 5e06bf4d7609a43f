"""Rate limits of the public web chat: per visitor, per client address, per widget key.

The visitor API needs no credentials, so without limits one visitor can store hundreds of
messages a second and queue a bot turn for each, and a script can open conversation after
conversation. Each limit is a rate "N per S seconds" that allows a burst of N, then one
every S/N seconds (GCRA, the generic cell rate algorithm: one number per key, the instant
its budget is whole again). A request is accepted only if every limit it falls under has
room, and only then is it counted, so a visitor refused for typing too fast does not use
up the budget of the other visitors of the same address or site.

The counters live in this process's memory (``Runtime.extras``), like the cache of API
keys: nothing to run beside atende and no database write per request, which is the point
when the requests are a flood. The price: with N ``atende serve`` processes behind a
round-robin proxy each process counts its own share, so a client gets up to N times the
configured rate (set the rates per process), and a restart forgets the counts.
"""

from __future__ import annotations

import ipaddress
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from atende.config import Settings
from atende.errors import RateLimited
from atende.runtime import Runtime

EXTRAS_KEY = "webchat_limits"
# keys kept at most per limit: past it, keys whose budget is whole again are forgotten, then
# the oldest (a forgotten key starts afresh: a client spread over very many addresses is
# limited by the per-site rate instead)
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @classmethod
    def parse(cls, value: str) -> Rate | None:
        """``"10/10s"`` → 10 per 10 s; ``"off"`` → None (``config.RATE_PATTERN`` checked it)."""
        if value == "off":
            return None
        count, seconds = value.removesuffix("s").split("/")
        return cls(int(count), float(seconds))


class Limit:
    """One rate, counted per key (a conversation, an address, a widget key)."""

    def __init__(self, rate: Rate, message: str, *, max_keys: int = MAX_KEYS) -> None:
        self.rate = rate
        self.message = message  # what the refusal says; ``{wait}``: the seconds to wait
        self.interval = rate.seconds / rate.count
        self.max_keys = max_keys
        self._full_at: dict[str, float] = {}  # key -> when its budget is whole again
        self._sweep_at = 1024

    def wait(self, key: str, now: float) -> float:
        """Seconds until ``key`` may make one more request (0: now)."""
        full_at = max(self._full_at.get(key, now), now)
        return max(0.0, full_at + self.interval - self.rate.seconds - now)

    def take(self, key: str, now: float) -> None:
        """Count one request of ``key`` (after ``wait`` said 0)."""
        self._full_at[key] = max(self._full_at.get(key, now), now) + self.interval
        if len(self._full_at) > self._sweep_at:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._full_at = {k: at for k, at in self._full_at.items() if at > now}
        while len(self._full_at) > self.max_keys:
            del self._full_at[next(iter(self._full_at))]
        self._sweep_at = max(1024, 2 * len(self._full_at))


class WebchatLimits:
    """The web chat's limits, built from the settings; ``None`` where a rate is ``off``."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock

        def limit(value: str, message: str) -> Limit | None:
            rate = Rate.parse(value)
            return Limit(rate, message) if rate else None

        self.visitor = limit(
            settings.webchat_visitor_rate,
            "too many messages in this conversation; wait {wait} s and send again",
        )
        self.address = limit(
            settings.webchat_address_rate,
            "too many messages from your network address; wait {wait} s and send again",
        )
        self.address_conversations = limit(
            settings.webchat_address_conversations_rate,
            "too many new conversations from your network address; wait {wait} s and try again",
        )
        self.widget = limit(
            settings.webchat_widget_rate,
            "this site's chat is receiving too many messages; wait {wait} s and try again",
        )

    def acquire(self, *checks: tuple[Limit | None, str]) -> None:
        """Count one request against each ``(limit, key)``, or raise ``RateLimited`` (naming
        the first limit without room, and the longest wait) and count it against none."""
        now = self.clock()
        first: Limit | None = None
        longest = 0.0
        for limit, key in checks:
            wait = limit.wait(key, now) if limit is not None else 0.0
            if wait > 0:
                first = first or limit
                longest = max(longest, wait)
        if first is not None:
            seconds = max(1, math.ceil(longest))
            raise RateLimited(first.message.format(wait=seconds), retry_after=seconds)
        for limit, key in checks:
            if limit is not None:
                limit.take(key, now)

    def message(self, request: Request, conversation_id: uuid.UUID, company_id: uuid.UUID) -> None:
        """A visitor posts a message."""
        self.acquire(
            (self.visitor, str(conversation_id)),
            (self.address, client_address(request)),
            (self.widget, str(company_id)),
        )

    def conversation(self, request: Request, company_id: uuid.UUID) -> None:
        """A visitor starts a conversation."""
        self.acquire(
            (self.address_conversations, client_address(request)),
            (self.widget, str(company_id)),
        )


def limits_for(runtime: Runtime) -> WebchatLimits:
    """This process's web chat limits (created once)."""
    limits = runtime.extras.get(EXTRAS_KEY)
    if not isinstance(limits, WebchatLimits):
        limits = runtime.extras[EXTRAS_KEY] = WebchatLimits(runtime.settings)
    return limits


def client_address(request: Request) -> str:
    """The client's address as the server resolved it: the peer, or what a trusted proxy put in
    ``X-Forwarded-For`` (uvicorn, ``ATENDE_FORWARDED_ALLOW_IPS``); never the header as sent.
    An IPv6 client counts by its /64, the block one subscriber is usually given."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
