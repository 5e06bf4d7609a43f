"""What the knowledge rules cost retrieval: BM25 and the nearest-vector search over a knowledge
base of ``--chunks`` chunks, with no filter, with the rules a customer's turn always carries
(valid now, no internal document) when no document fails them (no clause: the statements
stay unfiltered), and when ``--internal`` percent of the documents are internal (the clause
applies).

The corpus is synthetic and hard on purpose: every chunk draws its 40 words from the same 14,
so the question's terms have postings in nearly every chunk (the most BM25 can read), and
every chunk a random unit vector under a model name of its own (the HNSW index answers as
for e5's 384 dimensions). Nothing is downloaded. Timings are medians of ``--repeat`` runs of
each case, interleaved; on a shared machine they are noisy: compare the rows of one run.

Run from the project root: ``.venv/bin/python -m benchmarks.retrieval_filters --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
import uuid
from datetime import UTC, datetime

from rich.console import Console
from sqlalchemy import text

from atende.bootstrap import open_runtime
from atende.config import Settings
from atende.db import migrate
from atende.knowledge import service as knowledge
from atende.knowledge.filters import NO_FILTERS, Filters, Match
from atende.knowledge.retrieval import FullTextRetriever, dense_search
from atende.knowledge.rules import INTERNAL
from atende.observability.logging import configure as configure_logging
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from benchmarks.common import ms, postgres, result_table, summarise

console = Console()
WORDS = (
    "prazo entrega compras dias úteis frete grátis troca devolução pagamento cartão boleto pix nota".split()
)
QUESTION = "qual o prazo de entrega das compras com frete grátis e pagamento no pix?"
MODEL = "synthetic-384"
SECTIONS = 20  # chunks per document


def unit(rng: random.Random) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(384)]
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


async def company_with(runtime: Runtime, chunks: int, internal_share: float, rng: random.Random) -> uuid.UUID:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    async with runtime.db.transaction() as session:
        company_id: uuid.UUID = (
            await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
        ).id
    documents = max(1, chunks // SECTIONS)
    every = round(1 / internal_share) if internal_share else 0
    for n in range(documents):
        parts = [
            f"## Parte {i}\n\n" + " ".join(rng.choice(WORDS) for _ in range(40)) + f" item{n}x{i}.\n"
            for i in range(SECTIONS)
        ]
        internal = every and n % every == 0
        await knowledge.ingest(
            runtime.db,
            company_id,
            source=f"d{n}.md",
            data=("# D\n\n" + "\n".join(parts)).encode(),
            max_bytes=10**6,
            chunking=knowledge.Chunking(),
            embedder=None,
            lang="pt",
            meta=knowledge.Metadata(audience=INTERNAL) if internal else None,
        )
    async with runtime.db.transaction(company_id) as session:
        ids = [
            r[0]
            for r in await session.execute(
                text("SELECT id FROM chunks WHERE company_id = :c"), {"c": company_id}
            )
        ]
        await knowledge.store_vectors(session, MODEL, ids, [unit(rng) for _ in ids])
        for table in ("chunks", "documents", "chunk_terms", "chunk_vectors"):
            await session.execute(text(f"ANALYZE {table}"))
    return company_id


async def timed(
    runtime: Runtime, company_id: uuid.UUID, path: str, filters: Filters, vector: list[float]
) -> float:
    async with runtime.db.transaction(company_id) as session:
        started = time.perf_counter()
        if path == "BM25":
            await FullTextRetriever().retrieve(session, QUESTION, 50, filters=filters)
        else:
            await dense_search(session, vector, MODEL, 50, filters)
        return (time.perf_counter() - started) * 1000


async def benchmark(args: argparse.Namespace, url: str) -> dict[tuple[str, str], dict[str, float]]:
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(database_url=url, run_worker=False, log_level="WARNING", migrate_on_start=False)
    rng = random.Random(args.seed)
    customer = Filters(valid_at=datetime.now(UTC)) & Filters(
        matches=(Match("audience", (INTERNAL,), negate=True),)
    )
    async with open_runtime(settings, migrate_now=False, listen=False) as runtime:
        plain = await company_with(runtime, args.chunks, 0.0, rng)
        mixed = await company_with(runtime, args.chunks, args.internal / 100, rng)
        cases = {
            "no filter": (plain, NO_FILTERS),
            "customer rules, no document fails them": (plain, customer),
            f"customer rules, {args.internal:g} % of documents internal": (mixed, customer),
        }
        vector = unit(rng)
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeat):
            for name, (company_id, filters) in cases.items():
                for path in ("BM25", "dense"):
                    times.setdefault((path, name), []).append(
                        await timed(runtime, company_id, path, filters, vector)
                    )
    return {key: summarise(values) for key, values in times.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000, help="Chunks per company (default 10,000).")
    parser.add_argument(
        "--internal", type=float, default=2.0, help="Percent of internal documents (default 2)."
    )
    parser.add_argument("--repeat", type=int, default=40, help="Runs of each case (default 40).")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--database-url", help="A PostgreSQL with pgvector (default: a throw-away embedded one)."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    configure_logging("WARNING", json_logs=True)
    with postgres(args.database_url) as url:
        result = asyncio.run(benchmark(args, url))
    rows = [
        [f"{path}: {name}", ms(s["p50"]), ms(s["p95"]), ms(s["p99"])] for (path, name), s in result.items()
    ]
    console.print(
        result_table(
            f"Retrieval with knowledge rules, {args.chunks:,} chunks",
            ["case", "p50 ms", "p95 ms", "p99 ms"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
