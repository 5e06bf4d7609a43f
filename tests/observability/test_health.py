"""``/health/live``, the deep ``/health/ready`` and migrations that are safe to run twice.

Readiness is checked against real databases in the states an operator meets: at head,
behind (migrated only to ``0001``), with an old job waiting, and unreachable.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import psycopg
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from atende.app import create_app
from atende.config import Settings
from atende.db import migrate
from atende.db.url import libpq_url, sqlalchemy_url
from atende.observability.health import as_json, readiness
from tests.conftest import free_port
from tests.fixtures.servers import fresh_database, runtime_on


def upgrade_to(url: str, revision: str) -> None:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.upgrade(migrate._config(conn), revision)
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return migrate.current_revision(conn)
    finally:
        engine.dispose()


def dead_url() -> str:
    """A PostgreSQL URL on a local port nothing listens on."""
    return f"postgresql://atende@127.0.0.1:{free_port()}/atende"


# --- the live server ----------------------------------------------------------------------------


async def test_liveness_answers_ok(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        r = await client.get("/health/live")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_readiness_reports_each_check_ok_when_everything_is_up(
    live_server: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "migrations", "job_backlog", "media", "llm", "credentials"}
    # the credentials are other tests' companies' (endpoints long stopped): they may only degrade
    assert body["status"] in ("ok", "degraded")
    assert body["degraded"] in ([], ["credentials"])
    assert all(check["ok"] for name, check in body["checks"].items() if name != "credentials"), body
    assert body["checks"]["migrations"]["detail"] == f"at {migrate.head_revision()}"
    assert "waiting" in body["checks"]["job_backlog"]["detail"]
    assert body["checks"]["media"]["detail"] == f"local folder {settings.media_root}, writable"


# --- readiness against databases in other states -------------------------------------------------


async def test_a_database_behind_on_migrations_is_not_ready_and_says_so(
    pg_url: str, settings: Settings
) -> None:
    url = fresh_database(pg_url)
    await asyncio.to_thread(upgrade_to, url, "0001")
    async with runtime_on(url, settings) as runtime:
        ok, checks = await readiness(runtime)
    report = as_json(ok, checks)
    assert not ok
    assert "migrations" in report["failing"]
    assert report["checks"]["database"]["ok"], report  # reachable: the failure is named, not blamed on it
    assert report["checks"]["migrations"]["detail"] == f"at 0001, pending up to {migrate.head_revision()}"


async def test_an_empty_database_is_not_ready_until_migrated(pg_url: str, settings: Settings) -> None:
    url = fresh_database(pg_url)
    async with runtime_on(url, settings) as runtime:
        ok, checks = await readiness(runtime)
        assert not ok
        report = as_json(ok, checks)
        assert "migrations" in report["failing"]
        assert "job_backlog" in report["degraded"]  # its table is missing too, but it is not critical
        await asyncio.to_thread(migrate.upgrade, url)
        ok, checks = await readiness(runtime)
    assert ok, as_json(ok, checks)


async def test_an_old_waiting_job_degrades_readiness_without_failing_it(
    pg_url: str, settings: Settings
) -> None:
    url = fresh_database(pg_url)
    await asyncio.to_thread(migrate.upgrade, url)
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, scheduled_at)"
            " VALUES ('default', 'engine:run_turn', '{}', 'todo', now() - interval '1 hour')"
        )
    async with runtime_on(url, settings) as runtime:
        ok, checks = await readiness(runtime)
    report = as_json(ok, checks)
    # the load balancer keeps sending messages: intake works, the workers are behind
    assert ok and report["status"] == "degraded" and report["failing"] == [], report
    assert report["degraded"] == ["job_backlog"], report
    assert report["checks"]["job_backlog"]["detail"].startswith("1 waiting, oldest 36")


async def test_the_backlog_limit_is_a_setting(pg_url: str, settings: Settings) -> None:
    url = fresh_database(pg_url)
    await asyncio.to_thread(migrate.upgrade, url)
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        for minutes in (90, 30):
            await conn.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, scheduled_at)"
                " VALUES ('default', 'engine:run_turn', '{}', 'todo', now() - make_interval(mins => %s))",
                (minutes,),
            )
        await conn.execute(  # not due yet: not waiting
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, scheduled_at)"
            " VALUES ('default', 'engine:run_turn', '{}', 'todo', now() + interval '1 hour')"
        )
    patient = settings.model_copy(update={"job_backlog_max_age_seconds": 7200.0})
    async with runtime_on(url, patient) as runtime:
        ok, checks = await readiness(runtime)
    report = as_json(ok, checks)
    assert ok and report["failing"] == [], report
    assert report["checks"]["job_backlog"]["detail"].startswith("2 waiting, oldest 540")  # 5400 s
    assert report["checks"]["job_backlog"]["detail"].endswith("(limit 7200s)")


async def test_an_unreachable_database_fails_the_database_check(settings: Settings) -> None:
    async with runtime_on(dead_url(), settings) as runtime, asyncio.timeout(20):
        ok, checks = await readiness(runtime)
    report = as_json(ok, checks)
    assert not ok
    assert report["failing"] == ["database"], report
    assert "OperationalError" in report["checks"]["database"]["detail"]


async def test_the_ready_endpoint_answers_503_naming_the_unreachable_database(settings: Settings) -> None:
    """A second app whose database is down: served in-process, its runtime set by hand
    (its lifespan would need the database)."""
    down = settings.model_copy(
        update={"database_url": dead_url(), "migrate_on_start": False, "run_worker": False}
    )
    app = create_app(down)
    async with runtime_on(down.database_url or "", down) as runtime:
        app.state.runtime = runtime
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atende", timeout=20) as client:
            ready = await client.get("/health/ready")
            live = await client.get("/health/live")
    assert ready.status_code == 503, ready.text
    assert ready.json()["status"] == "fail"
    assert ready.json()["failing"] == ["database"]
    assert ready.headers["x-request-id"]
    assert live.status_code == 200  # alive, only not ready


# --- migrations ------------------------------------------------------------------------------------


def test_migrating_twice_is_a_no_op(pg_url: str) -> None:
    url = fresh_database(pg_url)
    migrate.upgrade(url)
    migrate.upgrade(url)
    assert revision_of(url) == migrate.head_revision()


def test_two_processes_migrating_a_fresh_database_at_once_both_succeed(pg_url: str) -> None:
    url = fresh_database(pg_url)
    start = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            migrate.upgrade(url)
        except BaseException as exc:  # reported below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=run, name=f"migrate-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a migration hung"
    assert errors == []
    assert revision_of(url) == migrate.head_revision()


async def test_a_database_migrated_by_a_newer_release_leaves_this_one_serving(
    pg_url: str, settings: Settings
) -> None:
    """A rolling deploy or a rollback: the schema is one migration ahead of this code. The
    instance stays ready (migrations are additive), and migrating at start leaves it alone."""
    url = fresh_database(pg_url)
    await asyncio.to_thread(migrate.upgrade, url)
    async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as conn:
        await conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    assert await asyncio.to_thread(migrate.upgrade, url) == "9999_from_the_future"  # no error
    assert revision_of(url) == "9999_from_the_future"
    async with runtime_on(url, settings) as runtime:
        ok, checks = await readiness(runtime)
    report = as_json(ok, checks)
    assert ok and report["failing"] == [], report
    assert report["checks"]["migrations"]["detail"] == (
        f"at 9999_from_the_future, newer than this release's {migrate.head_revision()}"
    )
