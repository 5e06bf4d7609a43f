"""The ``atende`` command line (Typer). It only wires settings, the runtime and services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from atende.config import Settings, get_settings
from atende.errors import AtendeError
from atende.runtime import Runtime

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


def _run(work: Callable[[Runtime], Awaitable[T]], *, migrate: bool | None = None) -> T:
    """Run ``work`` with a runtime; domain errors become a message and exit code 1."""
    from atende.bootstrap import open_runtime
    from atende.observability.logging import configure

    settings = get_settings()
    configure("WARNING", settings.log_json)

    async def main() -> T:
        async with open_runtime(settings, migrate_now=migrate, listen=False) as runtime:
            return await work(runtime)

    try:
        return asyncio.run(main())
    except AtendeError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from None


def _progress() -> Progress:
    """The progress bars of long commands: what, how far, how long."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _check_port_free(host: str, port: int) -> None:
    """Fail with a clear message, before starting anything, when the port is taken."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            err.print(
                f"[red]error:[/red] cannot listen on {host}:{port} ({exc.strerror}); "
                "stop what uses it or set ATENDE_PORT"
            )
            raise typer.Exit(1) from None


def _serve(settings: Settings, banner: Callable[[Any], None] | None = None) -> None:
    import uvicorn

    from atende.app import create_app

    _check_port_free(settings.host, settings.port)
    app_ = create_app(settings, on_ready=banner)
    uvicorn.run(
        app_,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        forwarded_allow_ips=settings.forwarded_allow_ips,  # the client address the web chat limits
    )


@app.command()
def serve() -> None:
    """Run the API, the web chat and (unless ATENDE_RUN_WORKER=false) a job worker."""
    _serve(get_settings())


@app.command()
def demo() -> None:
    """Run atende with the demo company "Loja Exemplo" and its knowledge base."""
    settings = get_settings().model_copy(update={"demo": True})

    def banner(info: Any) -> None:
        base = f"http://{settings.host}:{settings.port}"
        console.print(
            "\n[bold green]atende is running[/bold green] (Ctrl-C to stop)\n"
            f"  web chat demo  {base}/demo\n"
            f"  API docs       {base}/docs\n"
            f"  health         {base}/health/ready\n"
            f"  demo API key   {info.api_key}\n"
            f"  try: curl -s -X POST '{base}/v1/messages?wait=5' -H 'Authorization: Bearer {info.api_key}' "
            "-H 'Content-Type: application/json' "
            '-d \'{"contact":{"external_id":"ana"},"text":"Qual o prazo de entrega?"}\'\n',
            highlight=False,
            soft_wrap=True,
        )

    _serve(settings, banner)


@app.command()
def worker(
    name: Annotated[str, typer.Option(help="Worker name shown in the queue.")] = "atende-worker",
) -> None:
    """Run a job worker process (scale out by running several)."""
    from atende.bootstrap import open_runtime, run_worker
    from atende.observability import sentry
    from atende.observability.logging import configure

    settings = get_settings()
    configure(settings.log_level, settings.log_json)
    sentry.configure(settings, process="worker")
    if settings.worker_metrics_port is not None:
        from prometheus_client import start_http_server

        # the turns, LLM calls and webhook deliveries this worker runs are counted here
        start_http_server(settings.worker_metrics_port, addr=settings.host)

    async def main() -> None:
        async with open_runtime(settings) as runtime:
            await run_worker(runtime, name=name, install_signal_handlers=True)

    asyncio.run(main())


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

    from atende.db.embedded import start_embedded
    from atende.observability.logging import configure

    settings = get_settings()
    configure("WARNING", settings.log_json)
    embedded = None if settings.database_url else start_embedded(settings.data_dir)
    url = settings.database_url or embedded.url  # type: ignore[union-attr]
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
                url, embedded is not None, lambda step: progress.update(task, description=f"{what}: {step}")
            )
    except AtendeError as exc:
        err.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        if embedded is not None:
            embedded.stop()


@companies_app.command("create")
def companies_create(
    name: Annotated[str, typer.Argument(help="Company name.")],
    slug: Annotated[str | None, typer.Option(help="URL-safe id (default: from the name).")] = None,
    language: Annotated[str, typer.Option(help="Default language: pt, en or es.")] = "pt",
) -> None:
    """Create a company; prints its id, slug and web chat widget key."""
    from atende.tenancy import service

    async def work(runtime: Runtime) -> Any:
        async with runtime.db.transaction() as session:
            company = await service.create_company(session, name=name, slug=slug, default_language=language)
            return company.id, company.slug, company.widget_key

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
    company: CompanyOpt,
    role: Annotated[str, typer.Option(help="owner, admin, agent or viewer.")] = "agent",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="At least 8 characters."),
    ] = "",
) -> None:
    """Create a user in a company with a role."""
    from atende.errors import InvalidInput
    from atende.tenancy import service
    from atende.tenancy.models import Role

    async def work(runtime: Runtime) -> Any:
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput(f"role must be one of owner, admin, agent, viewer; got '{role}'") from None
        company_id = await _company_id(runtime, company)
        async with runtime.db.transaction() as session:
            user = await service.create_user(
                session, company_id=company_id, email=email, password=password, role=parsed, name=name
            )
            return user.id

    user_id = _run(work)
    console.print(f"user {email} ({role}) created: {user_id}")


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
    """List a company's API keys (prefixes only)."""
    from atende.tenancy import service

    async def work(runtime: Runtime) -> list[tuple[str, ...]]:
        company_id = await _company_id(runtime, company)
        async with runtime.db.transaction(company_id) as session:
            return [
                (
                    k.prefix,
                    k.name,
                    k.role,
                    "revoked" if k.revoked_at else "active",
                    f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
                )
                for k in await service.list_api_keys(session)
            ]

    table = Table("prefix", "name", "role", "status", "last used (UTC)")
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
            err.print(f"[red]error:[/red] {path} is not a file or folder")
            raise typer.Exit(2)
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
        err.print(f"[red]error:[/red] no {kinds} files found")
        raise typer.Exit(2)

    async def work(runtime: Runtime) -> tuple[int, int, list[str]]:
        from atende.knowledge.embedding import embedder_for
        from atende.knowledge.tasks import chunking, company_settings

        company_id = await _company_id(runtime, company)
        embedder = embedder_for(runtime, await company_settings(runtime, company_id))
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
        err.print(f"[red]failed:[/red] {failure}")
    if failures:
        raise typer.Exit(1)


