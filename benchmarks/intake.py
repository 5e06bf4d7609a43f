"""Intake throughput: customer messages per second through ``POST /v1/messages`` of a real
``atende serve`` (worker off: only intake is measured), beside a bare FastAPI + asyncpg
endpoint that only inserts a row, under the same load (N concurrent clients for S seconds).

Both servers run as one uvicorn process each, one after the other, on 127.0.0.1 against the
same PostgreSQL; the load generator is this process (httpx, one connection a client), so
all three share the machine's cores. Afterwards every message atende accepted (201) must
be stored exactly once, with exactly one bot-turn job queued.

Message texts are real customer questions (read-only, ``../shared/data``; see its README):
MilkQA (NILC/USP, arXiv 1801.03460; pt-BR e-mails to Embrapa's customer service, research data
used for measurement only), FaQuAD (liafacom/faquad, CC BY 4.0) and XQuAD
(google-deepmind/xquad, CC BY-SA 4.0).

Run from the project root: ``.venv/bin/python -m benchmarks.intake --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from atende.db import migrate
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from benchmarks.baseline_app import CREATE_TABLE
from benchmarks.baseline_app import TABLE as BASELINE_TABLE
from benchmarks.common import (
    QUESTION_FILES,
    ROOT,
    add_data_dir_argument,
    console,
    free_port,
    load_questions,
    machine,
    ms,
    postmaster_pid,
    require_data,
    result_table,
    run_on_postgres,
    summarise,
    tree_cpu_seconds,
)

TARGET_RATIO = 0.5
T = TypeVar("T")
BIN = Path(sys.executable).parent


@dataclass
class Load:
    """What one target's run produced."""

    name: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    accepted: set[str] = field(default_factory=set)
    measured_seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses["201"]

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "201")

    @property
    def per_second(self) -> float:
        return self.ok / self.measured_seconds if self.measured_seconds else 0.0


async def create_company(url: str, secret_key: str) -> tuple[uuid.UUID, str]:
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        slug = f"bench-intake-{uuid.uuid4().hex[:8]}"
        async with db.transaction() as session:
            company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
            _key, full = await tenancy.create_api_key(
                session,
                secret_key=secret_key,
                company_id=company.id,
                name="intake benchmark",
                role=Role.admin,
            )
            return company.id, full
    finally:
        await db.dispose()


