"""Limits on guessing passwords and on sending reset e-mails.

Failed sign-ins are counted per account (the e-mail typed) and per client address, with the
web chat's rate limiter (``channels.webchat.limits``: GCRA, "N per S seconds", counted in
this process's memory). Only failures count, so a person who types their password right is
never held back by someone else's guessing from another address; once a limit is reached,
even the right password is refused until it has room again, and the page says how long to
wait. Password-reset requests are limited the same way by limits of their own, so a person
locked out by failed attempts can still ask for a reset link.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from starlette.requests import Request

from atende.channels.webchat.limits import Limit, Rate, client_address
from atende.config import Settings
from atende.runtime import Runtime

EXTRAS_KEY = "dashboard_throttle"


class Throttled(Exception):
    """Too many attempts; ``wait``: whole seconds until one more is allowed."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"too many attempts; wait {wait} s")
        self.wait = wait


class Attempts:
    """One kind of attempt, limited per account and per client address."""

    def __init__(self, settings: Settings, clock: Callable[[], float]) -> None:
        self.clock = clock
        account, address = Rate.parse(settings.login_account_rate), Rate.parse(settings.login_address_rate)
        self.account = Limit(account, "") if account else None
        self.address = Limit(address, "") if address else None

    def _checks(self, account: str, request: Request) -> list[tuple[Limit, str]]:
        pairs = [(self.account, account.strip().lower()), (self.address, client_address(request))]
        return [(limit, key) for limit, key in pairs if limit is not None]

    def check(self, account: str, request: Request) -> None:
        """Raise ``Throttled`` when either limit has no room now."""
        now = self.clock()
        wait = max((limit.wait(key, now) for limit, key in self._checks(account, request)), default=0.0)
        if wait > 0:
            raise Throttled(max(1, math.ceil(wait)))

    def count(self, account: str, request: Request) -> None:
        """Count one attempt against both limits."""
        now = self.clock()
        for limit, key in self._checks(account, request):
            limit.take(key, now)


class Throttle:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.sign_in = Attempts(settings, clock)
        self.reset = Attempts(settings, clock)


def throttle_for(runtime: Runtime) -> Throttle:
    """This process's sign-in limits (created once)."""
    throttle = runtime.extras.get(EXTRAS_KEY)
    if not isinstance(throttle, Throttle):
        throttle = runtime.extras[EXTRAS_KEY] = Throttle(runtime.settings)
    return throttle
