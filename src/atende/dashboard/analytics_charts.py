"""The analytics page's charts, declared: which figure each draws (``atende.analytics.figures``),
its columns with their labels and kinds, and how it is drawn. The page, each chart's table view
and its CSV export are all made from this list, with the page's filters.

Adding a chart is a figure function over a ``Scope`` and one ``Chart`` here: its key (the
CSV's address, ``/app/analytics/<key>.csv``), title, a sentence saying what it shows, its
columns, which of them are drawn, and its group (``GROUPS``: the page's sections).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from atende.analytics import figures
from atende.analytics.figures import Figure
from atende.dashboard.i18n import N_
from atende.dashboard.sla_time import TARGET_NAMES
from atende.dashboard.wording import CHANNEL_NAMES, LANGUAGE_NAMES

# what a column holds, which says how it is shown: a table cell, a CSV cell, a chart's axis
#   text: a name as stored (a team's, a person's); code: a value shown by ``names``
#   date: a local day; count: a whole number; rate: a share (0..1), shown as a percentage
#   seconds: a duration in business seconds; weekday: ISO 1..7; hour: 0..23
#   score: an average CSAT score (1..5)
Kind = Literal["text", "code", "date", "count", "rate", "seconds", "weekday", "hour", "score"]
Group = Literal["conversations", "sla", "csat"]
# the page's sections, in order: each a heading over its charts
GROUPS: tuple[tuple[Group, str], ...] = (
    ("conversations", N_("Conversations")),
    ("sla", N_("Service levels (SLA)")),
    ("csat", N_("Customer satisfaction (CSAT)")),
)

HANDOFF_REASON_NAMES = {
    "requested": N_("The customer asked for a person"),
    "rule": N_("A handoff rule matched"),
    "repeat": N_("The customer asked again"),
    "evidence": N_("The knowledge base had no answer"),
    "failure": N_("The bot failed"),
    "manual": N_("Moved by an agent or the API"),
}
MEASURE_NAMES = {
    "bot_first_response": N_("Bot's first response"),
    "agent_first_response": N_("A person's first response after a handoff"),
    "resolution": N_("Resolution"),
}
NOT_DETECTED = {"": N_("Not detected")}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: Kind = "count"
    names: Mapping[str, str] | None = None  # for ``code``: each value's name, to translate


@dataclass(frozen=True)
class Pivot:
    """Rows of (x, series, value) spread into a table of one row per x and one column per
    series value (a day's conversations per channel; a weekday's per hour)."""

    series: Column
    value: Column


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    summary: str
    figure: Figure
    columns: tuple[Column, ...]  # the figure's columns shown, in order (with a pivot: x first)
    draw: Literal["line", "bar", "heatmap"]
    plotted: tuple[str, ...] = ()  # the columns drawn (a pivot draws each series)
    pivot: Pivot | None = None
    group: Group = "conversations"
    empty: str = N_("No conversations match these filters.")  # the table view with no rows


DAY = Column("day", N_("Day"), "date")
CONVERSATIONS = Column("conversations", N_("Conversations"))
MEDIAN = Column("median_seconds", N_("Median first response after a handoff"), "seconds")
P90 = Column("p90_seconds", N_("90th percentile of first response after a handoff"), "seconds")

CONVERSATION_CHARTS: tuple[Chart, ...] = (
    Chart(
        "conversations",
        N_("Conversations over time by channel"),
        N_("Conversations started each day, per channel."),
        figures.conversations_by_channel,
        (DAY,),
        "line",
        pivot=Pivot(Column("channel", N_("Channel"), "code", CHANNEL_NAMES), CONVERSATIONS),
    ),
    Chart(
        "outcomes",
        N_("AI resolution and handoff rates"),
        N_(
            "Each day's share of conversations resolved with no message from a person (AI "
            "resolution), and the share handed off to people."
        ),
        figures.outcomes_by_day,
        (
            DAY,
            CONVERSATIONS,
            Column("ai_resolved", N_("Resolved by the bot alone")),
            Column("ai_resolution_rate", N_("AI resolution rate"), "rate"),
            Column("handed_off", N_("Handed off")),
            Column("handoff_rate", N_("Handoff rate"), "rate"),
        ),
        "line",
        plotted=("ai_resolution_rate", "handoff_rate"),
    ),
    Chart(
        "handoff-reasons",
        N_("Why conversations were handed off"),
        N_("Conversations handed off to people, by the first handoff's reason."),
        figures.handoff_reasons,
        (
            Column("reason", N_("Reason"), "code", HANDOFF_REASON_NAMES),
            CONVERSATIONS,
            Column("share", N_("Share of handoffs"), "rate"),
        ),
        "bar",
        plotted=("conversations",),
    ),
    Chart(
        "response-times",
        N_("Response and resolution times"),
        N_(
            "Median and 90th percentile in business time: hours when the company is closed "
            "(nights, weekends, holidays) do not count."
        ),
        figures.response_times,
        (
            Column("measure", N_("Measure"), "code", MEASURE_NAMES),
            Column("conversations", N_("Conversations measured")),
            Column("median_seconds", N_("Median"), "seconds"),
            Column("p90_seconds", N_("90th percentile"), "seconds"),
        ),
        "bar",
        plotted=("median_seconds", "p90_seconds"),
    ),
    Chart(
        "busiest-hours",
        N_("Busiest hours"),
        N_("Conversations started per weekday and hour, in the company's timezone."),
        figures.busiest_hours,
        (Column("weekday", N_("Weekday"), "weekday"),),
        "heatmap",
        pivot=Pivot(Column("hour", N_("Hour"), "hour"), CONVERSATIONS),
    ),
    Chart(
        "agents",
        N_("Load and response times per agent"),
        N_(
            "Conversations assigned to each person, and their first response after a handoff "
            "in business time."
        ),
        figures.agents,
        (
            Column("agent", N_("Agent"), "text"),
            CONVERSATIONS,
            Column("resolved", N_("Resolved")),
            MEDIAN,
            P90,
        ),
        "bar",
        plotted=("conversations",),
    ),
    Chart(
        "teams",
        N_("Load and response times per team"),
        N_("Conversations in each team's queue, and the first response after a handoff in business time."),
        figures.teams,
        (
            Column("team", N_("Team"), "text"),
            CONVERSATIONS,
            Column("handed_off", N_("Handed off")),
            MEDIAN,
            P90,
        ),
        "bar",
        plotted=("conversations",),
    ),
    Chart(
        "languages",
        N_("Languages"),
        N_("Conversations per language the customer wrote in."),
        figures.languages,
        (
            Column("language", N_("Language"), "code", {**LANGUAGE_NAMES, **NOT_DETECTED}),
            CONVERSATIONS,
            Column("share", N_("Share"), "rate"),
        ),
        "bar",
        plotted=("conversations",),
    ),
)

SLA_EMPTY = N_("No SLA target was met or breached on these days with these filters.")
SLA_SHARES = (
    Column("targets", N_("Targets")),
    Column("met", N_("Met")),
    Column("breached", N_("Breached")),
    Column("met_share", N_("Share met"), "rate"),
)
SLA_PER_TARGET = tuple(
    Column(f"{target}_met_share", label, "rate")
    for target, label in (
        ("first_response", N_("First response: share met")),
        ("next_response", N_("Next response: share met")),
        ("resolution", N_("Resolution: share met")),
    )
)


def _breakdown(
    group: Group, key: str, title: str, summary: str, figure: Figure, columns: tuple[Column, ...]
) -> Chart:
    """An SLA or CSAT chart of one row per name (the first column): its shares drawn as bars."""
    plotted = ("met_share",) if group == "sla" else ("satisfied_share", "response_rate")
    empty = SLA_EMPTY if group == "sla" else CSAT_EMPTY
    return Chart(key, title, summary, figure, columns, "bar", plotted=plotted, group=group, empty=empty)


def _sla_by(key: str, title: str, summary: str, figure: Figure, name: Column) -> Chart:
    return _breakdown("sla", key, title, summary, figure, (name, *SLA_SHARES, *SLA_PER_TARGET))


CSAT_EMPTY = N_("No survey was sent on these days with these filters.")
CSAT_SHARES = (
    Column("sent", N_("Surveys sent")),
    Column("answered", N_("Answered")),
    Column("response_rate", N_("Response rate"), "rate"),
    Column("average_score", N_("Average score (1 to 5)"), "score"),
    Column("satisfied_share", N_("Satisfied (4 or 5)"), "rate"),
)


def _csat_by(key: str, title: str, summary: str, figure: Figure, name: Column) -> Chart:
    return _breakdown("csat", key, title, summary, figure, (name, *CSAT_SHARES))


SLA_CHARTS: tuple[Chart, ...] = (
    Chart(
        "sla",
        N_("SLA compliance"),
        N_(
            "The SLA targets met in time and those breached, all of them and per kind of target. "
            "A target counts on the day it was met, or on the day it was breached."
        ),
        figures.sla_compliance,
        (Column("target", N_("Target"), "code", {"": N_("All targets"), **TARGET_NAMES}), *SLA_SHARES),
        "bar",
        plotted=("met_share",),
        group="sla",
        empty=SLA_EMPTY,
    ),
    Chart(
        "sla-breaches",
        N_("SLA breaches over time"),
        N_("Targets breached each day (the day their due time passed), per kind of target."),
        figures.sla_breaches,
        (DAY,),
        "line",
        pivot=Pivot(Column("target", N_("Target"), "code", TARGET_NAMES), Column("breaches", N_("Breaches"))),
        group="sla",
        empty=N_("No SLA target was breached on these days with these filters."),
    ),
    _sla_by(
        "sla-policies",
        N_("SLA compliance per policy"),
        N_("The share of targets met under each SLA policy."),
        figures.sla_policies,
        Column("name", N_("Policy"), "code", {"": N_("A policy deleted since")}),
    ),
    _sla_by(
        "sla-agents",
        N_("SLA compliance per agent"),
        N_("The share of targets met in the conversations assigned to each person."),
        figures.sla_agents,
        Column("name", N_("Agent"), "code", {"": N_("Nobody assigned")}),
    ),
    _sla_by(
        "sla-teams",
        N_("SLA compliance per team"),
        N_("The share of targets met in each team's queue."),
        figures.sla_teams,
        Column(
            "name", N_("Team"), "code", {"": N_("No team"), figures.DELETED_TEAM: N_("A team deleted since")}
        ),
    ),
    _sla_by(
        "sla-channels",
        N_("SLA compliance per channel"),
        N_("The share of targets met on each channel."),
        figures.sla_channels,
        Column("name", N_("Channel"), "code", CHANNEL_NAMES),
    ),
)
CSAT_CHARTS: tuple[Chart, ...] = (
    _csat_by(
        "csat",
        N_("CSAT score and response rate"),
        N_(
            "Surveys sent after a resolution and the customers' answers: all of them, then per "
            "channel. Satisfied: a score of 4 or 5 of 5. A survey counts on the day it was sent."
        ),
        figures.csat_channels,
        Column("channel", N_("Channel"), "code", {"": N_("All channels"), **CHANNEL_NAMES}),
    ),
    Chart(
        "csat-over-time",
        N_("CSAT over time"),
        N_("Each day's surveys: the share answered, and the share of answers that were satisfied."),
        figures.csat_by_day,
        (DAY, *CSAT_SHARES),
        "line",
        plotted=("satisfied_share", "response_rate"),
        group="csat",
        empty=CSAT_EMPTY,
    ),
    Chart(
        "csat-scores",
        N_("CSAT scores given"),
        N_("How many answers gave each score, from 1 (very poor) to 5 (excellent)."),
        figures.csat_scores,
        (
            Column("score", N_("Score"), "text"),
            Column("answers", N_("Answers")),
            Column("share", N_("Share"), "rate"),
        ),
        "bar",
        plotted=("answers",),
        group="csat",
        empty=N_("No survey was answered on these days with these filters."),
    ),
    _csat_by(
        "csat-teams",
        N_("CSAT per team"),
        N_("The surveys of the conversations in each team's queue."),
        figures.csat_teams,
        Column("name", N_("Team"), "code", {"": N_("No team")}),
    ),
    _csat_by(
        "csat-agents",
        N_("CSAT per agent"),
        N_("The surveys of the conversations assigned to each person."),
        figures.csat_agents,
        Column("name", N_("Agent"), "code", {"": N_("Nobody assigned")}),
    ),
)
CHARTS = CONVERSATION_CHARTS + SLA_CHARTS + CSAT_CHARTS
BY_KEY = {chart.key: chart for chart in CHARTS}
