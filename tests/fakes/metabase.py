"""A loopback Metabase: the REST endpoints scripts/metabase_load.py calls (setup, session,
database, collection, card, dashboard), keeping what they make in memory, refusing any call
without the session it issued, and recording every request."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer, QuietHandler


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    session: str | None


@dataclass
class FakeMetabase(LoopbackServer):
    email: str = "admin@example.com"
    password: str = "admin-password-1"
    set_up: bool = False
    # seconds every answer waits (a Metabase that hangs)
    delay: float = 0.0
    requests: list[Request] = field(default_factory=list)
    databases: dict[int, dict[str, Any]] = field(default_factory=dict)
    collections: dict[int, dict[str, Any]] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[int, dict[str, Any]] = field(default_factory=dict)
    synced: list[int] = field(default_factory=list)
    api_keys: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.setup_token = uuid.uuid4().hex
        self.sessions: set[str] = set()
        self._ids = iter(range(1, 10**6))
        super().__init__()

    def of(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, session: str | None
    ) -> tuple[int, Any]:
        open_paths = {("GET", "/api/session/properties"), ("POST", "/api/setup"), ("POST", "/api/session")}
        if (method, path) not in open_paths and session not in self.sessions | self.api_keys:
            return 401, "Unauthenticated"
        if (method, path) == ("GET", "/api/session/properties"):
            return 200, {
                "setup-token": None if self.set_up else self.setup_token,
                "has-user-setup": self.set_up,
            }
        if (method, path) == ("POST", "/api/setup"):
            if self.set_up or body.get("token") != self.setup_token:
                return 403, {"message": "Invalid setup token"}
            self.email, self.password, self.set_up = body["user"]["email"], body["user"]["password"], True
            return 200, {"id": self._session()}
        if (method, path) == ("POST", "/api/session"):
            if (body.get("username"), body.get("password")) != (self.email, self.password):
                return 401, {"errors": {"password": "did not match stored password"}}
            return 200, {"id": self._session()}
        if (method, path) == ("GET", "/api/database"):
            return 200, {"data": list(self.databases.values()), "total": len(self.databases)}
        if (method, path) == ("POST", "/api/database"):
            return 200, self._make(self.databases, body)
        if m := re.fullmatch(r"/api/database/(\d+)/sync_schema", path):
            self.synced.append(int(m[1]))
            return 200, {"status": "ok"}
        if (method, path) == ("GET", "/api/collection"):
            return 200, [{"id": "root", "name": "Our analytics"}, *self.collections.values()]
        if (method, path) == ("POST", "/api/collection"):
            return 200, self._make(self.collections, body)
        if m := re.fullmatch(r"/api/collection/(\d+)/items", path):
            models = query.get("models", [])
            kinds = {"card": self.cards, "dashboard": self.dashboards}
            found = [
                {"id": i, "name": o["name"], "model": model}
                for model, store in kinds.items()
                if model in models
                for i, o in store.items()
                if o.get("collection_id") == int(m[1])
            ]
            return 200, {"data": found, "total": len(found)}
        if (method, path) == ("POST", "/api/card"):
            return 200, self._make(self.cards, body)
        if method == "PUT" and (m := re.fullmatch(r"/api/card/(\d+)", path)):
            return self._update(self.cards, int(m[1]), body)
        if (method, path) == ("POST", "/api/dashboard"):
            return 200, self._make(self.dashboards, {**body, "dashcards": []})
        if method == "PUT" and (m := re.fullmatch(r"/api/dashboard/(\d+)", path)):
            for dashcard in body.get("dashcards", []):
                if dashcard["card_id"] not in self.cards:
                    return 400, {"message": f"no card {dashcard['card_id']}"}
            return self._update(self.dashboards, int(m[1]), body)
        return 404, "API endpoint does not exist."

    def _session(self) -> str:
        token = str(uuid.uuid4())
        self.sessions.add(token)
        return token

    def _make(self, store: dict[int, dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        made = {**body, "id": next(self._ids)}
        store[made["id"]] = made
        return made

    def _update(self, store: dict[int, dict[str, Any]], id_: int, body: dict[str, Any]) -> tuple[int, Any]:
        if id_ not in store:
            return 404, "Not found."
        store[id_].update(body)
        return 200, store[id_]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                # a session, or an API key (Metabase's x-api-key header)
                session = self.headers.get("X-Metabase-Session") or self.headers.get("x-api-key")
                query = parse_qs(url.query)
                time.sleep(server.delay)
                with server.lock:
                    server.requests.append(Request(self.command, url.path, query, body, session))
                    code, answer = server.answer(self.command, url.path, query, body, session)
                self.send_json(code, json.dumps(answer).encode())

            do_GET = do_POST = do_PUT = _serve

        return Handler
