"""The analytics page: the charts of ``analytics_charts`` over the company's conversations in
a date range, with channel, team and language filters that apply to every chart; each chart
with its table view (what a screen reader or a browser without JavaScript gets) and its data as
CSV, filtered the same way.

The filters are GET parameters, so a view can be bookmarked or shared. The figures come from
``analytics_conversation_facts``, brought up to date every few minutes by a periodic job; the
page says when they were last (``figures as of``). A filter that names nothing of the
company's, or a range that makes no sense, is a notice above empty charts, never an error page.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from babel.dates import get_day_names
from fastapi import APIRouter, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException

from atende.analytics import rollup
from atende.analytics.figures import Row, Scope
from atende.channels import registry
from atende.dashboard import i18n
from atende.dashboard.analytics_charts import BY_KEY, CHARTS, GROUPS, Chart, Column
from atende.dashboard.auth import Member, ViewerPage
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import company_zone
from atende.dashboard.web import PageRoute, csv_cell, gettext, render
from atende.dashboard.wording import CHANNEL_NAMES, LANGUAGE_NAMES
from atende.feedback import service as feedback
from atende.sla import service as sla
from atende.teams import service as teams

router = APIRouter(route_class=PageRoute, include_in_schema=False)

DEFAULT_DAYS = 30
MAX_DAYS = 400
# a spreadsheet runs a cell starting with one of these as a formula (CSV injection)
PROBLEMS = {
    "dates": N_("Choose dates as year-month-day, the first not after the last."),
    "range": N_("Choose at most 400 days."),
    "team": N_("The company has no such team."),
    "channel": N_("There is no such channel."),
    "language": N_("There is no such language."),
}
Short = Annotated[str, Query(max_length=80)]


class FilterProblem(Exception):
    def __init__(self, field: str) -> None:
        self.field = field


@dataclass(frozen=True)
class Filters:
    """The page's query as sent (empty: no filter)."""

    start: str = ""
    end: str = ""
    channel: str = ""
    team: str = ""
    language: str = ""

    def query(self, **changes: str) -> str:
        values = {**asdict(self), **changes}
        return urlencode({k: v for k, v in values.items() if v})

    def dates(self, today: date) -> tuple[date, date]:
        """The first and last local day; the last 30 days by default."""
        try:
            end = date.fromisoformat(self.end) if self.end else today
            start = date.fromisoformat(self.start) if self.start else end - timedelta(days=DEFAULT_DAYS - 1)
        except ValueError:
            raise FilterProblem("dates") from None
        if start > end:
            raise FilterProblem("dates")
        if (end - start).days >= MAX_DAYS:
            raise FilterProblem("range")
        return start, end


def duration_text(seconds: float | None, _: Callable[[str], str]) -> str:
    if seconds is None:
        return "–"
    whole = round(seconds)
    if whole < 60:
        return _("%(seconds)d s") % {"seconds": whole}
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return _("%(minutes)d min %(seconds)02d s") % {"minutes": minutes, "seconds": secs}
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return _("%(hours)d h %(minutes)02d min") % {"hours": hours, "minutes": minutes}
    days, hours = divmod(hours, 24)
    return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}


@dataclass
class Table:
    """A chart's data as shown: column headings, and per row the raw values (CSV, chart) and
    their texts (the table view)."""

    headings: list[str]
    kinds: list[str]
    keys: list[str]
    raw: list[list[Any]]
    texts: list[list[str]]
    found: bool = True  # the figure had rows (a table of every day may have none)


