"""The README's "Using it" commands, run in order as a new user types them in a shell at the
top of the repository: each must work. They run on a database of their own, from a scratch
folder that mirrors the repository (so ``atende.dump`` and ``out.json`` land there), with no
terminal (``users create`` makes up the password); ``serve`` and ``worker`` are started,
seen ready and stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import uuid
from pathlib import Path

from tests.conftest import ROOT, free_port, make_database
from tests.test_cli import SECRET, answers, interrupt, wait_until

README = ROOT / "README.md"
LEFT_OUT = {".git", ".env", ".atende-data"}  # a developer's own settings and data stay out


def using_it(readme: str) -> list[list[str]]:
    """The commands of the shell block under "## Using it", comments dropped."""
    section = readme.split("\n## Using it\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, 'README.md: no ```sh block under "## Using it"'
    return [shlex.split(line, comments=True) for line in block.group(1).splitlines() if line.strip()]


def start_and_stop(args: list[str], cwd: Path, env: dict[str, str], log: Path, port: int) -> int:
    """Start a long-running command, wait until it is ready (``serve``: its readiness check
    answers; ``worker``: it takes jobs), Ctrl-C it; its exit status."""
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        if args[1] == "serve":
            wait_until(lambda: answers(f"http://127.0.0.1:{port}/health/ready"), process, log.read_text)
        else:
            wait_until(lambda: "worker.started" in log.read_text(), process, log.read_text)
    finally:
        status = interrupt(process)
    return status


def test_the_block_is_read_whole() -> None:
    commands = using_it(README.read_text())
    assert len(commands) >= 15
    assert all(command[0] == ".venv/bin/atende" for command in commands), commands
    assert ["serve"] in [command[1:] for command in commands]


def test_the_readme_commands_work_in_order(pg_url: str, tmp_path: Path) -> None:
    workspace = tmp_path / "atende"
    workspace.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in LEFT_OUT:
            (workspace / entry.name).symlink_to(entry)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATENDE_")}
    env.update(
        {
            "ATENDE_DATABASE_URL": make_database(pg_url, f"atende_readme_{uuid.uuid4().hex[:10]}"),
            "ATENDE_SECRET_KEY": SECRET,
            "ATENDE_PORT": str(port),
            "COLUMNS": "200",
        }
    )
    outputs: list[tuple[list[str], str]] = []
    for number, command in enumerate(using_it(README.read_text()), 1):
        args = [str(workspace / command[0]), *command[1:]]
        where = f'README.md, "Using it" command {number}: {shlex.join(command)}'
        if command[1] in ("serve", "worker"):
            log = tmp_path / f"{number}-{command[1]}.log"
            status = start_and_stop(args, workspace, env, log, port)
            assert status == 0, f"{where}\n{log.read_text()}"
            continue
        done = subprocess.run(
            args,
            cwd=workspace,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{where}\n{done.stdout}\n{done.stderr}"
        outputs.append((command[1:], done.stdout))

    def said(*words: str) -> str:
        """What the first command starting with ``words`` printed."""
        return next(out for ran, out in outputs if ran[: len(words)] == list(words))

    assert "company minha-loja created" in said("companies", "create")
    assert "password  " in said("users", "create")  # made up: no terminal
    assert "ana@minhaloja.com.br" in said("keys", "list")
    assert re.search(r"[1-9]\d* indexed", said("ingest"))
    assert (workspace / "atende.dump").stat().st_size > 0
    assert set(json.loads((workspace / "out.json").read_text())["results"]) >= {"pt", "en"}
