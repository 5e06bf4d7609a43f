"""The analytics page's SLA and CSAT figures over the week's targets and surveys written with
exact timestamps (``scenario.add_service_levels``): the share met overall, per kind of target,
policy, agent, team and channel; the breaches per local day; the CSAT score and response rate
per day, channel, team and agent; the filters; and another company's never counted."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from atende.analytics import figures
from atende.analytics.figures import Scope
from atende.runtime import Runtime
from tests.analytics.scenario import Scenario, add_service_levels, make_scenario


@pytest.fixture
async def week(runtime: Runtime) -> Scenario:
    scenario = await make_scenario(runtime)
    await add_service_levels(runtime, scenario)
    return scenario


def the_week(scenario: Scenario, last: int = 22, **filters: Any) -> Scope:
    return Scope(
        company_id=scenario.team.company_id,
        first=date(2026, 11, 16),
        last=date(2026, 11, last),
        timezone="America/Sao_Paulo",
        **filters,
    )


async def figure(runtime: Runtime, scope: Scope, name: str) -> list[dict[str, Any]]:
    async with runtime.db.transaction(scope.company_id) as session:
        rows: list[dict[str, Any]] = await getattr(figures, name)(session, scope)
    return rows


def shares(rows: list[dict[str, Any]], key: str) -> dict[str, tuple[Any, ...]]:
    return {r[key]: (r["targets"], r["met"], r["breached"], r["met_share"]) for r in rows}


async def test_sla_compliance_counts_each_target_on_the_day_of_its_outcome(
    runtime: Runtime, week: Scenario
) -> None:
    rows = await figure(runtime, the_week(week), "sla_compliance")
    assert [r["target"] for r in rows] == ["", "first_response", "next_response", "resolution"]
    assert shares(rows, "target") == {
        "": (5, 2, 3, Decimal("0.4000")),
        "first_response": (2, 0, 2, Decimal("0.0000")),
        "next_response": (1, 1, 0, Decimal("1.0000")),
        "resolution": (2, 1, 1, Decimal("0.5000")),
    }
    # the weekend's first response was met on Monday the 23rd: a day later, it counts
    longer = shares(await figure(runtime, the_week(week, last=23), "sla_compliance"), "target")
    assert longer["first_response"] == (3, 1, 2, Decimal("0.3333"))
    # a week with no outcome: no row at all (not a row of zeros)
    later = Scope(week.team.company_id, date(2026, 12, 1), date(2026, 12, 7), "America/Sao_Paulo")
    assert await figure(runtime, later, "sla_compliance") == []


async def test_sla_compliance_per_policy_agent_team_and_channel(runtime: Runtime, week: Scenario) -> None:
    scope = the_week(week)
    policies = await figure(runtime, scope, "sla_policies")
    assert shares(policies, "name") == {
        "Padrão": (3, 2, 1, Decimal("0.6667")),
        "VIP": (2, 0, 2, Decimal("0.0000")),
    }
    padrao = policies[0]
    assert (padrao["first_response_met_share"], padrao["next_response_met_share"]) == (0, 1)
    assert padrao["resolution_met_share"] == 1
    assert policies[1]["next_response_met_share"] is None  # VIP had no next response
    agents = shares(await figure(runtime, scope, "sla_agents"), "name")
    assert agents == {"Ana Agent": (3, 2, 1, Decimal("0.6667")), "": (2, 0, 2, Decimal("0.0000"))}
    teams = shares(await figure(runtime, scope, "sla_teams"), "name")
    assert teams == {"Suporte": (3, 2, 1, Decimal("0.6667")), "Jurídico": (2, 0, 2, Decimal("0.0000"))}
    channels = shares(await figure(runtime, scope, "sla_channels"), "name")
    assert channels == {"webchat": (3, 2, 1, Decimal("0.6667")), "whatsapp": (2, 0, 2, Decimal("0.0000"))}


async def test_the_targets_of_teams_deleted_since_are_one_row_not_no_team(
    runtime: Runtime, week: Scenario
) -> None:
    """The targets keep a deleted team's id (no foreign key): they are shown together as a team
    deleted since, apart from the conversations that were in no team's queue."""
    legal = week.team_ids["juridico"]
    async with runtime.db.transaction(week.team.company_id) as session:
        await session.execute(text("DELETE FROM teams WHERE id = :id"), {"id": legal})
    teams = shares(await figure(runtime, the_week(week), "sla_teams"), "name")
    assert teams == {
        "Suporte": (3, 2, 1, Decimal("0.6667")),
        figures.DELETED_TEAM: (2, 0, 2, Decimal("0.0000")),
    }


