"""The ``atende`` command line (Typer). It only wires settings, the runtime and services."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from atende.config import Settings, get_settings
from atende.errors import AtendeError
from atende.runtime import Runtime

if TYPE_CHECKING:
    from atende.db.embedded import EmbeddedDatabase

app = typer.Typer(help="atende: AI customer support with human handoff.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and backups.", no_args_is_help=True)
companies_app = typer.Typer(help="Companies (tenants).", no_args_is_help=True)
users_app = typer.Typer(help="Users of a company's team.", no_args_is_help=True)
keys_app = typer.Typer(help="Company API keys.", no_args_is_help=True)
jobs_app = typer.Typer(help="The job queue.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(companies_app, name="companies")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(jobs_app, name="jobs")

console = Console()
err = Console(stderr=True)
T = TypeVar("T")
CompanyOpt = Annotated[str, typer.Option("--company", "-c", help="Company slug or id.")]
HostOpt = Annotated[
    str | None,
    typer.Option(help="Address to listen on (default: ATENDE_HOST, else 127.0.0.1).", show_default=False),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        min=1, max=65535, help="Port to listen on (default: ATENDE_PORT, else 8000).", show_default=False
    ),
]


def _fail(message: str, code: int = 1) -> NoReturn:
    """Say what went wrong on one line of standard error (never wrapped, markup shown as
    typed) and exit with ``code``."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    """The process's settings; a value that does not parse is one line naming the variable,
    not a traceback."""
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{_variable(error['loc'])}: {error['msg']}" for error in exc.errors(include_url=False)
        )
        _fail(f"invalid setting: {problems}", 2)


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable of a settings error's location (``port`` -> ``ATENDE_PORT``)."""
    name = str(loc[0]) if loc else "?"
    return name if name.isupper() else f"ATENDE_{name.upper()}"


def _configure_logs(settings: Settings, level: str | None = None, *, interactive: bool = True) -> None:
    from atende.observability.logging import configure

    configure(level or settings.log_level, settings.log_json, interactive=interactive)


@contextmanager
def _embedded_database(settings: Settings) -> Iterator[EmbeddedDatabase | None]:
    """The embedded PostgreSQL this command owns (``None`` with ATENDE_DATABASE_URL), stopped
    on exit; a folder it cannot start in is a one-line error before anything else starts."""
    from atende.db.embedded import start_embedded

    if settings.database_url:
        yield None
        return
    try:
        embedded = start_embedded(settings.data_dir)
    except AtendeError as exc:
        _fail(exc.message)
    try:
        yield embedded
    finally:
        embedded.stop()


def _run(work: Callable[[Runtime], Awaitable[T]], *, migrate: bool | None = None) -> T:
    """Run ``work`` with a runtime; domain errors become a message and exit code 1."""
    from atende.bootstrap import open_runtime

    settings = _settings()
    _configure_logs(settings, "WARNING")

    async def main() -> T:
        async with open_runtime(settings, migrate_now=migrate, listen=False) as runtime:
            return await work(runtime)

    try:
        return asyncio.run(main())
    except AtendeError as exc:
        _fail(exc.message)


def _progress() -> Progress:
    """The progress bars of long commands: what, how far, how long."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _check_port_free(host: str, port: int, choose: str = "--port (or ATENDE_PORT)") -> None:
    """Fail with a clear message, before starting anything, when the port is taken."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        _fail(f"cannot listen on {host}:{port} ({reason}); stop what uses it or choose another {choose}")


