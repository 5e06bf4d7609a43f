"""Stored files as a browser gets them, through the live server: the API's and the
dashboard's routes send a company's file to that company only, with its type, and never
let an HTML page or an SVG image run in atende's origin."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from atende.app import create_app
from atende.config import Settings
from atende.media.models import Media
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, free_port
from tests.fixtures.dashboard import add_person, browser_client, signed_in
from tests.fixtures.media import keep_file
from tests.fixtures.servers import serving
from tests.media.conftest import raw_client, s3_settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTML = b"<html><body><script>document.title='pwned'</script>hello</body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
OGG = b"OggS" + b"\x00" * 60


def assert_sandboxed(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"].startswith("sandbox;")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cross-origin-resource-policy"] == "same-origin"


@pytest.mark.parametrize(
    ("data", "content_type", "filename", "disposition"),
    [
        (PNG, "image/png", "foto.png", "inline; filename=\"foto.png\"; filename*=UTF-8''foto.png"),
        (OGG, "audio/ogg", None, "inline; filename="),
        (
            HTML,
            "text/html",
            "página.html",
            "attachment; filename=\"p_gina.html\"; filename*=UTF-8''p%C3%A1gina.html",
        ),
        (SVG, "image/svg+xml", "logo.svg", 'attachment; filename="logo.svg"'),
        (b"%PDF-1.4", "application/pdf", "boleto.pdf", 'attachment; filename="boleto.pdf"'),
        (b"?", "", "x", 'attachment; filename="x"'),
    ],
)
async def test_the_api_sends_a_file_with_its_type_and_only_pictures_and_sound_inline(
    company: CompanyCtx,
    runtime: Runtime,
    data: bytes,
    content_type: str,
    filename: str | None,
    disposition: str,
) -> None:
    media = await keep_file(runtime, company.id, data, content_type, filename)
    r = await company.client.get(f"/v1/media/{media.id}")
    assert r.status_code == 200, r.text
    assert r.content == data
    assert r.headers["content-type"].split(";")[0] == (content_type or "application/octet-stream")
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["content-disposition"].startswith(disposition)
    assert_sandboxed(r)


async def test_another_companys_file_is_a_404_to_the_api_and_its_own_reads_it(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    theirs = await keep_file(runtime, other_company.id, PNG, "image/png", "b.png")
    r = await company.client.get(f"/v1/media/{theirs.id}")
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert (await company.client.get(f"/v1/media/{uuid.uuid4()}")).status_code == 404
    assert (await other_company.client.get(f"/v1/media/{theirs.id}")).content == PNG
    async with httpx.AsyncClient(base_url=str(company.client.base_url)) as anonymous:
        assert (await anonymous.get(f"/v1/media/{theirs.id}")).status_code == 401


async def test_the_dashboard_sends_a_file_to_its_companys_people_only(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime, live_server: str
) -> None:
    html = await keep_file(runtime, company.id, HTML, "text/html", "carta.html")
    photo = await keep_file(runtime, company.id, PNG, "image/png", "foto.png")
    viewer = await add_person(runtime, company.id, Role.viewer)
    async with signed_in(live_server, viewer) as dashboard:
        r = await dashboard.get(f"/app/media/{photo.id}")
        assert (r.status_code, r.content, r.headers["content-type"]) == (200, PNG, "image/png")
        assert r.headers["content-disposition"].startswith("inline;")
        assert r.headers["cache-control"] == "private, max-age=300"
        assert_sandboxed(r)
        r = await dashboard.get(f"/app/media/{photo.id}", headers={"Range": "bytes=0-3"})
        assert (r.status_code, r.content) == (206, PNG[:4])
        r = await dashboard.get(f"/app/media/{html.id}")
        assert r.status_code == 200
        assert r.headers["content-disposition"].startswith("attachment;")
        assert_sandboxed(r)
    outsider = await add_person(runtime, other_company.id, Role.owner)
    async with signed_in(live_server, outsider) as dashboard:
        r = await dashboard.get(f"/app/media/{photo.id}")
        assert r.status_code == 404
        assert "There is nothing here." in r.text and PNG not in r.content
    async with browser_client(live_server) as stranger:
        r = await stranger.get(f"/app/media/{photo.id}")
        assert (r.status_code, r.headers["location"]) == (303, f"/app/login?next=/app/media/{photo.id}")
        assert PNG not in r.content


async def test_an_agent_uploads_a_file_larger_than_other_bodies_and_reads_it_back(
    company: CompanyCtx, other_company: CompanyCtx, settings: Settings
) -> None:
    photo = PNG * (settings.max_body_bytes // len(PNG) + 10)  # past the API's other bodies' limit
    r = await company.client.post(
        "/v1/media",
        params={"filename": "../../foto grande.png"},
        content=photo,
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["size_bytes"] == len(photo) and stored["filename"] == "foto grande.png"
    assert stored["sha256"] == hashlib.sha256(photo).hexdigest() and stored["content_type"] == "image/png"
    r = await company.client.get(f"/v1/media/{stored['id']}")
    assert (r.status_code, r.content) == (200, photo)
    assert (await other_company.client.get(f"/v1/media/{stored['id']}")).status_code == 404
    # any other route keeps its limit
    r = await company.client.post(
        "/v1/documents", content=photo, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413


async def test_an_upload_over_the_media_limit_is_refused_and_nothing_is_stored(
    live_app: FastAPI, company: CompanyCtx, runtime: Runtime
) -> None:
    # the live server's own settings object: its limit lowered for this test only
    served = live_app.state.runtime.settings
    limit = 2_000_000
    original = served.media_max_bytes
    served.media_max_bytes = limit
    try:
        r = await company.client.post(
            "/v1/media", content=b"v" * (limit + 1), headers={"Content-Type": "video/mp4"}
        )
    finally:
        served.media_max_bytes = original
    assert r.status_code == 413, r.text
    assert r.json() == {
        "detail": f"the file is larger than {limit} bytes, the largest the media store accepts "
        "(ATENDE_MEDIA_MAX_BYTES); nothing was stored",
        "code": "too_large",
    }
    async with runtime.db.transaction(company.id) as session:
        assert (await session.scalars(select(Media))).all() == []


async def test_a_viewer_key_cannot_upload(company: CompanyCtx, runtime: Runtime) -> None:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name="viewer", role=Role.viewer
        )
    async with company.with_key(full) as viewer:
        r = await viewer.post("/v1/media", content=PNG, headers={"Content-Type": "image/png"})
    assert r.status_code == 403


async def test_a_deployment_on_a_bucket_stores_and_serves_through_it(
    settings: Settings, company: CompanyCtx, other_company: CompanyCtx, s3_endpoint: str, bucket: str
) -> None:
    port = free_port()
    on_bucket = settings.model_copy(
        update={
            **s3_settings(s3_endpoint, bucket).model_dump(
                include={f for f in Settings.model_fields if "media" in f}
            ),
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "run_worker": False,
        }
    )
    with serving(create_app(on_bucket), port) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
            auth = {"Authorization": f"Bearer {company.api_key}"}
            r = await http.post(
                "/v1/media",
                params={"filename": "nota.svg"},
                content=SVG,
                headers={**auth, "Content-Type": "image/svg+xml"},
            )
            assert r.status_code == 201, r.text
            media_id = r.json()["id"]
            r = await http.get(f"/v1/media/{media_id}", headers=auth)
            assert (r.status_code, r.content, r.headers["content-type"]) == (200, SVG, "image/svg+xml")
            assert r.headers["content-disposition"].startswith("attachment;")
            assert_sandboxed(r)
            other = {"Authorization": f"Bearer {other_company.api_key}"}
            assert (await http.get(f"/v1/media/{media_id}", headers=other)).status_code == 404
            ready = (await http.get("/health/ready")).json()
            assert ready["checks"]["media"] == {
                "ok": True,
                "detail": f"S3 bucket {bucket} at {s3_endpoint}, prefix media/, reachable",
            }
    listed = raw_client(s3_endpoint).list_objects_v2(Bucket=bucket)  # type: ignore[attr-defined]
    assert [o["Key"] for o in listed["Contents"]] == [f"media/{company.id}/{media_id}"]


VIDEO = bytes(n % 251 for n in range(1000))


@pytest.mark.parametrize(
    ("header", "status", "body", "content_range"),
    [
        ("bytes=0-9", 206, VIDEO[:10], "bytes 0-9/1000"),
        ("bytes=990-", 206, VIDEO[990:], "bytes 990-999/1000"),
        ("bytes=-5", 206, VIDEO[995:], "bytes 995-999/1000"),
        ("bytes=995-5000", 206, VIDEO[995:], "bytes 995-999/1000"),
        ("bytes=1000-", 416, b"", "bytes */1000"),
        ("bytes=0-1,5-6", 200, VIDEO, None),  # several ranges: the whole file
        ("items=0-1", 200, VIDEO, None),
        ("bytes=9-1", 200, VIDEO, None),
    ],
)
async def test_a_player_gets_the_byte_range_it_asks_for(
    company: CompanyCtx, runtime: Runtime, header: str, status: int, body: bytes, content_range: str | None
) -> None:
    video = await keep_file(runtime, company.id, VIDEO, "video/mp4", "v.mp4")
    r = await company.client.get(f"/v1/media/{video.id}", headers={"Range": header})
    assert (r.status_code, r.content) == (status, body)
    assert r.headers.get("content-range") == content_range
    assert r.headers["accept-ranges"] == "bytes"
    assert_sandboxed(r)
