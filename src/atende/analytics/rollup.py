"""Bringing a company's analytics figures up to date: one row per conversation in
``analytics_conversation_facts``, its durations measured in the company's business time.

The timestamps come from the views BI tools read (``analytics.conversations``, whose first
handoff's reason is ``analytics.handoffs``'), so the page and Metabase count the same thing;
only the durations are new: the open time of the company's hours between two of those
instants, which SQL cannot measure (holidays, special hours, DST), so Python does
(``BusinessClock``). A run reads only the conversations changed since the previous one (their
``updated_at``, which every message and state change moves), less a margin for transactions
that were still open then; when the company's hours change, every conversation is measured
again. Then the days those conversations started on (in the company's timezone) are summed
again into ``analytics_daily``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.analytics.clock import BusinessClock
from atende.analytics.models import Refresh
from atende.teams.settings import schedule_of, stored_hours
from atende.tenancy.models import Company

# a change committed after a run by a transaction that began before it has an older updated_at
OVERLAP = timedelta(minutes=5)
BATCH = 5000

CHANGED = text(
    """
    SELECT v.conversation_id, v.created_at, v.channel, v.language, c.team_id, c.assignee_id,
           v.state, v.agent_messages, v.first_customer_message_at, b.first_bot_at,
           v.first_handoff_at, v.handoff_reason, v.first_agent_message_at, v.resolved_at
      FROM analytics.conversations v
      JOIN public.conversations c ON c.id = v.conversation_id
      LEFT JOIN LATERAL (
            SELECT min(x.created_at) AS first_bot_at
              FROM public.messages x
             WHERE x.conversation_id = v.conversation_id
               AND x.author = 'bot'
               AND x.created_at >= v.first_customer_message_at
      ) b ON true
     WHERE v.company_id = :company
       AND (CAST(:since AS timestamptz) IS NULL OR v.updated_at >= CAST(:since AS timestamptz))
    """
)

UPSERT = text(
    """
    INSERT INTO analytics_conversation_facts AS f
           (conversation_id, company_id, created_at, channel, language, team_id, assignee_id, state,
            ai_resolved, handoff_reason, bot_first_response_seconds, agent_first_response_seconds,
            resolution_seconds, computed_at)
    SELECT u.conversation_id, :company, u.created_at, u.channel, u.language, u.team_id, u.assignee_id,
           u.state, u.ai_resolved, u.handoff_reason, u.bot, u.agent, u.resolution, now()
      FROM unnest(CAST(:ids AS uuid[]), CAST(:created AS timestamptz[]), CAST(:channels AS text[]),
                  CAST(:languages AS text[]), CAST(:teams AS uuid[]), CAST(:assignees AS uuid[]),
                  CAST(:states AS text[]), CAST(:ai AS boolean[]), CAST(:reasons AS text[]),
                  CAST(:bots AS float8[]), CAST(:agents AS float8[]), CAST(:resolutions AS float8[]))
           AS u(conversation_id, created_at, channel, language, team_id, assignee_id, state, ai_resolved,
                handoff_reason, bot, agent, resolution)
    ON CONFLICT (conversation_id) DO UPDATE
       SET channel = excluded.channel, language = excluded.language, team_id = excluded.team_id,
           assignee_id = excluded.assignee_id, state = excluded.state, ai_resolved = excluded.ai_resolved,
           handoff_reason = excluded.handoff_reason,
           bot_first_response_seconds = excluded.bot_first_response_seconds,
           agent_first_response_seconds = excluded.agent_first_response_seconds,
           resolution_seconds = excluded.resolution_seconds, computed_at = excluded.computed_at
    """
)


# the handoff reasons' order in ``analytics_daily.reasons`` (the categories of analytics.handoffs)
REASONS = ("requested", "rule", "repeat", "evidence", "failure", "manual")
_REASON_COUNTS = ", ".join(f"count(*) FILTER (WHERE f.handoff_reason = '{r}')" for r in REASONS)
_HOUR_COUNTS = ", ".join(f"count(*) FILTER (WHERE l.hour = {h})" for h in range(24))
DAILY = text(
    f"""
    INSERT INTO analytics_daily
           (company_id, day, channel, team_id, language, conversations, ai_resolved, handed_off,
            reasons, hours)
    SELECT :company, l.day, f.channel, f.team_id, f.language, count(*),
           count(*) FILTER (WHERE f.ai_resolved), count(f.handoff_reason),
           ARRAY[{_REASON_COUNTS}], ARRAY[{_HOUR_COUNTS}]
      FROM analytics_conversation_facts f
     CROSS JOIN LATERAL (
            SELECT (f.created_at AT TIME ZONE :tz)::date AS day,
                   extract(hour FROM f.created_at AT TIME ZONE :tz)::int AS hour
     ) l
     WHERE f.company_id = :company
       AND (CAST(:days AS date[]) IS NULL
            OR (f.created_at >= :from_at AND f.created_at < :to_at AND l.day = ANY(CAST(:days AS date[]))))
     GROUP BY l.day, f.channel, f.team_id, f.language
    """
)
DAILY_GONE = text(
    "DELETE FROM analytics_daily WHERE company_id = :company"
    " AND (CAST(:days AS date[]) IS NULL OR day = ANY(CAST(:days AS date[])))"
)


def hours_digest(hours: dict[str, Any] | None) -> str:
    return hashlib.sha256(json.dumps(hours or {}, sort_keys=True, default=str).encode()).hexdigest()


def _facts(row: Any, clock: BusinessClock) -> tuple[Any, ...]:
    def between(start: datetime | None, end: datetime | None) -> float | None:
        if start is None or end is None or end < start:
            return None
        return clock.seconds(start, end)

    return (
        row.conversation_id,
        row.created_at,
        row.channel,
        row.language,
        row.team_id,
        row.assignee_id,
        row.state,
        row.state == "resolved" and not row.agent_messages,
        row.handoff_reason,
        between(row.first_customer_message_at, row.first_bot_at),
        between(row.first_handoff_at, row.first_agent_message_at),
        between(row.created_at, row.resolved_at),
    )


async def _write(session: AsyncSession, company_id: uuid.UUID, batch: list[tuple[Any, ...]]) -> None:
    columns = list(zip(*batch, strict=True))
    names = (
        "ids created channels languages teams assignees states ai reasons bots agents resolutions"
    ).split()
    await session.execute(
        UPSERT, {"company": company_id, **{n: list(c) for n, c in zip(names, columns, strict=True)}}
    )


async def refresh(session: AsyncSession, company_id: uuid.UUID, now: datetime) -> int:
    """Measure the company's conversations changed since the last run (all of them the first
    time, or when its hours changed) and note the run; returns how many were measured. The
    session must see every company's rows of the views' tables (a platform session) or this
    company's (a company session): the statements name the company themselves."""
    company = await session.get(Company, company_id)
    if company is None:
        return 0
    hours = stored_hours(company)
    digest = hours_digest(hours)
    last = await session.get(Refresh, company_id, with_for_update=True)
    since = last.covers_until - OVERLAP if last is not None and last.hours_digest == digest else None
    started = (await session.execute(text("SELECT now()"))).scalar_one()
    rows = (await session.execute(CHANGED, {"company": company_id, "since": since})).all()
    measured = 0
    schedule = schedule_of(hours)
    if rows:
        first = min(r.created_at for r in rows)
        clock = BusinessClock(schedule, first, now)
        for i in range(0, len(rows), BATCH):
            batch = [_facts(row, clock) for row in rows[i : i + BATCH]]
            await _write(session, company_id, batch)
            measured += len(batch)
    if rows or since is None:  # the days of the changed conversations, summed again (all: None)
        zone = schedule.zone
        days = sorted({r.created_at.astimezone(zone).date() for r in rows}) if since is not None else None
        params = {
            "company": company_id,
            "days": days,
            "tz": schedule.timezone,
            "from_at": datetime.combine(days[0], time(), zone) if days else None,
            "to_at": datetime.combine(days[-1] + timedelta(days=1), time(), zone) if days else None,
        }
        await session.execute(DAILY_GONE, params)
        await session.execute(DAILY, params)
    if last is None:
        session.add(
            Refresh(company_id=company_id, refreshed_at=now, covers_until=started, hours_digest=digest)
        )
    else:
        last.refreshed_at, last.covers_until, last.hours_digest = now, started, digest
    await session.flush()
    return measured


async def refreshed_at(session: AsyncSession, company_id: uuid.UUID) -> datetime | None:
    """When the company's figures were last brought up to date (``None``: never yet)."""
    last = await session.get(Refresh, company_id)
    return last.refreshed_at if last is not None else None


async def companies(session: AsyncSession) -> list[uuid.UUID]:
    """Every company (the periodic job's list; a platform session)."""
    return list(await session.scalars(text("SELECT id FROM companies ORDER BY created_at")))