class Presenter:
    """Turns a figure's rows into a ``Table`` in the reader's language."""

    def __init__(self, language: str, first: date, last: date) -> None:
        self._ = i18n.translations(language).gettext
        self.locale = i18n.locale(language)
        self.first, self.last = first, last
        self.weekdays = get_day_names("wide", locale=self.locale)  # 0 is Monday
        # numbers written with the locale's separators (babel's format_decimal, a thousand
        # times a page, took most of its time)
        symbols = self.locale.number_symbols.get("latn", self.locale.number_symbols)
        self._separators = str.maketrans({",": symbols.get("group", ","), ".": symbols.get("decimal", ".")})

    def number(self, value: float, decimals: int = 0) -> str:
        return f"{value:,.{decimals}f}".translate(self._separators)

    def name(self, column: Column, value: Any) -> Any:
        """A value as a person reads it in CSV (names translated; numbers as numbers)."""
        if value is None:
            return None
        if column.kind == "code":
            names = column.names or {}
            return self._(names[value]) if value in names else value
        if column.kind == "weekday":
            return self.weekdays[int(value) - 1]
        if column.kind == "hour":
            return f"{int(value):02d}"
        if column.kind == "date":
            return value.isoformat()
        if column.kind in ("seconds", "rate", "score"):
            return round(float(value), {"rate": 4, "score": 2}.get(column.kind, 1))
        return value

    def text(self, column: Column, value: Any) -> str:
        if value is None:
            return "–"
        if column.kind == "count":
            return self.number(value)
        if column.kind == "rate":
            return self.number(float(value) * 100, 1) + "%"
        if column.kind == "seconds":
            return duration_text(float(value), self._)
        if column.kind == "score":
            return self.number(float(value), 2)
        if column.kind == "date":
            return f"{value:%d/%m}" if self.locale.language == "pt" else value.isoformat()
        return str(self.name(column, value))

    def _domain(self, column: Column, seen: list[Any]) -> list[Any]:
        if column.kind == "date":
            return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]
        if column.kind == "weekday":
            return list(range(1, 8))
        if column.kind == "hour":
            return list(range(24))
        return list(dict.fromkeys(seen))

    def table(self, chart: Chart, rows: list[Row]) -> Table:
        columns = list(chart.columns)
        if chart.pivot is not None:
            x, series, value = columns[0], chart.pivot.series, chart.pivot.value
            cells = {(r[x.key], r[series.key]): r[value.key] for r in rows}
            xs = self._domain(x, [r[x.key] for r in rows])
            names = self._domain(series, sorted({r[series.key] for r in rows}))
            headings = [self._(x.label)] + [str(self.name(series, s)) for s in names]
            raw = [[self.name(x, v)] + [cells.get((v, s), 0) for s in names] for v in xs]
            texts = [[self.text(x, v)] + [self.text(value, cells.get((v, s), 0)) for s in names] for v in xs]
            kinds: list[str] = [x.kind, *[value.kind] * len(names)]
            return Table(headings, kinds, [x.key] + [str(s) for s in names], raw, texts, bool(rows))
        found = bool(rows)
        if columns[0].kind == "date":  # every day of the range, those with nothing too
            by_day = {r["day"]: r for r in rows}
            rows = [by_day.get(d, {"day": d}) for d in self._domain(columns[0], [])]
        return Table(
            [self._(c.label) for c in columns],
            [c.kind for c in columns],
            [c.key for c in columns],
            [[self.name(c, r.get(c.key)) for c in columns] for r in rows],
            [[self.text(c, r.get(c.key)) for c in columns] for r in rows],
            found,
        )


def drawing(chart: Chart, table: Table, _: Callable[[str], str]) -> dict[str, Any]:
    """What the page's script draws (JSON): the x labels, and each plotted series."""
    if chart.draw == "heatmap":
        return {}
    plotted = range(1, len(table.keys)) if chart.pivot else [table.keys.index(k) for k in chart.plotted]
    unit = table.kinds[next(iter(plotted), 0)] if table.keys[1:] else "count"
    return {
        "type": chart.draw,
        "unit": unit,
        # durations are drawn in minutes: the axis's and the values' unit, in the reader's words
        "minutes": _("min"),
        "labels": [row[0] for row in table.texts],
        "series": [
            {
                "label": table.headings[i],
                "data": [row[i] for row in table.raw],
            }
            for i in plotted
        ],
    }


def script_json(value: Any) -> str:
    """JSON to put inside a ``<script type="application/json">``: no ``</script>`` can end it
    early (a team's name is the company's text)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def heat(table: Table) -> list[list[float]]:
    """Each heat-map cell's shade, 0..1 of the busiest hour (the numbers stay in the cells)."""
    top = max((v for row in table.raw for v in row[1:]), default=0) or 1
    return [[v / top for v in row[1:]] for row in table.raw]


@dataclass
class Context:
    scope: Scope | None
    first: date
    last: date
    zone: tzinfo
    error: str | None
    offered: dict[str, Any]


