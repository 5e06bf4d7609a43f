"""E-mail intake: customers' e-mails delivered to a real IMAP mailbox (Debian's Dovecot, as the
tests start it: ``tests/fixtures/dovecot.py``, found or installed by ``scripts/test-mailserver``)
that a real ``atende worker`` watches, each stored, answered by the bot and its reply sent
over SMTP to a sink in this process (aiosmtpd, ``tests/fixtures/mail.py``). Measured:

- **intake**: messages per second from the mailbox into stored conversations (from the first
  ``APPEND`` until the last message is stored; the fetcher reads in batches of 50 with one
  ``FETCH``);
- **arrival to reply**: for each message, from its ``APPEND`` returning (the server has it)
  to the bot's reply, threaded under it (``In-Reply-To``), arriving at the SMTP sink: p50, p99;
- exactly once: every message stored once and answered once.

Each message comes from a customer of its own with a subject of its own: one conversation and
one full bot turn each. The company has no knowledge base, so each turn hands off to the team:
the bot's reply is the handoff notice (retrieval, decision, reply and delivery all run). The
messages are appended as fast as one IMAP connection takes them (``--rate`` to pace them).

Run from the project root: ``.venv/bin/python -m benchmarks.email_intake --help``.
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import os
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import psycopg

from atende import bootstrap  # noqa: F401 (registers the channels: the account is validated by its own)
from atende.channels import accounts
from atende.db import migrate
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.tenancy import service as tenancy
from benchmarks.common import (
    console,
    free_port,
    machine,
    ms,
    result_table,
    run_on_postgres,
    stop_process,
    summarise,
)
from benchmarks.intake import BIN
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mail import PASSWORD as SMTP_PASSWORD
from tests.fixtures.mail import MailSink, mailbox_config

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "email-intake-benchmark-secret-0123456789"


class TimedSink(MailSink):
    """The SMTP sink, noting when each reply arrived, by the message it answers."""

    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.arrived: dict[str, float] = {}
        self.duplicates = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        now = time.monotonic()
        answer = await super().handle_DATA(server, session, envelope)
        with self._lock:
            answered = str(self.received[-1]["In-Reply-To"] or "")
            if answered in self.arrived:
                self.duplicates += 1
            else:
                self.arrived[answered] = now
            self.raw.clear()  # keep the memory flat over 10,000 replies
            self.received.clear()
        return answer


def customer_mail(n: int, to: str) -> tuple[bytes, str]:
    mail = EmailMessage()
    mail["From"] = f"Cliente {n} <cliente{n}@example.org>"
    mail["To"] = to
    mail["Subject"] = f"Pedido {n}: prazo de entrega"
    mail["Date"] = format_datetime(datetime.now().astimezone())
    message_id = make_msgid(domain="example.org")
    mail["Message-ID"] = message_id
    mail.set_content(f"Olá, comprei o pedido {n} ontem. Quando ele chega em São Paulo?\n\nObrigado.\n")
    return mail.as_bytes(), message_id


async def connect_mailbox(
    url: str, address: str, dovecot: Dovecot, password: str, sink: MailSink
) -> uuid.UUID:
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        slug = f"bench-email-{uuid.uuid4().hex[:8]}"
        async with db.transaction() as session:
            company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
        async with db.transaction(company.id) as session:
            row = await accounts.create(
                session,
                SECRET_KEY,
                kind="email",
                external_id=address,
                config=mailbox_config(address, dovecot, sink, bot_replies_per_hour=1000),
                secrets={"imap_password": password, "smtp_password": SMTP_PASSWORD},
            )
            return row.id
    finally:
        await db.dispose()


def wait(condition: Any, seconds: float, what: str, log: Any = None) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            tail = ""
            if log is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{what}: not within {seconds:.0f} s\n{tail}")
        time.sleep(0.1)


def scalar(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def benchmark(args: argparse.Namespace, url: str) -> dict[str, Any]:
    load = os.getloadavg()
    migrate.upgrade(url)
    dovecot = Dovecot()
    dovecot.start()
    sink = TimedSink(free_port())
    sink.start()
    address, password = "suporte@loja-bench.example", "bench-password"
    dovecot.add_user(address, password)
    account_id = asyncio.run(connect_mailbox(url, address, dovecot, password, sink))
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": url,
        "ATENDE_SECRET_KEY": SECRET_KEY,
        "ATENDE_LOG_LEVEL": "WARNING",
        "ATENDE_CHANNEL_WATCH_RESYNC_SECONDS": "1",
        "ATENDE_MIGRATE_ON_START": "false",
        "ATENDE_DEMO": "false",
        "ATENDE_MEDIA_DIR": tempfile.mkdtemp(prefix="atende-bench-media-"),
    }
    appended: dict[str, float] = {}
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            [str(BIN / "atende"), "worker", "--name", "bench-email-worker"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            sql = "select count(*) from email_mailbox_states where account_id = %s"
            wait(lambda: scalar(url, sql, (account_id,)) > 0, 90, "the worker's fetcher", log)
            console.print(f"worker {worker.pid} fetching; appending {args.messages} messages")
            client = imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=30)
            client.login(address, password)
            first = time.monotonic()
            interval = 1 / args.rate if args.rate else 0.0
            for n in range(args.messages):
                if interval:
                    time.sleep(max(0.0, first + n * interval - time.monotonic()))
                raw, message_id = customer_mail(n, address)
                typ, data = client.append("INBOX", "", None, raw)
                assert typ == "OK", data
                appended[message_id] = time.monotonic()
            client.logout()
            appending = time.monotonic() - first
            stored_sql = "select count(*) from messages where channel = 'email' and author = 'customer'"
            wait(lambda: scalar(url, stored_sql) >= args.messages, args.timeout, "every message stored", log)
            stored_at = time.monotonic()
            wait(lambda: len(sink.arrived) >= args.messages, args.timeout, "every reply at the sink", log)
        finally:
            stop_process(worker)
            sink.stop()
            dovecot.stop()
            dovecot.remove()
    latencies = [(sink.arrived[m] - t) * 1000 for m, t in appended.items() if m in sink.arrived]
    distinct = scalar(
        url,
        "select count(distinct channel_message_id) from messages"
        " where channel = 'email' and author = 'customer'",
    )
    return {
        "benchmark": "email_intake",
        "messages": args.messages,
        "append_seconds": round(appending, 2),
        "intake_seconds": round(stored_at - first, 2),
        "intake_per_second": round(args.messages / (stored_at - first), 1),
        "arrival_to_reply_ms": summarise(latencies),
        "stored_distinct": distinct,
        "replies": len(sink.arrived),
        "duplicate_replies": sink.duplicates,
        "machine": machine(load),
    }


def report(result: dict[str, Any]) -> None:
    latency = result["arrival_to_reply_ms"]
    console.print(
        result_table(
            f"E-mail intake: {result['messages']} messages through Dovecot IMAP, one atende worker",
            ["measure", "value"],
            [
                ["appended (one IMAP connection)", f"{result['append_seconds']} s"],
                ["stored in conversations", f"{result['intake_seconds']} s, {result['intake_per_second']}/s"],
                ["arrival to reply at the SMTP sink, p50", f"{ms(latency['p50'])} ms"],
                ["arrival to reply, p99", f"{ms(latency['p99'])} ms"],
                ["stored once / answered once", f"{result['stored_distinct']} / {result['replies']}"],
                ["duplicate replies", str(result["duplicate_replies"])],
            ],
        )
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages delivered (default 10,000)")
    parser.add_argument("--rate", type=float, default=0.0, help="messages appended per second (0: at once)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the last reply")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL to use (default: an embedded one)")
    parser.add_argument("--json", type=Path, default=None, help="write the result here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    run_on_postgres(argv, parse_args, benchmark, report)


if __name__ == "__main__":
    main()
