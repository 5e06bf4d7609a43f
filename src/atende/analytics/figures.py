"""The analytics page's figures, each a small query over ``analytics_daily`` (the counts) or
``analytics_conversation_facts`` (durations, per agent and team), scoped the same way
(``Scope``: one company, conversations started on a range of local days, and the optional
channel, team and language). Each returns plain rows (dicts) in the order shown; the page
declares how to draw and label them (``atende.dashboard.analytics_charts``).

The SLA and CSAT figures read their base tables (``sla_records``, ``csat_surveys``: they are
written once per outcome and per survey, so there is nothing to roll up) with the same
``Scope``: the SLA targets whose outcome (met or breached) fell on the range's days, the
surveys sent on them.

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


# SLA targets: ``sla_records``, each target of a conversation the SLA job judged, met (stopped
# before its due time) or breached (from the due time on). A target counts on the local day of
# its outcome: the day it was met (``stopped_at``), or the day it was breached (``due_at``);
# its channel, team and agent are the conversation's when it was judged, its language the
# conversation's.

SLA_TARGETS = ("first_response", "next_response", "resolution")
# the conversations are joined only for what needs them (a filter by language; a breakdown by
# a conversation's team or agent): the join reads the company's every conversation
_SLA_FROM = """
      FROM sla_records r {conversations}
     CROSS JOIN LATERAL (SELECT CASE WHEN r.breached THEN r.due_at ELSE r.stopped_at END AS at) o
"""
_SLA_CONVERSATIONS = "JOIN conversations c ON c.id = r.conversation_id AND c.company_id = r.company_id"
_SLA_SHARES = """count(*) AS targets,
                  count(*) FILTER (WHERE NOT r.breached) AS met,
                  count(*) FILTER (WHERE r.breached) AS breached,
                  round(avg((NOT r.breached)::int), 4) AS met_share"""


def _filtered(
    scope: Scope, clauses: list[str], *, channel: str, team: str, language: str
) -> tuple[str, dict[str, Any]]:
    """``clauses`` and the scope's filters on the columns named, joined; and the parameters."""
    params: dict[str, Any] = {
        "company": scope.company_id,
        "start": scope.start,
        "end": scope.end,
        "tz": scope.timezone,
    }
    for column, name, value in (
        (channel, "channel", scope.channel),
        (team, "team", scope.team_id),
        (language, "language", scope.language),
    ):
        if value:
            clauses.append(f"{column} = :{name}")
            params[name] = value
    return " AND ".join(clauses), params


async def _read(session: AsyncSession, sql: str, source: str, where: tuple[str, dict[str, Any]]) -> list[Row]:
    condition, params = where
    result = await session.execute(text(sql.replace("{from}", source).replace("{where}", condition)), params)
    return [dict(r) for r in result.mappings()]


