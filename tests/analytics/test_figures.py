"""The analytics page's figures over a week of conversations written with exact timestamps:
durations in business time (a closed night, a weekend), each chart's figures, the filters,
the same figures computed from the ``analytics`` views BI tools read, and another company's
conversations never counted."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from atende.analytics import figures, rollup
from atende.analytics.clock import BusinessClock
from atende.analytics.figures import Scope
from atende.dashboard.analytics_charts import CHARTS
from atende.hours import business_seconds, parse_schedule
from atende.runtime import Runtime
from tests.analytics.scenario import HOURS, MONDAY, Scenario, conversation, local, make_scenario


@pytest.fixture
async def week(runtime: Runtime) -> Scenario:
    return await make_scenario(runtime)


def the_week(scenario: Scenario, **filters: Any) -> Scope:
    return Scope(
        company_id=scenario.team.company_id,
        first=date(2026, 11, 16),
        last=date(2026, 11, 22),
        timezone="America/Sao_Paulo",
        **filters,
    )


async def figure(runtime: Runtime, scope: Scope, name: str) -> list[dict[str, Any]]:
    async with runtime.db.transaction(scope.company_id) as session:
        rows: list[dict[str, Any]] = await getattr(figures, name)(session, scope)
    return rows


async def facts(runtime: Runtime, scenario: Scenario) -> dict[str, dict[str, Any]]:
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(
                text("SELECT * FROM analytics.conversation_times WHERE company_id = :c"),
                {"c": scenario.team.company_id},
            )
        ).mappings()
        by_id = {r["conversation_id"]: dict(r) for r in rows}
    return {name: by_id[cid] for name, cid in scenario.conversations.items()}


async def test_durations_are_business_time_across_a_closed_night_and_a_weekend(
    runtime: Runtime, week: Scenario
) -> None:
    found = await facts(runtime, week)
    durations = {
        name: (
            row["bot_first_response_seconds"],
            row["agent_first_response_seconds"],
            row["resolution_seconds"],
        )
        for name, row in found.items()
    }
    assert durations == {
        # 17:55 → 18:00 Monday and 09:00 → 09:10 Tuesday; created 17:50, resolved 09:30
        "night": (5, 15 * 60, 10 * 60 + 30 * 60),
        "bot": (2, None, 5 * 60),
        "rule": (3, None, None),
        # Friday 17:30 → 18:00 and Monday 09:00 → 09:30: the weekend does not count
        "weekend": (1, 60 * 60, None),
        "october": (None, None, None),
    }
    schedule = parse_schedule(HOURS)
    assert durations["night"][1] == business_seconds(schedule, local(16, 17, 55), local(17, 9, 10))
    assert {n: (r["ai_resolved"], r["handoff_reason"]) for n, r in found.items()} == {
        "night": (False, "requested"),
        "bot": (True, None),
        "rule": (False, "rule"),
        "weekend": (False, "manual"),
        "october": (False, None),
    }
    assert found["night"]["team"] == "Suporte" and found["rule"]["team"] == "Jurídico"


async def test_each_chart_counts_the_week(runtime: Runtime, week: Scenario) -> None:
    scope = the_week(week)
    assert await figure(runtime, scope, "conversations_by_channel") == [
        {"day": date(2026, 11, 16), "channel": "webchat", "conversations": 1},
        {"day": date(2026, 11, 17), "channel": "api", "conversations": 1},
        {"day": date(2026, 11, 17), "channel": "whatsapp", "conversations": 1},
        {"day": date(2026, 11, 20), "channel": "webchat", "conversations": 1},
    ]
    outcomes = await figure(runtime, scope, "outcomes_by_day")
    assert [(r["day"].day, r["conversations"], r["ai_resolved"], r["handed_off"]) for r in outcomes] == [
        (16, 1, 0, 1),
        (17, 2, 1, 1),
        (20, 1, 0, 1),
    ]
    assert [float(r["ai_resolution_rate"]) for r in outcomes] == [0, 0.5, 0]
    reasons = await figure(runtime, scope, "handoff_reasons")
    assert [(r["reason"], r["conversations"]) for r in reasons] == [
        ("manual", 1),
        ("requested", 1),
        ("rule", 1),
    ]
    times = {r["measure"]: r for r in await figure(runtime, scope, "response_times")}
    # percentile_cont: interpolated between the measured conversations
    assert (times["bot_first_response"]["median_seconds"], times["bot_first_response"]["p90_seconds"]) == (
        pytest.approx(2.5),
        pytest.approx(4.4),
    )
    assert times["agent_first_response"]["conversations"] == 2
    assert times["agent_first_response"]["median_seconds"] == pytest.approx(2250)
    assert times["agent_first_response"]["p90_seconds"] == pytest.approx(900 + 0.9 * 2700)
    assert times["resolution"]["median_seconds"] == pytest.approx(1350)
    busiest = await figure(runtime, scope, "busiest_hours")
    assert [(r["weekday"], r["hour"], r["conversations"]) for r in busiest] == [
        (1, 17, 1),
        (2, 10, 1),
        (2, 11, 1),
        (5, 17, 1),
    ]
    [agent] = await figure(runtime, scope, "agents")
    assert (agent["agent"], agent["conversations"], agent["resolved"]) == ("Ana Agent", 2, 1)
    assert agent["median_seconds"] == pytest.approx(2250)
    team_rows = await figure(runtime, scope, "teams")
    assert [(r["team"], r["conversations"], r["handed_off"]) for r in team_rows] == [
        ("Suporte", 2, 2),
        ("Jurídico", 1, 1),
    ]
    assert team_rows[1]["median_seconds"] is None
    langs = await figure(runtime, scope, "languages")
    assert [(r["language"], r["conversations"], float(r["share"])) for r in langs] == [
        ("pt", 2, 0.5),
        ("en", 1, 0.25),
        ("es", 1, 0.25),
    ]


async def test_the_filters_narrow_every_chart(runtime: Runtime, week: Scenario) -> None:
    async def total(scope: Scope) -> int:
        return sum(r["conversations"] for r in await figure(runtime, scope, "languages"))

    assert await total(the_week(week)) == 4
    assert await total(the_week(week, channel="webchat")) == 2
    assert await total(the_week(week, team_id=week.team_ids["juridico"])) == 1
    assert await total(the_week(week, language="en")) == 1
    assert await total(the_week(week, channel="api", language="pt")) == 0
    october = Scope(week.team.company_id, date(2026, 10, 1), date(2026, 11, 15), "America/Sao_Paulo")
    assert await total(october) == 1
    only_webchat = the_week(week, channel="webchat")
    for name in ("conversations_by_channel", "busiest_hours", "agents", "handoff_reasons"):
        assert sum(r["conversations"] for r in await figure(runtime, only_webchat, name)) == 2, name


async def test_the_figures_match_the_analytics_views(runtime: Runtime, week: Scenario) -> None:
    """Each chart's figures, computed again from the views of docs/ANALYTICS.md alone."""
    scope = the_week(week)
    params = {"c": scope.company_id, "s": scope.start, "e": scope.end, "tz": scope.timezone}
    where = "company_id = :c AND created_at >= :s AND created_at < :e"

    async def views(sql: str) -> list[dict[str, Any]]:
        async with runtime.db.transaction() as session:
            return [
                dict(r) for r in (await session.execute(text(sql.replace("{w}", where)), params)).mappings()
            ]

    assert await figure(runtime, scope, "conversations_by_channel") == await views(
        "SELECT (created_at AT TIME ZONE :tz)::date AS day, channel, count(*) AS conversations"
        " FROM analytics.conversations WHERE {w} GROUP BY 1, 2 ORDER BY 1, 2"
    )
    expected = await views(
        "SELECT (created_at AT TIME ZONE :tz)::date AS day, count(*) AS conversations,"
        " count(*) FILTER (WHERE state = 'resolved' AND agent_messages = 0) AS ai_resolved,"
        " count(*) FILTER (WHERE handoffs > 0) AS handed_off"
        " FROM analytics.conversations WHERE {w} GROUP BY 1 ORDER BY 1"
    )
    assert [
        {k: r[k] for k in ("day", "conversations", "ai_resolved", "handed_off")}
        for r in await figure(runtime, scope, "outcomes_by_day")
    ] == expected
    assert [(r["reason"], r["conversations"]) for r in await figure(runtime, scope, "handoff_reasons")] == [
        (r["handoff_reason"], r["n"])
        for r in await views(
            "SELECT handoff_reason, count(*) AS n FROM analytics.conversations WHERE {w} AND handoffs > 0"
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]
    # the first handoff's reason is analytics.handoffs' first row of each conversation
    first_reasons = await views(
        "SELECT DISTINCT ON (conversation_id) conversation_id, reason FROM analytics.handoffs"
        " WHERE company_id = :c ORDER BY conversation_id, handed_off_at"
    )
    found = await facts(runtime, week)
    assert {r["conversation_id"]: r["reason"] for r in first_reasons} == {
        f["conversation_id"]: f["handoff_reason"] for f in found.values() if f["handoff_reason"]
    }
    [times] = await views(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY agent_first_response_seconds) AS agent_median,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY resolution_seconds) AS resolution_p90,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY bot_first_response_seconds) AS bot_p90"
        " FROM analytics.conversation_times WHERE {w}"
    )
    shown = {r["measure"]: r for r in await figure(runtime, scope, "response_times")}
    assert shown["agent_first_response"]["median_seconds"] == times["agent_median"]
    assert shown["resolution"]["p90_seconds"] == times["resolution_p90"]
    assert shown["bot_first_response"]["p90_seconds"] == times["bot_p90"]
    # business time never exceeds the wall-clock time the views measure; inside open hours
    # the two are equal (the bot-only conversation, resolved at 10:05 the same morning)
    wall = {
        r["conversation_id"]: r
        for r in await views("SELECT * FROM analytics.conversations WHERE company_id = :c")
    }
    for row in found.values():
        seen = wall[row["conversation_id"]]
        for business, clock in (
            ("agent_first_response_seconds", "first_agent_response_seconds"),
            ("resolution_seconds", "resolution_seconds"),
        ):
            assert (row[business] is None) == (seen[clock] is None)
            if row[business] is not None:
                assert row[business] <= float(seen[clock])
    assert found["bot"]["resolution_seconds"] == float(wall[week.conversations["bot"]]["resolution_seconds"])
    assert [
        (r["weekday"], r["hour"], r["conversations"]) for r in await figure(runtime, scope, "busiest_hours")
    ] == [
        (r["d"], r["h"], r["n"])
        for r in await views(
            "SELECT extract(isodow FROM created_at AT TIME ZONE :tz)::int AS d,"
            " extract(hour FROM created_at AT TIME ZONE :tz)::int AS h, count(*) AS n"
            " FROM analytics.conversations WHERE {w} GROUP BY 1, 2 ORDER BY 1, 2"
        )
    ]
    [agent] = await figure(runtime, scope, "agents")
    [by_assignee] = await views(
        "SELECT count(*) AS n,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY agent_first_response_seconds) AS p90"
        " FROM analytics.conversation_times WHERE {w} AND assignee_id IS NOT NULL GROUP BY assignee_id"
    )
    assert (agent["conversations"], agent["p90_seconds"]) == (by_assignee["n"], by_assignee["p90"])
    assert [(r["team"], r["conversations"]) for r in await figure(runtime, scope, "teams")] == [
        (r["team"], r["n"])
        for r in await views(
            "SELECT team, count(*) AS n FROM analytics.conversation_times WHERE {w} AND team IS NOT NULL"
            " GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]
    assert [(r["language"], r["conversations"]) for r in await figure(runtime, scope, "languages")] == [
        (r["language"], r["n"])
        for r in await views(
            "SELECT coalesce(language, '') AS language, count(*) AS n FROM analytics.conversations"
            " WHERE {w} GROUP BY 1 ORDER BY 2 DESC, 1"
        )
    ]


async def test_a_refresh_measures_what_changed_and_another_company_is_never_counted(
    runtime: Runtime, week: Scenario
) -> None:
    company_id = week.team.company_id
    later = MONDAY + timedelta(days=40)
    async with runtime.db.transaction(company_id) as session:
        assert await rollup.refresh(session, company_id, later) == 0  # nothing changed since
        assert await rollup.refreshed_at(session, company_id) == later
    other = await make_scenario(runtime, team_name="Outra")
    before = await figure(runtime, the_week(week), "languages")
    assert sum(r["conversations"] for r in before) == 4
    # a new conversation is counted at the next refresh; the hours changing measures all again
    await conversation(
        runtime,
        company_id,
        channel="api",
        language="es",
        state="bot",
        events=[(local(18, 12, 0), "customer", "Hola"), (local(18, 12, 0, 4), "bot", "¡Hola!")],
    )
    async with runtime.db.transaction(company_id) as session:
        # its updated_at is in the past (written so); the next run reads from the last one
        await session.execute(
            text("UPDATE conversations SET updated_at = now() WHERE company_id = :c AND channel = 'api'"),
            {"c": company_id},
        )
        assert await rollup.refresh(session, company_id, later) == 2
    after = await figure(runtime, the_week(week), "languages")
    assert sum(r["conversations"] for r in after) == 5
    assert other.team.company_id != company_id
    assert sum(r["conversations"] for r in await figure(runtime, the_week(other), "languages")) == 4


def test_the_business_clock_equals_the_hours_module() -> None:
    schedule = parse_schedule(
        {
            "timezone": "America/Sao_Paulo",
            "weekly": {
                "monday": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}],
                "tuesday": [{"start": "22:00", "end": "24:00"}],
                "wednesday": [{"start": "00:00", "end": "06:00"}],
                "friday": [{"start": "09:00", "end": "17:30"}],
                "saturday": [{"start": "10:00", "end": "14:00"}],
            },
            "holidays": {"country": "BR", "subdiv": "SP"},
            "closed_dates": [{"date": "2026-12-24", "name": "Véspera"}],
        }
    )
    since = datetime(2026, 10, 1, tzinfo=UTC)
    clock = BusinessClock(schedule, since, since + timedelta(days=90))
    draw = random.Random(19)
    for _ in range(300):
        start = since + timedelta(seconds=draw.randrange(0, 90 * 86400))
        end = start + timedelta(seconds=draw.randrange(0, 10 * 86400))
        assert clock.seconds(start, end) == pytest.approx(business_seconds(schedule, start, end), abs=1e-6)
    # beyond the span laid out: it grows
    far = since + timedelta(days=400)
    assert clock.seconds(far, far + timedelta(days=7)) == pytest.approx(
        business_seconds(schedule, far, far + timedelta(days=7)), abs=1e-6
    )


def test_every_chart_names_its_columns() -> None:
    for chart in CHARTS:
        assert chart.columns and chart.title and chart.summary
        keys = [c.key for c in chart.columns]
        assert set(chart.plotted) <= set(keys), chart.key
