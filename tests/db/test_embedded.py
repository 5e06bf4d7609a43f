"""``atende demo`` on the embedded PostgreSQL, as a user runs it: first start, a question,
Ctrl-C, a second start that keeps the data and is fast."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port

ATENDE = str(ROOT / ".venv" / "bin" / "atende")


def start_demo(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "ATENDE_DATABASE_URL"}
    env.update({"ATENDE_DATA_DIR": str(data_dir), "ATENDE_PORT": str(port), "ATENDE_LOG_JSON": "true"})
    with log.open("ab") as out:
        return subprocess.Popen([ATENDE, "demo"], env=env, stdout=out, stderr=out)


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, "atende demo exited early"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("atende demo did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_demo_runs_on_the_embedded_database_stops_cleanly_and_restarts_fast(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "demo.log"
    port = free_port()
    proc = start_demo(data_dir, port, log)
    try:
        first = wait_ready(port, proc, timeout=120)
        base = f"http://127.0.0.1:{port}"
        banner = log.read_text()
        for url in (f"{base}/demo", f"{base}/docs", f"{base}/health/ready"):
            assert url in banner
        key = re.search(r"demo API key\s+(atd_\S+)", banner)
        assert key is not None
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        assert "Loja Exemplo" in httpx.get(f"{base}/demo", timeout=10).text
        r = httpx.post(
            f"{base}/v1/messages?wait=10",
            headers=headers,
            json={"contact": {"external_id": "demo-user"}, "text": "Quais são as formas de pagamento?"},
            timeout=20,
        )
        assert r.status_code == 201
        assert "Pix" in r.json()["reply"]["text"]
        conversation_id = r.json()["conversation_id"]
    finally:
        assert stop(proc) == 0
    assert not (data_dir / "postmaster.pid").exists(), "the embedded PostgreSQL was left running"

    proc = start_demo(data_dir, port, log)
    try:
        seconds = wait_ready(port, proc, timeout=60)
        # no initdb, no seeding, no embedding again: well under the first start (relative, so
        # that a loaded machine does not fail it; the figure itself is a benchmark's job)
        assert seconds < max(10, first / 2), f"second start took {seconds:.1f}s, the first {first:.1f}s"
        r = httpx.get(f"{base}/v1/conversations/{conversation_id}/messages", headers=headers, timeout=10)
        assert r.status_code == 200
        assert [m["author"] for m in r.json()["items"]] == ["customer", "bot"]
        docs = httpx.get(f"{base}/v1/documents", headers=headers, timeout=10).json()
        assert len(docs) == 10  # re-seeding changed nothing
    finally:
        assert stop(proc) == 0
    assert not (data_dir / "postmaster.pid").exists()
