"""What atende serves to browsers says how it may be used: every HTML page carries a
Content-Security-Policy that lets nobody frame it, ``nosniff`` and ``Referrer-Policy``; the
widget's script and endpoints, which customers' sites embed, stay embeddable (CORS as before).
The API docs still load Swagger UI from its CDN, and its inline start-up script only."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import CompanyCtx


@pytest.fixture
async def web(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = [d.split() for d in response.headers["content-security-policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def assert_page_headers(response: httpx.Response) -> dict[str, list[str]]:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    directives = policy(response)
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"] and directives["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in directives.get("script-src", [])
    assert "'unsafe-eval'" not in directives.get("script-src", [])
    return directives


async def test_atendes_own_pages_allow_nothing_but_atende_and_no_framing(demo_server: str) -> None:
    async with httpx.AsyncClient(base_url=demo_server, timeout=10) as web:
        for path, status in (("/demo", 200), ("/demo?company=nope", 404)):
            r = await web.get(path)
            assert r.status_code == status, r.text
            directives = assert_page_headers(r)
            assert directives["default-src"] == ["'self'"]
            assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
            assert "<style" not in r.text and "<script>" not in r.text  # nothing inline to allow
        css = await web.get("/demo.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_the_api_docs_allow_their_cdn_and_exactly_their_inline_script(web: httpx.AsyncClient) -> None:
    r = await web.get("/docs")
    assert r.status_code == 200
    directives = assert_page_headers(r)
    for url in re.findall(r'<script src="([^"]+)"', r.text):
        assert any(url.startswith(source) for source in directives["script-src"]), url
    for url in re.findall(r'<link type="text/css" rel="stylesheet" href="([^"]+)"', r.text):
        assert any(url.startswith(source) for source in directives["style-src"]), url
    [inline] = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in directives["script-src"]
    assert directives["connect-src"] == ["'self'"]  # the spec and "Try it out" go to atende
    assert "/openapi.json" in inline

    for path in ("/docs/oauth2-redirect", "/redoc"):
        page = await web.get(path)
        assert page.status_code == 200, path
        assert_page_headers(page)
    spec = await web.get("/openapi.json")
    assert spec.status_code == 200 and spec.headers["x-content-type-options"] == "nosniff"


async def test_the_widget_stays_embeddable_on_any_site(web: httpx.AsyncClient, company: CompanyCtx) -> None:
    shop = {"Origin": "https://shop.example"}
    js = await web.get("/widget.js", headers=shop)
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["x-content-type-options"] == "nosniff"  # it is run as the script it says it is
    for name in ("content-security-policy", "x-frame-options"):
        assert name not in js.headers
    started = await web.post(f"/widget/v1/{company.widget_key}/conversations", json={}, headers=shop)
    assert started.status_code == 201
    assert started.headers["access-control-allow-origin"] == "*"
    assert "content-security-policy" not in started.headers