def _url_host(host: str) -> str:
    """``host`` as a browser reaches it: a wildcard address means this machine."""
    if host in ("", "0.0.0.0"):  # noqa: S104 (what is compared, not bound)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _listening(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings with ``--host``/``--port`` when given (they win over ATENDE_HOST and
    ATENDE_PORT); unless ATENDE_PUBLIC_URL is set, the public URL (the demo page's widget
    snippet) is where this server listens."""
    update: dict[str, Any] = {"host": host or settings.host, "port": port or settings.port}
    if "public_url" not in settings.model_fields_set:
        update["public_url"] = f"http://{_url_host(update['host'])}:{update['port']}"
    return settings.model_copy(update=update)


def _serve(
    settings: Settings, banner: Callable[[Any], None] | None = None, *, interactive: bool = False
) -> None:
    """Start the embedded database (when no URL is set) before uvicorn, so that a folder it
    cannot use is said in one line instead of a failed application start-up."""
    import uvicorn

    from atende.app import create_app

    _check_port_free(settings.host, settings.port)
    _configure_logs(settings, interactive=interactive)
    with _embedded_database(settings) as embedded:
        app_ = create_app(settings, on_ready=banner, embedded=embedded, interactive=interactive)
        uvicorn.run(
            app_,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            forwarded_allow_ips=settings.forwarded_allow_ips,  # the client address the web chat limits
        )


@app.command()
def serve(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run the API, the web chat and (unless ATENDE_RUN_WORKER=false) a job worker.

    Logs are JSON lines on standard error (ATENDE_LOG_JSON=false: readable lines)."""
    _serve(_listening(_settings(), host, port))


@app.command()
def demo(host: HostOpt = None, port: PortOpt = None) -> None:
    """Run atende with the demo company "Loja Exemplo" and its knowledge base.

    On a terminal, logs are readable lines (ATENDE_LOG_JSON=true: JSON lines)."""
    settings = _listening(_settings(), host, port).model_copy(update={"demo": True})

    def banner(info: Any) -> None:
        base = f"http://{_url_host(settings.host)}:{settings.port}"
        console.print(
            "\n[bold green]atende is running[/bold green] (Ctrl-C to stop)\n"
            f"  web chat demo  {base}/demo\n"
            f"  dashboard      {base}/app\n"
            f"    owner        {info.owner.email}  password {info.owner.password}\n"
            f"    agent        {info.agent.email}  password {info.agent.password}\n"
            f"  API docs       {base}/docs\n"
            f"  health         {base}/health/ready\n"
            f"  demo API key   {info.api_key}\n"
            f"  try: curl -s -X POST '{base}/v1/messages?wait=5' -H 'Authorization: Bearer {info.api_key}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"contact":{"external_id":"ana"},"text":"Qual o prazo de entrega?"}\'\n',
            highlight=False,
            soft_wrap=True,
        )

    _serve(settings, banner, interactive=True)