@app.command()
def reembed(company: CompanyOpt) -> None:
    """Embed the company's chunks that have no vector of its current model (after changing
    ATENDE_EMBEDDER or the company's embeddings endpoint), with a progress bar. Until then,
    those chunks are found by full-text search only; vectors of models are never mixed."""

    async def work(runtime: Runtime) -> tuple[str | None, int]:
        from atende.knowledge.embedding import embedder_for
        from atende.knowledge.service import embed_missing
        from atende.knowledge.tasks import company_settings

        company_id = await _company_id(runtime, company)
        embedder = embedder_for(runtime, await company_settings(runtime, company_id))
        if embedder is None:
            return None, 0
        with _progress() as progress:

            def phase(description: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(description, total=total)
                return lambda n: progress.advance(task, n)

            return embedder.model, await embed_missing(runtime.db, company_id, embedder, progress=phase)

    model, count = _run(work)
    if model is None:
        err.print("[red]error:[/red] no embedder: ATENDE_EMBEDDER is 'none' and the company has no endpoint")
        raise typer.Exit(2)
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
) -> None:
    """Measure retrieval and answers on a QA set, in scratch companies deleted afterwards.

    Prints recall@1/5/10 and MRR@10 of atende's retriever beside a plain BM25, the share of
    questions answered citing the gold passage, and, with half the documents left out, the
    handoff rate on questions the knowledge base cannot answer."""
    from atende.evaluation.report import answers_table, retrieval_table
    from atende.evaluation.run import evaluate as run_evaluation

    if not directory.is_dir():
        hint = (
            "; pass the folder of a QA set (the public data sets' retrieval/ folder, or "
            "tests/data/retrieval in a clone of atende for a small sample)"
            if directory == DEFAULT_QA_SET
            else ""
        )
        err.print(
            f"[red]error:[/red] {directory} is not a folder (a QA set has LANG.passages.jsonl files){hint}"
        )
        raise typer.Exit(2)
    languages = [part.strip() for part in lang.split(",") if part.strip()] if lang else None

    async def work(runtime: Runtime) -> dict[str, Any]:
        with _progress() as progress:

            def phase(description: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(description, total=total)
                return lambda n: progress.advance(task, n)

            return await run_evaluation(runtime, directory, languages, limit=limit, progress=phase)

    result = _run(work)
    console.print(retrieval_table(result["results"]))
    console.print(answers_table(result["results"]))
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
