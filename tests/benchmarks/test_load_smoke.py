"""A short run of ``benchmarks/load.py`` (``python -m benchmarks.load``): 10 customers for
16 s on two ``atende serve`` and two ``atende worker`` processes, a worker SIGKILLed and
PostgreSQL restarted under that load. Every accepted message is stored once and answered
once, the faults happened, and nothing the run started is left behind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks.load import benchmark, parse_args
from tests.conftest import TEST_DATA

ARGS = [
    "--duration", "16",
    "--customers", "10",
    "--think", "0.5,2",
    "--kb-documents", "20",
    "--kill-at", "3",
    "--worker-down", "4",
    "--restart-at", "10",
    "--pg-down", "1",
    # orphaned turns recovered within the run, not 30 s later
    "--env", "ATENDE_STALLED_JOB_SECONDS=4",
    "--reply-timeout", "60",
    "--drain", "60",
    "--progress-every", "1000",
    # the sample of the public sets that ships with the repository (tests/data/README.md)
    "--data-dir", str(TEST_DATA),
]  # fmt: skip


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    logs = tmp_path_factory.mktemp("load-logs")
    return benchmark(parse_args([*ARGS, "--logs", str(logs)]))


def test_every_accepted_message_is_stored_once_and_answered_once(result: dict[str, Any]) -> None:
    check = result["integrity"]
    assert check["accepted"] > 20
    assert check["stored"] == check["accepted"]
    assert check["missing"] == check["duplicated"] == 0
    assert check["unanswered"] == check["several_replies"] == 0
    assert check["replied"] == check["answered"] + check["handed_off"] == check["accepted"]
    assert check["ok"]
    assert result["drain"]["drained"]


def test_both_channels_and_both_servers_carry_the_load(result: dict[str, Any]) -> None:
    assert result["latency_ms"]["api"]["n"] > 0
    assert result["latency_ms"]["webchat"]["n"] > 0
    assert result["sse"]["messages received"] > 0
    assert result["sse"].get("repeated messages", 0) == 0
    assert all(n > 0 for n in result["accepted_by"].values())
    assert len(result["accepted_by"]) == 2


def test_the_faults_happened_and_the_clients_retried_through_them(result: dict[str, Any]) -> None:
    kill, restart = result["faults"]["kill"], result["faults"]["restart"]
    assert kill["killed_at_s"] >= 3
    assert kill["restarted_at_s"] is not None
    assert 1 <= restart["down_seconds"] < 10
    assert restart["first_reply_seen_after_start_s"] is not None
    # while PostgreSQL was down the servers answered 503 (or the connection failed) and the
    # clients retried with the same message id: none of that shows in the integrity check
    assert any(e["phase"] == "around restart" for e in result["errors"])
    assert result["processes"]["worker-1"]["exits"][0] == {
        **result["processes"]["worker-1"]["exits"][0],
        "rc": -9,
        "expected": True,
    }


def test_nothing_is_left_running_or_on_disk(result: dict[str, Any]) -> None:
    for process in result["processes"].values():
        for pid in process["pids"]:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    assert not Path(result["setup"]["postgres_datadir"]).exists()


def test_no_worker_stops_or_exits_on_its_own(result: dict[str, Any]) -> None:
    assert result["failures"] == []