async def test_sla_breaches_per_local_day_and_target(runtime: Runtime, week: Scenario) -> None:
    rows = await figure(runtime, the_week(week), "sla_breaches")
    assert [(r["day"], r["target"], r["breaches"]) for r in rows] == [
        (date(2026, 11, 17), "first_response", 2),
        (date(2026, 11, 19), "resolution", 1),
    ]


async def test_the_filters_narrow_the_sla_figures(runtime: Runtime, week: Scenario) -> None:
    whatsapp = await figure(runtime, the_week(week, channel="whatsapp"), "sla_compliance")
    assert shares(whatsapp, "target")[""] == (2, 0, 2, Decimal("0.0000"))
    legal = await figure(runtime, the_week(week, team_id=week.team_ids["juridico"]), "sla_teams")
    assert [r["name"] for r in legal] == ["Jurídico"]
    portuguese = await figure(runtime, the_week(week, language="pt"), "sla_compliance")
    assert shares(portuguese, "target")[""] == (3, 2, 1, Decimal("0.6667"))
    assert await figure(runtime, the_week(week, language="en"), "sla_breaches") == []


def csat(rows: list[dict[str, Any]], key: str) -> dict[Any, tuple[Any, ...]]:
    return {
        r[key]: (r["sent"], r["answered"], r["response_rate"], r["average_score"], r["satisfied_share"])
        for r in rows
    }


async def test_csat_score_and_response_rate_per_channel_day_team_and_agent(
    runtime: Runtime, week: Scenario
) -> None:
    scope = the_week(week)
    channels = await figure(runtime, scope, "csat_channels")
    assert channels[0]["channel"] == ""  # every survey first
    assert csat(channels, "channel") == {
        "": (4, 3, Decimal("0.7500"), Decimal("3.67"), Decimal("0.6667")),
        "webchat": (2, 1, Decimal("0.5000"), Decimal("5.00"), Decimal("1.0000")),
        "api": (1, 1, Decimal("1.0000"), Decimal("2.00"), Decimal("0.0000")),
        "whatsapp": (1, 1, Decimal("1.0000"), Decimal("4.00"), Decimal("1.0000")),
    }
    assert csat(await figure(runtime, scope, "csat_by_day"), "day") == {
        date(2026, 11, 17): (2, 2, Decimal("1.0000"), Decimal("3.50"), Decimal("0.5000")),
        date(2026, 11, 18): (1, 1, Decimal("1.0000"), Decimal("4.00"), Decimal("1.0000")),
        date(2026, 11, 20): (1, 0, Decimal("0.0000"), None, None),
    }
    assert csat(await figure(runtime, scope, "csat_teams"), "name") == {
        "Suporte": (2, 1, Decimal("0.5000"), Decimal("5.00"), Decimal("1.0000")),
        "Jurídico": (1, 1, Decimal("1.0000"), Decimal("4.00"), Decimal("1.0000")),
        "": (1, 1, Decimal("1.0000"), Decimal("2.00"), Decimal("0.0000")),
    }
    assert csat(await figure(runtime, scope, "csat_agents"), "name") == {
        "Ana Agent": (2, 1, Decimal("0.5000"), Decimal("5.00"), Decimal("1.0000")),
        "": (2, 2, Decimal("1.0000"), Decimal("3.00"), Decimal("0.5000")),
    }
    scores = await figure(runtime, scope, "csat_scores")
    assert [(r["score"], r["answers"], r["share"]) for r in scores] == [
        (2, 1, Decimal("0.3333")),
        (4, 1, Decimal("0.3333")),
        (5, 1, Decimal("0.3333")),
    ]


