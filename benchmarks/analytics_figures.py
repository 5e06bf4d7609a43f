"""The analytics page's figures one by one, in this process: each chart's query (``Chart.figure``
over a ``Scope``) timed over 30 and 90 days, and over 90 days with a channel filter, on the
company that ``benchmarks.dashboard`` fills (its conversations, messages, handoffs, SLA targets
and CSAT surveys, written by PostgreSQL; ``analytics:refresh`` run once). Says which chart
costs the page what. ``--quick``: 20,000 conversations.

Run from the project root: ``.venv/bin/python -m benchmarks.analytics_figures --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from atende.analytics.figures import Scope
from atende.dashboard.analytics_charts import CHARTS
from atende.db import migrate
from atende.db.session import Database
from benchmarks.common import run_on_postgres
from benchmarks.dashboard import Sizes, create_company, fill, read_texts, refresh_analytics, vacuum_analyze

console = Console()


def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    migrate.upgrade(url)
    sizes = Sizes(args.conversations, args.conversations // 5, args.conversations * 5, 20, 5, 10)

    async def setup() -> Any:
        db = Database(url, pool_size=2)
        try:
            return await create_company(db, secrets.token_urlsafe(32), "figures", sizes)
        finally:
            await db.dispose()

    company = asyncio.run(setup())
    fill(url, company, sizes, read_texts(args.data_dir), seed=0.25)
    vacuum_analyze(url, {})
    asyncio.run(refresh_analytics(url, (company,)))
    today = date.today()
    scopes = {
        "30 days": Scope(company.id, today - timedelta(days=29), today, "America/Sao_Paulo"),
        "90 days": Scope(company.id, today - timedelta(days=89), today, "America/Sao_Paulo"),
        "90 days · whatsapp": Scope(
            company.id, today - timedelta(days=89), today, "America/Sao_Paulo", channel="whatsapp"
        ),
    }

    async def measure() -> list[dict[str, Any]]:
        db = Database(url, pool_size=2)
        rows = []
        try:
            for chart in CHARTS:
                row: dict[str, Any] = {"chart": chart.key, "group": chart.group}
                for name, scope in scopes.items():
                    times = []
                    for _ in range(args.repeat + 1):
                        async with db.transaction(company.id) as session:
                            started = time.perf_counter()
                            found = await chart.figure(session, scope)
                            times.append((time.perf_counter() - started) * 1000)
                    row[name] = round(statistics.median(times[1:]), 1)
                    row[f"{name} rows"] = len(found)
                rows.append(row)
        finally:
            await db.dispose()
        return rows

    return {"fill_seconds": company.fill_seconds, "scopes": list(scopes), "figures": asyncio.run(measure())}


def report(result: dict[str, Any]) -> None:
    table = Table(title="Each chart's query, median ms (rows)")
    table.add_column("chart")
    for name in result["scopes"]:
        table.add_column(name, justify="right")
    for group in ("conversations", "sla", "csat"):
        rows = [r for r in result["figures"] if r["group"] == group]
        for r in rows:
            table.add_row(r["chart"], *(f"{r[n]:.1f} ({r[f'{n} rows']})" for n in result["scopes"]))
        total = {n: sum(r[n] for r in rows) for n in result["scopes"]}
        table.add_row(f"[b]{group}: all", *(f"[b]{total[n]:.1f}" for n in result["scopes"]), end_section=True)
    console.print(table)
    console.print(f"fill: {result['fill_seconds']}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=100_000, help="the company's conversations")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query (after one untimed)")
    parser.add_argument("--quick", action="store_true", help="20,000 conversations, 3 runs")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("tests/data"),
        help="the texts of the messages (tests/data: a sample)",
    )
    parser.add_argument(
        "--database-url", default=None, help="a PostgreSQL to use instead of a throw-away one"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.quick:
        args.conversations, args.repeat = 20_000, 3
    return args


def main(argv: list[str] | None = None) -> None:
    run_on_postgres(argv, parse_args, benchmark, report)


if __name__ == "__main__":
    main()
