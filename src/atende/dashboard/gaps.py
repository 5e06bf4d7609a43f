"""The knowledge gaps page (``/app/analytics/gaps``): the questions the bot handed to people
because the knowledge base did not cover them, and those whose answer the customer rated "Not
helpful", grouped by topic and ranked by volume (or by handoffs, or by bad ratings), with
date, channel and language filters. The topics come from the hourly refresh
(``atende.gaps``); the page says when it ran. Admins get a link per topic that opens the
article editor with the topic's question as its title and an agent's answer as its draft."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from atende.dashboard.auth import ViewerPage
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import choices
from atende.dashboard.web import PageRoute, gettext, problem, render
from atende.dashboard.wording import LANGUAGE_NAMES
from atende.gaps import service as gaps
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

DEFAULT_DAYS = 30
# the orders the page offers (``gaps.SORTS``)
SORT_NAMES = {
    "volume": N_("Most questions"),
    "handoff": N_("Most handoffs"),
    "rating": N_("Most answers rated not helpful"),
}
EDITOR = "/app/knowledge/articles/new"  # the article editor (knowledge base pages) takes title, body
TITLE_CHARS = 200
DRAFT_CHARS = 2000  # a long answer is cut at a word, to keep the link a sensible length


def shortened(text: str, limit: int) -> str:
    """``text`` cut at the last word boundary within ``limit`` characters, with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def article_link(topic: gaps.Topic) -> str:
    """The editor's address with the topic's question as title and the agent's answer as body."""
    fields = {"title": shortened(topic.label, TITLE_CHARS)}
    if topic.draft:
        fields["body"] = shortened(topic.draft, DRAFT_CHARS)
    return f"{EDITOR}?{urlencode(fields)}"


@router.get("/analytics/gaps")
async def gaps_page(
    member: ViewerPage,
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
    channel: Annotated[str, Query(max_length=20)] = "",
    language: Annotated[str, Query(max_length=5)] = "",
    sort: Annotated[str, Query(max_length=20)] = "volume",
) -> Response:
    _ = gettext(member.visitor)
    company_id = member.tenant.principal.company_id
    async with member.tenant.transaction() as session:
        offered = await choices(session, company_id)
        zone = offered["zone"]
        today = datetime.now(zone).date()
        end = end or today
        start = start or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            return problem(
                member.visitor,
                422,
                _("Some of what was sent is not valid"),
                _("The start date is after the end date. Choose a start on or before the end."),
            )
        if sort not in SORT_NAMES:
            return problem(
                member.visitor,
                422,
                _("Some of what was sent is not valid"),
                _("There is no such order. Choose one from the list."),
            )
        if (channel and channel not in offered["channels"]) or (language and language not in LANGUAGE_NAMES):
            return problem(
                member.visitor,
                422,
                _("Some of what was sent is not valid"),
                _("There is no such channel or language. Choose one from the list."),
            )
        filters = gaps.Filters(
            start=datetime.combine(start, time(), zone),
            end=datetime.combine(end + timedelta(days=1), time(), zone),
            channel=channel or None,
            language=language or None,
            sort=sort,
        )
        found = await gaps.topics(session, filters)
        run = await gaps.last_run(session, company_id)
    can_write = member.role.allows(Role.admin)
    return render(
        member.visitor,
        "analytics_gaps.html",
        topics=[(topic, article_link(topic) if can_write else None) for topic in found],
        run=run,
        zone=zone,
        start=start,
        end=end,
        channel=channel,
        language=language,
        channels=offered["channels"],
        language_choices=list(LANGUAGE_NAMES),
        sort=sort,
        sort_names=SORT_NAMES,
        can_write=can_write,
    )
