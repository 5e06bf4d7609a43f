"""The ``atende`` command line, run as a real process against the test database."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx

from tests.conftest import ROOT, until_refused

ATENDE = str(ROOT / ".venv" / "bin" / "atende")


def run(db_url: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ATENDE_DATABASE_URL": db_url,
        "ATENDE_SECRET_KEY": "test-secret-key-0123456789",
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
    assert "wk_" in created.stdout

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
