"""The analytics page's figures, each a small query over ``analytics_daily`` (the counts) or
``analytics_conversation_facts`` (durations, per agent and team), scoped the same way
(``Scope``: one company, conversations started on a range of local days, and the optional
channel, team and language). Each returns plain rows (dicts) in the order shown; the page
declares how to draw and label them (``atende.dashboard.analytics_charts``).

Rates are shares of the conversations in scope; percentiles are PostgreSQL's
``percentile_cont`` (interpolated), over the conversations that have the duration. Days and
hours are the company's timezone (``Scope.timezone``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.analytics.rollup import REASONS

Row = dict[str, Any]


@dataclass(frozen=True)
class Scope:
    """Which conversations a figure counts: the company's, started on the local days
    ``first`` to ``last`` (both included) of ``timezone`` (the company's)."""

    company_id: uuid.UUID
    first: date
    last: date
    timezone: str = "UTC"
    channel: str | None = None
    team_id: uuid.UUID | None = None
    language: str | None = None

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), ZoneInfo(self.timezone))

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), ZoneInfo(self.timezone))

    def where(self, daily: bool = False) -> tuple[str, dict[str, Any]]:
        """The SQL condition on ``f`` (the conversations' rows; ``daily``: the days' sums)
        and its parameters."""
        clauses = ["f.company_id = :company"]
        if daily:
            clauses += ["f.day >= :first", "f.day <= :last"]
        else:
            clauses += ["f.created_at >= :start", "f.created_at < :end"]
        params: dict[str, Any] = {
            "company": self.company_id,
            "start": self.start,
            "end": self.end,
            "first": self.first,
            "last": self.last,
            "tz": self.timezone,
        }
        if self.channel:
            clauses.append("f.channel = :channel")
            params["channel"] = self.channel
        if self.team_id:
            clauses.append("f.team_id = :team")
            params["team"] = self.team_id
        if self.language:
            clauses.append("f.language = :language")
            params["language"] = self.language
        return " AND ".join(clauses), params


Figure = Callable[[AsyncSession, Scope], Awaitable[list[Row]]]


async def _rows(session: AsyncSession, scope: Scope, sql: str, *, daily: bool = False) -> list[Row]:
    where, params = scope.where(daily)
    result = await session.execute(text(sql.replace("{where}", where)), params)
    return [dict(r) for r in result.mappings()]


async def conversations_by_channel(session: AsyncSession, scope: Scope) -> list[Row]:
    """Conversations started per local day and channel."""
    return await _rows(
        session,
        scope,
        """SELECT f.day, f.channel, sum(f.conversations)::int AS conversations
             FROM analytics_daily f WHERE {where} GROUP BY 1, 2 ORDER BY 1, 2""",
        daily=True,
    )


async def outcomes_by_day(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per local day: conversations, those the bot resolved with no human message, those
    handed off to people, and both as shares of the day's conversations."""
    return await _rows(
        session,
        scope,
        """SELECT f.day, sum(f.conversations)::int AS conversations,
                  sum(f.ai_resolved)::int AS ai_resolved,
                  round(sum(f.ai_resolved)::numeric / sum(f.conversations), 4) AS ai_resolution_rate,
                  sum(f.handed_off)::int AS handed_off,
                  round(sum(f.handed_off)::numeric / sum(f.conversations), 4) AS handoff_rate
             FROM analytics_daily f WHERE {where} GROUP BY 1 ORDER BY 1""",
        daily=True,
    )


async def handoff_reasons(session: AsyncSession, scope: Scope) -> list[Row]:
    """Conversations handed off, by their first handoff's reason, and each one's share."""
    sums = ", ".join(f"sum(f.reasons[{i + 1}])::int AS {reason}" for i, reason in enumerate(REASONS))
    [row] = await _rows(session, scope, f"SELECT {sums} FROM analytics_daily f WHERE {{where}}", daily=True)
    total = sum(row[r] or 0 for r in REASONS)
    found = [
        {"reason": r, "conversations": row[r], "share": Decimal(row[r]) / total} for r in REASONS if row[r]
    ]
    found.sort(key=lambda r: (-r["conversations"], r["reason"]))
    for r in found:
        r["share"] = round(r["share"], 4)
    return found


async def response_times(session: AsyncSession, scope: Scope) -> list[Row]:
    """Median and 90th percentile, in business seconds, of the bot's first response, a
    person's first response after a handoff, and resolution."""
    measures = (
        ("bot_first_response", "bot_first_response_seconds"),
        ("agent_first_response", "agent_first_response_seconds"),
        ("resolution", "resolution_seconds"),
    )
    selects = ", ".join(
        f"count(f.{c}) AS {m}_n, percentile_cont(0.5) WITHIN GROUP (ORDER BY f.{c}) AS {m}_median, "
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY f.{c}) AS {m}_p90"
        for m, c in measures
    )
    [row] = await _rows(
        session, scope, f"SELECT {selects} FROM analytics_conversation_facts f WHERE {{where}}"
    )
    return [
        {
            "measure": m,
            "conversations": row[f"{m}_n"],
            "median_seconds": row[f"{m}_median"],
            "p90_seconds": row[f"{m}_p90"],
        }
        for m, _c in measures
    ]


