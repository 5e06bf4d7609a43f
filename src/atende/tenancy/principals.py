"""A per-process cache of authenticated API keys.

Authenticating a key costs a database transaction; the API authenticates every request.
An entry lives ``ttl`` seconds (which also bounds how often ``last_used_at`` is written).
Revoking a key notifies every process (``LISTEN/NOTIFY``, topic ``api_keys``), which drop
the key at once; after the listener reconnects (notifications may have been missed) the
whole cache is dropped.
"""

from __future__ import annotations

import time
from typing import Any

from atende.tenancy.service import Principal

TOPIC = "api_keys"


class PrincipalCache:
    def __init__(self, ttl: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        # bumped by every revocation: a lookup that started before one is not cached
        self.generation = 0

    def get(self, key_hash: str) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        stored_at, principal = entry
        if time.monotonic() - stored_at > self.ttl:
            del self._entries[key_hash]
            return None
        return principal

    def put(self, key_hash: str, principal: Principal, generation: int) -> None:
        """Cache a lookup that began at ``generation`` (skipped if a revocation came since)."""
        if generation != self.generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key_hash] = (time.monotonic(), principal)

    def handle(self, event: dict[str, Any]) -> None:
        """React to a notification of the ``api_keys`` topic."""
        self.generation += 1
        prefix = event.get("prefix")
        if event.get("kind") == "revoked" and prefix:
            for key_hash, (_, principal) in list(self._entries.items()):
                if principal.key_prefix == prefix:
                    del self._entries[key_hash]
        else:
            self._entries.clear()