@app.command()
def worker(
    name: Annotated[str, typer.Option(help="Worker name shown in the queue.")] = "atende-worker",
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve Prometheus metrics at /metrics on this port, on ATENDE_HOST "
            "(default: ATENDE_WORKER_METRICS_PORT, else none).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a job worker process (scale out by running several).

    Logs are JSON lines on standard error (ATENDE_LOG_JSON=false: readable lines)."""
    from atende.bootstrap import open_runtime, run_worker
    from atende.observability import sentry

    settings = _settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    _configure_logs(settings, interactive=False)
    sentry.configure(settings, process="worker")
    if settings.worker_metrics_port is not None:
        from prometheus_client import start_http_server

        # the turns, LLM calls and webhook deliveries this worker runs are counted here
        _check_port_free(settings.host, settings.worker_metrics_port, "--metrics-port")
        start_http_server(settings.worker_metrics_port, addr=settings.host)

    async def main() -> None:
        async with open_runtime(settings) as runtime:
            await run_worker(runtime, name=name, install_signal_handlers=True)

    try:
        asyncio.run(main())
    except AtendeError as exc:
        _fail(exc.message)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (safe to run while other processes start)."""
    from atende.db.migrate import current_revision, head_revision, is_known

    async def work(runtime: Runtime) -> str | None:
        async with runtime.db.engine.connect() as conn:
            return await conn.run_sync(current_revision)

    revision = _run(work, migrate=True)
    if is_known(revision):
        console.print(f"database at revision {revision}")
    else:
        console.print(
            f"database at revision {revision}, newer than this release's {head_revision()}: "
            "left as it is (a rollback to an older release)",
            highlight=False,
        )


TimeoutOpt = Annotated[float, typer.Option(min=1, help="Seconds before the dump or restore is stopped.")]


@db_app.command("backup")
def db_backup(
    path: Annotated[Path, typer.Argument(help="The backup file to write (pg_dump custom format).")],
    timeout: TimeoutOpt = 3600,
) -> None:
    """Back up the whole database to one file (replaced only when the new one is complete)."""
    from atende.db import backup

    result = _with_database(
        "backing up",
        lambda url, embedded, step: backup.backup(
            url, path, embedded=embedded, timeout=timeout, on_step=step
        ),
    )
    console.print(
        f"backup written to {result.path} ({result.size / 1_048_576:.1f} MiB, PostgreSQL "
        f"{result.server_version}, pg_dump {result.tool.major}, {result.seconds:.1f} s)",
        highlight=False,
    )


@db_app.command("restore")
def db_restore(
    path: Annotated[Path, typer.Argument(help="A file written by `atende db backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds companies.")
    ] = False,
    timeout: TimeoutOpt = 3600,
) -> None:
    """Replace the configured database's data with a backup's, in one transaction (all or
    nothing); a backup of an older release is then brought up to date by `atende db upgrade`.
    Stop atende's servers and workers first; a database with data is refused without --force."""
    from atende.db import backup
    from atende.db.migrate import head_revision

    result = _with_database(
        "restoring",
        lambda url, embedded, step: backup.restore(
            url, path, embedded=embedded, force=force, timeout=timeout, on_step=step
        ),
    )
    console.print(
        f"restored {result.archive.entries} objects from {path} (migration {result.archive.revision}, "
        f"{result.companies} companies, {result.seconds:.1f} s)",
        highlight=False,
    )
    if result.skipped_grants:
        roles = ", ".join(sorted(result.skipped_grants))
        err.print(
            f"[yellow]warning:[/yellow] no role {roles} on this server, so the backup's grants were "
            "left out; create the role and grant what it needs (docs/ANALYTICS.md for atende_analytics)",
            highlight=False,
        )
    if result.revision != head_revision():
        console.print(
            f"the database is at migration {result.revision}, this atende's newest is {head_revision()}: "
            "run `atende db upgrade` (or start a matching atende version)",
            highlight=False,
        )


def _with_database(what: str, work: Callable[[str, bool, Callable[[str], None]], T]) -> T:
    """Run ``work(url, embedded, on_step)`` on the configured database (the embedded one
    started for it when ATENDE_DATABASE_URL is unset) with a spinner showing each step."""
    from rich.progress import SpinnerColumn

    settings = _settings()
    _configure_logs(settings, "WARNING")
    with _embedded_database(settings) as embedded:
        url = embedded.url if embedded is not None else str(settings.database_url)
        try:
            if not err.is_terminal:  # no spinner in logs and pipes
                return work(url, embedded is not None, lambda _step: None)
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            ) as progress:
                task = progress.add_task(what)
                return work(
                    url,
                    embedded is not None,
                    lambda step: progress.update(task, description=f"{what}: {step}"),
                )
        except AtendeError as exc:
            _fail(exc.message)


@companies_app.command("create")
def companies_create(
    name: Annotated[str, typer.Argument(help="Company name.")],
    slug: Annotated[str | None, typer.Option(help="URL-safe id (default: from the name).")] = None,
    language: Annotated[str, typer.Option(help="Default language: pt, en or es.")] = "pt",
) -> None:
    """Create a company; prints its id, slug and web chat widget key."""
    from atende.channels.webchat.api import company_widget_key
    from atende.tenancy import service

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.transaction() as session:
            company = await service.create_company(session, name=name, slug=slug, default_language=language)
            # its web chat account, created with it (a trigger on ``companies``)
            return company.id, company.slug, await company_widget_key(session, company.id)

    cid, cslug, widget = _run(work)
    console.print(f"company {cslug} created\n  id          {cid}\n  widget key  {widget}")


