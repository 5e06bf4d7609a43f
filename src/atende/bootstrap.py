"""Bring a process up and down: database (embedded or external), migrations, job queue,
live listener. Shared by ``atende serve``, ``atende worker`` and the CLI commands."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import procrastinate
import structlog

from atende.analytics.tasks import blueprint as analytics_tasks
from atende.channels import registry as channels
from atende.channels import watchers
from atende.channels.api import channel as api_channel
from atende.channels.delivery import account_credentials
from atende.channels.email import channel as email
from atende.channels.tasks import blueprint as channel_tasks
from atende.channels.webchat import api as webchat
from atende.channels.whatsapp import channel as whatsapp
from atende.channels.whatsapp import read as whatsapp_read
from atende.config import DEV_SECRET, Settings
from atende.conversations import service as conversations
from atende.conversations.tasks import blueprint as conversation_tasks
from atende.db import migrate
from atende.db.embedded import EmbeddedDatabase, start_embedded
from atende.db.pubsub import Listener
from atende.db.session import Database
from atende.engine import turn as turns
from atende.engine.tasks import blueprint as engine_tasks
from atende.feedback.tasks import blueprint as feedback_tasks
from atende.gaps.tasks import blueprint as gap_tasks
from atende.jobs.queue import JobQueue
from atende.jobs.tasks import blueprint as job_tasks
from atende.knowledge.tasks import blueprint as knowledge_tasks
from atende.llm.credentials import endpoints as llm_endpoints
from atende.mail.tasks import blueprint as mail_tasks
from atende.observability import credentials, events
from atende.observability.logging import describe
from atende.observability.sentry import report_job
from atende.runtime import Runtime
from atende.sla import service as sla
from atende.sla.tasks import blueprint as sla_tasks
from atende.webhooks.tasks import blueprint as webhook_tasks

log = structlog.get_logger(__name__)

BLUEPRINTS: dict[str, Callable[[], procrastinate.Blueprint]] = {
    "engine": engine_tasks,
    "webhooks": webhook_tasks,
    "knowledge": knowledge_tasks,
    "jobs": job_tasks,
    "channels": channel_tasks,  # the outbox: every outbound message's delivery
    "conversations": conversation_tasks,  # waking snoozed conversations
    "feedback": feedback_tasks,  # CSAT surveys after resolutions
    "mail": mail_tasks,  # password-reset and invitation e-mails
    "analytics": analytics_tasks,  # the analytics page's figures, every 5 minutes
    "gaps": gap_tasks,  # the knowledge-gap topics, hourly
    "events": events.blueprint,  # the application events' retention
    "sla": sla_tasks,  # SLA clocks: due times, warnings and breaches, every 15 seconds
}
# the channels this process serves: a new channel is its folder under atende/channels and one
# line here (docs/CHANNELS.md). Their routes are matched in this order, before all others: the
# API channel's POST /v1/messages, the busiest route, first.
CHANNELS = (
    api_channel.channel,
    webchat.channel,
    whatsapp.channel,
    email.channel,
)
for _channel in CHANNELS:
    channels.register(_channel)
# a WhatsApp message the bot takes is marked read (the blue ticks), from the worker's turn
turns.on_taken(whatsapp.KIND, whatsapp_read.mark_taken)
# the conversations' representations (API) show their SLA targets' due times
conversations.set_sla_reader(sla.due_times)
# the external credentials /health/ready verifies: the LLM endpoints, every channel account's
credentials.register("openai-compatible endpoints", llm_endpoints)
credentials.register("channel accounts", account_credentials)


async def database_url(settings: Settings) -> tuple[str, EmbeddedDatabase | None]:
    """The configured URL, or the URL of the embedded server (started if needed)."""
    if settings.database_url:
        return settings.database_url, None
    embedded = await asyncio.to_thread(start_embedded, settings.data_dir)
    return embedded.url, embedded


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    migrate_now: bool | None = None,
    listen: bool = True,
    embedded: EmbeddedDatabase | None = None,
) -> AsyncIterator[Runtime]:
    """A ready runtime; everything it started is stopped on exit, in reverse order.
    ``embedded``: an embedded server the caller started and stops (``atende serve`` starts
    it before uvicorn, to report a folder it cannot use in one line)."""
    if settings.database_url and settings.secret_key.get_secret_value() == DEV_SECRET:
        log.warning("config.insecure_secret_key", hint="set ATENDE_SECRET_KEY to a long random value")
    if embedded is not None:
        url, owned = embedded.url, None  # the caller's to stop
    else:
        url, owned = await database_url(settings)
    try:
        if settings.migrate_on_start if migrate_now is None else migrate_now:
            await asyncio.to_thread(migrate.upgrade, url)
        db = Database(
            url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout_seconds,
            pre_ping=settings.db_pre_ping,
        )
        runtime = Runtime(
            settings=settings, db=db, jobs=JobQueue(db.url, BLUEPRINTS), listener=Listener(db.url)
        )
        await runtime.jobs.open()
        if listen:
            runtime.listener.start()
        try:
            yield runtime
        finally:
            await credentials.stop_monitor(runtime)
            await events.settled()
            await runtime.listener.stop()
            await runtime.jobs.close()
            for channel in CHANNELS:  # their pooled connections (WhatsApp's Graph API client)
                await channel.close()
            await db.dispose()
    finally:
        if owned is not None:
            await asyncio.to_thread(owned.stop)


RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before the job worker starts again
STEADY_SECONDS = 60.0  # a job worker that ran this long starts again from the first delay


async def run_worker(runtime: Runtime, *, name: str, install_signal_handlers: bool = False) -> None:
    """Run jobs until cancelled (or, with ``install_signal_handlers``, until SIGINT/SIGTERM:
    running jobs finish first); the language models load first.

    procrastinate's worker stops by itself when one of its side tasks fails, typically the
    LISTEN connection when PostgreSQL restarts, and cannot start while the database is
    down: jobs would stop running here for good (an ``atende worker`` exited with status 0,
    an ``atende serve`` went on storing messages nobody answered). It is started again
    after a growing delay instead, until this process is told to stop."""
    from atende.knowledge import language

    await asyncio.to_thread(language.warm_up)
    stop = asyncio.Event()
    if install_signal_handlers:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    # the channels that fetch their messages (mailboxes) are watched beside the jobs
    watching = asyncio.create_task(watchers.run(runtime, stop), name="channel watchers")
    try:
        failures = 0
        while not stop.is_set():
            log.info("worker.started", name=name, concurrency=runtime.settings.worker_concurrency)
            started = time.monotonic()
            reason = await _run_job_worker(runtime, name, stop)
            if reason is None:
                return
            failures = 1 if time.monotonic() - started > STEADY_SECONDS else failures + 1
            delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS)) - 1]
            log.error("worker.stopped_unexpectedly", name=name, reason=reason, restart_in_seconds=delay)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    finally:
        stop.set()
        await stop_task(watching)


async def _run_job_worker(runtime: Runtime, name: str, stop: asyncio.Event) -> str | None:
    """Run procrastinate's worker until ``stop`` (``None``: stopped as asked, its running
    jobs finished) or until it ends by itself (returns why)."""
    jobs = asyncio.create_task(
        runtime.jobs.run_worker(
            concurrency=runtime.settings.worker_concurrency,
            context={"runtime": runtime},
            name=name,
            stalled_seconds=runtime.settings.stalled_job_seconds,
            # Sentry's (a no-op unless configured), then the failed-job events of /app/logs
            middleware=[report_job, events.record_failed_job],
        )
    )
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({jobs, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # asked to stop, or cancelled: procrastinate finishes its running jobs first
        stopping.cancel()
        if not jobs.done():
            jobs.cancel()
            with suppress(asyncio.CancelledError):
                await jobs
    if stop.is_set():
        return None
    if jobs.cancelled():
        return "cancelled"
    error = jobs.exception()
    return describe(error) if error is not None else "the job worker stopped (a side task failed)"


async def stop_task(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
