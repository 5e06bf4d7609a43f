"""Fairness of the job queue: a normal company's reply latency while another company floods.

Two companies with the same small knowledge base (the demo shop's, shipped in
``atende/demo/knowledge``; nothing is read from ``../shared``). One ``atende worker`` process
(``ATENDE_WORKER_CONCURRENCY``, 4) answers both. The flooding company receives ``--flood``
(300) customer messages as fast as intake takes them, spread over ``--flood-conversations``
(100) conversations, as the web chat's flood did before it was rate-limited; from the start
of the flood, the normal company's customers ask ``--normal`` (30) questions, one every
``--interval`` (0.2) s, each in a new conversation. The normal company's reply latency is the
time from its message being stored to its bot reply being written (database timestamps).

Three runs, one after the other, each with new companies and an empty queue: the normal
company alone (no flood: the floor), then with the flood under first-in-first-out order
(the fairness trigger of migration 0011 disabled, as before it) and under the fair order.
``--order fair`` or ``--order fifo`` runs only one of the two.

Run from the project root: ``.venv/bin/python -m benchmarks.fairness --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text

from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.db import migrate
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.knowledge import service as knowledge
from atende.tenancy import service as tenancy
from benchmarks.common import (
    ROOT,
    console,
    free_port,
    machine,
    ms,
    postgres,
    result_table,
    summarise,
    write_json,
)
from benchmarks.intake import server

KNOWLEDGE = ROOT / "src" / "atende" / "demo" / "knowledge"
TRIGGER = "atende_fair_job_priority"
# what the demo shop's customers ask (pt and en), answered from its knowledge base
QUESTIONS = (
    "Qual o prazo de entrega para o Sul?",
    "Vocês aceitam Pix?",
    "Como faço para trocar um produto?",
    "A garantia cobre defeito de fábrica?",
    "Qual o horário de atendimento no sábado?",
    "Do you accept credit cards?",
    "How long does shipping take?",
    "Can I return an item after 30 days?",
)


async def new_company(db: Database, label: str) -> uuid.UUID:
    """A company with the demo shop's knowledge base (full-text: no embedder)."""
    slug = f"bench-{label}-{uuid.uuid4().hex[:8]}"
    async with db.transaction() as session:
        company_id = (await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")).id
    for path in sorted(KNOWLEDGE.glob("*/*.md")):
        await knowledge.ingest(
            db,
            company_id,
            source=f"{path.parent.name}/{path.name}",
            data=path.read_bytes(),
            max_bytes=1_000_000,
            chunking=knowledge.Chunking(),
            embedder=None,
            lang=path.parent.name,
        )
    return company_id


async def customer_writes(db: Database, company_id: uuid.UUID, contact: str, body: str) -> None:
    inbound = InboundMessage(channel="api", contact_external_id=contact, text=body)
    async with db.transaction(company_id) as session:
        await conversations.receive_inbound(await session.connection(), company_id, inbound)


async def flood(db: Database, company_id: uuid.UUID, messages: int, conversations_: int) -> float:
    """``messages`` customer messages over ``conversations_`` conversations, back to back;
    returns how long intake took."""
    started = time.perf_counter()
    for i in range(messages):
        await customer_writes(db, company_id, f"flood-{i % conversations_}", QUESTIONS[i % len(QUESTIONS)])
    return time.perf_counter() - started


async def trickle(db: Database, company_id: uuid.UUID, messages: int, interval: float) -> None:
    for i in range(messages):
        await customer_writes(db, company_id, f"normal-{i}", QUESTIONS[i % len(QUESTIONS)])
        await asyncio.sleep(interval)


async def drained(db: Database, companies: list[uuid.UUID], timeout: float) -> bool:
    """Wait until no job of ``companies`` waits or runs; False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with db.transaction() as session:
            left = await session.scalar(
                text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                    " AND args->>'company_id' = ANY(:companies)"
                ),
                {"companies": [str(c) for c in companies]},
            )
        if not left:
            return True
        await asyncio.sleep(0.2)
    return False


async def reply_latencies(db: Database, company_id: uuid.UUID) -> tuple[list[float], float]:
    """Each customer message's wait for its bot reply (ms), and the seconds from the first
    customer message to the last bot reply."""
    async with db.transaction(company_id) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT extract(epoch FROM r.created_at - m.created_at) * 1000"
                    " FROM messages m JOIN messages r ON r.reply_to_id = m.id AND r.author = 'bot'"
                    " WHERE m.company_id = :c AND m.author = 'customer'"
                ),
                {"c": company_id},
            )
        ).all()
        span = await session.scalar(
            text(
                "SELECT extract(epoch FROM max(created_at) FILTER (WHERE author = 'bot')"
                " - min(created_at) FILTER (WHERE author = 'customer')) FROM messages WHERE company_id = :c"
            ),
            {"c": company_id},
        )
    return [float(r[0]) for r in rows], float(span or 0)


async def set_order(url: str, order: str) -> None:
    """``fifo``: the fairness trigger off (the order before migration 0011); ``fair``: on."""
    action = "DISABLE" if order == "fifo" else "ENABLE"
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(f"ALTER TABLE procrastinate_jobs {action} TRIGGER {TRIGGER}")


async def scenario(db: Database, url: str, name: str, order: str, args: argparse.Namespace) -> dict[str, Any]:
    await set_order(url, order)
    normal = await new_company(db, "normal")
    flooding = await new_company(db, "flood") if name != "alone" else None
    console.print(f"[bold]{name}[/bold]: {order} order")
    tasks = [trickle(db, normal, args.normal, args.interval)]
    intake_seconds: list[float] = []
    if flooding is not None:

        async def timed_flood() -> None:
            intake_seconds.append(await flood(db, flooding, args.flood, args.flood_conversations))

        tasks.insert(0, timed_flood())
    await asyncio.gather(*tasks)
    done = await drained(db, [c for c in (normal, flooding) if c is not None], args.timeout)
    normal_ms, _ = await reply_latencies(db, normal)
    result: dict[str, Any] = {
        "scenario": name,
        "order": order,
        "drained": done,
        "normal_reply_ms": summarise(normal_ms),
    }
    if flooding is not None:
        flood_ms, flood_span = await reply_latencies(db, flooding)
        result |= {
            "flood_intake_seconds": round(intake_seconds[0], 2),
            "flood_reply_ms": summarise(flood_ms),
            "flood_answered_in_seconds": round(flood_span, 2),
        }
    return result


async def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    await asyncio.to_thread(migrate.upgrade, url)
    metrics_port = free_port()
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": url,
        "ATENDE_EMBEDDER": "none",
        "ATENDE_LOG_LEVEL": "WARNING",
        "ATENDE_MIGRATE_ON_START": "false",
        "ATENDE_WORKER_CONCURRENCY": str(args.concurrency),
        "ATENDE_WORKER_METRICS_PORT": str(metrics_port),
        "ATENDE_HOST": "127.0.0.1",
    }
    orders = ("fifo", "fair") if args.order == "both" else (args.order,)
    db = Database(url, pool_size=5)
    results = []
    try:
        command = [str(ROOT / ".venv" / "bin" / "atende"), "worker"]
        with server(command, env, ROOT, f"http://127.0.0.1:{metrics_port}/metrics"):
            results.append(await scenario(db, url, "alone", "fair", args))
            for order in orders:
                results.append(await scenario(db, url, f"with flood, {order}", order, args))
    finally:
        await set_order(url, "fair")
        await db.dispose()
    return {
        "benchmark": "fairness",
        "machine": machine(load_at_start),
        "worker_concurrency": args.concurrency,
        "embedder": "none (full-text retrieval), extractive answerer",
        "flood_messages": args.flood,
        "flood_conversations": args.flood_conversations,
        "normal_messages": args.normal,
        "normal_interval_seconds": args.interval,
        "runs": results,
    }


def report(result: dict[str, Any]) -> None:
    rows = []
    for run in result["runs"]:
        stats = run["normal_reply_ms"]
        flood_span = run.get("flood_answered_in_seconds")
        rows.append(
            (
                run["scenario"],
                f"{stats['n']:.0f}",
                ms(stats["p50"]),
                ms(stats["p95"]),
                ms(stats["p99"]),
                ms(stats["max"]),
                f"{flood_span:.1f}" if flood_span is not None else "—",
                "yes" if run["drained"] else "[red]no[/red]",
            )
        )
    title = (
        f"Normal company's reply latency while another company sends {result['flood_messages']} messages "
        f"over {result['flood_conversations']} conversations (worker concurrency "
        f"{result['worker_concurrency']}, {result['embedder']})"
    )
    columns = ("run", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "flood answered in s", "drained")
    console.print(result_table(title, columns, rows))
    host = result["machine"]
    console.print(
        f"machine: {host['cpus']} CPUs, load average {host['load_average_at_start']} at the start, "
        f"{host['load_average']} at the end (other processes on this machine skew the numbers)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fairness",
        description="A normal company's reply latency while another company floods the job queue, "
        "first-in-first-out against the fair order. Starts a throw-away embedded PostgreSQL unless "
        "--database-url is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--order",
        choices=("both", "fair", "fifo"),
        default="both",
        help="queue order(s) to measure under the flood (fifo: migration 0011's trigger disabled)",
    )
    parser.add_argument("--flood", type=int, default=300, help="messages of the flooding company")
    parser.add_argument(
        "--flood-conversations", type=int, default=100, help="conversations the flood is spread over"
    )
    parser.add_argument("--normal", type=int, default=30, help="messages of the normal company")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between its messages")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs the worker runs at once")
    parser.add_argument("--timeout", type=float, default=300, help="longest wait for a run's queue to drain")
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (companies are created and left there; its fairness trigger is "
        "disabled during the fifo run) instead of a throw-away one",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from atende.observability.logging import configure as configure_logging

    args = parse_args(argv)
    configure_logging("WARNING", json_logs=True)
    with postgres(args.database_url) as url:
        result = asyncio.run(benchmark(args, url))
    report(result)
    write_json(args.json, result)


if __name__ == "__main__":
    main()
