"""Importing a company's closed dates from an iCalendar file, sent or fetched from a URL: what
``POST /v1/company/hours/ics`` and the dashboard's holidays page both do.

The hours must be set first (the period is read in their timezone). A URL is fetched within
the deployment's limits (timeout, the size an upload may have, no private addresses unless
``ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS``); the file is read in a worker process outside any
transaction (``service.read_calendar``); its closures then replace the ones imported before.
Every refusal is an ``InvalidInput`` on ``ics`` (or ``hours``), and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from atende.errors import InvalidInput
from atende.netguard import fetch_limited
from atende.teams import service
from atende.tenancy.deps import Tenant

ICS_TYPES = {"text/calendar": "ics", "text/plain": "ics", "application/octet-stream": "ics"}
MAX_SKIPPED = 100  # timed events named back, at most


@dataclass(frozen=True)
class CalendarImport:
    hours: dict[str, Any]  # as stored after the import
    imported: int  # closed dates the calendar added
    skipped: list[str]  # timed events, not imported (the first MAX_SKIPPED)


def max_calendar_bytes(tenant: Tenant) -> int:
    """The largest calendar taken, fetched or uploaded."""
    settings = tenant.runtime.settings
    return min(settings.max_document_bytes, settings.max_body_bytes)


async def import_calendar(
    tenant: Tenant, *, data: bytes | None = None, url: str | None = None
) -> CalendarImport:
    """Import the calendar ``data``, or the one at ``url``."""
    settings = tenant.runtime.settings
    now = tenant.runtime.clock()
    async with tenant.transaction() as session:  # before fetching: no hours, nothing to import into
        first, last = await service.ics_period(session, tenant.principal.company_id, now)
    if url:
        if not url.lower().startswith(("http://", "https://")):
            raise InvalidInput(
                f"url: '{url[:100]}' is not an http(s) address, such as https://...", field="url"
            )
        fetched = await fetch_limited(
            url,
            kinds=ICS_TYPES,
            max_bytes=max_calendar_bytes(tenant),
            timeout=settings.ingest_fetch_timeout_seconds,
            allow_private=settings.ingest_allow_private_networks,
            what="calendar",
            setting="ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS",
        )
        data = fetched.data
    if not data or not data.strip():
        raise InvalidInput("ics: send the calendar as the request body, or a url", field="ics")
    # read outside any transaction (no row locked, no connection held while it runs)
    imported = await service.read_calendar(data, first, last, seconds=settings.ics_import_timeout_seconds)
    async with tenant.transaction() as session:
        stored = await service.store_closures(session, tenant.principal.company_id, imported)
    return CalendarImport(stored, len(imported.closed), imported.skipped[:MAX_SKIPPED])
