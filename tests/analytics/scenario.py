"""A company's week of conversations written with exact timestamps (as intake and the team's
actions would leave them: contacts, conversations, messages, state changes), for the analytics
tests: hours Monday to Friday 09:00-18:00 in São Paulo, two teams, an agent, and conversations
that wait across a closed night and across a weekend."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from atende.analytics import rollup
from atende.runtime import Runtime
from atende.teams import service as teams
from atende.tenancy.models import Company, Role
from tests.fixtures.dashboard import Team, add_person, make_team

ZONE = ZoneInfo("America/Sao_Paulo")
HOURS = {
    "timezone": "America/Sao_Paulo",
    "weekly": {
        day: [{"start": "09:00", "end": "18:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
    },
}
# a week of November 2026: Monday 16 to Friday 20, and the Monday after
MONDAY = datetime(2026, 11, 16, tzinfo=ZONE)
REQUESTED = "the customer asked for a person"
RULE = "handoff rule 'legal' matched"

TRANSITION = text(
    "INSERT INTO state_transitions (id, created_at, company_id, conversation_id, from_state, to_state,"
    " actor_type, reason) VALUES (gen_random_uuid(), :at, :company, :conversation, :from_state,"
    " :to_state, :actor, :reason)"
)
MESSAGE = text(
    "INSERT INTO messages (id, created_at, company_id, conversation_id, channel, author, text, language,"
    " meta) VALUES (gen_random_uuid(), :at, :company, :conversation, :channel, :author, :text,"
    " :language, '{}'::jsonb)"
)


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An instant of November 2026 in São Paulo."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=ZONE)


@dataclass
class Scenario:
    team: Team
    agent_name: str
    team_ids: dict[str, uuid.UUID]
    conversations: dict[str, uuid.UUID] = field(default_factory=dict)


async def conversation(
    runtime: Runtime,
    company_id: uuid.UUID,
    *,
    channel: str,
    language: str | None,
    state: str,
    events: list[tuple[datetime, str, Any]],
    team_id: uuid.UUID | None = None,
    assignee_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A conversation and what happened in it: ``(when, "customer"|"bot"|"agent", text)`` for a
    message, ``(when, "state", (to_state, actor_type, reason))`` for a state change."""
    conversation_id, contact_id = uuid.uuid4(), uuid.uuid4()
    started = events[0][0]
    state_now = "bot"
    async with runtime.db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO contacts (id, created_at, company_id, channel, external_id)"
                " VALUES (:id, :at, :company, :channel, :external)"
            ),
            {
                "id": contact_id,
                "at": started,
                "company": company_id,
                "channel": channel,
                "external": str(contact_id),
            },
        )
        await session.execute(
            text(
                "INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state,"
                " language, team_id, assignee_id, ticket, updated_at) VALUES (:id, :at, :company,"
                " :contact, :channel, :state, :language, :team, :assignee, false, :updated)"
            ),
            {
                "id": conversation_id,
                "at": started,
                "company": company_id,
                "contact": contact_id,
                "channel": channel,
                "state": state,
                "language": language,
                "team": team_id,
                "assignee": assignee_id,
                "updated": events[-1][0],
            },
        )
        for when, kind, what in events:
            if kind == "state":
                to_state, actor, reason = what
                await session.execute(
                    TRANSITION,
                    {
                        "at": when,
                        "company": company_id,
                        "conversation": conversation_id,
                        "from_state": state_now,
                        "to_state": to_state,
                        "actor": actor,
                        "reason": reason,
                    },
                )
                state_now = to_state
            else:
                await session.execute(
                    MESSAGE,
                    {
                        "at": when,
                        "company": company_id,
                        "conversation": conversation_id,
                        "channel": channel,
                        "author": kind,
                        "text": what,
                        "language": language,
                    },
                )
    return conversation_id