async def _context(session: AsyncSession, member: Member, filters: Filters) -> Context:
    principal = member.tenant.principal
    _ = gettext(member.visitor)
    zone = company_zone(await teams.company_hours(session, principal.company_id))
    team_list = [team for team, _members in await teams.list_teams(session)]
    today = datetime.now(zone).date()
    offered: dict[str, Any] = {
        "teams": team_list,
        "channels": sorted(channel.kind for channel in registry.channels()),
    }
    first, last = today - timedelta(days=DEFAULT_DAYS - 1), today
    try:
        first, last = filters.dates(today)
        team_id: uuid.UUID | None = None
        if filters.team:
            team_id = next((t.id for t in team_list if t.slug == filters.team), None)
            if team_id is None:
                raise FilterProblem("team")
        if filters.channel and filters.channel not in offered["channels"]:
            raise FilterProblem("channel")
        if filters.language and filters.language not in LANGUAGE_NAMES:
            raise FilterProblem("language")
    except FilterProblem as problem:
        return Context(None, first, last, zone, _(PROBLEMS[problem.field]), offered)
    scope = Scope(
        company_id=principal.company_id,
        first=first,
        last=last,
        timezone=str(zone),
        channel=filters.channel or None,
        team_id=team_id,
        language=filters.language or None,
    )
    return Context(scope, first, last, zone, None, offered)


async def _tables(
    session: AsyncSession, member: Member, context: Context, charts: tuple[Chart, ...]
) -> list[Table]:
    presenter = Presenter(member.visitor.language, context.first, context.last)
    tables = []
    for chart in charts:
        rows = await chart.figure(session, context.scope) if context.scope else []
        tables.append(presenter.table(chart, rows))
    return tables


# a section whose feature the company has not turned on: what it says, and where it is turned on
FEATURE_OFF = {
    "sla": (
        N_("The company has no SLA policy, so no target is measured."),
        N_("Add an SLA policy in Settings"),
        "/app/settings/sla",
    ),
    "csat": (
        N_("Customer satisfaction surveys are off, so none is sent."),
        N_("Turn CSAT surveys on in Settings"),
        "/app/settings/feedback",
    ),
}


async def _features_off(session: AsyncSession, member: Member) -> set[str]:
    """The page's sections whose feature the company has not turned on."""
    off = set()
    if not await sla.list_policies(session):
        off.add("sla")
    if not (await feedback.csat_settings(session, member.tenant.principal.company_id)).enabled:
        off.add("csat")
    return off


@router.get("/analytics")
async def analytics_page(
    member: ViewerPage,
    start: Short = "",
    end: Short = "",
    channel: Short = "",
    team: Short = "",
    language: Short = "",
) -> Response:
    filters = Filters(start, end, channel, team, language)
    _ = gettext(member.visitor)
    async with member.tenant.transaction() as session:  # one snapshot: every chart the same figures
        context = await _context(session, member, filters)
        tables = await _tables(session, member, context, CHARTS)
        as_of = await rollup.refreshed_at(session, member.tenant.principal.company_id)
        off = await _features_off(session, member)
    shown: list[dict[str, Any]] = [
        {
            "chart": chart,
            "table": table,
            "drawing": script_json(drawing(chart, table, _)),
            "heat": heat(table) if chart.draw == "heatmap" else None,
            "csv": f"/app/analytics/{chart.key}.csv?{filters.query()}",
        }
        for chart, table in zip(CHARTS, tables, strict=True)
    ]
    sections: list[dict[str, Any]] = []
    for group, title in GROUPS:
        items = [item for item in shown if item["chart"].group == group]
        has_rows = any(item["table"].found for item in items)
        sections.append(
            {
                "key": group,
                "title": title,
                "off": FEATURE_OFF[group] if group in off else None,
                # a feature turned off shows its charts only while the range still has figures
                "charts": items if group not in off or has_rows else [],
            }
        )
    return render(
        member.visitor,
        "analytics.html",
        status=422 if context.error else 200,
        filters=filters,
        first=context.first,
        last=context.last,
        zone=context.zone,
        as_of=as_of,
        error=context.error,
        sections=sections,
        channel_names=CHANNEL_NAMES,
        language_names=LANGUAGE_NAMES,
        **context.offered,
    )


@router.get("/analytics/{key}.csv")
async def analytics_csv(
    member: ViewerPage,
    key: Annotated[str, Path(max_length=40)],
    start: Short = "",
    end: Short = "",
    channel: Short = "",
    team: Short = "",
    language: Short = "",
) -> Response:
    chart = BY_KEY.get(key)
    if chart is None:
        raise HTTPException(404)
    async with member.tenant.transaction() as session:
        context = await _context(session, member, Filters(start, end, channel, team, language))
        if context.error:
            raise HTTPException(422, context.error)
        [table] = await _tables(session, member, context, (chart,))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(h) for h in table.headings])
    for row in table.raw:
        writer.writerow([csv_cell(v) for v in row])
    name = f"atende-{chart.key}-{context.first.isoformat()}-{context.last.isoformat()}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
