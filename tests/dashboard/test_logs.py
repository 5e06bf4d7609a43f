"""The events page (``/app/logs``) over HTTP: a company's owners and admins read its events
with filters and pages, retry a failed job from its row (with a notice), set the retention;
bad filters are said beside the form; a superadmin reads every company's, or one's."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from atende.dashboard.wording import turn_reason
from atende.observability import events
from atende.observability.models import AppEvent
from atende.runtime import Runtime
from atende.tenancy import accounts
from atende.tenancy.models import Company
from tests.fixtures.dashboard import PASSWORD, Team, browser_client, csrf_of, make_team, sign_in, signed_in


def rows(html: str) -> list[str]:
    body = re.search(r'<table class="table" id="events">.*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    if body is None:
        return []
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in body.group(1).split("</tr>")[:-1]
    ]


async def arrange(runtime: Runtime, company_id: uuid.UUID | None, *specs: tuple[str, str, str]) -> None:
    now = datetime.now(UTC)
    async with runtime.db.transaction() as session:
        for i, (level, kind, message) in enumerate(specs):
            session.add(
                AppEvent(
                    company_id=company_id,
                    level=level,
                    kind=kind,
                    message=message,
                    details={},
                    created_at=now - timedelta(minutes=len(specs) - i),
                )
            )


async def test_an_admin_filters_pages_and_keeps_events_as_long_as_chosen(
    live_server: str, runtime: Runtime, team: Team
) -> None:
    other = await make_team(runtime)
    await arrange(
        runtime,
        team.company_id,
        *[("warning", events.WEBHOOK_FAILED, f"webhook attempt {i}") for i in range(55)],
        ("error", events.DELIVERY_FAILED, "A whatsapp message could not be delivered: 131047 window closed"),
    )
    await arrange(runtime, other.company_id, ("error", events.DELIVERY_FAILED, "another company's failure"))
    async with signed_in(live_server, team.admin) as client:
        page = await client.get("/app/logs")
        assert page.status_code == 200, page.text
        shown = rows(page.text)
        assert len(shown) == 50
        assert "Message not delivered" in shown[0] and "131047 window closed" in shown[0]
        assert not any("another company" in row for row in shown)
        older = re.search(r'<a href="([^"]+)">Older</a>', page.text)
        assert older is not None
        second = rows((await client.get(older.group(1).replace("&amp;", "&"))).text)
        assert second == [r for r in second if "webhook attempt" in r] and len(second) == 6

        found = rows((await client.get("/app/logs", params={"level": "error", "text": "window"})).text)
        assert len(found) == 1 and "131047" in found[0]
        none = await client.get("/app/logs", params={"kind": "job_failed"})
        assert rows(none.text) == [] and "No events match." in none.text

        bad = await client.get("/app/logs", params={"conversation": "not-an-id"})
        assert bad.status_code == 422
        assert "A conversation is named by its id" in bad.text

        token = csrf_of(page.text)
        refused = await client.post("/app/logs/retention", data={"retention_days": "0", "csrf_token": token})
        assert refused.status_code == 422 and "Keep events between 1 and 365 days." in refused.text
        saved = await client.post("/app/logs/retention", data={"retention_days": "7", "csrf_token": token})
        assert saved.status_code == 303
        again = await client.get(saved.headers["location"])
        assert "Retention saved" in again.text and 'value="7"' in again.text
    async with runtime.db.transaction() as session:
        company = await session.get_one(Company, team.company_id)
        assert events.retention_days(company) == 7


async def job_status(runtime: Runtime, job_id: int) -> str:
    async with runtime.db.transaction() as session:
        found = await session.scalar(
            text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )
    return str(found)


async def until_failed(runtime: Runtime, job_id: int, events_wanted: int, company_id: uuid.UUID) -> None:
    deadline = time.monotonic() + 20
    while True:
        async with runtime.db.transaction(company_id) as session:
            count = len((await events.list_events(session, events.EventFilter(kind="job_failed"))).events)
        if count >= events_wanted and await job_status(runtime, job_id) == "failed":
            return
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)


async def test_a_failed_job_is_retried_from_its_row_with_a_notice(
    live_server: str, runtime: Runtime, team: Team
) -> None:
    async with runtime.db.transaction(team.company_id) as session:
        job_id = await runtime.jobs.enqueue(session, "events:prune", company_id=str(team.company_id))
    assert job_id is not None
    await until_failed(runtime, job_id, 1, team.company_id)
    async with signed_in(live_server, team.owner) as client:
        page = await client.get("/app/logs")
        assert f'aria-label="Retry job {job_id}"' in page.text
        retried = await client.post(f"/app/logs/jobs/{job_id}/retry", data={"csrf_token": csrf_of(page.text)})
        assert retried.status_code == 303
        assert "The job was queued again" in (await client.get(retried.headers["location"])).text
        # it ran again: a second failure, a second event
        await until_failed(runtime, job_id, 2, team.company_id)
        # a job that is not failed (retried, then running) says so instead of failing
        async with runtime.db.transaction() as session:
            await session.execute(
                text("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = :id"), {"id": job_id}
            )
        twice = await client.post(f"/app/logs/jobs/{job_id}/retry", data={"csrf_token": csrf_of(page.text)})
        assert "nothing was done" in (await client.get(twice.headers["location"])).text


async def test_a_superadmin_reads_every_company_and_filters_one(live_server: str, runtime: Runtime) -> None:
    first, second = (
        await make_team(runtime, name="Padaria Uno"),
        await make_team(runtime, name="Livraria Dos"),
    )
    marker = uuid.uuid4().hex[:8]
    await arrange(runtime, first.company_id, ("error", events.DELIVERY_FAILED, f"first {marker}"))
    await arrange(runtime, second.company_id, ("error", events.DELIVERY_FAILED, f"second {marker}"))
    await arrange(runtime, None, ("error", events.LLM_CIRCUIT_CHANGED, f"platform {marker}"))
    email = f"root-{uuid.uuid4().hex[:8]}@example.com"
    async with runtime.db.transaction() as session:
        await accounts.make_superadmin(session, email=email, password=PASSWORD)
    async with browser_client(live_server) as client:
        assert (await sign_in(client, email)).status_code == 303
        page = await client.get("/app/logs", params={"text": marker})
        assert page.status_code == 200, page.text
        shown = rows(page.text)
        assert [r.split(marker)[0].split()[-1] for r in shown] == ["platform", "second", "first"]
        assert "Livraria Dos" in shown[1] and "The platform" in shown[0]
        one = rows(
            (await client.get("/app/logs", params={"text": marker, "company": str(first.company_id)})).text
        )
        assert len(one) == 1 and "Padaria Uno" in one[0]


def test_a_turns_recorded_reason_is_said_in_plain_words() -> None:
    def same(text: str) -> str:
        return text

    said = {
        "small talk: greeting": "The message was small talk (a greeting): the bot answered in kind.",
        "answered from 'Garantia' (coverage 0.82)": (
            "The bot answered from “Garantia”, which covers 82% of the question's words."
        ),
        "answered from 'Entregas' (re-ranker p 0.93)": (
            "The bot answered from “Entregas”: the re-ranker puts the chance that it is the passage that "
            "answers at 93%."
        ),
        "answered across languages from 'Shipping' (en; dense 0.861)": (
            "The bot answered from “Shipping”, a passage in another language (en) close in meaning to the "
            "question (86%), quoted as it is."
        ),
        "weak evidence: best coverage 0.12 < threshold 0.70": (
            "The best passage covers only 12% of the question's words (at least 70% is needed): "
            "the knowledge base has no good answer."
        ),
        "answered by the LLM citing passages 1, 3": "The LLM answered, citing passages 1, 3.",
        "the LLM failed (APITimeoutError); extractive: answered from 'Pix' (coverage 1.00)": (
            "The LLM failed (APITimeoutError). The bot answered from “Pix”, which covers 100% of the "
            "question's words."
        ),
        "the LLM circuit is open; extractive: weak evidence: best coverage 0.00 < threshold 0.70": (
            "The LLM was not asked: it failed repeatedly, so its circuit is open. The best passage covers "
            "only 0% of the question's words (at least 70% is needed): the knowledge base has no good answer."
        ),
        "the customer asked for a person": "The customer asked to talk to a person.",
        "off the message's topic: its passage holds 0.17 of the questions' terms < 0.30 "
        "(answered from 'Verrugas' (coverage 1.00))": (
            "Its best passage holds only 17% of the words of the message's questions (at least 30% is "
            "needed): it is about something else, so a person answers this question."
        ),
        "partly answered 1 of 2 questions: answered from 'Shipping' (coverage 0.80); 1 left: weak "
        "evidence: best coverage 0.10 < threshold 0.70 (closed)": (
            "The bot answered 1 of the 2 questions in the customer's message; a person answers the rest. "
            "The team was closed: it waits as a ticket for the team to open."
        ),
        "something new": "Reason given: something new",
    }
    for recorded, words in said.items():
        assert turn_reason(recorded, same) == words, recorded
