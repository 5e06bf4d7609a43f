"""The inbox as an agent sees it: views (mine, unassigned, my teams, all), filters named the
way people name things (a team's slug, an agent's e-mail, a label's name), each row with
its team's and assignee's names, and a count per view.

Who "me" is and which teams are "mine" are the human side's to say, so the views live here;
the statement that finds the conversations is ``conversations.inbox``'s, which takes plain
values. The API's ``GET /v1/conversations`` and the dashboard's inbox call these functions.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import inbox, labels
from atende.conversations.inbox import COUNT_CAP, OPEN_STATES, Count, InboxFilter, InboxRow
from atende.conversations.states import State
from atende.errors import InvalidInput, NotFound
from atende.teams.models import Team, TeamMember
from atende.teams.service import get_team
from atende.tenancy.models import Membership, User
from atende.tenancy.service import LANGUAGES, Principal, find_agent

__all__ = ["COUNT_CAP", "InboxItem", "InboxQuery", "Person", "View", "count_views", "list_inbox"]


class View(StrEnum):
    """Which conversations an inbox tab shows."""

    mine = "mine"  # assigned to the caller
    unassigned = "unassigned"  # waiting for a person, nobody assigned
    my_teams = "my_teams"  # of the teams the caller is a member of
    all = "all"


PERSONAL_VIEWS = frozenset({View.mine, View.my_teams})
OPEN = "open"  # a state filter's value: every state but resolved


@dataclass(frozen=True)
class InboxQuery:
    """An inbox request's filters, as given: ``states`` are state names or ``open``,
    ``team`` a slug or id, ``assignee`` ``me``, ``none``, a user id or e-mail, ``label`` an
    id or name, ``language`` pt, en or es, ``search`` words of the conversation's messages,
    ``snoozed`` the snoozed conversations instead of the others (every view leaves them out
    until they wake)."""

    view: View = View.all
    states: tuple[str, ...] = ()
    channel: str | None = None
    team: str | None = None
    assignee: str | None = None
    label: str | None = None
    language: str | None = None
    search: str | None = None
    updated_since: datetime | None = None
    snoozed: bool = False  # only the snoozed ones (else: none of them)


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str
    email: str


@dataclass(frozen=True)
class InboxItem:
    """An inbox row: the conversation's, with its team and assignee."""

    row: InboxRow
    team: Team | None
    assignee: Person | None


def _states(given: Sequence[str]) -> frozenset[State] | None:
    if not given:
        return None
    states: set[State] = set()
    for value in given:
        if value == OPEN:
            states |= OPEN_STATES
            continue
        try:
            states.add(State(value))
        except ValueError:
            allowed = ", ".join([OPEN, *(s.value for s in State)])
            raise InvalidInput(f"state: '{value}' is not one of {allowed}", field="state") from None
    return frozenset(states)


async def _filters(session: AsyncSession, query: InboxQuery) -> InboxFilter:
    """The filters shared by every view, as plain values (``InvalidInput`` naming the field
    for a value that names nothing of the company's)."""
    for field, value in (
        ("channel", query.channel),
        ("team", query.team),
        ("assignee", query.assignee),
        ("label", query.label),
    ):
        if value is not None and "\x00" in value:
            raise InvalidInput(f"{field} must not contain NUL bytes (\\u0000)", field=field)
    if query.language is not None and query.language not in LANGUAGES:
        raise InvalidInput(
            f"language: '{query.language}' is not one of {', '.join(LANGUAGES)}", field="language"
        )
    wanted = InboxFilter(
        states=_states(query.states),
        channel=query.channel,
        language=query.language,
        search=inbox.clean_search(query.search) if query.search is not None else None,
        updated_since=query.updated_since,
        snoozed=query.snoozed,
    )
    if query.team is not None:
        wanted = replace(wanted, team_ids=((await get_team(session, query.team)).id,))
    if query.label is not None:
        try:
            label = await labels.get_label(session, query.label)
        except NotFound:
            raise InvalidInput(f"label: there is no label '{query.label}'", field="label") from None
        wanted = replace(wanted, label_id=label.id)
    return wanted


async def _assignee(session: AsyncSession, principal: Principal, ref: str) -> uuid.UUID:
    """The agent an ``assignee`` filter names: ``me``, a user id or an e-mail."""
    if ref == "me":
        if principal.user_id is None:
            raise InvalidInput(
                "assignee: 'me' needs a personal key (atende keys create --user EMAIL)", field="assignee"
            )
        return principal.user_id
    try:
        return (await find_agent(session, ref)).user_id
    except InvalidInput:
        raise InvalidInput(f"assignee: '{ref}' is not an agent of this company", field="assignee") from None


