"""A small OpenAI-compatible server on 127.0.0.1 for the real ``openai`` SDK to talk to.

It speaks ``POST /v1/chat/completions`` (JSON, or server-sent events when the request asks
for ``stream``) and ``POST /v1/embeddings`` (a hashed bag of words, ``EMBEDDING_DIM``
dimensions: texts sharing words are near), records every request, and plays a script of
behaviours, one per request (the last one repeats): answer with a text, stall, answer an
HTTP error status (429 with ``Retry-After``, 500…), or drop the connection without answering.
``GET /v1/models`` (what a credential check calls) has a script and a record of its own
(``models_script``, ``model_requests``), so checks never disturb a test's chat script.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import zlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.loopback import LoopbackServer, QuietHandler, running


@dataclass(frozen=True)
class Behaviour:
    kind: str  # answer | stall | status | drop
    text: str = ""
    seconds: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    pace: float = 0.0  # seconds between streamed words


def answer(text: str, *, after: float = 0.0, pace: float = 0.0) -> Behaviour:
    return Behaviour("answer", text=text, seconds=after, pace=pace)


def stall(seconds: float) -> Behaviour:
    return Behaviour("stall", seconds=seconds)


def status(code: int, **headers: str) -> Behaviour:
    return Behaviour("status", status=code, headers={k.replace("_", "-"): v for k, v in headers.items()})


def raw(body: str, content_type: str) -> Behaviour:
    """A 200 that is not a chat completion (e.g. an HTML page at a wrong base URL)."""
    return Behaviour("raw", text=body, headers={"Content-Type": content_type})


def drop() -> Behaviour:
    return Behaviour("drop")


class FakeOpenAI(LoopbackServer):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: list[Behaviour] = [answer("[1]")]
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._models: list[Behaviour] = [answer("")]
        self.model_requests: list[dict[str, str]] = []  # the headers of each GET /v1/models
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def script(self, *behaviours: Behaviour) -> None:
        """What the next requests get, in order; the last behaviour repeats."""
        with self._lock:
            self._script = list(behaviours)
            self.requests.clear()
            self.headers.clear()

    def models_script(self, *behaviours: Behaviour) -> None:
        """What the next ``GET /v1/models`` get (``answer``: the model list; ``status``: an
        error), in order; the last one repeats."""
        with self._lock:
            self._models = list(behaviours)
            self.model_requests.clear()

    def _next(self, script: list[Behaviour] | None = None) -> Behaviour:
        with self._lock:
            script = self._script if script is None else script
            return script.pop(0) if len(script) > 1 else script[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path.rstrip("/") != "/v1/models":
                    error = {"error": {"message": "not found", "type": "invalid_request_error"}}
                    return self._json(404, error)
                with fake._lock:
                    fake.model_requests.append({k.lower(): v for k, v in self.headers.items()})
                behaviour = fake._next(fake._models)
                time.sleep(behaviour.seconds)
                if behaviour.kind == "status":
                    message = f"scripted {behaviour.status}"
                    error = {"error": {"message": message, "type": "invalid_request_error"}}
                    return self._json(behaviour.status, error, behaviour.headers)
                models = [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "tests"}]
                return self._json(200, {"object": "list", "data": models})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                behaviour = fake._next()
                if self.path.rstrip("/") == "/v1/embeddings" and behaviour.kind in ("answer", "stall"):
                    time.sleep(behaviour.seconds)
                    return self._json(200, _embeddings(body))
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/v1/embeddings"):
                    return self._json(
                        404, {"error": {"message": "not found", "type": "invalid_request_error"}}
                    )
                if behaviour.kind == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return None
                if behaviour.kind == "stall":
                    time.sleep(behaviour.seconds)
                    return self._json(200, _completion(body, "[1]"))
                if behaviour.kind == "raw":
                    data = behaviour.text.encode()
                    self.send_response(200)
                    self.send_header("Content-Type", behaviour.headers["Content-Type"])
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                if behaviour.kind == "status":
                    error = {"error": {"message": f"scripted {behaviour.status}", "type": "server_error"}}
                    return self._json(behaviour.status, error, behaviour.headers)
                time.sleep(behaviour.seconds)
                if body.get("stream"):
                    return self._stream(body, behaviour.text, behaviour.pace)
                return self._json(200, _completion(body, behaviour.text))

            def _json(
                self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): what a stall test wants

            def _stream(self, body: dict[str, Any], text: str, pace: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                words = text.split(" ")
                for i, word in enumerate(words):
                    piece = word if i == 0 else " " + word
                    self.wfile.write(
                        b"data: " + json.dumps(_chunk(body, {"content": piece}, None)).encode() + b"\n\n"
                    )
                    self.wfile.flush()
                    time.sleep(pace)
                self.wfile.write(b"data: " + json.dumps(_chunk(body, {}, "stop")).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler


def _completion(request: dict[str, Any], text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


EMBEDDING_DIM = 64


def bag_of_words(text: str) -> list[float]:
    """A normalised hashed bag of lower-cased words (stable across processes)."""
    vector = [0.0] * EMBEDDING_DIM
    for token in text.lower().split():
        word = token.strip(".,;:!?¿¡()\"'")
        if len(word) > 2:
            vector[zlib.crc32(word.encode()) % EMBEDDING_DIM] += 1.0
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [x / norm for x in vector]


def _embeddings(request: dict[str, Any]) -> dict[str, Any]:
    texts = request.get("input", [])
    texts = [texts] if isinstance(texts, str) else texts
    return {
        "object": "list",
        "model": request.get("model", "fake"),
        "data": [
            {"object": "embedding", "index": i, "embedding": bag_of_words(text)}
            for i, text in enumerate(texts)
        ],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }


def _chunk(request: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def running_openai() -> AbstractContextManager[FakeOpenAI]:
    return running(FakeOpenAI())