@companies_app.command("list")
def companies_list() -> None:
    """List companies."""
    from atende.tenancy import service

    async def work(runtime: Runtime) -> list[tuple[str, str, str]]:
        async with runtime.db.transaction() as session:
            return [(str(c.id), c.slug, c.name) for c in await service.list_companies(session)]

    table = Table("id", "slug", "name")
    for row in _run(work):
        table.add_row(*row)
    console.print(table)


async def _company_id(runtime: Runtime, ref: str) -> Any:
    from atende.tenancy import service

    async with runtime.db.transaction() as session:
        return (await service.get_company(session, ref)).id


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="The user's e-mail (their login).")],
    company: Annotated[
        str | None,
        typer.Option(
            "--company", "-c", help="Company slug or id (optional with --superadmin).", show_default=False
        ),
    ] = None,
    role: Annotated[str, typer.Option(help="owner, admin, agent or viewer.")] = "agent",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: Annotated[
        str | None,
        typer.Option(
            help="At least 8 characters. Seen by other users of this machine (the process list, "
            "the shell's history): prefer --password-stdin.",
            show_default=False,
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
    superadmin: Annotated[
        bool,
        typer.Option(
            "--superadmin",
            help="A platform superadmin: creates companies and their first owners on the dashboard "
            "(/app/platform/companies). An existing user is made one, their password unchanged.",
        ),
    ] = False,
) -> None:
    """Create a user in a company with a role, or a platform superadmin (--superadmin).

    The password is --password, the first line of standard input (--password-stdin), or asked
    for on a terminal; with none of them and no terminal (a script), a strong one is made up
    and printed once. They sign in to the dashboard at /app/login."""
    from atende.errors import InvalidInput
    from atende.tenancy import accounts, service
    from atende.tenancy.models import Role

    if company is None and not superadmin:
        _fail("give --company (or --superadmin for a platform superadmin)", 2)
    password, generated = _password(password, from_stdin=password_stdin)

    async def work(runtime: Runtime) -> tuple[Any, bool]:
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput(f"role must be one of owner, admin, agent, viewer; got '{role}'") from None
        created = True
        async with runtime.db.transaction() as session:
            if superadmin:
                user, created = await accounts.make_superadmin(
                    session, email=email, password=password, name=name
                )
                user_id = user.id
        if company is not None:
            company_id = await _company_id(runtime, company)
            async with runtime.db.transaction() as session:
                user = await service.create_user(
                    session, company_id=company_id, email=email, password=password, role=parsed, name=name
                )
                user_id = user.id
        return user_id, created

    user_id, created = _run(work)
    what = "superadmin" if superadmin and company is None else role
    if superadmin and company is not None:
        what = f"{role}, superadmin"
    if created:
        console.print(f"user {email} ({what}) created: {user_id}", highlight=False)
        if generated:
            console.print(f"  password  {password}  (made up: shown only now, store it)", highlight=False)
    else:
        console.print(
            f"user {email} is now a superadmin ({user_id}); their password is unchanged", highlight=False
        )


def _password(given: str | None, *, from_stdin: bool) -> tuple[str, bool]:
    """A new user's password and whether it was made up here: given, read from standard
    input, asked for on a terminal (twice, empty answers refused), or else generated (a
    script has nobody to ask)."""
    import secrets

    if given is not None and from_stdin:
        _fail("give --password or --password-stdin, not both", 2)
    if given is not None:
        return given, False
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            _fail("--password-stdin: standard input holds no password", 2)
        return line, False
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True), False
    return secrets.token_urlsafe(15), True


