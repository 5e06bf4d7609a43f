"""WhatsApp webhook acknowledgement: signed Cloud API webhooks posted open-loop at a target
rate (default 200/s) to ``POST /webhooks/whatsapp`` of a real ``atende serve``, with an
``atende worker`` process beside it running the bot turns (and their replies' delivery)
while the webhooks arrive. Measured: webhooks acknowledged per second, and the time to
acknowledge (p50/p99) from the moment each was *due* (so a server that falls behind shows
it, rather than the generator waiting for it). Afterwards every acknowledged message must be
stored exactly once.

What each webhook is: a text message in Meta's envelope (``object``, ``entry[].changes[]``,
``metadata.phone_number_id``, ``contacts``, ``messages``) from one of many customers (a
customer writes ``--messages-per-contact`` messages), signed ``X-Hub-Signature-256`` with the
account's app secret. The texts are real customer questions (``--data-dir``; see
benchmarks/intake.py for the sets and their licences). The account's Graph API is a loopback
sink in this process that answers sends and mark-reads as Meta does, so the bot's replies go
all the way out without leaving the machine. The company has no knowledge base: each new
customer's first message is handed to the team (the hours-aware notice is the bot's reply,
sent through the outbox), which is a full bot turn: retrieval, decision, reply, delivery.

Run from the project root: ``.venv/bin/python -m benchmarks.whatsapp_webhook --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from atende import bootstrap  # noqa: F401 (registers the channels: the account is validated by its own)
from atende.channels import accounts
from atende.db import migrate
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.tenancy import service as tenancy
from benchmarks.common import (
    QUESTION_FILES,
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
    stop_process,
    summarise,
    tree_cpu_seconds,
)
from benchmarks.intake import BIN, atende_command, run_async, server

TARGET_P99_MS = 50.0
TARGET_RATE = 200.0
PRIME_WA_ID = "5500999999999"  # the customer whose message checks the worker is up


class GraphSink:
    """A loopback Graph API: every send answered with a new wamid, mark-reads with success,
    the number's details for the token check. Counts what it got."""

    def __init__(self) -> None:
        self.sends = 0
        self.reads = 0
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the processes' pooled Graph clients reuse it
            # an answer is two writes (head, body): with Nagle's algorithm on a kept-alive
            # connection the body waits for the client's delayed ACK, 40 ms a call
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._answer({"id": "1", "display_phone_number": "+55 11 4000-0000"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with sink._lock:
                    if body.get("status") == "read":
                        sink.reads += 1
                    else:
                        sink.sends += 1
                if body.get("status") == "read":
                    self._answer({"success": True})
                else:
                    self._answer({"messages": [{"id": f"wamid.{uuid.uuid4().hex}"}]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> GraphSink:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)  # from when each was due
    send_lag_ms: list[float] = field(default_factory=list)  # how late the generator sent it
    statuses: Counter[str] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)
    sent: int = 0
    measured_seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses["200"]


async def create_company(url: str, secret_key: str, graph_origin: str) -> tuple[uuid.UUID, str, str]:
    """A company with one WhatsApp number pointed at the sink; its id, number id, app secret."""
    db = Database(url, pool_size=1, max_overflow=0)
    number = str(10**12 + uuid.uuid4().int % 10**12)
    app_secret = secrets.token_hex(16)
    try:
        slug = f"bench-wa-{uuid.uuid4().hex[:8]}"
        async with db.transaction() as session:
            company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
        async with db.transaction(company.id) as session:
            await accounts.create(
                session,
                secret_key,
                kind="whatsapp",
                external_id=number,
                display_name="benchmark",
                config={"waba_id": "1", "graph_api_url": graph_origin},
                secrets={"access_token": "bench-token", "app_secret": app_secret, "verify_token": "v"},
            )
        return company.id, number, app_secret
    finally:
        await db.dispose()


def webhook(number: str, wa_id: str, wamid: str, text: str) -> dict[str, Any]:
    """A text message as Meta delivers it (../shared/PROTOCOLS.md, "WhatsApp")."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "5511400000000", "phone_number_id": number},
                            "contacts": [{"profile": {"name": f"Cliente {wa_id[-4:]}"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": wamid,
                                    "timestamp": str(int(time.time())),
                                    "type": "text",
                                    "text": {"body": text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def requests(
    host: str, number: str, app_secret: str, texts: list[str], *, total: int, per_contact: int
) -> tuple[list[str], list[bytes]]:
    """Every webhook of the run as the bytes of its HTTP request (Meta's envelope, signed),
    built before the clock starts: the generator then only writes and reads."""
    tag = uuid.uuid4().int % 10**6
    wamids, built = [], []
    for i in range(total):
        wa_id = str(55_00_0000_0000 + tag * 10**5 + i // per_contact)
        wamid = f"wamid.bench{tag}x{i}"
        raw = json.dumps(webhook(number, wa_id, wamid, texts[i % len(texts)])).encode()
        signature = "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
        head = (
            f"POST /webhooks/whatsapp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(raw)}\r\n\r\n"
        )
        wamids.append(wamid)
        built.append(head.encode() + raw)
    return wamids, built


async def _response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of one HTTP/1.1 response (its body read and dropped), and whether the server
    closes the connection after it."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, close = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise ValueError("a chunked answer: the generator reads Content-Length only")
    if length:
        await reader.readexactly(length)
    return status, close


class Connection:
    """One keep-alive connection to the server, opened when first needed (and again after the
    server closed it)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def drop(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None

    async def post(self, request: bytes) -> int:
        """Send one prepared request; its status. A kept-alive connection the server closed
        meanwhile (nothing read back) is opened again and the request sent once more."""
        for attempt in (1, 2):
            reused = self.streams is not None
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            try:
                writer.write(request)
                await writer.drain()
                status, close = await _response(reader)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                self.drop()
                if reused and attempt == 1 and not getattr(exc, "partial", b""):
                    continue
                raise
            if close:
                self.drop()
            return status
        raise AssertionError("not reached")


async def generate(
    run: Run,
    base_url: str,
    number: str,
    app_secret: str,
    texts: list[str],
    *,
    rate: float,
    seconds: float,
    warmup: float,
    per_contact: int,
    connections: int,
    cpu_pids: dict[str, int],
) -> None:
    """Open loop: webhook ``i`` is due at ``start + i / rate``, sent then (on a free one of
    ``connections`` keep-alive connections, the most recently used first; waiting for one
    counts in its time) whatever the server is doing; those due in the warm-up are checked but
    not measured. Every request is built and signed before the clock starts."""
    total = int((warmup + seconds) * rate)
    host, _, port = base_url.removeprefix("http://").partition(":")
    wamids, prepared = requests(
        f"{host}:{port}", number, app_secret, texts, total=total, per_contact=per_contact
    )
    idle: asyncio.LifoQueue[Connection] = asyncio.LifoQueue()
    for _ in range(connections):
        idle.put_nowait(Connection(host, int(port)))
    cpu_before: dict[str, float] = {}
    start = time.monotonic() + 0.2
    measure_from = start + warmup

    async def one(i: int, due: float) -> None:
        connection = await idle.get()
        sent_at = time.monotonic()
        try:
            async with asyncio.timeout(30):
                status = str(await connection.post(prepared[i]))
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
            connection.drop()
            status = type(exc).__name__
        finally:
            idle.put_nowait(connection)
        done = time.monotonic()
        if status == "200":
            run.acknowledged.add(wamids[i])
        if due >= measure_from:
            run.latencies_ms.append((done - due) * 1000)
            run.send_lag_ms.append((sent_at - due) * 1000)
            run.statuses[status] += 1

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before.update({name: tree_cpu_seconds(pid) for name, pid in cpu_pids.items()})
        cpu_before["load generator"] = time.process_time()

    sampler = asyncio.create_task(sample_cpu())
    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
        run.sent += 1
    await asyncio.gather(*tasks)
    await sampler
    run.measured_seconds = max(time.monotonic() - measure_from, 1e-9)
    after = {name: tree_cpu_seconds(pid) for name, pid in cpu_pids.items()}
    after["load generator"] = time.process_time()
    run.cpu_seconds = {name: after[name] - cpu_before.get(name, 0.0) for name in after}
    while not idle.empty():
        idle.get_nowait().drop()


def prime(base_url: str, number: str, app_secret: str, sink: GraphSink, worker_log: Any) -> None:
    """One webhook, and its bot reply at the sink: the worker is up before the load starts."""
    raw = json.dumps(webhook(number, PRIME_WA_ID, f"wamid.prime{uuid.uuid4().hex}", "Olá")).encode()
    signature = "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    response = httpx.post(base_url + "/webhooks/whatsapp", content=raw, headers=headers, timeout=30)
    response.raise_for_status()
    deadline = time.monotonic() + 180
    while sink.sends < 1:
        if time.monotonic() > deadline:
            worker_log.seek(0)
            tail = worker_log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"the worker sent no reply within 180 s:\n{tail}")
        time.sleep(0.2)
    sink.sends = 0
    sink.reads = 0


def drain(url: str, company_id: uuid.UUID, seconds: float) -> dict[str, Any]:
    """Wait up to ``seconds`` for the company's jobs (bot turns, deliveries) to finish."""
    started = time.monotonic()
    left = -1
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        while time.monotonic() - started < seconds:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                " AND args->>'company_id' = %s",
                (str(company_id),),
            ).fetchone()
            left = int(row[0]) if row else 0
            if left == 0:
                break
            time.sleep(0.5)
    return {"seconds": round(time.monotonic() - started, 1), "jobs_left": left, "drained": left == 0}


def check(url: str, company_id: uuid.UUID, acknowledged: set[str]) -> dict[str, int]:
    """Every acknowledged wamid stored once (the priming message aside); and how far the bot
    got."""
    with psycopg.connect(libpq_url(url)) as conn:
        stored = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT channel_message_id, count(*) FROM messages WHERE company_id = %s"
                " AND channel = 'whatsapp' AND author = 'customer'"
                " AND channel_message_id NOT LIKE 'wamid.prime%%' GROUP BY 1",
                (company_id,),
            )
        }
        replies = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE m.delivery_status IN ('sent', 'delivered', 'read'))"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            " JOIN contacts k ON k.id = c.contact_id"
            f" WHERE m.company_id = %s AND m.author = 'bot' AND k.external_id <> '{PRIME_WA_ID}'",
            (company_id,),
        ).fetchone()
    assert replies is not None
    return {
        "acknowledged": len(acknowledged),
        "stored": sum(stored.values()),
        "missing": len(acknowledged - stored.keys()),
        "duplicated": sum(1 for n in stored.values() if n > 1),
        "stored_not_acknowledged": len(stored.keys() - acknowledged),
        "bot_replies": int(replies[0]),
        "bot_replies_sent": int(replies[1]),
    }


