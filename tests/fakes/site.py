"""A small website on 127.0.0.1 whose pages a test scripts: status, headers, body, delay."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from tests.fakes.loopback import LoopbackServer, QuietHandler, running


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False  # send without Content-Length


class Site(LoopbackServer):
    def __init__(self) -> None:
        self.pages: dict[str, Page] = {}
        super().__init__()

    def url(self, path: str) -> str:
        return self.origin + path

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                page = site.pages.get(self.path, Page(b"not found", 404, {"Content-Type": "text/plain"}))
                time.sleep(page.delay)
                try:
                    self.send_response(page.status)
                    for name, value in page.headers.items():
                        self.send_header(name, value)
                    if page.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for start in range(0, len(page.body), 65536):
                            piece = page.body[start : start + 65536]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(page.body)))
                        self.end_headers()
                        self.wfile.write(page.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading (a size limit, a timeout)

        return Handler


def running_site() -> AbstractContextManager[Site]:
    return running(Site())
