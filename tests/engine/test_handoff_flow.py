"""The handoff path end to end through the live server with its clock fixed: what the customer
is told (a person answers soon, nobody is online, or when the team is back, in their language
and the company's time), where the conversation waits (queue, ticket, team), and what agents
do with it (assign, reply, hand back, resolve)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from atende.engine.messages import phrase
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import Clock, CompanyCtx, ask
from tests.fixtures.dashboard import arrange_user

SP = ZoneInfo("America/Sao_Paulo")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OFFICE = {
    "timezone": "America/Sao_Paulo",
    "weekly": {day: [{"start": "08:00", "end": "18:00"}] for day in WEEKDAYS},
    "holidays": {"country": "BR", "subdiv": "SP"},
}
NIGHT_SHIFT = {
    "timezone": "America/Sao_Paulo",
    "weekly": {day: [{"start": "22:00", "end": "06:00", "overnight": True}] for day in WEEKDAYS},
}
# September 2027: Wednesday the 1st, Friday the 3rd, Monday the 6th, Tuesday the 7th
# (Independence Day, a national holiday), Wednesday the 8th
ASK_FOR_A_PERSON = {
    "pt": "quero falar com um atendente",
    "en": "I want to talk to a human",
    "es": "quiero hablar con una persona",
}
LEADS = {"requested": {"pt": "Claro!", "en": "Of course!", "es": "¡Claro!"}}
UNANSWERABLE = "Vocês vendem geladeiras usadas com instalação inclusa?"
SHIPPING = "Qual o prazo de entrega para o interior?"
SHIPPING_ANSWER = "Para o interior, o prazo de entrega é de 4 a 10 dias úteis."


def local(day: int, hour: int, minute: int = 0, month: int = 9) -> datetime:
    """An instant of 2027 in São Paulo."""
    return datetime(2027, month, day, hour, minute, tzinfo=SP)


def contact() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


def told_open(lead: str, language: str) -> str:
    return f"{phrase(f'lead:{lead}', language)} {phrase('next:open', language)}"


def told_closed(lead: str, language: str, when: str) -> str:
    return f"{phrase(f'lead:{lead}', language)} {phrase('next:closed', language).format(when=when)}"


def told_nobody(lead: str, language: str) -> str:
    return f"{phrase(f'lead:{lead}', language)} {phrase('next:nobody', language)}"


async def put_hours(client: httpx.AsyncClient, hours: dict[str, Any]) -> None:
    r = await client.put("/v1/company/hours", json=hours)
    assert r.status_code == 200, r.text


async def put_handoff(client: httpx.AsyncClient, settings: dict[str, Any]) -> None:
    r = await client.put("/v1/company/handoff", json=settings)
    assert r.status_code == 200, r.text


async def conversation(client: httpx.AsyncClient, conversation_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def messages(client: httpx.AsyncClient, conversation_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/conversations/{conversation_id}/messages")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def queue(client: httpx.AsyncClient, team: str | None = None) -> list[dict[str, Any]]:
    r = await client.get("/v1/queue", params={"team": team} if team else {})
    assert r.status_code == 200, r.text
    return list(r.json())


async def post(client: httpx.AsyncClient, text: str, *, contact: str) -> dict[str, Any]:
    """Post a customer message without waiting for a reply."""
    r = await client.post("/v1/messages", json={"contact": {"external_id": contact}, "text": text})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def bot_reply_to(
    client: httpx.AsyncClient, conversation_id: str, message_id: str, seconds: float
) -> dict[str, Any] | None:
    """The bot's reply to a message, polled for up to ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        for m in await messages(client, conversation_id):
            if m["author"] == "bot" and m["reply_to_id"] == message_id:
                return m
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.1)


async def ask_for_a_person(company: CompanyCtx, clock: Clock, at: datetime, language: str = "pt") -> dict:
    clock.at(at)
    return await ask(company.client, ASK_FOR_A_PERSON[language], contact=contact())


async def ask_for_a_person_with(company: CompanyCtx, clock: Clock, text: str) -> dict:
    clock.at(local(8, 10))  # Wednesday, open
    return await ask(company.client, text, contact=contact())


