"""The SLA job against the real database, with an injected clock: the clocks the triggers start
at a handoff, a customer's message and an agent's reply get due times in the company's (or the
team's) business time; each warning and breach is raised once, at its exact second, as a
webhook and (when the policy asks) an e-mail to the team, and a breach escalates; replies and
resolutions are recorded met or breached."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from atende.conversations import service as conversations
from atende.runtime import Runtime
from atende.sla import service
from atende.sla.models import SlaClock, SlaRecord
from atende.sla.service import Checked
from atende.sla.tasks import blueprint
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import Clock, CompanyCtx, ask
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.fixtures.mail import MailSink

NY = ZoneInfo("America/New_York")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
OFFICE = {
    "timezone": "America/New_York",
    "weekly": {d: [{"start": "09:00", "end": "18:00"}] for d in WEEKDAYS},
    "holidays": {"country": "US", "subdiv": "MA"},
}


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_the_job_runs_every_15_seconds_one_run_at_a_time() -> None:
    [periodic] = blueprint().periodic_registry.periodic_tasks.values()
    assert periodic.cron == "* * * * * */15"
    assert periodic.task.lock == periodic.task.queueing_lock == "check"


async def check_at(runtime: Runtime, company: CompanyCtx, now: datetime) -> Checked:
    """The job's run for this company at ``now`` (the session's worker runs it too, on the real
    clock: the instants here are in 2027, which it does not reach)."""
    async with runtime.db.transaction(company.id) as session:
        return await service.check(session, runtime, company.id, now)


async def settled(runtime: Runtime, company: CompanyCtx, now: datetime) -> None:
    """Run the job at ``now`` until no clock of the company waits to be computed (the
    session's worker may hold some for a moment: the job skips what another run holds)."""
    for _ in range(100):
        await check_at(runtime, company, now)
        async with runtime.db.transaction(company.id) as session:
            if not list(await session.scalars(select(SlaClock.id).where(SlaClock.stale))):
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the clocks were never computed")


async def handed_off(
    company: CompanyCtx, runtime: Runtime, at: datetime, team_id: uuid.UUID | None = None
) -> str:
    """A conversation the bot had, handed to people at ``at`` (the handoff's clock)."""
    body = await ask(company.client, "Oi, tudo bem?", contact=f"sla-{uuid.uuid4().hex[:6]}")
    cid = body["conversation_id"]
    async with runtime.db.transaction(company.id) as session:
        conversation = await conversations.get_conversation(session, uuid.UUID(cid), for_update=True)
        assert conversation.state == "bot"
        await conversations.hand_to_team(
            session, runtime.jobs, conversation, team_id=team_id, ticket=False, reason="test", now=at
        )
    return cid


async def policy(company: CompanyCtx, **fields: object) -> dict:
    r = await company.client.post("/v1/sla/policies", json={"name": f"p-{uuid.uuid4().hex[:6]}", **fields})
    assert r.status_code == 201, r.text
    return r.json()


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


async def test_warning_and_breach_fall_on_their_second_over_a_weekend_and_are_raised_once(
    company: CompanyCtx, runtime: Runtime, receiver: WebhookReceiver
) -> None:
    assert (await company.client.put("/v1/company/hours", json=OFFICE)).status_code == 200
    await policy(company, first_response="1h", resolution="4h")
    path = receiver.new_path()
    r = await company.client.post(
        "/v1/webhooks", json={"url": receiver.url(path), "events": ["sla.warning", "sla.breached"]}
    )
    assert r.status_code == 201, r.text
    cid = await handed_off(company, runtime, ny(2027, 3, 5, 17, 30))  # a Friday, 30 minutes to closing
    await settled(runtime, company, ny(2027, 3, 5, 17, 30))
    sla = (await company.client.get(f"/v1/conversations/{cid}/sla")).json()
    clocks = {c["target"]: c for c in sla["clocks"]}
    # 30 minutes on Friday, the rest on Monday: 1 h is due at 09:30, its 80 % (48 min) at 09:18
    assert instant(clocks["first_response"]["due_at"]) == ny(2027, 3, 8, 9, 30)
    assert instant(clocks["first_response"]["warn_at"]) == ny(2027, 3, 8, 9, 18)
    assert instant(clocks["resolution"]["due_at"]) == ny(2027, 3, 8, 12, 30)
    assert instant(sla["next_due_at"]) == ny(2027, 3, 8, 9, 30)

    one = timedelta(seconds=1)
    assert (await check_at(runtime, company, ny(2027, 3, 8, 9, 18) - one)).warnings == 0
    assert (await check_at(runtime, company, ny(2027, 3, 8, 9, 18))).warnings == 1
    assert (await check_at(runtime, company, ny(2027, 3, 8, 9, 18) + one)).warnings == 0  # once
    assert (await check_at(runtime, company, ny(2027, 3, 8, 9, 30) - one)).breaches == 0
    done = await check_at(runtime, company, ny(2027, 3, 8, 9, 30))
    assert (done.breaches, done.warnings) == (1, 0)
    assert (await check_at(runtime, company, ny(2027, 3, 8, 9, 31))).breaches == 0
    # the resolution's warning (11:42) passes unseen with its breach: only the breach is raised
    done = await check_at(runtime, company, ny(2027, 3, 8, 13, 0))
    assert (done.breaches, done.warnings) == (1, 0)

    received = await receiver.wait_for(path, lambda got: len(got) >= 3)
    events = sorted(
        (e["type"], e["data"]["target"], instant(e["data"]["at"])) for e in (r.event for r in received)
    )
    assert events == [
        ("sla.breached", "first_response", ny(2027, 3, 8, 9, 30)),
        ("sla.breached", "resolution", ny(2027, 3, 8, 12, 30)),
        ("sla.warning", "first_response", ny(2027, 3, 8, 9, 18)),
    ]
    assert {e["data"]["conversation_id"] for e in (r.event for r in received)} == {cid}
    async with runtime.db.transaction(company.id) as session:
        records = list(await session.scalars(select(SlaRecord).order_by(SlaRecord.due_at)))
    assert [(r.target, r.breached, r.stopped_at) for r in records] == [
        ("first_response", True, None),
        ("resolution", True, None),
    ]


async def test_a_teams_own_overnight_hours_and_a_dst_change_set_its_due_time(
    company: CompanyCtx, runtime: Runtime
) -> None:
    assert (await company.client.put("/v1/company/hours", json=OFFICE)).status_code == 200
    nights = {
        "timezone": "America/New_York",
        "weekly": {
            d: [{"start": "22:00", "end": "06:00", "overnight": True}]
            for d in (*WEEKDAYS, "saturday", "sunday")
        },
    }
    async with runtime.db.transaction(company.id) as session:
        team, _ = await teams.put_team(session, None, name="Noite", slug="noite", hours=nights, members=[])
    await policy(company, teams=["noite"], first_response="7h")
    await policy(company, first_response="1h")  # everyone else's, tried second
    # Saturday 13 March 2027 22:00 EST: that night skips 02:00-03:00, so its shift is 7 hours
    cid = await handed_off(company, runtime, ny(2027, 3, 13, 22, 0), team_id=team.id)
    await settled(runtime, company, ny(2027, 3, 13, 22, 0))
    sla = (await company.client.get(f"/v1/conversations/{cid}/sla")).json()
    [first] = [c for c in sla["clocks"] if c["target"] == "first_response"]
    assert instant(first["due_at"]) == ny(2027, 3, 14, 6, 0) == datetime(2027, 3, 14, 10, 0, tzinfo=UTC)
    assert (await check_at(runtime, company, ny(2027, 3, 14, 5, 59, 59))).breaches == 0
    assert (await check_at(runtime, company, ny(2027, 3, 14, 6, 0))).breaches == 1
    # the company's hours for a conversation of no team: Monday 15 March, 10:00 EDT
    other = await handed_off(company, runtime, ny(2027, 3, 12, 17, 30))
    await settled(runtime, company, ny(2027, 3, 12, 17, 30))
    sla = (await company.client.get(f"/v1/conversations/{other}/sla")).json()
    [first] = [c for c in sla["clocks"] if c["target"] == "first_response"]
    assert instant(first["due_at"]) == ny(2027, 3, 15, 9, 30)


async def test_replies_are_recorded_met_or_breached_and_waiting_on_the_customer_pauses(
    company: CompanyCtx, runtime: Runtime
) -> None:
    assert (await company.client.put("/v1/company/hours", json=OFFICE)).status_code == 200
    await policy(company, first_response="1h", next_response="2h", resolution="1000h")
    # Wednesday 25 November 2026, 17:30: Thursday is Thanksgiving, so 1 h is due Friday 09:30
    cid = await handed_off(company, runtime, ny(2026, 11, 25, 17, 30))
    now = datetime.now(UTC)
    await settled(runtime, company, now)
    r = await company.client.post(f"/v1/conversations/{cid}/replies", json={"text": "Olá!"})
    assert r.status_code == 201, r.text
    await settled(runtime, company, now)
    async with runtime.db.transaction(company.id) as session:
        [first] = list(await session.scalars(select(SlaRecord).where(SlaRecord.target == "first_response")))
    assert first.breached and first.due_at == ny(2026, 11, 27, 9, 30)
    assert first.stopped_at == instant(r.json()["created_at"])
    # the team answered: nothing runs until the customer writes (the resolution aside)
    sla = (await company.client.get(f"/v1/conversations/{cid}/sla")).json()
    assert [c["target"] for c in sla["clocks"] if c["stopped_at"] is None] == ["resolution"]
    contact = (await company.client.get(f"/v1/conversations/{cid}")).json()["contact_id"]
    async with runtime.db.transaction(company.id) as session:
        external = await conversations.contact_external_id(session, uuid.UUID(contact))
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": external}, "text": "E o meu pedido?"}
    )
    assert r.status_code == 201, r.text
    asked = instant(r.json()["message"]["created_at"])
    await settled(runtime, company, now)
    sla = (await company.client.get(f"/v1/conversations/{cid}/sla")).json()
    [following] = [c for c in sla["clocks"] if c["target"] == "next_response"]
    assert instant(following["started_at"]) == asked
    assert following["status"] == "running"
    r = await company.client.post(f"/v1/conversations/{cid}/replies", json={"text": "Já vai!"})
    assert r.status_code == 201, r.text
    assert (await company.client.post(f"/v1/conversations/{cid}/resolve")).status_code == 200
    await settled(runtime, company, now)
    async with runtime.db.transaction(company.id) as session:
        records = {r.target: r for r in await session.scalars(select(SlaRecord))}
        left = list(await session.scalars(select(SlaClock)))
    assert not records["next_response"].breached
    assert records["next_response"].started_at == asked
    assert not records["resolution"].breached and records["resolution"].stopped_at is not None
    assert left == []  # every clock stopped and recorded


