"""Documents from URLs: fetched from a real HTTP server on 127.0.0.1 with a deadline, a size
limit, content-type checks and bounded redirects; each refusal names its reason and leaves
the knowledge base as it was."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from atende.errors import InvalidInput
from atende.knowledge.fetch import MAX_REDIRECTS, fetch
from tests.conftest import CompanyCtx, ask
from tests.fakes.site import Page, Site, running_site
from tests.knowledge.test_formats import RETURNS, make_pdf
from tests.test_cli import ATENDE

HTML = """<html><head><title>Entregas</title></head><body>
<h1>Entregas</h1><p>Entregamos em todo o Brasil. Para Manaus o prazo é de 12 dias úteis.</p>
</body></html>""".encode()


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with running_site() as server:
        server.pages = {
            "/entregas": Page(HTML, headers={"Content-Type": "text/html; charset=utf-8"}),
            "/trocas.pdf": Page(make_pdf([RETURNS]), headers={"Content-Type": "application/pdf"}),
            "/foto": Page(b"\x89PNG", headers={"Content-Type": "image/png"}),
            "/grande": Page(b"a" * 6_000_000, headers={"Content-Type": "text/plain"}),
            "/grande-sem-tamanho": Page(
                b"a" * 6_000_000, headers={"Content-Type": "text/plain"}, chunked=True
            ),
            "/lenta": Page(b"ok", headers={"Content-Type": "text/plain"}, delay=3),
            "/quebrada": Page(b"erro", 500, {"Content-Type": "text/plain"}),
        }
        for i in range(MAX_REDIRECTS + 2):
            target = "/entregas" if i == 0 else f"/r{i - 1}"
            server.pages[f"/r{i}"] = Page(b"", 302, {"Location": target})
        yield server


async def test_a_page_fetched_by_url_is_indexed_and_answers(company: CompanyCtx, site: Site) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"url": site.url("/entregas"), "language": "pt"}
    )
    assert r.status_code == 201, r.text
    document = r.json()["document"]
    assert (document["source"], document["title"], document["content_type"]) == (
        site.url("/entregas"),
        "Entregas",
        "html",
    )
    body = await ask(company.client, "Qual o prazo de entrega para Manaus?")
    assert "12 dias úteis" in body["reply"]["text"]
    again = await company.client.post(
        "/v1/documents?wait=true", json={"url": site.url("/entregas"), "language": "pt"}
    )
    assert again.status_code == 200 and again.json()["changed"] is False


async def test_a_pdf_by_url_and_a_redirect_within_the_limit_are_followed(
    company: CompanyCtx, site: Site
) -> None:
    r = await company.client.post("/v1/documents?wait=true", json={"url": site.url("/trocas.pdf")})
    assert r.status_code == 201 and r.json()["document"]["content_type"] == "pdf", r.text
    r = await company.client.post("/v1/documents?wait=true", json={"url": site.url(f"/r{MAX_REDIRECTS - 1}")})
    assert r.status_code == 201 and r.json()["document"]["title"] == "Entregas", r.text


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/foto", "serves 'image/png', which atende cannot read"),
        ("/grande", "the document is 6000000 bytes; the limit is"),
        ("/grande-sem-tamanho", "the document is larger than"),
        ("/quebrada", "the URL answered HTTP 500"),
        ("/nada", "the URL answered HTTP 404"),
        (f"/r{MAX_REDIRECTS + 1}", f"redirects more than {MAX_REDIRECTS} times"),
    ],
)
async def test_a_url_that_cannot_be_used_is_refused_with_its_reason(
    company: CompanyCtx, site: Site, path: str, reason: str
) -> None:
    before = (await company.client.get("/v1/documents")).json()
    r = await company.client.post("/v1/documents?wait=true", json={"url": site.url(path)})
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"]
    assert (await company.client.get("/v1/documents")).json() == before


async def test_a_slow_site_meets_the_deadline(site: Site) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidInput, match="did not answer within 1 s"):
        await fetch(site.url("/lenta"), max_bytes=10_000, timeout=1.0, allow_private=True)
    assert time.monotonic() - started < 2.0


async def test_private_addresses_are_refused_unless_allowed(site: Site) -> None:
    with pytest.raises(InvalidInput, match="not a public address"):
        await fetch(site.url("/entregas"), max_bytes=10_000, timeout=5.0, allow_private=False)


@pytest.mark.parametrize(
    "body", [{"url": "ftp://example.com/a"}, {"url": "http://x", "content": "y", "source": "a"}]
)
async def test_malformed_url_requests_are_refused(company: CompanyCtx, body: dict[str, str]) -> None:
    r = await company.client.post("/v1/documents?wait=true", json=body)
    assert r.status_code == 422, r.text


def test_the_cli_ingests_urls_beside_files(db_url: str, site: Site, tmp_path: Path) -> None:
    slug = f"url-{uuid.uuid4().hex[:8]}"
    env = {"ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS": "true"}
    assert cli(db_url, env, "companies", "create", "URLs", "--slug", slug).returncode == 0
    (tmp_path / "faq.md").write_text("# FAQ\n\nEntregamos em 3 dias úteis.\n")
    done = cli(
        db_url, env, "ingest", site.url("/entregas"), site.url("/foto"), str(tmp_path), "--company", slug
    )
    assert "2 indexed, 0 unchanged, 1 failed" in done.stdout, done.stdout + done.stderr
    assert "/foto: the URL serves 'image/png'" in done.stderr
    assert done.returncode == 1


def cli(db_url: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ATENDE, *args],
        env={
            **os.environ,
            "ATENDE_DATABASE_URL": db_url,
            "ATENDE_SECRET_KEY": "test-secret-key-0123456789",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