# 1. what the customer is told, by business hours and holidays, in their language


async def test_asking_for_a_person_while_open_joins_the_queue_and_a_person_answers_soon(
    company: CompanyCtx, clock: Clock
) -> None:
    await put_hours(company.client, OFFICE)
    body = await ask_for_a_person(company, clock, local(1, 17, 59))  # Wednesday, a minute to close
    reply = body["reply"]
    assert reply["text"] == told_open("requested", "pt")
    assert reply["language"] == "pt"
    assert reply["meta"] == {"decision": "handoff", "ticket": False}
    detail = await conversation(company.client, body["conversation_id"])
    assert (detail["state"], detail["ticket"]) == ("waiting_human", False)
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert (handoff["from_state"], handoff["actor_type"]) == ("bot", "bot")
    assert handoff["reason"] == "the customer asked for a person"
    assert [c["id"] for c in await queue(company.client)] == [body["conversation_id"]]


@pytest.mark.parametrize(
    ("at", "when"),
    [
        (local(1, 18, 1), "amanhã às 08:00"),  # Wednesday, just closed
        (local(3, 19), "segunda-feira às 08:00"),  # Friday evening
        (local(4, 11), "segunda-feira às 08:00"),  # Saturday
        (local(7, 10), "amanhã às 08:00"),  # Independence Day (Tuesday): back on Wednesday
        (local(6, 7, 30), "hoje às 08:00"),  # Monday before opening
    ],
)
async def test_asking_for_a_person_while_closed_is_a_ticket_and_says_when_the_team_is_back(
    company: CompanyCtx, clock: Clock, at: datetime, when: str
) -> None:
    await put_hours(company.client, OFFICE)
    body = await ask_for_a_person(company, clock, at)
    reply = body["reply"]
    assert reply["text"] == told_closed("requested", "pt", when)
    assert reply["meta"] == {"decision": "handoff", "ticket": True}
    detail = await conversation(company.client, body["conversation_id"])
    assert (detail["state"], detail["ticket"]) == ("waiting_human", True)
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert handoff["reason"] == "the customer asked for a person (closed)"
    [queued] = await queue(company.client)
    assert (queued["id"], queued["ticket"]) == (body["conversation_id"], True)


@pytest.mark.parametrize(
    ("language", "at", "when"),
    [
        ("en", local(1, 18, 1), "tomorrow at 8:00 AM"),
        ("en", local(3, 19), "on Monday at 8:00 AM"),
        ("en", local(7, 10), "tomorrow at 8:00 AM"),
        ("es", local(1, 18, 1), "mañana a las 08:00"),
        ("es", local(3, 19), "el lunes a las 08:00"),
        ("es", local(7, 10), "mañana a las 08:00"),
    ],
)
async def test_the_customer_hears_when_the_team_is_back_in_the_language_they_wrote_in(
    company: CompanyCtx, clock: Clock, language: str, at: datetime, when: str
) -> None:
    await put_hours(company.client, OFFICE)  # the company speaks Portuguese by default
    body = await ask_for_a_person(company, clock, at, language)
    reply = body["reply"]
    assert reply["language"] == language
    assert reply["text"] == told_closed("requested", language, when)
    assert reply["text"].startswith(LEADS["requested"][language])
    assert (await conversation(company.client, body["conversation_id"]))["language"] == language


@pytest.mark.parametrize("language", ["en", "es"])
async def test_while_open_the_customer_hears_a_person_answers_soon_in_their_language(
    company: CompanyCtx, clock: Clock, language: str
) -> None:
    await put_hours(company.client, OFFICE)
    body = await ask_for_a_person(company, clock, local(8, 9), language)
    assert body["reply"]["text"] == told_open("requested", language)
    assert body["reply"]["meta"]["ticket"] is False


# 2. an overnight shift


