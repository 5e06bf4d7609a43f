"""The inbox page: a company's conversations by view (mine, unassigned, my teams, all) with
each view's count, the filters, a search over the messages, and keyset pages ("Older").

Everything it lists comes from ``teams.inbox``, the functions ``GET /v1/conversations`` and
its counts call, with the signed-in person as the caller; this module only turns the page's
query into an ``InboxQuery`` and the rows into a table. A filter naming nothing of the
company's is a notice above an empty list, never an error page: the person fixes the form.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels import registry
from atende.conversations import labels
from atende.conversations.inbox import Count
from atende.dashboard.auth import Member, ViewerPage
from atende.dashboard.i18n import N_
from atende.dashboard.sla_time import time_to_breach
from atende.dashboard.web import PageRoute, gettext, is_htmx, render
from atende.dashboard.wording import CHANNEL_NAMES, LANGUAGE_NAMES, STATE_NAMES, VIEW_NAMES
from atende.errors import AtendeError, InvalidInput
from atende.sla import service as sla
from atende.teams import inbox
from atende.teams import service as teams
from atende.teams.inbox import InboxQuery, View
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 25
SNOOZED = "snoozed"  # the state filter's value for the snoozed conversations
STATE_CHOICES = ("open", "bot", "waiting_human", "human", "resolved", SNOOZED)
STATE_CHOICE_NAMES = {**STATE_NAMES, "open": N_("Open (not resolved)"), SNOOZED: N_("Snoozed")}
# what a refused filter means, said to a person (the service's message is the API's)
FILTER_PROBLEMS = {
    "view": N_("There is no such view."),
    "state": N_("There is no such state."),
    "team": N_("The company has no such team."),
    "assignee": N_("That person is not an agent of this company."),
    "label": N_("The company has no such label."),
    "language": N_("There is no such language."),
    "search": N_("Type up to 200 characters, with at least one letter or digit, to search."),
    "cursor": N_("That page of the list is no longer valid: start again from the newest."),
    "channel": N_("There is no such channel."),
}
Text = Annotated[str, Query(max_length=320)]


@dataclass(frozen=True)
class Filters:
    """The page's query as sent (empty: no filter), kept to fill the form and the links."""

    view: str = "all"
    state: str = ""
    channel: str = ""
    team: str = ""
    assignee: str = ""
    label: str = ""
    language: str = ""
    search: str = ""

    def query(self) -> InboxQuery:
        try:
            view = View(self.view)
        except ValueError:
            raise _problem("view") from None
        return InboxQuery(
            view=view,
            states=(self.state,) if self.state and self.state != SNOOZED else (),
            snoozed="only" if self.state == SNOOZED else "exclude",
            channel=self.channel or None,
            team=self.team or None,
            assignee=self.assignee or None,
            label=self.label or None,
            language=self.language or None,
            search=self.search if self.search.strip() else None,
        )

    def url(self, **changes: str) -> str:
        """The inbox's address with these filters (and ``changes``), empty ones left out."""
        values = {**self.__dict__, **changes}
        return "/app/inbox?" + urlencode({k: v for k, v in values.items() if v})


def _problem(field: str) -> InvalidInput:
    return InvalidInput(f"{field} is not valid", field=field)


def company_zone(hours: dict[str, Any] | None) -> tzinfo:
    """The zone the company's times are shown in: its business hours', else UTC."""
    try:
        return ZoneInfo(str((hours or {}).get("timezone") or "UTC"))
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


async def choices(session: AsyncSession, company_id: uuid.UUID) -> dict[str, Any]:
    """What the filters and the assignment controls offer: the company's teams, agents and
    labels, its channels, and the zone its times are shown in."""
    return {
        "teams": [team for team, _members in await teams.list_teams(session)],
        "agents": [a for a in await teams.agents(session) if a.member.deactivated_at is None],
        "labels": await labels.list_labels(session),
        "channels": sorted(channel.kind for channel in registry.channels()),
        "zone": company_zone(await teams.company_hours(session, company_id)),
    }


def count_text(count: Count | None) -> str:
    if count is None:
        return ""
    return f"{count.count}+" if count.capped else str(count.count)


async def _inbox(member: Member, filters: Filters, cursor: str) -> Response:
    principal = member.tenant.principal
    error: str | None = None
    items: list[inbox.InboxItem] = []
    counts: dict[View, Any] = {}
    next_cursor = None
    due: dict[uuid.UUID, datetime] = {}
    async with member.tenant.transaction() as session:
        offered = await choices(session, principal.company_id)
        try:
            query = filters.query()
            async with session.begin_nested():  # a refused filter leaves the transaction usable
                items, next_cursor = await inbox.list_inbox(
                    session, principal, query, cursor=cursor or None, limit=PAGE_SIZE
                )
                counts = await inbox.count_views(session, principal, query)
                due = await sla.next_due(session, [item.row.conversation.id for item in items])
        except AtendeError as exc:
            _ = gettext(member.visitor)
            error = _(FILTER_PROBLEMS.get(exc.field or "", N_("This filter cannot be used.")))
    now, _ = member.visitor.runtime.clock(), gettext(member.visitor)
    values = {
        "filters": filters,
        "items": items,
        "breaches": {cid: time_to_breach(at, now, _) for cid, at in due.items()},
        "counts": {view: count_text(count) for view, count in counts.items()},
        "next_url": filters.url(cursor=next_cursor) if next_cursor else None,
        "first_url": filters.url() if cursor else None,
        "views": list(View),
        "view_names": VIEW_NAMES,
        "state_choices": STATE_CHOICES,
        "state_names": STATE_CHOICE_NAMES,
        "channel_names": CHANNEL_NAMES,
        "language_names": LANGUAGE_NAMES,
        "error": error,
        "can_act": member.role.allows(Role.agent),
        **offered,
    }
    status = 422 if error else 200
    if is_htmx(member.visitor.request) and member.visitor.request.headers.get("hx-target") == "inbox-results":
        return render(member.visitor, "_inbox_results.html", status=status, **values)
    return render(member.visitor, "inbox.html", status=status, **values)


@router.get("/inbox")
async def inbox_page(
    member: ViewerPage,
    view: Annotated[str, Query(max_length=20)] = "all",
    state: Annotated[str, Query(max_length=20)] = "",
    channel: Annotated[str, Query(max_length=20)] = "",
    team: Annotated[str, Query(max_length=80)] = "",
    assignee: Text = "",
    label: Annotated[str, Query(max_length=200)] = "",
    language: Annotated[str, Query(max_length=5)] = "",
    search: Annotated[str, Query(max_length=1000)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    filters = Filters(view, state, channel, team, assignee, label, language, search)
    return await _inbox(member, filters, cursor)
