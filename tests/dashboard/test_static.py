"""The dashboard's static files: vendored htmx with its licence and our own CSS and script,
served from the package (nothing from a CDN), cached for a year under a versioned URL."""

from __future__ import annotations

import re

import httpx

from atende.dashboard.web import STATIC, static_url


async def test_pages_load_only_versioned_files_of_atende_itself(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        page = await client.get("/app/login")
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = [s for s in sources if "/static/" in s]
        assert {a.split("?")[0].rsplit("/", 1)[1] for a in assets} == {
            "dashboard.css",
            "htmx-2.0.11.min.js",
            "dashboard.js",
        }
        assert all(a.startswith("/app/static/") and "?v=" in a for a in assets)
        assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
        for asset in assets:
            response = await client.get(asset)
            assert response.status_code == 200
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            name = asset.split("?")[0].rsplit("/", 1)[1]
            assert response.content == (STATIC / name).read_bytes()
        script = await client.get(static_url("htmx-2.0.11.min.js"))
        assert script.headers["content-type"].startswith("text/javascript")
        assert "htmx" in script.text


async def test_an_unversioned_or_unknown_file(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        plain = await client.get("/app/static/dashboard.css")
        assert plain.headers["cache-control"] == "public, max-age=300"
        licence = await client.get("/app/static/htmx-2.0.11.LICENSE.txt")
        assert licence.status_code == 200
        assert "Zero-Clause BSD" in licence.text
        for path in ("/app/static/nope.js", "/app/static/..%2Fweb.py", "/app/static/%2e%2e/auth.py"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "def " not in response.text
