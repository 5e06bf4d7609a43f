"""Hostile holiday calendars through the live server. A file of a few bytes can describe a
million events, or a rule that the recurrence library searches to the year 9999: either
answers 422 within seconds, the schedule unchanged, and while it is read the server keeps
answering everyone else (here its liveness probe, polled throughout)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from atende.config import Settings
from tests.conftest import Clock, CompanyCtx
from tests.fakes.site import Page, Site, running_site
from tests.hours.test_ics import FLOOD
from tests.tenancy.test_support_api import HOURS, WEDNESDAY_10H, ics_calendar, ics_event, post_ics, put_hours

# the 30th of February: dateutil looks for it day by day until the year 9999 (seconds of CPU)
NEVER = ics_calendar(
    ics_event("never", "DTSTART;VALUE=DATE:20260304", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "SUMMARY:x")
)
HOLIDAY = ics_calendar(ics_event("ferias", "DTSTART;VALUE=DATE:20260810", "SUMMARY:Férias coletivas"))
# seconds: a liveness probe slower than this means the event loop was held (through the 1 s
# budget, a probe would take over 1 s; one probe of 0.63 s was seen on a busy 2-core machine)
PROBE_LIMIT = 0.8


@pytest.fixture(scope="module")
def hostile_site() -> Iterator[Site]:
    with running_site() as server:
        server.pages = {"/flood.ics": Page(FLOOD, headers={"Content-Type": "text/calendar"})}
        yield server


@asynccontextmanager
async def probing(base_url: str) -> AsyncIterator[list[float]]:
    """``/health/live`` polled every 50 ms while the block runs; yields each probe's time."""
    times: list[float] = []
    done = asyncio.Event()

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            while not done.is_set():
                started = time.monotonic()
                r = await client.get("/health/live")
                times.append(time.monotonic() - started)
                assert r.status_code == 200, r.text
                await asyncio.sleep(0.05)

    task = asyncio.create_task(poll())
    await asyncio.sleep(0.2)  # a few probes before
    try:
        yield times
    finally:
        await asyncio.sleep(0.2)  # and after
        done.set()
        await task


async def import_by(company: CompanyCtx, via: str, site: Site) -> httpx.Response:
    if via == "url":
        return await company.client.post("/v1/company/hours/ics", params={"url": site.url("/flood.ics")})
    return await post_ics(company.client, FLOOD)


@pytest.mark.parametrize("via", ["body", "url"])
async def test_a_183_byte_calendar_repeating_every_minute_is_refused_at_the_cap_without_holding_the_server(
    company: CompanyCtx, clock: Clock, live_server: str, hostile_site: Site, via: str
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    before = (await company.client.get("/v1/company/hours")).json()
    async with probing(live_server) as probes:
        started = time.monotonic()
        r = await import_by(company, via, hostile_site)
        took = time.monotonic() - started
    assert len(probes) >= 5 and max(probes) < PROBE_LIMIT, probes
    assert took < 3.0
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "ics"
    assert "more than 5000 events between 2026-03-04 and" in r.json()["detail"]
    assert "atende imports at most 5000" in r.json()["detail"]
    assert (await company.client.get("/v1/company/hours")).json() == before


async def test_a_rule_that_never_matches_is_stopped_at_the_time_budget_and_the_next_import_works(
    company: CompanyCtx, clock: Clock, live_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "ics_import_timeout_seconds", 1.0)  # the live server's own settings
    clock.at(WEDNESDAY_10H)
    await put_hours(company.client, HOURS)
    before = (await company.client.get("/v1/company/hours")).json()
    async with probing(live_server) as probes:
        started = time.monotonic()
        r = await post_ics(company.client, NEVER)
        took = time.monotonic() - started
    assert len(probes) >= 5 and max(probes) < PROBE_LIMIT, probes
    assert took < 4.0  # the budget, the second the reader gets to stop, and the request itself
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "ics"
    assert "takes more than 1 s to read (ATENDE_ICS_IMPORT_TIMEOUT_SECONDS)" in r.json()["detail"]
    assert (await company.client.get("/v1/company/hours")).json() == before

    r = await post_ics(company.client, HOLIDAY)  # a new reader replaces the one stopped
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 1