async def next_sla_event(sub: Any, seconds: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = await sub.next(timeout=max(0.05, deadline - time.monotonic()))
        if event is not None and event.get("kind") == "sla":
            return dict(event)
    raise AssertionError(f"no sla event within {seconds}s")


async def test_a_breach_escalates_to_a_team_emails_it_and_is_live_in_the_dashboard(
    company: CompanyCtx, runtime: Runtime, mail_sink: MailSink, live_app: FastAPI
) -> None:
    address = f"n2-{uuid.uuid4().hex[:6]}@example.com"
    async with runtime.db.transaction(company.id) as session:
        user = await tenancy.create_user(
            session, company_id=company.id, email=address, password="senha-segura-1", role=Role.agent
        )
        n2, _ = await teams.put_team(session, None, name="N2", slug="n2", hours=None, members=[user.id])
    await policy(company, first_response="10m", escalation="reassign", escalation_team="n2", email_team=True)
    cid = await handed_off(company, runtime, ny(2027, 6, 1, 10, 0))  # always open: no hours set
    await settled(runtime, company, ny(2027, 6, 1, 10, 0))
    before = mail_sink.count()
    with live_app.state.runtime.listener.subscribe(conversations.queue_topic(company.id)) as sub:
        done = await check_at(runtime, company, ny(2027, 6, 1, 10, 10))
        assert done.breaches == 1
        live = await next_sla_event(sub)  # what the inbox's and the conversation's streams hear
    assert (live["level"], live["conversation_id"], live["target"]) == ("breached", cid, "first_response")
    moved = (await company.client.get(f"/v1/conversations/{cid}")).json()
    assert (moved["team_id"], moved["state"]) == (str(n2.id), "waiting_human")
    message = await asyncio.to_thread(mail_sink.wait_for, address, after=before)
    assert "SLA breached: first response" in message["Subject"]


async def test_priority_chooses_the_policy_and_is_set_through_the_api(
    company: CompanyCtx, runtime: Runtime
) -> None:
    urgent = await policy(company, priorities=["urgent"], first_response="5m")
    anyone = await policy(company, first_response="1h")
    cid = await handed_off(company, runtime, ny(2027, 6, 1, 10, 0))
    await settled(runtime, company, ny(2027, 6, 1, 10, 0))
    sla = (await company.client.get(f"/v1/conversations/{cid}/sla")).json()
    assert (sla["priority"], sla["policy_id"]) == ("normal", anyone["id"])
    r = await company.client.put(f"/v1/conversations/{cid}/priority", json={"priority": "urgent"})
    assert r.status_code == 200, r.text
    assert r.json()["policy_id"] == urgent["id"]
    assert instant(r.json()["next_due_at"]) == ny(2027, 6, 1, 10, 5)  # computed at once
    await settled(runtime, company, ny(2027, 6, 1, 10, 0))
    async with runtime.db.transaction(company.id) as session:
        due = await service.next_due(session, [uuid.UUID(cid)])
    assert due[uuid.UUID(cid)] == ny(2027, 6, 1, 10, 5)
    r = await company.client.put(f"/v1/conversations/{cid}/priority", json={"priority": "asap"})
    assert (r.status_code, r.json()["field"]) == (422, "priority")


async def test_a_breach_found_late_neither_moves_an_answered_conversation_nor_floods_the_team(
    company: CompanyCtx, runtime: Runtime, mail_sink: MailSink
) -> None:
    address = f"n3-{uuid.uuid4().hex[:6]}@example.com"
    async with runtime.db.transaction(company.id) as session:
        user = await tenancy.create_user(
            session, company_id=company.id, email=address, password="senha-segura-1", role=Role.agent
        )
        await teams.put_team(session, None, name="N3", slug="n3", hours=None, members=[user.id])
    await policy(company, first_response="10m", escalation="reassign", escalation_team="n3", email_team=True)

    # answered and resolved after the due time, before the job saw the breach: recorded
    # breached, and the resolved conversation stays resolved, in no team's queue
    answered = await handed_off(company, runtime, ny(2026, 11, 2, 10, 0))  # always open: no hours
    await settled(runtime, company, ny(2026, 11, 2, 10, 0))
    r = await company.client.post(f"/v1/conversations/{answered}/replies", json={"text": "Olá!"})
    assert r.status_code == 201, r.text
    assert (await company.client.post(f"/v1/conversations/{answered}/resolve")).status_code == 200
    before = mail_sink.count()
    await settled(runtime, company, datetime.now(UTC))
    async with runtime.db.transaction(company.id) as session:
        [first] = list(
            await session.scalars(
                select(SlaRecord).where(
                    SlaRecord.conversation_id == uuid.UUID(answered), SlaRecord.target == "first_response"
                )
            )
        )
    assert first.breached
    after = (await company.client.get(f"/v1/conversations/{answered}")).json()
    assert (after["state"], after["team_id"]) == ("resolved", None)

    # a conversation already overdue when its clock is first computed (a policy made over
    # open conversations): the breach is recorded, nobody is e-mailed, nothing is moved
    overdue = await handed_off(company, runtime, ny(2027, 6, 1, 10, 0))
    done = await check_at(runtime, company, ny(2027, 6, 1, 10, 30))
    assert done.breaches >= 1
    kept = (await company.client.get(f"/v1/conversations/{overdue}")).json()
    assert (kept["state"], kept["team_id"]) == ("waiting_human", None)
    await asyncio.sleep(2)  # the session's worker sends queued e-mails within a moment
    assert mail_sink.count() == before


async def test_the_conversation_list_and_view_show_each_running_targets_time_to_breach(
    company: CompanyCtx, runtime: Runtime, clock: Clock
) -> None:
    await policy(company, first_response="10m", resolution="1h")
    cid = await handed_off(company, runtime, ny(2027, 6, 1, 10, 0))  # always open: no hours set
    await settled(runtime, company, ny(2027, 6, 1, 10, 0))
    clock.at(ny(2027, 6, 1, 10, 9))  # the first response's warning (80 %) passed at 10:08
    expected = [
        ("first_response", ny(2027, 6, 1, 10, 10), 60.0, "warning"),
        ("resolution", ny(2027, 6, 1, 11, 0), 3060.0, "running"),
    ]

    def shown(sla: list[dict[str, Any]]) -> list[tuple[str, datetime, float, str]]:
        return [(t["target"], instant(t["due_at"]), t["seconds_to_breach"], t["status"]) for t in sla]

    detail = (await company.client.get(f"/v1/conversations/{cid}")).json()
    assert shown(detail["sla"]) == expected
    listed = (await company.client.get("/v1/conversations", params={"view": "all"})).json()["items"]
    assert {row["id"]: shown(row["sla"]) for row in listed} == {cid: expected}
    # the first response given, its target stops: only the resolution runs on
    r = await company.client.post(f"/v1/conversations/{cid}/replies", json={"text": "Olá, sou a Ana."})
    assert r.status_code == 201, r.text
    detail = (await company.client.get(f"/v1/conversations/{cid}")).json()
    assert shown(detail["sla"]) == expected[1:]


async def test_a_target_no_policy_sets_is_not_listed_as_running_without_a_due_time(
    company: CompanyCtx, runtime: Runtime, clock: Clock
) -> None:
    await policy(company, resolution="1h")  # no first or next response target
    first = await handed_off(company, runtime, ny(2027, 6, 1, 10, 0))
    second = await handed_off(company, runtime, ny(2027, 6, 1, 10, 0))
    await settled(runtime, company, ny(2027, 6, 1, 10, 0))
    clock.at(ny(2027, 6, 1, 10, 30))
    detail = (await company.client.get(f"/v1/conversations/{first}")).json()
    assert [(t["target"], t["seconds_to_breach"]) for t in detail["sla"]] == [("resolution", 1800.0)]
    listed = (await company.client.get("/v1/conversations", params={"view": "all"})).json()["items"]
    assert {row["id"]: [t["target"] for t in row["sla"]] for row in listed} == {
        first: ["resolution"],
        second: ["resolution"],
    }