async def busiest_hours(session: AsyncSession, scope: Scope) -> list[Row]:
    """Conversations started per local weekday (ISO: 1 is Monday) and hour; only the
    weekday-hours that had any."""
    sums = ", ".join(f"sum(f.hours[{h + 1}])::int AS h{h}" for h in range(24))
    rows = await _rows(
        session,
        scope,
        f"""SELECT extract(isodow FROM f.day)::int AS weekday, {sums}
              FROM analytics_daily f WHERE {{where}} GROUP BY 1 ORDER BY 1""",
        daily=True,
    )
    return [
        {"weekday": row["weekday"], "hour": h, "conversations": row[f"h{h}"]}
        for row in rows
        for h in range(24)
        if row[f"h{h}"]
    ]


async def agents(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per assigned person: conversations, those resolved, and the median and 90th percentile
    of the first response after a handoff (business seconds)."""
    return await _rows(
        session,
        scope,
        """SELECT coalesce(nullif(u.name, ''), u.email) AS agent, a.*
             FROM (SELECT f.assignee_id, count(*) AS conversations,
                          count(*) FILTER (WHERE f.state = 'resolved') AS resolved,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY f.agent_first_response_seconds)
                              AS median_seconds,
                          percentile_cont(0.9) WITHIN GROUP (ORDER BY f.agent_first_response_seconds)
                              AS p90_seconds
                     FROM analytics_conversation_facts f WHERE {where} AND f.assignee_id IS NOT NULL
                    GROUP BY 1) a
             JOIN users u ON u.id = a.assignee_id
            ORDER BY a.conversations DESC, 1""",
    )


async def teams(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per team whose queue they are in: conversations, those handed off, and the median and
    90th percentile of the first response after a handoff (business seconds)."""
    return await _rows(
        session,
        scope,
        """SELECT t.name AS team, a.conversations, a.handed_off, a.median_seconds, a.p90_seconds
             FROM (SELECT f.team_id, count(*) AS conversations, count(f.handoff_reason) AS handed_off,
                          percentile_cont(0.5) WITHIN GROUP (ORDER BY f.agent_first_response_seconds)
                              AS median_seconds,
                          percentile_cont(0.9) WITHIN GROUP (ORDER BY f.agent_first_response_seconds)
                              AS p90_seconds
                     FROM analytics_conversation_facts f WHERE {where} AND f.team_id IS NOT NULL
                    GROUP BY 1) a
             JOIN teams t ON t.id = a.team_id AND t.company_id = :company
            ORDER BY a.conversations DESC, 1""",
    )


async def languages(session: AsyncSession, scope: Scope) -> list[Row]:
    """Conversations per detected language (empty: not detected), and each one's share."""
    return await _rows(
        session,
        scope,
        """SELECT coalesce(f.language, '') AS language, sum(f.conversations)::int AS conversations,
                  round(sum(f.conversations)::numeric / sum(sum(f.conversations)) OVER (), 4) AS share
             FROM analytics_daily f WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1""",
        daily=True,
    )