@contextmanager
def server(command: list[str], env: dict[str, str], cwd: Path, health_url: str) -> Iterator[int]:
    """Start a server process, wait until ``health_url`` answers 200, yield its pid, stop it."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-3000:]
                    raise RuntimeError(f"{command[0]} exited with {proc.returncode}:\n{tail}")
                try:
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(command)} did not answer {health_url} within 90 s")
                time.sleep(0.2)
            yield proc.pid
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def atende_command(url: str, port: int, secret_key: str) -> tuple[list[str], dict[str, str]]:
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": url,
        "ATENDE_HOST": "127.0.0.1",
        "ATENDE_PORT": str(port),
        "ATENDE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "ATENDE_RUN_WORKER": "false",
        "ATENDE_LOG_LEVEL": "WARNING",
        "ATENDE_SECRET_KEY": secret_key,
        "ATENDE_MIGRATE_ON_START": "false",
        "ATENDE_DEMO": "false",
    }
    return [str(BIN / "atende"), "serve"], env


def baseline_command(url: str, port: int) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "BENCH_BASELINE_DSN": libpq_url(url), "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.baseline_app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    return command, env


async def generate_load(
    load: Load,
    base_url: str,
    headers: dict[str, str],
    texts: list[str],
    *,
    clients: int,
    seconds: float,
    warmup: float,
    per_contact: int,
    cpu_pids: dict[str, int],
) -> None:
    """``clients`` clients post messages back to back for ``warmup + seconds``; requests that
    start in the warm-up are checked but not measured."""
    run = uuid.uuid4().hex[:8]
    started = time.monotonic()
    measure_from = started + warmup
    deadline = measure_from + seconds
    cpu_before: dict[str, float] = {}

    async def client(i: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, limits=limits) as http:
            n = 0
            while (t0 := time.monotonic()) < deadline:
                message_id = f"{run}-{i}-{n}"
                body = {
                    "contact": {"external_id": f"{run}-{i}-{n // per_contact}"},
                    "text": texts[(i * 7919 + n) % len(texts)],
                    "message_id": message_id,
                }
                try:
                    response = await http.post("/v1/messages", json=body)
                    status = str(response.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                if status == "201":
                    load.accepted.add(message_id)
                if t0 >= measure_from:
                    load.latencies_ms.append((time.monotonic() - t0) * 1000)
                    load.statuses[status] += 1
                n += 1

    async def sample_cpu_at_window_start() -> None:
        await asyncio.sleep(warmup)
        cpu_before.update({name: tree_cpu_seconds(pid) for name, pid in cpu_pids.items()})
        cpu_before["load generator"] = time.process_time()

    sampler = asyncio.create_task(sample_cpu_at_window_start())
    await asyncio.gather(*(client(i) for i in range(clients)))
    await sampler
    load.measured_seconds = time.monotonic() - measure_from
    after = {name: tree_cpu_seconds(pid) for name, pid in cpu_pids.items()}
    after["load generator"] = time.process_time()
    load.cpu_seconds = {name: after[name] - cpu_before[name] for name in after}


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (it is, with uvicorn[standard]): a cheaper client loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def stored_once(url: str, sql: str, params: dict[str, Any], accepted: set[str]) -> dict[str, int]:
    """Compare the accepted ids with the ids stored (``sql`` returns id, count)."""
    with psycopg.connect(libpq_url(url)) as conn:
        stored = {row[0]: row[1] for row in conn.execute(sql, params)}
    return {
        "accepted": len(accepted),
        "stored": sum(stored.values()),
        "missing": len(accepted - stored.keys()),
        "duplicated": sum(1 for n in stored.values() if n > 1),
        "stored_not_acknowledged": len(stored.keys() - accepted),
    }


def check_atende(url: str, company_id: uuid.UUID, accepted: set[str]) -> dict[str, int]:
    check = stored_once(
        url,
        "SELECT channel_message_id, count(*) FROM messages"
        " WHERE company_id = %(c)s AND channel = 'api' AND author = 'customer' GROUP BY 1",
        {"c": company_id},
        accepted,
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        jobs = conn.execute(
            "SELECT count(*), count(DISTINCT args->>'message_id') FROM procrastinate_jobs"
            " WHERE task_name = 'engine:run_turn' AND args->>'company_id' = %s",
            (str(company_id),),
        ).fetchone()
        # nobody will run these turns; leave no work behind in a database we were lent
        conn.execute(
            "DELETE FROM procrastinate_jobs WHERE status = 'todo' AND task_name = 'engine:run_turn'"
            " AND args->>'company_id' = %s",
            (str(company_id),),
        )
    assert jobs is not None
    check["turn_jobs"], check["turn_jobs_distinct_messages"] = int(jobs[0]), int(jobs[1])
    return check


def check_baseline(url: str, accepted: set[str]) -> dict[str, int]:
    return stored_once(url, f"SELECT message_id, count(*) FROM {BASELINE_TABLE} GROUP BY 1", {}, accepted)


def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    migrate.upgrade(url)
    secret_key = secrets.token_urlsafe(32)
    company_id, api_key = asyncio.run(create_company(url, secret_key))
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")
        conn.execute(CREATE_TABLE)
    texts = [q.text for q in load_questions(args.data_dir, seed=args.seed)]
    pg_pid = postmaster_pid(url)
    loads: dict[str, Load] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="atende-bench-serve-") as workdir:
            for name in args.targets:
                port = free_port()
                if name == "atende":
                    command, env = atende_command(url, port, secret_key)
                    health, headers, cwd = (
                        "/health/live",
                        {"Authorization": f"Bearer {api_key}"},
                        Path(workdir),
                    )
                else:
                    command, env = baseline_command(url, port)
                    health, headers, cwd = "/health", {}, ROOT
                base_url = f"http://127.0.0.1:{port}"
                with server(command, env, cwd, base_url + health) as pid:
                    console.print(
                        f"{name}: {args.clients} clients for {args.seconds:g} s "
                        f"(+{args.warmup:g} s warm-up) against {base_url}"
                    )
                    cpu_pids = {"server": pid} | ({"postgres": pg_pid} if pg_pid else {})
                    load = Load(name)
                    run_async(
                        generate_load(
                            load,
                            base_url,
                            headers,
                            texts,
                            clients=args.clients,
                            seconds=args.seconds,
                            warmup=args.warmup,
                            per_contact=args.messages_per_contact,
                            cpu_pids=cpu_pids,
                        )
                    )
                    loads[name] = load
        checks: dict[str, dict[str, int]] = {}
        if "atende" in loads:
            checks["atende"] = check_atende(url, company_id, loads["atende"].accepted)
        if "baseline" in loads:
            checks["baseline"] = check_baseline(url, loads["baseline"].accepted)
    finally:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {BASELINE_TABLE}")

    ratio = None
    if "atende" in loads and "baseline" in loads and loads["baseline"].per_second:
        ratio = loads["atende"].per_second / loads["baseline"].per_second
    return {
        "benchmark": "intake",
        "machine": machine(load_at_start),
        "clients": args.clients,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "messages_per_contact": args.messages_per_contact,
        "atende_worker": "off (ATENDE_RUN_WORKER=false): intake only, turn jobs stay queued",
        "servers": "one uvicorn process each, on 127.0.0.1, same PostgreSQL",
        "company_id": str(company_id),
        "results": {
            name: {
                "requests_per_second": load.per_second,
                "accepted": load.ok,
                "errors": load.errors,
                "statuses": dict(load.statuses),
                "latency_ms": summarise(load.latencies_ms),
                "measured_seconds": round(load.measured_seconds, 2),
                "cpu_ms_per_request": {
                    who: (cpu * 1000 / load.ok if load.ok else None) for who, cpu in load.cpu_seconds.items()
                },
                "cpu_seconds": load.cpu_seconds,
            }
            for name, load in loads.items()
        },
        "ratio_atende_to_baseline": ratio,
        "target": f"ratio >= {TARGET_RATIO}",
        "target_met": ratio is not None and ratio >= TARGET_RATIO,
        "stored_exactly_once": checks,
    }


def report(result: dict[str, Any]) -> None:
    rows = []
    cpu_names = ("server", "postgres", "load generator")
    for name, r in result["results"].items():
        lat = r["latency_ms"]
        cpu = r["cpu_ms_per_request"]
        rows.append(
            (
                "atende POST /v1/messages" if name == "atende" else "baseline FastAPI + asyncpg INSERT",
                f"{r['requests_per_second']:,.0f}",
                f"{r['accepted']:,}",
                f"{r['errors']:,}",
                ms(lat["p50"]),
                ms(lat["p95"]),
                ms(lat["p99"]),
                " / ".join(f"{cpu[c]:.2f}" if cpu.get(c) is not None else "—" for c in cpu_names),
            )
        )
    title = (
        f"Intake — {result['clients']} clients × {result['seconds']:g} s, one uvicorn process each; "
        f"atende worker off (intake only)"
    )
    columns = ("server", "req/s", "201s", "errors", "p50 ms", "p95 ms", "p99 ms", "CPU ms/req srv / pg / gen")
    console.print(result_table(title, columns, rows))
    ratio = result["ratio_atende_to_baseline"]
    if ratio is not None:
        met = "[green]met[/green]" if result["target_met"] else "[red]missed[/red]"
        console.print(f"ratio atende / baseline: [bold]{ratio:.2f}[/bold] (target {result['target']}: {met})")
    for name, r in result["results"].items():
        if r["errors"]:
            console.print(f"{name} non-201 outcomes: {r['statuses']}")
    check_rows = []
    for name, c in result["stored_exactly_once"].items():
        good = c["missing"] == 0 and c["duplicated"] == 0
        jobs = (
            f"{c['turn_jobs']:,} ({c['turn_jobs_distinct_messages']:,} messages)" if "turn_jobs" in c else "—"
        )
        check_rows.append(
            (
                name,
                f"{c['accepted']:,}",
                f"{c['stored']:,}",
                str(c["missing"]),
                str(c["duplicated"]),
                str(c["stored_not_acknowledged"]),
                jobs,
                "[green]ok[/green]" if good else "[red]FAILED[/red]",
            )
        )
    columns = (
        "server",
        "accepted (201)",
        "stored",
        "missing",
        "duplicated",
        "stored, not 201",
        "turn jobs",
        "",
    )
    console.print(result_table("Every accepted message stored exactly once", columns, check_rows))
    console.print(
        f"machine: {result['machine']['cpus']} CPUs shared by server, PostgreSQL and load generator; "
        f"load average {result['machine']['load_average_at_start']} at the start, "
        f"{result['machine']['load_average']} at the end (other processes skew the numbers)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.intake",
        description="Customer messages per second through POST /v1/messages of `atende serve` "
        "(worker off), beside a bare FastAPI + asyncpg insert, under the same concurrent load. "
        "Starts a throw-away embedded PostgreSQL unless --database-url is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (one connection each)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument(
        "--messages-per-contact",
        type=int,
        default=5,
        help="messages a customer sends before a new one writes",
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        choices=("baseline", "atende"),
        default=["baseline", "atende"],
        help="servers to load, in this order",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the message texts' order")
    add_data_dir_argument(parser)
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (a company is created and left there) instead of a throw-away one",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    require_data(parser, args.data_dir, QUESTION_FILES)
    return args


def main(argv: list[str] | None = None) -> None:
    run_on_postgres(argv, parse_args, benchmark, report)


if __name__ == "__main__":
    main()