async def make_scenario(
    runtime: Runtime, *, team_name: str = "Suporte", agent_name: str = "Ana Agent"
) -> Scenario:
    """The week: five conversations of the company (one the month before), refreshed."""
    team = await make_team(runtime, name="Loja da Olga")
    agent = await add_person(runtime, team.company_id, Role.agent, name=agent_name)
    async with runtime.db.transaction() as session:
        company = await session.get(Company, team.company_id)
        assert company is not None
        company.settings = {**(company.settings or {}), "hours": HOURS}
    async with runtime.db.transaction(team.company_id) as session:
        first, _m = await teams.put_team(
            session, None, name=team_name, slug="suporte", hours=None, members=[agent.user_id]
        )
        second, _m = await teams.put_team(
            session, None, name="Jurídico", slug="juridico", hours=None, members=[]
        )
    scenario = Scenario(team, agent_name, {"suporte": first.id, "juridico": second.id})
    add = scenario.conversations
    company_id = team.company_id
    # Monday 17:50, handed off at 17:55; a person answers Tuesday 09:10 (15 business minutes
    # across the closed night) and resolves it at 09:30
    add["night"] = await conversation(
        runtime,
        company_id,
        channel="webchat",
        language="pt",
        state="resolved",
        team_id=first.id,
        assignee_id=agent.user_id,
        events=[
            (local(16, 17, 50), "customer", "Meu pedido não chegou"),
            (local(16, 17, 50, 5), "bot", "Vou verificar."),
            (local(16, 17, 55), "customer", "Quero falar com uma pessoa"),
            (local(16, 17, 55), "state", ("waiting_human", "bot", REQUESTED)),
            (local(17, 9, 10), "state", ("human", "agent", None)),
            (local(17, 9, 10), "agent", "Olá, sou a Ana."),
            (local(17, 9, 30), "state", ("resolved", "agent", None)),
        ],
    )
    # Tuesday 10:00, the bot answers and it is resolved with no person
    add["bot"] = await conversation(
        runtime,
        company_id,
        channel="api",
        language="en",
        state="resolved",
        events=[
            (local(17, 10, 0), "customer", "Where is my order?"),
            (local(17, 10, 0, 2), "bot", "It ships tomorrow."),
            (local(17, 10, 5), "state", ("resolved", "api", None)),
        ],
    )
    # Tuesday 11:00, a company rule hands it to the legal team, where it still waits
    add["rule"] = await conversation(
        runtime,
        company_id,
        channel="whatsapp",
        language="es",
        state="waiting_human",
        team_id=second.id,
        events=[
            (local(17, 11, 0), "customer", "Voy a denunciar"),
            (local(17, 11, 0, 3), "bot", "Un momento."),
            (local(17, 11, 1), "state", ("waiting_human", "bot", RULE)),
        ],
    )
    # Friday 17:00; an agent moves it to people at 17:30, answered Monday 09:30 (one business
    # hour across the weekend)
    add["weekend"] = await conversation(
        runtime,
        company_id,
        channel="webchat",
        language="pt",
        state="human",
        team_id=first.id,
        assignee_id=agent.user_id,
        events=[
            (local(20, 17, 0), "customer", "Troca de produto"),
            (local(20, 17, 0, 1), "bot", "Claro."),
            (local(20, 17, 30), "state", ("waiting_human", "agent", "gave it to a person")),
            (local(23, 9, 30), "state", ("human", "agent", None)),
            (local(23, 9, 30), "agent", "Bom dia!"),
        ],
    )
    # the month before: outside the week's range
    add["october"] = await conversation(
        runtime,
        company_id,
        channel="email",
        language="pt",
        state="bot",
        events=[(datetime(2026, 10, 20, 10, tzinfo=ZONE), "customer", "Olá")],
    )
    async with runtime.db.transaction(company_id) as session:
        await rollup.refresh(session, company_id, MONDAY + timedelta(days=30))
    return scenario


RECORD = text(
    "INSERT INTO sla_records (id, company_id, conversation_id, policy_id, target, started_at, due_at,"
    " stopped_at, breached, channel, team_id, assignee_id) VALUES (gen_random_uuid(), :company,"
    " :conversation, :policy, :target, :started, :due, :stopped, :breached, :channel, :team, :assignee)"
)
SURVEY = text(
    "INSERT INTO csat_surveys (id, company_id, conversation_id, transition_id, channel, language,"
    " resolved_at, sent_at, closes_at, score, answered_at, spent_links, status) VALUES (gen_random_uuid(),"
    " :company, :conversation, :transition, :channel, :language, :resolved, :sent, :closes, :score,"
    " :answered, '[]'::jsonb, :status)"
)


async def add_policy(runtime: Runtime, company_id: uuid.UUID, name: str, position: int) -> uuid.UUID:
    policy_id = uuid.uuid4()
    async with runtime.db.transaction(company_id) as session:
        await session.execute(
            text(
                "INSERT INTO sla_policies (id, company_id, name, position, first_response_seconds,"
                " resolution_seconds) VALUES (:id, :company, :name, :position, 600, 28800)"
            ),
            {"id": policy_id, "company": company_id, "name": name, "position": position},
        )
    return policy_id


async def add_record(
    runtime: Runtime,
    company_id: uuid.UUID,
    conversation_id: uuid.UUID,
    policy_id: uuid.UUID | None,
    target: str,
    started: datetime,
    due: datetime,
    stopped: datetime | None,
) -> None:
    """A target the SLA job judged (as its ``_RECORD`` leaves it): breached when it stopped
    after its due time or has not stopped; the conversation's channel, team and agent."""
    async with runtime.db.transaction(company_id) as session:
        c = (
            await session.execute(
                text("SELECT channel, team_id, assignee_id FROM conversations WHERE id = :id"),
                {"id": conversation_id},
            )
        ).one()
        await session.execute(
            RECORD,
            {
                "company": company_id,
                "conversation": conversation_id,
                "policy": policy_id,
                "target": target,
                "started": started,
                "due": due,
                "stopped": stopped,
                "breached": stopped is None or stopped > due,
                "channel": c.channel,
                "team": c.team_id,
                "assignee": c.assignee_id,
            },
        )


