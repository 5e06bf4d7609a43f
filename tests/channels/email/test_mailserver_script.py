"""``scripts/test-mailserver``: how ``make test`` finds the Dovecot the e-mail tests start."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import ROOT
from tests.fixtures.dovecot import DOVECOT

SCRIPT = ROOT / "scripts" / "test-mailserver"


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_it_prints_the_dovecot_it_was_given() -> None:
    found = run({"ATENDE_TEST_DOVECOT": DOVECOT})
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == DOVECOT


def test_a_wrong_path_is_one_line_saying_what_to_do() -> None:
    wrong = run({"ATENDE_TEST_DOVECOT": "/nonexistent/dovecot"})
    assert wrong.returncode == 1
    assert wrong.stdout == ""
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ATENDE_TEST_DOVECOT=/nonexistent/dovecot is not an executable file" in lines[0]