async def test_the_filters_narrow_the_csat_figures(runtime: Runtime, week: Scenario) -> None:
    webchat = csat(await figure(runtime, the_week(week, channel="webchat"), "csat_channels"), "channel")
    assert set(webchat) == {"", "webchat"} and webchat[""][:2] == (2, 1)
    english = csat(await figure(runtime, the_week(week, language="en"), "csat_channels"), "channel")
    assert english[""][:2] == (1, 1) and english[""][3] == Decimal("2.00")
    support = the_week(week, team_id=week.team_ids["suporte"])
    assert [r["name"] for r in await figure(runtime, support, "csat_teams")] == ["Suporte"]
    first_day = Scope(week.team.company_id, date(2026, 11, 17), date(2026, 11, 17), "America/Sao_Paulo")
    assert csat(await figure(runtime, first_day, "csat_channels"), "channel")[""][:2] == (2, 2)


async def test_another_companys_targets_and_surveys_are_never_counted(
    runtime: Runtime, week: Scenario
) -> None:
    other = await make_scenario(runtime, team_name="Outra")
    await add_service_levels(runtime, other)
    assert other.team.company_id != week.team.company_id
    scope = the_week(week)
    assert shares(await figure(runtime, scope, "sla_compliance"), "target")[""][0] == 5
    assert [r["name"] for r in await figure(runtime, scope, "sla_policies")] == ["Padrão", "VIP"]
    assert sum(r["breaches"] for r in await figure(runtime, scope, "sla_breaches")) == 3
    assert csat(await figure(runtime, scope, "csat_channels"), "channel")[""][0] == 4
    assert sum(r["answers"] for r in await figure(runtime, scope, "csat_scores")) == 3
    assert {r["name"] for r in await figure(runtime, scope, "csat_teams")} == {"Suporte", "Jurídico", ""}


async def test_the_figures_match_the_analytics_views_metabase_reads(runtime: Runtime, week: Scenario) -> None:
    """The page's SLA and CSAT figures, computed again from the views of docs/ANALYTICS.md
    (``analytics.sla_targets``, ``analytics.csat_surveys``) in the company's days."""
    scope = the_week(week)
    params = {"c": scope.company_id, "s": scope.start, "e": scope.end, "tz": scope.timezone}

    async def views(sql: str) -> list[dict[str, Any]]:
        async with runtime.db.transaction() as session:
            return [dict(r) for r in (await session.execute(text(sql), params)).mappings()]

    decided = (
        "company_id = :c AND status <> 'running'"
        " AND coalesce(breached_at, stopped_at) >= :s AND coalesce(breached_at, stopped_at) < :e"
    )
    by_policy = await views(
        "SELECT policy AS name, count(*) AS targets, count(*) FILTER (WHERE met) AS met,"
        " count(*) FILTER (WHERE breached) AS breached,"
        " round(count(*) FILTER (WHERE met)::numeric / count(*), 4) AS met_share"
        f" FROM analytics.sla_targets WHERE {decided} GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    assert shares(await figure(runtime, scope, "sla_policies"), "name") == shares(by_policy, "name")
    breaches = await views(
        "SELECT (breached_at AT TIME ZONE :tz)::date AS day, target, count(*) AS breaches"
        f" FROM analytics.sla_targets WHERE {decided} AND breached GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert await figure(runtime, scope, "sla_breaches") == breaches
    surveys = await views(
        "SELECT channel, count(*) AS sent, count(answered_at) AS answered,"
        " round(count(answered_at)::numeric / count(*), 4) AS response_rate,"
        " round(avg(score), 2) AS average_score,"
        " round(count(*) FILTER (WHERE satisfied)::numeric / nullif(count(score), 0), 4) AS satisfied_share"
        " FROM analytics.csat_surveys WHERE company_id = :c AND sent_at >= :s AND sent_at < :e"
        " GROUP BY 1"
    )
    page = csat(await figure(runtime, scope, "csat_channels"), "channel")
    assert {k: v for k, v in page.items() if k} == csat(surveys, "channel")