@pytest.mark.parametrize(
    ("at", "when"),
    [
        (local(31, 3, month=8), None),  # Tuesday 03:00: Monday night's shift
        (local(4, 5, 59), None),  # Saturday 05:59: Friday night's shift
        (local(31, 7, month=8), "hoje às 22:00"),  # Tuesday 07:00: the shift is over
        (local(30, 3, month=8), "hoje às 22:00"),  # Monday 03:00: no shift on Sunday night
        (local(4, 6), "segunda-feira às 22:00"),  # Saturday 06:00: until Monday night
    ],
)
async def test_an_overnight_shift_is_open_past_midnight_and_closed_after_it_ends(
    company: CompanyCtx, clock: Clock, at: datetime, when: str | None
) -> None:
    await put_hours(company.client, NIGHT_SHIFT)
    body = await ask_for_a_person(company, clock, at)
    detail = await conversation(company.client, body["conversation_id"])
    if when is None:
        assert body["reply"]["text"] == told_open("requested", "pt")
        assert detail["ticket"] is False
    else:
        assert body["reply"]["text"] == told_closed("requested", "pt", when)
        assert detail["ticket"] is True
    assert detail["state"] == "waiting_human"


# 3. the queue


async def test_tickets_kept_while_closed_come_first_in_the_queue(company: CompanyCtx, clock: Clock) -> None:
    await put_hours(company.client, OFFICE)
    live_earlier = await ask_for_a_person(company, clock, local(1, 17))  # Wednesday, open
    ticket = await ask_for_a_person(company, clock, local(1, 19))  # Wednesday, closed
    live = await ask_for_a_person(company, clock, local(2, 9))  # Thursday, open
    assert [b["reply"]["meta"]["ticket"] for b in (live_earlier, ticket, live)] == [False, True, False]

    clock.at(local(2, 10))
    order = [(c["id"], c["ticket"]) for c in await queue(company.client)]
    assert order == [
        (ticket["conversation_id"], True),
        (live_earlier["conversation_id"], False),
        (live["conversation_id"], False),
    ]


async def test_the_time_waited_in_the_queue_counts_only_business_hours(
    company: CompanyCtx, clock: Clock
) -> None:
    await put_hours(company.client, OFFICE)
    ticket = await ask_for_a_person(company, clock, local(1, 19))  # Wednesday, closed
    live = await ask_for_a_person(company, clock, local(2, 9))  # Thursday, open

    clock.at(local(2, 10))
    first, second = await queue(company.client)
    assert (first["id"], second["id"]) == (ticket["conversation_id"], live["conversation_id"])
    # it joined the queue when the customer was handed off, at the server's "now"
    assert datetime.fromisoformat(first["waiting_since"]) == local(1, 19)
    assert datetime.fromisoformat(second["waiting_since"]) == local(2, 9)
    # the ticket waited from Wednesday 19:00, but the team only opened on Thursday at 08:00
    assert first["waiting_business_seconds"] == pytest.approx(2 * 3600, abs=1)
    assert second["waiting_business_seconds"] == pytest.approx(3600, abs=1)


# 4. agents: availability, assign, reply, hand back, resolve


async def add_agent(runtime: Runtime, company: CompanyCtx) -> tuple[uuid.UUID, httpx.AsyncClient]:
    """An agent of the company (offline, as every new member) and a client with their personal key."""
    email = f"agent-{uuid.uuid4().hex[:8]}@example.com"
    async with runtime.db.transaction() as session:
        user = await arrange_user(
            session, company_id=company.id, email=email, password="agent-password-1", role=Role.agent
        )
        _key, full = await tenancy.create_api_key(
            session,
            secret_key=runtime.secret_key,
            company_id=company.id,
            name="agent key",
            role=Role.agent,
            user_email=email,
        )
        user_id = user.id
    return user_id, company.with_key(full)