async def add_survey(
    runtime: Runtime,
    company_id: uuid.UUID,
    conversation_id: uuid.UUID,
    sent: datetime,
    score: int | None,
    *,
    skipped: bool = False,
) -> None:
    """A CSAT survey sent at ``sent`` after a resolution just before, answered with ``score``
    five minutes later (``None``: not answered); ``skipped``: one that could not be sent
    (migration 0041: no ``sent_at``)."""
    transition_id = uuid.uuid4()
    async with runtime.db.transaction(company_id) as session:
        c = (
            await session.execute(
                text(
                    "SELECT channel, coalesce(language, 'pt') AS language FROM conversations WHERE id = :id"
                ),
                {"id": conversation_id},
            )
        ).one()
        await session.execute(
            text(
                "INSERT INTO state_transitions (id, created_at, company_id, conversation_id, from_state,"
                " to_state, actor_type) VALUES (:id, :at, :company, :conversation, 'human', 'resolved',"
                " 'agent')"
            ),
            {
                "id": transition_id,
                "at": sent - timedelta(minutes=5),
                "company": company_id,
                "conversation": conversation_id,
            },
        )
        await session.execute(
            SURVEY,
            {
                "company": company_id,
                "conversation": conversation_id,
                "transition": transition_id,
                "channel": c.channel,
                "language": c.language,
                "resolved": sent - timedelta(minutes=5),
                "sent": None if skipped else sent,
                "status": "skipped" if skipped else "sent",
                "closes": sent + timedelta(days=7),
                "score": score,
                "answered": sent + timedelta(minutes=5) if score is not None else None,
            },
        )


async def add_service_levels(runtime: Runtime, scenario: Scenario) -> dict[str, uuid.UUID]:
    """The week's SLA targets and CSAT surveys, and the company's two policies (returned).

    Targets (outcome day in the week of the 16th, all of them on São Paulo days):
      night   first response  Padrão  breached on the 17th (due 09:05, answered 09:10)
      night   resolution      Padrão  met on the 17th
      night   next response   Padrão  met on the 17th
      rule    first response  VIP     breached on the 17th (never answered)
      rule    resolution      VIP     breached on the 19th
      weekend first response  VIP     met on Monday the 23rd: after the week
    Surveys: night (web chat) 5 on the 17th, bot (API) 2 on the 17th, rule (WhatsApp) 4 on
    the 18th, weekend (web chat) not answered on the 20th; and one of rule's resolutions (the
    19th) skipped, never sent.
    """
    company_id = scenario.team.company_id
    c = scenario.conversations
    standard = await add_policy(runtime, company_id, "Padrão", 1)
    vip = await add_policy(runtime, company_id, "VIP", 0)
    for conversation_id, policy, target, started, due, stopped in (
        (c["night"], standard, "first_response", local(16, 17, 55), local(17, 9, 5), local(17, 9, 10)),
        (c["night"], standard, "resolution", local(16, 17, 55), local(17, 17, 55), local(17, 9, 30)),
        (c["night"], standard, "next_response", local(17, 9, 20), local(17, 10, 20), local(17, 9, 25)),
        (c["rule"], vip, "first_response", local(17, 11, 1), local(17, 12, 1), None),
        (c["rule"], vip, "resolution", local(17, 11, 1), local(19, 11, 1), None),
        (c["weekend"], vip, "first_response", local(20, 17, 30), local(23, 10, 0), local(23, 9, 30)),
    ):
        await add_record(runtime, company_id, conversation_id, policy, target, started, due, stopped)
    for conversation_id, sent, score in (
        (c["night"], local(17, 9, 35), 5),
        (c["bot"], local(17, 10, 10), 2),
        (c["rule"], local(18, 10, 0), 4),
        (c["weekend"], local(20, 17, 20), None),
    ):
        await add_survey(runtime, company_id, conversation_id, sent, score)
    # a resolution that could not be surveyed: it counts nowhere
    await add_survey(runtime, company_id, c["rule"], local(19, 10, 0), None, skipped=True)
    return {"Padrão": standard, "VIP": vip}


async def turn_on_csat(runtime: Runtime, company_id: uuid.UUID) -> None:
    """CSAT surveys on from now (nothing resolved before is surveyed)."""
    async with runtime.db.transaction() as session:
        company = await session.get(Company, company_id)
        assert company is not None
        csat = {"enabled": True, "enabled_at": datetime.now(ZONE).isoformat()}
        company.settings = {**(company.settings or {}), "csat": csat}