@keys_app.command("create")
def keys_create(
    company: CompanyOpt,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "api key",
    role: Annotated[str, typer.Option(help="admin, agent or viewer.")] = "admin",
    user: Annotated[
        str | None,
        typer.Option(help="A member's e-mail: a personal key that acts as them (an agent's own key)."),
    ] = None,
) -> None:
    """Create an API key. The key is printed once; only its hash is stored."""
    from atende.errors import InvalidInput
    from atende.tenancy import service
    from atende.tenancy.models import Role

    async def work(runtime: Runtime) -> tuple[str, str]:
        if role not in ("admin", "agent", "viewer"):
            raise InvalidInput(f"role must be admin, agent or viewer; got '{role}'")
        company_id = await _company_id(runtime, company)
        async with runtime.db.transaction() as session:
            key, full = await service.create_api_key(
                session,
                secret_key=runtime.secret_key,
                company_id=company_id,
                name=name,
                role=Role(role),
                user_email=user,
            )
            return key.prefix, full

    prefix, full = _run(work)
    console.print(f"API key {prefix} created. Store it now, it is not shown again:\n{full}", highlight=False)


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix, e.g. atd_ab12cd34.")]) -> None:
    """Revoke an API key: it stops working at once."""
    from atende.tenancy import service

    async def work(runtime: Runtime) -> None:
        async with runtime.db.transaction() as session:
            await service.revoke_api_key(session, prefix=prefix)

    _run(work)
    console.print(f"API key {prefix} revoked")


@keys_app.command("list")
def keys_list(company: CompanyOpt) -> None:
    """List a company's API keys (prefixes only); a personal key shows its user's e-mail."""
    from atende.tenancy import service

    async def work(runtime: Runtime) -> list[tuple[str, ...]]:
        company_id = await _company_id(runtime, company)
        async with runtime.db.transaction(company_id) as session:
            return [
                (
                    k.prefix,
                    k.name,
                    k.role,
                    email or "-",
                    "revoked" if k.revoked_at else "active",
                    f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
                )
                for k, email in await service.list_api_keys(session)
            ]

    table = Table("prefix", "name", "role", "user", "status", "last used (UTC)")
    for row in _run(work):
        table.add_row(*row)
    console.print(table)


def _collect(sources: list[str]) -> list[Path | str]:
    """Files (folders walked for the formats atende reads) and URLs, in the order given."""
    from atende.knowledge.parsing import CONTENT_TYPES

    files: list[Path | str] = []
    for source in sources:
        if source.startswith(("http://", "https://")):
            files.append(source)
            continue
        path = Path(source)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CONTENT_TYPES)
            )
        elif path.is_file():
            files.append(path)
        else:
            _fail(f"{path} is not a file or folder", 2)
    return files


@app.command()
def ingest(
    paths: Annotated[
        list[str], typer.Argument(help="Files, folders or URLs (.md, .html, .txt, .pdf, .docx, .csv FAQ).")
    ],
    company: CompanyOpt,
    language: Annotated[str | None, typer.Option(help="pt, en or es (default: detected).")] = None,
) -> None:
    """Add or update knowledge-base documents, with a progress bar."""
    from atende.knowledge import service
    from atende.knowledge.fetch import fetch
    from atende.knowledge.parsing import CONTENT_TYPES

    files = _collect(paths)
    if not files:
        kinds = ", ".join(sorted(CONTENT_TYPES))
        _fail(f"no {kinds} files found", 2)

    async def work(runtime: Runtime) -> tuple[int, int, list[str]]:
        from atende.knowledge.tasks import chunking, company_embedder

        company_id = await _company_id(runtime, company)
        embedder = await company_embedder(runtime, company_id)
        changed = unchanged = 0
        failures: list[str] = []
        with _progress() as progress:
            task = progress.add_task("indexing", total=len(files))

            def phase(description: str, total: int) -> Callable[[int], None]:
                sub = progress.add_task(description, total=total)
                done = 0

                def advance(n: int) -> None:  # a finished document's bar goes away
                    nonlocal done
                    done += n
                    progress.advance(sub, n)
                    if done >= total:
                        progress.remove_task(sub)

                return advance

            for file in files:
                try:
                    kind = None
                    if isinstance(file, str):  # a URL
                        fetched = await fetch(
                            file,
                            max_bytes=runtime.settings.max_document_bytes,
                            timeout=runtime.settings.ingest_fetch_timeout_seconds,
                            allow_private=runtime.settings.ingest_allow_private_networks,
                        )
                        data, kind = fetched.data, fetched.kind
                    else:
                        data = file.read_bytes()
                    result = await service.ingest(
                        runtime.db,
                        company_id,
                        source=str(file),
                        data=data,
                        max_bytes=runtime.settings.max_document_bytes,
                        chunking=chunking(runtime),
                        embedder=embedder,
                        content_type=kind,
                        lang=language,
                        progress=phase,
                    )
                    changed += result.changed
                    unchanged += not result.changed
                except AtendeError as exc:
                    failures.append(f"{file}: {exc.message}")
                progress.advance(task)
        return changed, unchanged, failures

    changed, unchanged, failures = _run(work)
    console.print(f"{changed} indexed, {unchanged} unchanged, {len(failures)} failed")
    for failure in failures:
        err.print(f"[red]failed:[/red] {escape(failure)}", highlight=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)