async def test_with_every_agent_offline_the_customer_is_told_nobody_is_available_until_one_comes_online(
    company: CompanyCtx, clock: Clock, runtime: Runtime
) -> None:
    await put_hours(company.client, OFFICE)
    user_id, agent = await add_agent(runtime, company)
    await agent.aclose()

    nobody = await ask_for_a_person(company, clock, local(8, 10))  # open, but nobody online
    assert nobody["reply"]["text"] == told_nobody("requested", "pt")
    assert nobody["reply"]["meta"] == {"decision": "handoff", "ticket": True}
    detail = await conversation(company.client, nobody["conversation_id"])
    assert (detail["state"], detail["ticket"]) == ("waiting_human", True)
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert handoff["reason"] == "the customer asked for a person (nobody online)"

    r = await company.client.put(f"/v1/agents/{user_id}/availability", json={"availability": "online"})
    assert r.status_code == 200, r.text
    assert r.json()["availability"] == "online"

    soon = await ask_for_a_person(company, clock, local(8, 10, 5))
    assert soon["reply"]["text"] == told_open("requested", "pt")
    assert soon["reply"]["meta"] == {"decision": "handoff", "ticket": False}


async def test_an_agent_takes_the_conversation_replies_hands_it_back_and_resolves_it(
    company: CompanyCtx, clock: Clock, runtime: Runtime
) -> None:
    await put_hours(company.client, OFFICE)
    user_id, agent = await add_agent(runtime, company)
    try:
        r = await agent.put("/v1/agents/me/availability", json={"availability": "online"})
        assert r.status_code == 200, r.text
        who = contact()
        clock.at(local(8, 10))
        handed = await ask(company.client, ASK_FOR_A_PERSON["pt"], contact=who)
        cid = handed["conversation_id"]
        assert handed["reply"]["text"] == told_open("requested", "pt")

        r = await agent.post(f"/v1/conversations/{cid}/assign", json={"agent": "me"})
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["assignee_id"]) == ("human", str(user_id))
        assert await queue(company.client) == []

        # while a person has it, the bot stays silent
        r = await company.client.post(
            "/v1/messages?wait=2", json={"contact": {"external_id": who}, "text": "Oi, alguém aí?"}
        )
        assert r.status_code == 201, r.text
        silent = r.json()
        assert silent["conversation_id"] == cid
        assert silent["reply"] is None
        assert await bot_reply_to(company.client, cid, silent["message"]["id"], 1.0) is None

        r = await agent.post(f"/v1/conversations/{cid}/replies", json={"text": "Olá, sou a Ana. Como ajudo?"})
        assert r.status_code == 201, r.text
        assert (r.json()["author"], r.json()["meta"]) == ("agent", {"agent_id": str(user_id)})
        stored = await messages(company.client, cid)
        assert [m["author"] for m in stored] == ["customer", "bot", "customer", "agent"]
        assert stored[-1]["text"] == "Olá, sou a Ana. Como ajudo?"
        assert (await conversation(company.client, cid))["state"] == "human"

        r = await agent.post(f"/v1/conversations/{cid}/handback", json={"reason": "all set"})
        assert r.status_code == 200, r.text
        assert (r.json()["state"], r.json()["assignee_id"]) == ("bot", None)
        thanks = await ask(company.client, "Obrigado!", contact=who)
        assert thanks["conversation_id"] == cid
        assert thanks["reply"]["text"] == phrase("thanks", "pt")

        r = await agent.post(f"/v1/conversations/{cid}/resolve")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "resolved"

        detail = await conversation(company.client, cid)
        assert detail["state"] == "resolved"
        moves = [
            (t["from_state"], t["to_state"], t["actor_type"], t["actor_id"]) for t in detail["transitions"]
        ]
        me = str(user_id)
        assert moves == [
            ("new", "bot", "customer", None),
            ("bot", "waiting_human", "bot", None),
            ("waiting_human", "human", "agent", me),
            ("human", "bot", "agent", me),
            ("bot", "resolved", "agent", me),
        ]
        reasons = [t["reason"] for t in detail["transitions"]]
        assert reasons[2:] == [f"assigned to {user_id}", "all set", "resolved"]
        stamps = [datetime.fromisoformat(t["created_at"]) for t in detail["transitions"]]
        assert all(s.tzinfo is not None for s in stamps)
        assert stamps == sorted(stamps)
    finally:
        await agent.aclose()


# 5. a company rule sends a subject to a team