async def _my_teams(session: AsyncSession, user_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    return tuple(await session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


def _needs_person(principal: Principal, view: View) -> uuid.UUID:
    if principal.user_id is None:
        raise InvalidInput(
            f"view: '{view.value}' needs a personal key, which acts as a person "
            "(atende keys create --user EMAIL); a company key may use 'unassigned' or 'all'",
            field="view",
        )
    return principal.user_id


NOBODY = "none"  # an assignee filter's value: conversations nobody is assigned to


class _Resolver:
    """Turns the caller's views into filters, reading what they need once per request."""

    def __init__(self, session: AsyncSession, principal: Principal, query: InboxQuery) -> None:
        self.session, self.principal, self.query = session, principal, query
        self._base: InboxFilter | None = None
        self._teams: tuple[uuid.UUID, ...] | None = None

    async def base(self) -> InboxFilter:
        """The filters, the assignee's included (every view narrows these)."""
        if self._base is None:
            wanted = await _filters(self.session, self.query)
            if self.query.assignee == NOBODY:
                wanted = replace(wanted, assigned_to_nobody=True)
            elif self.query.assignee is not None:
                person = await _assignee(self.session, self.principal, self.query.assignee)
                wanted = replace(wanted, assignee_id=person)
            self._base = wanted
        return self._base

    async def view(self, view: View) -> InboxFilter:
        wanted = await self.base()
        if view == View.mine:
            me = _needs_person(self.principal, view)
            if wanted.assigned_to_nobody or wanted.assignee_id not in (None, me):
                return replace(wanted, matches_nothing=True)  # nobody's, or another's, is not mine
            return replace(wanted, assignee_id=me)
        if view == View.unassigned:
            if wanted.assignee_id is not None:
                return replace(wanted, matches_nothing=True)
            return replace(wanted, unassigned=True)
        if view == View.my_teams:
            me = _needs_person(self.principal, view)
            if self._teams is None:
                self._teams = await _my_teams(self.session, me)
            mine = self._teams
            if wanted.team_ids is not None:  # a team filter: only if it is one of mine
                mine = tuple(t for t in wanted.team_ids if t in self._teams)
            return replace(wanted, team_ids=mine)
        return wanted


async def list_inbox(
    session: AsyncSession,
    principal: Principal,
    query: InboxQuery,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[InboxItem], str | None]:
    """One page of the view's conversations under the query's filters, most recent activity
    first; and the next page's cursor (``None``: the last page)."""
    wanted = await _Resolver(session, principal, query).view(query.view)
    rows, next_cursor = await inbox.list_inbox(session, wanted, cursor=cursor, limit=limit)
    team_ids = {r.conversation.team_id for r in rows if r.conversation.team_id is not None}
    user_ids = {r.conversation.assignee_id for r in rows if r.conversation.assignee_id is not None}
    teams = {}
    if team_ids:
        teams = {t.id: t for t in await session.scalars(select(Team).where(Team.id.in_(team_ids)))}
    people = await _people(session, user_ids)
    items = [
        InboxItem(
            row,
            teams.get(row.conversation.team_id) if row.conversation.team_id else None,
            people.get(row.conversation.assignee_id) if row.conversation.assignee_id else None,
        )
        for row in rows
    ]
    return items, next_cursor


async def _people(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, Person]:
    """Members of the company among ``ids`` (an assignee who left the company has no name)."""
    if not ids:
        return {}
    rows = await session.execute(
        select(User.id, User.name, User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(User.id.in_(ids))
    )
    return {ident: Person(ident, name, email) for ident, name, email in rows}


async def count_views(
    session: AsyncSession, principal: Principal, query: InboxQuery
) -> dict[View, Count | None]:
    """How many conversations each view holds under the query's filters (its own ``view``
    aside), each counted up to ``COUNT_CAP``; ``None`` for the views a company key, which is
    nobody, has not (mine, my teams). One statement."""
    resolver = _Resolver(session, principal, query)
    views = [v for v in View if principal.user_id is not None or v not in PERSONAL_VIEWS]
    counted = await inbox.count_inbox(session, [await resolver.view(v) for v in views])
    found: dict[View, Count | None] = dict.fromkeys(View)
    found.update(zip(views, counted, strict=True))
    return found
