"""``atende worker`` serves its Prometheus metrics on ATENDE_WORKER_METRICS_PORT: the bot
turns, LLM calls and webhook deliveries run in workers, and Prometheus scrapes them there."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port, make_database

ATENDE = str(ROOT / ".venv" / "bin" / "atende")


def test_a_worker_serves_its_metrics_on_the_configured_port(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        # a database of its own: this worker must not take the live server's jobs
        "ATENDE_DATABASE_URL": make_database(pg_url, f"atende_worker_{uuid.uuid4().hex[:8]}"),
        "ATENDE_SECRET_KEY": "test-secret-key-0123456789",
        "ATENDE_WORKER_METRICS_PORT": str(port),
        "ATENDE_HOST": "127.0.0.1",
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen([ATENDE, "worker"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        body = ""
        while "worker.started" not in log.read_text() or not body:
            assert worker.poll() is None, f"the worker exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no metrics on port {port}:\n{log.read_text()}"
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                body = response.text if response.status_code == 200 else ""
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        for family in ("atende_turns_total", "atende_handoffs_total", "atende_llm_requests_total"):
            assert f"# TYPE {family} counter" in body
        assert "atende_webhook_deliveries" in body
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
