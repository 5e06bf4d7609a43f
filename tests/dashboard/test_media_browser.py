"""A customer's file in real Chromium, signed in to the dashboard: an HTML page or an SVG
image is downloaded, never run, and a picture opens in place inside a sandbox (an opaque
origin without script), so nothing a customer sends can act with an agent's session."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

from playwright.async_api import Browser
from playwright.async_api import Error as PlaywrightError

from atende.runtime import Runtime
from tests.dashboard.browser import TIMEOUT_MS, sign_in
from tests.fixtures.dashboard import Team, new_address
from tests.fixtures.media import keep_file

RAN = "document.title='ran'; alert('ran'); fetch('/app/users', {method: 'POST'})"
HTML = f"<!doctype html><title>letter</title><script>{RAN}</script><p>hello</p>".encode()
SVG = f'<svg xmlns="http://www.w3.org/2000/svg"><script>{RAN}</script></svg>'.encode()
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


async def test_a_customers_html_or_svg_is_downloaded_never_run_and_a_picture_is_sandboxed(
    chromium: Browser, runtime: Runtime, team: Team, live_server: str
) -> None:
    files = [
        (await keep_file(runtime, team.company_id, HTML, "text/html", "carta.html"), HTML),
        (await keep_file(runtime, team.company_id, SVG, "image/svg+xml", "logo.svg"), SVG),
    ]
    photo = await keep_file(runtime, team.company_id, PNG, "image/png", "foto.png")
    context = await chromium.new_context(
        base_url=live_server, accept_downloads=True, extra_http_headers={"X-Forwarded-For": new_address()}
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = await context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        await sign_in(page, team.agent.email, team.agent.password)
        dashboard_title = await page.title()
        for media, data in files:
            async with page.expect_download() as started:
                with contextlib.suppress(PlaywrightError):  # "Download is starting": no page
                    await page.goto(f"/app/media/{media.id}")
            download = await started.value
            assert download.suggested_filename == media.filename
            assert Path(await download.path()).read_bytes() == data
            assert await page.title() == dashboard_title  # still the dashboard, nothing ran
        assert dialogs == []

        await page.goto(f"/app/media/{photo.id}")
        assert await page.evaluate("document.contentType") == "image/png"
        assert await page.evaluate("self.origin") == "null"  # sandboxed: not the dashboard's origin
        size = await page.evaluate("[document.images[0].naturalWidth, document.images[0].naturalHeight]")
        assert size == [1, 1]
    finally:
        await context.close()