def sla_where(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The condition on ``r`` (the targets), ``c`` (their conversations) and ``o.at`` (the
    outcome's instant), and its parameters."""
    clauses = [
        "r.company_id = :company",
        "r.started_at < :end",  # an outcome never comes before its start: the index narrows it
        "o.at >= :start",
        "o.at < :end",
    ]
    return _filtered(scope, clauses, channel="r.channel", team="r.team_id", language="c.language")


async def _sla_rows(session: AsyncSession, scope: Scope, sql: str) -> list[Row]:
    source = _SLA_FROM.replace("{conversations}", _SLA_CONVERSATIONS if scope.language else "")
    return await _read(session, sql, source, sla_where(scope))


# a breakdown's name and the join that gives it: a team's, a person's (empty: none)
_BY_TEAM = ("coalesce(t.name, '')", "LEFT JOIN teams t ON t.id = a.key AND t.company_id = :company")
_BY_AGENT = ("coalesce(nullif(u.name, ''), u.email, '')", "LEFT JOIN users u ON u.id = a.key")


async def sla_compliance(session: AsyncSession, scope: Scope) -> list[Row]:
    """The targets met and breached, and the share met: all of them first (``target`` empty),
    then per kind of target (first response, next response, resolution)."""
    return await _sla_rows(
        session,
        scope,
        f"""SELECT coalesce(r.target, '') AS target, {_SLA_SHARES}
              {{from}} WHERE {{where}}
             GROUP BY GROUPING SETS ((), (r.target)) HAVING count(*) > 0
             ORDER BY GROUPING(r.target) DESC,
                      array_position(ARRAY['first_response', 'next_response', 'resolution'], r.target)""",
    )


_PER_TARGET = ", ".join(
    f"round(avg((NOT r.breached)::int) FILTER (WHERE r.target = '{t}'), 4) AS {t}_met_share"
    for t in SLA_TARGETS
)


async def _sla_by(session: AsyncSession, scope: Scope, key: str, name: str, join: str) -> list[Row]:
    return await _sla_rows(
        session,
        scope,
        f"""SELECT {name} AS name, a.targets, a.met, a.breached, a.met_share,
                   {", ".join(f"a.{t}_met_share" for t in SLA_TARGETS)}
              FROM (SELECT {key} AS key, {_SLA_SHARES}, {_PER_TARGET}
                      {{from}} WHERE {{where}} GROUP BY 1) a
              {join}
             ORDER BY a.targets DESC, 1""",
    )


async def sla_policies(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per policy (empty: one deleted since): the targets, met, breached, the share met, and
    the share met of each kind of target."""
    return await _sla_by(
        session,
        scope,
        "r.policy_id",
        "coalesce(p.name, '')",
        "LEFT JOIN sla_policies p ON p.id = a.key AND p.company_id = :company",
    )


async def sla_agents(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per person the conversation was assigned to (empty: nobody), as ``sla_policies``."""
    return await _sla_by(
        session,
        scope,
        "r.assignee_id",
        *_BY_AGENT,
    )


# the name of the teams deleted since (their targets keep the team's id, in one row): no
# team's name can be it
DELETED_TEAM = "\x01"
_NO_TEAM_LEFT = "'00000000-0000-0000-0000-000000000000'::uuid"


async def sla_teams(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per team whose queue the conversation was in (empty: none; ``DELETED_TEAM``: the teams
    deleted since, together), as ``sla_policies``."""
    return await _sla_by(
        session,
        scope,
        f"""CASE WHEN r.team_id IS NULL OR EXISTS (
                     SELECT 1 FROM teams d WHERE d.id = r.team_id AND d.company_id = :company)
                 THEN r.team_id ELSE {_NO_TEAM_LEFT} END""",
        "CASE WHEN a.key IS NULL THEN '' WHEN t.id IS NULL THEN chr(1) ELSE t.name END",
        _BY_TEAM[1],
    )


async def sla_channels(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per channel, as ``sla_policies``."""
    return await _sla_by(session, scope, "r.channel", "a.key", "")


async def sla_breaches(session: AsyncSession, scope: Scope) -> list[Row]:
    """Targets breached per local day of the breach (their due time) and kind of target."""
    return await _sla_rows(
        session,
        scope,
        """SELECT (r.due_at AT TIME ZONE :tz)::date AS day, r.target, count(*) AS breaches
             {from} WHERE {where} AND r.breached GROUP BY 1, 2 ORDER BY 1, 2""",
    )


# CSAT: ``csat_surveys``, one per resolution surveyed. A survey counts on the local day it was
# sent; its channel is the one it went out on, its team, agent and language the
# conversation's now. Answered: it has a score (1-5); satisfied: a score of 4 or 5.

_CSAT_FROM = "FROM csat_surveys s"
_CSAT_CONVERSATIONS = "JOIN conversations c ON c.id = s.conversation_id AND c.company_id = s.company_id"
_CSAT_SHARES = """count(*) AS sent, count(s.score) AS answered,
                  round(count(s.score)::numeric / count(*), 4) AS response_rate,
                  round(avg(s.score), 2) AS average_score,
                  round(count(*) FILTER (WHERE s.score >= 4)::numeric / nullif(count(s.score), 0), 4)
                      AS satisfied_share"""


def csat_where(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The condition on ``s`` (the surveys) and ``c`` (their conversations), and its parameters."""
    # a skipped survey (``status``: never sent, ``sent_at`` empty) counts in no figure
    clauses = ["s.company_id = :company", "s.status = 'sent'", "s.sent_at >= :start", "s.sent_at < :end"]
    return _filtered(scope, clauses, channel="s.channel", team="c.team_id", language="c.language")


async def _csat_rows(
    session: AsyncSession, scope: Scope, sql: str, *, by_conversation: bool = False
) -> list[Row]:
    source = _CSAT_FROM
    if by_conversation or scope.team_id or scope.language:
        source += " " + _CSAT_CONVERSATIONS
    return await _read(session, sql, source, csat_where(scope))


async def csat_by_day(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per local day: surveys sent, answered, the response rate, the average score and the
    share of satisfied answers."""
    return await _csat_rows(
        session,
        scope,
        f"""SELECT (s.sent_at AT TIME ZONE :tz)::date AS day, {_CSAT_SHARES}
              {{from}} WHERE {{where}} GROUP BY 1 ORDER BY 1""",
    )


async def csat_scores(session: AsyncSession, scope: Scope) -> list[Row]:
    """The answers per score (1 to 5, those given), and each one's share of the answers."""
    return await _csat_rows(
        session,
        scope,
        """SELECT s.score, count(*) AS answers,
                  round(count(*)::numeric / sum(count(*)) OVER (), 4) AS share
             {from} WHERE {where} AND s.score IS NOT NULL GROUP BY 1 ORDER BY 1""",
    )


async def csat_channels(session: AsyncSession, scope: Scope) -> list[Row]:
    """All surveys first (``channel`` empty), then per channel, as ``csat_by_day``."""
    return await _csat_rows(
        session,
        scope,
        f"""SELECT coalesce(s.channel, '') AS channel, {_CSAT_SHARES}
              {{from}} WHERE {{where}}
             GROUP BY GROUPING SETS ((), (s.channel)) HAVING count(*) > 0
             ORDER BY GROUPING(s.channel) DESC, count(*) DESC, 1""",
    )


async def _csat_by(session: AsyncSession, scope: Scope, key: str, name: str, join: str) -> list[Row]:
    return await _csat_rows(
        session,
        scope,
        f"""SELECT {name} AS name, a.sent, a.answered, a.response_rate, a.average_score,
                   a.satisfied_share
              FROM (SELECT {key} AS key, {_CSAT_SHARES} {{from}} WHERE {{where}} GROUP BY 1) a
              {join}
             ORDER BY a.sent DESC, 1""",
        by_conversation=True,
    )


async def csat_teams(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per team the conversation is in (empty: none), as ``csat_by_day``."""
    return await _csat_by(
        session,
        scope,
        "c.team_id",
        *_BY_TEAM,
    )


async def csat_agents(session: AsyncSession, scope: Scope) -> list[Row]:
    """Per person the conversation is assigned to (empty: nobody), as ``csat_by_day``."""
    return await _csat_by(
        session,
        scope,
        "c.assignee_id",
        *_BY_AGENT,
    )
