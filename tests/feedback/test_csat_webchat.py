"""CSAT in the web chat: the survey arrives as a message carrying its scale, the visitor's
stars (and comment) go to ``/csat``, and the conversation stays resolved; against the live
server (the widget's HTTP API) and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx

from atende.runtime import Runtime
from tests.channels.test_webchat import history, say, start, wait_for
from tests.conftest import Clock, CompanyCtx
from tests.feedback.conftest import enable, resolve, run_survey_job, state


async def test_webchat_survey_round_trip_never_reopens_the_conversation(
    company: CompanyCtx,
    runtime: Runtime,
    web: httpx.AsyncClient,
    clock: Clock,
) -> None:
    await enable(company.client, answer_window_hours=1)
    visitor = await start(web, company.widget_key)
    await say(web, visitor, "Olá, preciso de ajuda com meu pedido")
    await wait_for(web, visitor, lambda ms: any(m["author"] != "customer" for m in ms))
    await resolve(company.client, visitor.conversation_id)
    [sent] = await run_survey_job(runtime, company.id)

    shown = await history(web, visitor)
    survey = shown[-1]
    assert survey["author"] == "system" and survey["text"].startswith("Como você avalia")  # the pt default
    assert survey["meta"]["csat"]["survey_id"] == str(sent.survey_id)
    assert survey["meta"]["csat"]["scale"] == 5
    before = len(shown)

    r = await web.post(
        f"{visitor.path}/csat", json={"survey_id": str(sent.survey_id), "score": 5}, headers=visitor.headers
    )
    assert r.status_code == 200, r.text
    r = await web.post(
        f"{visitor.path}/csat",
        json={"survey_id": str(sent.survey_id), "comment": "Muito rápido!"},
        headers=visitor.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["score"], r.json()["comment"]) == (5, "Muito rápido!")
    await asyncio.sleep(0.5)  # a bot turn, were one queued, would have answered by now
    assert len(await history(web, visitor)) == before  # the rating is no message
    assert await state(company.client, visitor.conversation_id) == "resolved"
    [stored] = (await company.client.get(f"/v1/conversations/{visitor.conversation_id}/csat")).json()
    assert (stored["score"], stored["comment"], stored["answered_via"]) == (5, "Muito rápido!", "webchat")

    clock.at(datetime.fromisoformat(stored["closes_at"]) + timedelta(seconds=1))
    r = await web.post(
        f"{visitor.path}/csat", json={"survey_id": str(sent.survey_id), "score": 1}, headers=visitor.headers
    )
    assert r.status_code == 409, r.text


async def test_a_visitor_answers_only_their_own_conversations_survey(
    company: CompanyCtx,
    runtime: Runtime,
    web: httpx.AsyncClient,
) -> None:
    await enable(company.client)
    rated = await start(web, company.widget_key)
    await say(web, rated, "Oi")
    await resolve(company.client, rated.conversation_id)
    [sent] = await run_survey_job(runtime, company.id)
    stranger = await start(web, company.widget_key)
    r = await web.post(
        f"{stranger.path}/csat", json={"survey_id": str(sent.survey_id), "score": 1}, headers=stranger.headers
    )
    assert r.status_code == 404
    r = await web.post(f"{rated.path}/csat", json={"survey_id": str(sent.survey_id), "score": 1})
    assert r.status_code == 401  # no visitor token
    r = await web.post(
        f"{rated.path}/csat", json={"survey_id": str(sent.survey_id), "score": 9}, headers=rated.headers
    )
    assert r.status_code == 422