@app.command()
def reembed(company: CompanyOpt) -> None:
    """Embed the company's chunks that have no vector of its current model (after changing
    ATENDE_EMBEDDER or the company's embeddings endpoint), with a progress bar. Until then,
    those chunks are found by full-text search only; vectors of models are never mixed."""

    async def work(runtime: Runtime) -> tuple[str | None, int]:
        from atende.knowledge.service import embed_missing
        from atende.knowledge.tasks import company_embedder

        company_id = await _company_id(runtime, company)
        embedder = await company_embedder(runtime, company_id)
        if embedder is None:
            return None, 0
        with _progress() as progress:

            def phase(description: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(description, total=total)
                return lambda n: progress.advance(task, n)

            return embedder.model, await embed_missing(runtime.db, company_id, embedder, progress=phase)

    model, count = _run(work)
    if model is None:
        _fail("no embedder: ATENDE_EMBEDDER is 'none' and the company has no endpoint", 2)
    console.print(f"{count} chunks embedded with {model}")


@app.command("learn-terms")
def learn_terms(company: CompanyOpt) -> None:
    """Count which words the company's customers usually write, one vote per customer, from
    its latest 5,000 conversations (the worker does it every hour). Retrieval weighs those
    words less once at least 200 customers are counted (docs/EVALUATION.md)."""

    async def work(runtime: Runtime) -> tuple[int, int]:
        from atende.engine.tasks import learn_company_message_terms

        counted = await learn_company_message_terms(runtime, await _company_id(runtime, company), force=True)
        return counted or (0, 0)  # forced: it always counts

    from atende.knowledge.message_terms import CONTACTS_MIN

    contacts, lexemes = _run(work)
    console.print(f"{contacts} customers counted, {lexemes} distinct words")
    if contacts < CONTACTS_MIN:
        console.print(
            f"[yellow]fewer than {CONTACTS_MIN} customers:[/yellow] retrieval weighs every word alike"
            " until there are more"
        )


DEFAULT_QA_SET = Path("../shared/data/retrieval")


@app.command("eval")
def evaluate(
    directory: Annotated[
        Path, typer.Argument(help="A QA set: LANG.passages.jsonl + LANG.questions.jsonl per language.")
    ] = DEFAULT_QA_SET,
    lang: Annotated[str | None, typer.Option(help="Languages to measure, e.g. en,es (default: all).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Ask only the first N questions of each.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
    follow_ups: Annotated[
        bool,
        typer.Option(
            "--follow-ups",
            help="Also ask a multi-turn set built from the questions (a second question made "
            "elliptical, after the first) with and without the follow-up rewrite.",
        ),
    ] = False,
    rerank: Annotated[
        bool,
        typer.Option(
            help="The bot's pipeline retrieves with the learned re-ranker (retrieval is measured"
            " with and without it either way)."
        ),
    ] = True,
    vectors: Annotated[
        Path | None,
        typer.Option(
            help="A folder of chunk vectors saved by an earlier run (.npz, see docs/RANKER.md):"
            " chunks whose text matches are not embedded again."
        ),
    ] = None,
) -> None:
    """Measure retrieval and answers on a QA set, in scratch companies deleted afterwards.

    Prints recall@1/5/10 and MRR@10 of atende's retriever beside a plain BM25, the share of
    questions answered citing the gold passage, and, with half the documents left out, the
    handoff rate on questions the knowledge base cannot answer."""
    from atende.evaluation.report import answers_table, follow_ups_table, latency_table, retrieval_table
    from atende.evaluation.run import evaluate as run_evaluation

    if not directory.is_dir():
        hint = (
            "; pass the folder of a QA set (the public data sets' retrieval/ folder, or "
            "tests/data/retrieval in a clone of atende for a small sample)"
            if directory == DEFAULT_QA_SET
            else ""
        )
        _fail(f"{directory} is not a folder (a QA set has LANG.passages.jsonl files){hint}", 2)
    languages = [part.strip() for part in lang.split(",") if part.strip()] if lang else None

    async def work(runtime: Runtime) -> dict[str, Any]:
        with _progress() as progress:

            def phase(description: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(description, total=total)
                return lambda n: progress.advance(task, n)

            return await run_evaluation(
                runtime,
                directory,
                languages,
                limit=limit,
                progress=phase,
                follow_ups=follow_ups,
                rerank=rerank,
                vectors=vectors,
            )

    result = _run(work)
    console.print(retrieval_table(result["results"]))
    latency = latency_table(result["results"])
    if latency is not None:
        console.print(latency)
    console.print(answers_table(result["results"]))
    if follow_ups:
        console.print(follow_ups_table(result["follow_ups"]))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        console.print(f"results written to {json_out}")


@app.command("eval-questions")
def evaluate_questions(
    directory: Annotated[
        Path, typer.Argument(help="A QA set of long customer messages (e.g. ../shared/data/support).")
    ],
    lang: Annotated[str, typer.Option(help="The language to measure.")] = "pt",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Ask only N messages, spread over the set.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the results as JSON here.")
    ] = None,
) -> None:
    """Measure what splitting a message into its questions does: each message asked whole
    and split (each question looked up and answered on its own), in a scratch company.

    Prints the share of messages asking several questions and, per mode, the share answered,
    answered citing the gold passage, handed off (wholly or partly), and with half the
    documents left out, the answerable ones citing gold and the others handed off."""
    from atende.evaluation.questions import measure, questions_table

    if not directory.is_dir():
        _fail(f"{directory} is not a folder (a QA set has LANG.passages.jsonl files)", 2)

    async def work(runtime: Runtime) -> dict[str, Any]:
        with _progress() as progress:

            def phase(description: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(description, total=total)
                return lambda n: progress.advance(task, n)

            return await measure(runtime, directory, lang, limit=limit, progress=phase)

    result = _run(work)
    console.print(questions_table(result))
    if json_out:
        json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        console.print(f"results written to {json_out}")


@jobs_app.command("failed")
def jobs_failed(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List dead letters: jobs that failed every retry."""
    from atende.jobs.queue import failed_jobs

    async def work(runtime: Runtime) -> list[Any]:
        async with runtime.db.transaction() as session:
            return list(await failed_jobs(session))

    rows = _run(work)
    if as_json:
        console.print_json(json.dumps([r.__dict__ for r in rows], default=str))
        return
    table = Table("id", "task", "attempts", "queued at", "args")
    for r in rows:
        table.add_row(str(r.id), r.task, str(r.attempts), str(r.queued_at), json.dumps(r.args))
    console.print(table)
    if not rows:
        console.print("no failed jobs")
