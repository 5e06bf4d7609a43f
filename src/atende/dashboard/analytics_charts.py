"""The analytics page's charts, declared: which figure each draws (``atende.analytics.figures``),
its columns with their labels and kinds, and how it is drawn. The page, each chart's table view
and its CSV export are all made from this list, with the page's filters.

Adding a chart (SLA compliance, CSAT) is a figure function over a ``Scope`` and one ``Chart``
here: its key (the CSV's address, ``/app/analytics/<key>.csv``), title, a sentence saying what
it shows, its columns, and which of them are drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from atende.analytics import figures
from atende.analytics.figures import Figure
from atende.dashboard.i18n import N_
from atende.dashboard.wording import CHANNEL_NAMES, LANGUAGE_NAMES

# what a column holds, which says how it is shown: a table cell, a CSV cell, a chart's axis
#   text: a name as stored (a team's, a person's); code: a value shown by ``names``
#   date: a local day; count: a whole number; rate: a share (0..1), shown as a percentage
#   seconds: a duration in business seconds; weekday: ISO 1..7; hour: 0..23
Kind = Literal["text", "code", "date", "count", "rate", "seconds", "weekday", "hour"]

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


DAY = Column("day", N_("Day"), "date")
CONVERSATIONS = Column("conversations", N_("Conversations"))
MEDIAN = Column("median_seconds", N_("Median first response after a handoff"), "seconds")
P90 = Column("p90_seconds", N_("90th percentile of first response after a handoff"), "seconds")

CHARTS: tuple[Chart, ...] = (
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
BY_KEY = {chart.key: chart for chart in CHARTS}