async def test_a_company_rule_hands_a_subject_to_its_teams_queue(company: CompanyCtx, clock: Clock) -> None:
    await put_hours(company.client, OFFICE)
    r = await company.client.post("/v1/teams", json={"name": "Jurídico", "slug": "juridico"})
    assert r.status_code == 201, r.text
    team = r.json()
    await put_handoff(
        company.client, {"rules": [{"name": "legal", "keywords": ["procon"], "team": team["slug"]}]}
    )

    ruled = await ask_for_a_person_with(company, clock, "vou reclamar no Procon")
    assert ruled["reply"]["text"] == told_open("rule", "pt")
    detail = await conversation(company.client, ruled["conversation_id"])
    assert (detail["state"], detail["team_id"]) == ("waiting_human", team["id"])
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert handoff["reason"] == "handoff rule 'legal' matched"

    other = await ask_for_a_person(company, clock, local(8, 10, 1))
    assert [c["id"] for c in await queue(company.client, team["slug"])] == [ruled["conversation_id"]]
    assert {c["id"] for c in await queue(company.client)} == {
        ruled["conversation_id"],
        other["conversation_id"],
    }


# 6. a repeated question


async def test_asking_again_what_the_bot_answered_hands_off(kb_company: CompanyCtx, clock: Clock) -> None:
    await put_hours(kb_company.client, OFFICE)
    clock.at(local(8, 10))
    who = contact()
    first = await ask(kb_company.client, SHIPPING, contact=who)
    assert SHIPPING_ANSWER in first["reply"]["text"]
    assert first["reply"]["meta"]["decision"] == "answer"

    again = await ask(kb_company.client, SHIPPING, contact=who)
    assert again["conversation_id"] == first["conversation_id"]
    assert again["reply"]["text"] == told_open("repeat", "pt")
    assert again["reply"]["text"].startswith("Parece que minhas respostas")
    detail = await conversation(kb_company.client, first["conversation_id"])
    assert detail["state"] == "waiting_human"
    [handoff] = [t for t in detail["transitions"] if t["to_state"] == "waiting_human"]
    assert handoff["reason"] == "the customer repeated a question the bot had answered"


# 7. the bot keeps answering while the team is closed