def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    load_at_start = os.getloadavg()
    migrate.upgrade(url)
    secret_key = secrets.token_urlsafe(32)
    texts = [q.text[:1000] for q in load_questions(args.data_dir, seed=args.seed)]
    pg_pid = postmaster_pid(url)
    run = Run()
    with GraphSink() as sink, tempfile.TemporaryDirectory(prefix="atende-bench-wa-") as workdir:
        company_id, number, app_secret = run_async(create_company(url, secret_key, sink.origin))
        port = free_port()
        command, env = atende_command(url, port, secret_key)
        base_url = f"http://127.0.0.1:{port}"
        with (
            tempfile.TemporaryFile() as worker_log,
            server(command, env, Path(workdir), base_url + "/health/live") as serve_pid,
        ):
            nice = ["nice", "-n", str(args.worker_nice)] if args.worker_nice else []
            worker = subprocess.Popen(  # nice execs the worker: its pid is the worker's
                [*nice, str(BIN / "atende"), "worker", "--name", "bench-wa-worker"],
                env=env,
                cwd=workdir,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
            try:
                console.print(
                    f"whatsapp webhooks: {args.rate:g}/s for {args.seconds:g} s (+{args.warmup:g} s warm-up) "
                    f"against {base_url}, worker pid {worker.pid}"
                )
                prime(base_url, number, app_secret, sink, worker_log)
                cpu_pids = {"server": serve_pid, "worker": worker.pid}
                cpu_pids |= {"postgres": pg_pid} if pg_pid else {}
                run_async(
                    generate(
                        run,
                        base_url,
                        number,
                        app_secret,
                        texts,
                        rate=args.rate,
                        seconds=args.seconds,
                        warmup=args.warmup,
                        per_contact=args.messages_per_contact,
                        connections=args.connections,
                        cpu_pids=cpu_pids,
                    )
                )
                replies_during_load = sink.sends
                drained = drain(url, company_id, args.drain)
                integrity = check(url, company_id, run.acknowledged)
            finally:
                stop_process(worker)
    # nobody will run what is left; leave no work behind in a database we were lent
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        left = conn.execute(
            "DELETE FROM procrastinate_jobs WHERE status = 'todo' AND args->>'company_id' = %s",
            (str(company_id),),
        ).rowcount
    latency = summarise(run.latencies_ms)
    per_second = run.ok / run.measured_seconds if run.measured_seconds else 0.0
    return {
        "benchmark": "whatsapp_webhook",
        "machine": machine(load_at_start),
        "rate_target": args.rate,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "messages_per_contact": args.messages_per_contact,
        "processes": "atende serve (worker off) + atende worker, each one process, on 127.0.0.1",
        "worker_nice": args.worker_nice,
        "connections": args.connections,
        "company_id": str(company_id),
        "sent": run.sent,
        "acknowledged_per_second": per_second,
        "statuses": dict(run.statuses),
        "ack_latency_ms": latency,
        "send_lag_ms": summarise(run.send_lag_ms),
        "cpu_ms_per_webhook": {
            who: (cpu * 1000 / run.ok if run.ok else None) for who, cpu in run.cpu_seconds.items()
        },
        "graph_api": {"replies_sent_during_load": replies_during_load, "marked_read": sink.reads},
        "drain": {**drained, "replies_sent": sink.sends},
        "jobs_left_queued": left,
        "target": f"p99 < {TARGET_P99_MS:g} ms at {TARGET_RATE:g}/s",
        "target_met": args.rate >= TARGET_RATE and latency["p99"] < TARGET_P99_MS,
        "stored_exactly_once": integrity,
    }


def report(result: dict[str, Any]) -> None:
    lat, lag = result["ack_latency_ms"], result["send_lag_ms"]
    cpu = result["cpu_ms_per_webhook"]
    errors = sum(n for status, n in result["statuses"].items() if status != "200")
    title = (
        f"WhatsApp webhooks — open loop at {result['rate_target']:g}/s for {result['seconds']:g} s; "
        "atende serve + atende worker (bot turns running)"
    )
    columns = (
        "acked/s",
        "200s",
        "errors",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "gen lag p99",
        "CPU ms/webhook",
    )
    names = ("server", "worker", "postgres", "load generator")
    row = (
        f"{result['acknowledged_per_second']:,.1f}",
        f"{result['statuses'].get('200', 0):,}",
        f"{errors:,}",
        ms(lat["p50"]),
        ms(lat["p95"]),
        ms(lat["p99"]),
        ms(lat["max"]),
        ms(lag["p99"]),
        " / ".join(f"{cpu[c]:.2f}" if cpu.get(c) is not None else "—" for c in names),
    )
    console.print(result_table(title, columns, [row]))
    met = "[green]met[/green]" if result["target_met"] else "[red]missed[/red]"
    console.print(f"target {result['target']}: {met} (CPU columns: server / worker / postgres / generator)")
    if errors:
        console.print(f"non-200 outcomes: {result['statuses']}")
    c = result["stored_exactly_once"]
    good = c["missing"] == 0 and c["duplicated"] == 0
    console.print(
        result_table(
            "Every acknowledged message stored exactly once",
            (
                "acknowledged",
                "stored",
                "missing",
                "duplicated",
                "stored, not acked",
                "bot replies (sent)",
                "",
            ),
            [
                (
                    f"{c['acknowledged']:,}",
                    f"{c['stored']:,}",
                    str(c["missing"]),
                    str(c["duplicated"]),
                    str(c["stored_not_acknowledged"]),
                    f"{c['bot_replies']:,} ({c['bot_replies_sent']:,})",
                    "[green]ok[/green]" if good else "[red]FAILED[/red]",
                )
            ],
        )
    )
    during = result["graph_api"]["replies_sent_during_load"]
    console.print(
        f"replies the Graph sink received during the load: {during:,}"
        f" (all by {result['drain']['seconds']:g} s later: {result['drain']['replies_sent']:,}); "
        f"machine: {result['machine']['cpus']} CPUs shared by server, worker, PostgreSQL and generator; "
        f"load average {result['machine']['load_average_at_start']} at the start, "
        f"{result['machine']['load_average']} at the end"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.whatsapp_webhook",
        description="Signed WhatsApp webhooks posted open-loop to `atende serve` with an `atende worker` "
        "running the bot turns: acknowledged per second, p50/p99 time to acknowledge, every message "
        "stored once. Starts a throw-away embedded PostgreSQL unless --database-url is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="webhooks per second (open loop)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument(
        "--messages-per-contact",
        type=int,
        default=3,
        help="messages a customer sends before a new one writes",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=64,
        help="keep-alive connections the generator posts on (at most this many webhooks in flight)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="run the worker at this nice value (docs/OPERATIONS.md: acknowledgements before answers)",
    )
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds to wait after the load for the bot's turns"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the message texts' order")
    add_data_dir_argument(parser)
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (a company is created and left there) instead of a throw-away one",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    require_data(parser, args.data_dir, QUESTION_FILES)
    return args


def main(argv: list[str] | None = None) -> None:
    run_on_postgres(argv, parse_args, benchmark, report)


if __name__ == "__main__":
    main()