async def test_while_closed_the_bot_keeps_answering_what_it_knows_in_a_waiting_ticket(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    who = contact()
    clock.at(local(1, 19))  # Wednesday, closed
    handed = await ask(client, ASK_FOR_A_PERSON["pt"], contact=who)
    cid = handed["conversation_id"]
    assert handed["reply"]["text"] == (
        f"{told_closed('requested', 'pt', 'amanhã às 08:00')} {phrase('next:bot_assists', 'pt')}"
    )
    assert handed["reply"]["meta"] == {"decision": "handoff", "ticket": True}

    asked = await post(client, SHIPPING, contact=who)
    assert asked["conversation_id"] == cid
    answered = await bot_reply_to(client, cid, asked["message"]["id"], 10)
    assert answered is not None, "the bot did not answer a knowledge-base question in a waiting ticket"
    assert SHIPPING_ANSWER in answered["text"]
    assert answered["meta"]["decision"] == "answer"
    detail = await conversation(client, cid)
    assert (detail["state"], detail["ticket"]) == ("waiting_human", True)

    unknown = await post(client, UNANSWERABLE, contact=who)
    assert await bot_reply_to(client, cid, unknown["message"]["id"], 1.5) is None
    detail = await conversation(client, cid)
    assert (detail["state"], detail["ticket"]) == ("waiting_human", True)
    assert [c["id"] for c in await queue(client)] == [cid]


async def test_a_waiting_ticket_posted_with_wait_returns_the_bots_answer(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    """``wait`` waits for the bot's reply whenever the bot will answer, and it does in a ticket
    it assists while the team is closed."""
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    who = contact()
    clock.at(local(3, 20))  # Friday, closed
    handed = await ask(client, ASK_FOR_A_PERSON["pt"], contact=who)
    assert handed["reply"]["meta"]["ticket"] is True
    r = await client.post("/v1/messages?wait=10", json={"contact": {"external_id": who}, "text": SHIPPING})
    assert r.status_code == 201, r.text
    body = r.json()
    # the bot does answer it (see the test above) ...
    answered = await bot_reply_to(client, body["conversation_id"], body["message"]["id"], 10)
    assert answered is not None
    assert SHIPPING_ANSWER in answered["text"]
    # ... and the request that waited for that answer returns it
    assert body["reply"] is not None, "wait returned without the bot's answer in a ticket the bot assists"
    assert body["reply"]["id"] == answered["id"]


async def test_when_the_team_opens_the_bot_stops_answering_a_ticket(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    who = contact()
    clock.at(local(1, 19))
    handed = await ask(client, ASK_FOR_A_PERSON["pt"], contact=who)
    clock.at(local(2, 8, 30))  # Thursday, open: people take it from here
    asked = await post(client, SHIPPING, contact=who)
    assert await bot_reply_to(client, handed["conversation_id"], asked["message"]["id"], 1.5) is None
    detail = await conversation(client, handed["conversation_id"])
    assert (detail["state"], detail["ticket"]) == ("waiting_human", True)


async def test_turning_the_setting_on_applies_to_conversations_already_waiting(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    """docs/HANDOFF.md promises the bot's help in any conversation waiting for the team while
    it is closed: the setting is read when the customer writes, not stamped at the handoff."""
    client = kb_company.client
    await put_hours(client, OFFICE)
    who = contact()
    clock.at(local(1, 19))  # Wednesday, closed; the setting is off
    handed = await ask(client, ASK_FOR_A_PERSON["pt"], contact=who)
    cid = handed["conversation_id"]
    assert handed["reply"]["text"] == told_closed("requested", "pt", "amanhã às 08:00")

    await put_handoff(client, {"bot_answers_while_closed": True})
    asked = await post(client, SHIPPING, contact=who)
    assert asked["conversation_id"] == cid
    answered = await bot_reply_to(client, cid, asked["message"]["id"], 10)
    assert answered is not None, "the bot did not help a conversation that waited before the setting"
    assert SHIPPING_ANSWER in answered["text"]
    assert (await conversation(client, cid))["state"] == "waiting_human"

    # and turned off, it stops at once in the conversations it was helping
    await put_handoff(client, {"bot_answers_while_closed": False})
    again = await post(client, "E para as capitais, qual o prazo de entrega?", contact=who)
    assert await bot_reply_to(client, cid, again["message"]["id"], 1.5) is None


async def test_a_conversation_queued_while_open_gets_the_bots_help_once_the_team_closes(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    who = contact()
    clock.at(local(1, 17, 50))  # Wednesday, open (nobody online: a ticket, told no time)
    handed = await ask(client, ASK_FOR_A_PERSON["pt"], contact=who)
    cid = handed["conversation_id"]
    asked = await post(client, SHIPPING, contact=who)
    assert await bot_reply_to(client, cid, asked["message"]["id"], 1.5) is None  # open: people answer

    clock.at(local(1, 18, 30))  # closed now, still waiting
    later = await post(client, "Qual o prazo de entrega para o interior do estado?", contact=who)
    answered = await bot_reply_to(client, cid, later["message"]["id"], 10)
    assert answered is not None and SHIPPING_ANSWER in answered["text"]


async def test_a_message_the_bot_leaves_for_the_team_ends_the_wait_at_once(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    """With the setting on, a message to a waiting conversation queues a turn; when the turn
    leaves it for people (the knowledge base does not cover it, or the team is open) it says
    so, and `wait` returns at once instead of waiting for nothing (the widget, likewise,
    stops showing "typing")."""
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    who = contact()
    clock.at(local(1, 19))  # Wednesday, closed
    await ask(client, ASK_FOR_A_PERSON["pt"], contact=who)
    for now in (local(1, 19, 5), local(2, 10)):  # closed, then Thursday open
        clock.at(now)
        started = asyncio.get_running_loop().time()
        r = await client.post(
            "/v1/messages?wait=10", json={"contact": {"external_id": who}, "text": UNANSWERABLE}
        )
        assert r.status_code == 201, r.text
        assert r.json()["reply"] is None
        assert asyncio.get_running_loop().time() - started < 5, now


async def test_the_web_chat_shows_typing_for_a_ticket_the_bot_answers_while_closed(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    """The widget's ``awaiting_reply`` follows the same rule as intake: the bot answers a
    ticket it assists while the team is closed."""
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    clock.at(local(3, 20))  # Friday, closed
    r = await client.post(f"/widget/v1/{kb_company.widget_key}/conversations")
    assert r.status_code == 201, r.text
    chat = r.json()
    path = f"/widget/v1/{kb_company.widget_key}/conversations/{chat['conversation_id']}/messages"
    headers = {"X-Visitor-Token": chat["token"]}
    first = await client.post(path, json={"text": ASK_FOR_A_PERSON["pt"]}, headers=headers)
    assert first.status_code == 201, first.text
    assert await bot_reply_to(client, chat["conversation_id"], first.json()["id"], 10) is not None
    assert (await conversation(client, chat["conversation_id"]))["state"] == "waiting_human"
    second = await client.post(path, json={"text": SHIPPING}, headers=headers)
    assert second.status_code == 201, second.text
    assert second.json()["awaiting_reply"] is True
    answered = await bot_reply_to(client, chat["conversation_id"], second.json()["id"], 10)
    assert answered is not None
    assert SHIPPING_ANSWER in answered["text"]


async def test_the_web_chat_hears_when_the_bot_leaves_a_message_for_the_team(
    kb_company: CompanyCtx, clock: Clock
) -> None:
    """`awaiting_reply` says a turn runs; when it stays silent (not covered while closed) the
    stream says `idle` for that message, so the widget's "typing" does not stay on forever."""
    client = kb_company.client
    await put_hours(client, OFFICE)
    await put_handoff(client, {"bot_answers_while_closed": True})
    clock.at(local(3, 20))  # Friday, closed
    chat = (await client.post(f"/widget/v1/{kb_company.widget_key}/conversations")).json()
    path = f"/widget/v1/{kb_company.widget_key}/conversations/{chat['conversation_id']}"
    headers = {"X-Visitor-Token": chat["token"]}
    first = await client.post(f"{path}/messages", json={"text": ASK_FOR_A_PERSON["pt"]}, headers=headers)
    assert await bot_reply_to(client, chat["conversation_id"], first.json()["id"], 10) is not None
    posted: list[dict[str, Any]] = []
    idle: list[dict[str, Any]] = []
    async with asyncio.timeout(10), client.stream("GET", f"{path}/events?token={chat['token']}") as stream:
        event = ""
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:") and event == "message" and not posted:
                # the history is replayed: the stream is live, now write
                r = await client.post(f"{path}/messages", json={"text": UNANSWERABLE}, headers=headers)
                assert r.status_code == 201 and r.json()["awaiting_reply"] is True, r.text
                posted.append(r.json())
            elif line.startswith("data:") and event == "idle":
                idle.append(json.loads(line.partition(":")[2]))
                break
    assert [e["message_id"] for e in idle] == [posted[0]["id"]]


async def test_a_conversation_queued_again_waits_from_its_new_handoff(
    company: CompanyCtx, clock: Clock
) -> None:
    client = company.client
    await put_hours(client, OFFICE)
    clock.at(local(1, 9))
    handed = await ask(client, ASK_FOR_A_PERSON["pt"], contact=contact())
    conversation_id = handed["conversation_id"]
    first_wait = (await conversation(client, conversation_id))["waiting_since"]
    assert datetime.fromisoformat(first_wait) == local(1, 9)
    clock.at(local(1, 11))
    for state in ("human", "waiting_human"):
        r = await client.post(f"/v1/conversations/{conversation_id}/state", json={"state": state})
        assert r.status_code == 200, r.text
        if state == "human":
            assert r.json()["waiting_since"] is None
    again = (await conversation(client, conversation_id))["waiting_since"]
    assert datetime.fromisoformat(again) == local(1, 11)
