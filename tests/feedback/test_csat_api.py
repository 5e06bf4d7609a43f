"""CSAT over the API: the company's settings, and the API channel's survey round trip
(``conversation.csat_requested`` → ``POST /v1/csat/{id}/answer`` → ``conversation.csat_received``),
against the live server, its worker and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest

from atende.feedback import tasks
from atende.runtime import Runtime
from tests.conftest import Clock, CompanyCtx, ask
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.feedback.conftest import DELAY, enable, messages, resolve, run_survey_job, state


async def test_settings_start_off_and_change_only_what_is_sent(company: CompanyCtx) -> None:
    r = await company.client.get("/v1/company/csat")
    assert r.status_code == 200
    assert r.json()["enabled"] is False and r.json()["enabled_at"] is None
    assert r.json()["channels"] == ["webchat", "api", "whatsapp", "email"]

    stored = await enable(company.client, questions={"pt": "  De 1 a 5,   como fomos? "})
    assert stored["enabled_at"] is not None
    assert stored["questions"] == {"pt": "De 1 a 5, como fomos?"}
    r = await company.client.put("/v1/company/csat", json={"channels": ["webchat"]})
    assert r.json()["questions"] == {"pt": "De 1 a 5, como fomos?"}  # kept
    assert r.json()["channels"] == ["webchat"] and r.json()["enabled"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channels": ["fax"]}, "channels"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"answer_window_hours": 0}, "answer_window_hours"),
        ({"questions": {"de": "Wie war es?"}}, "questions"),
        ({"questions": {"pt": "Nota\x00?"}}, "questions"),
        ({"whatsapp_template": {"name": "Bad Name!", "language": "pt_BR"}}, "whatsapp_template"),
    ],
)
async def test_invalid_settings_are_refused_naming_the_field(
    company: CompanyCtx, body: dict[str, object], field: str
) -> None:
    r = await company.client.put("/v1/company/csat", json=body)
    assert r.status_code == 422, r.text
    assert field in r.text
    assert (await company.client.get("/v1/company/csat")).json()["enabled"] is False  # nothing stored


async def test_api_survey_round_trip_with_a_change_inside_the_window_and_none_after(
    company: CompanyCtx, runtime: Runtime, receiver: WebhookReceiver, clock: Clock
) -> None:
    path = receiver.new_path()
    events = ["conversation.csat_requested", "conversation.csat_received"]
    r = await company.client.post("/v1/webhooks", json={"url": receiver.url(path), "events": events})
    assert r.status_code == 201, r.text
    await enable(company.client, questions={"pt": "Nota de 1 a 5?"}, answer_window_hours=2)
    conversation_id = (await ask(company.client, "Olá, preciso de ajuda", contact="ana"))["conversation_id"]
    await resolve(company.client, conversation_id)

    assert await run_survey_job(runtime, company.id, after=DELAY - 30) == []  # not yet due
    [sent] = await run_survey_job(runtime, company.id)
    assert await run_survey_job(runtime, company.id) == []  # one survey per resolution
    [requested] = await receiver.wait_for(path, lambda rs: len(rs) >= 1)
    data = requested.event["data"]
    assert requested.event["type"] == "conversation.csat_requested"
    assert data["survey_id"] == str(sent.survey_id) and data["conversation_id"] == conversation_id
    assert data["question"] == "Nota de 1 a 5?" and data["scale"] == 5 and data["channel"] == "api"
    survey_message = (await messages(company.client, conversation_id))[-1]
    assert survey_message["author"] == "system" and survey_message["text"] == "Nota de 1 a 5?"
    assert survey_message["meta"]["csat"]["survey_id"] == str(sent.survey_id)

    r = await company.client.post(f"/v1/csat/{sent.survey_id}/answer", json={"score": 4})
    assert r.status_code == 200, r.text
    r = await company.client.post(
        f"/v1/csat/{sent.survey_id}/answer", json={"score": 2, "comment": "Demorou."}
    )
    assert r.status_code == 200, r.text
    [survey] = (await company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    assert (survey["score"], survey["comment"], survey["answered_via"]) == (2, "Demorou.", "api")
    assert survey["answered_at"] is not None and survey["changed_at"] is not None
    received = await receiver.wait_for(path, lambda rs: len(rs) >= 3)
    answers = sorted((r.event["data"] for r in received[1:]), key=lambda d: d["changed"])
    assert [(a["score"], a["changed"]) for a in answers] == [(4, False), (2, True)]
    assert await state(company.client, conversation_id) == "resolved"  # a rating never reopens it

    clock.at(datetime.fromisoformat(survey["closes_at"]) + timedelta(seconds=1))
    r = await company.client.post(f"/v1/csat/{sent.survey_id}/answer", json={"score": 5})
    assert r.status_code == 409 and r.json()["code"] == "survey_closed", r.text
    [survey] = (await company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    assert survey["score"] == 2


async def test_bad_answers_are_refused_clearly(company: CompanyCtx, runtime: Runtime) -> None:
    await enable(company.client)
    conversation_id = (await ask(company.client, "Oi", contact="bia"))["conversation_id"]
    await resolve(company.client, conversation_id)
    [sent] = await run_survey_job(runtime, company.id)
    for body in (
        {"score": 0},
        {"score": 6},
        {"score": "five"},
        {"comment": "x" * 2001},
        {"score": 2, "comment": "a\x00b"},
    ):
        r = await company.client.post(f"/v1/csat/{sent.survey_id}/answer", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await company.client.post(f"/v1/csat/{sent.survey_id}/answer", json={"comment": "só comentário"})
    assert r.status_code == 422 and "score" in r.text  # a comment needs a score first
    r = await company.client.post(f"/v1/csat/{uuid.uuid4()}/answer", json={"score": 3})
    assert r.status_code == 404 and "no survey" in r.text


async def test_what_is_not_surveyed(company: CompanyCtx, runtime: Runtime) -> None:
    """Resolutions before the surveys were on, reopened conversations, channels left out."""
    before = (await ask(company.client, "Oi", contact="antes"))["conversation_id"]
    await resolve(company.client, before)
    await enable(company.client, channels=["webchat"])
    api_conversation = (await ask(company.client, "Oi", contact="api"))["conversation_id"]
    await resolve(company.client, api_conversation)
    assert await run_survey_job(runtime, company.id) == []  # the API channel is left out

    await enable(company.client, channels=["api"])
    reopened = (await ask(company.client, "Oi", contact="volta"))["conversation_id"]
    await resolve(company.client, reopened)
    await ask(company.client, "Mais uma coisa", contact="volta")  # reopens it to the bot
    sent = await run_survey_job(runtime, company.id)
    assert {str(s.conversation_id) for s in sent} == {api_conversation}
    assert before not in {str(s.conversation_id) for s in sent}


async def test_another_company_cannot_answer_or_read_a_survey(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    await enable(company.client)
    conversation_id = (await ask(company.client, "Oi", contact="c"))["conversation_id"]
    await resolve(company.client, conversation_id)
    [sent] = await run_survey_job(runtime, company.id)
    r = await other_company.client.post(f"/v1/csat/{sent.survey_id}/answer", json={"score": 1})
    assert r.status_code == 404
    assert (await other_company.client.get(f"/v1/conversations/{conversation_id}/csat")).status_code == 404
    [survey] = (await company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    assert survey["score"] is None


async def test_the_periodic_job_and_the_live_worker_together_send_one_survey(
    company: CompanyCtx, runtime: Runtime
) -> None:
    """With no delay the live server's worker (its own periodic run) and this run race for
    the same resolution: the survey row is unique per resolution, so one survey goes out."""
    await enable(company.client, delay_seconds=0)
    conversation_id = (await ask(company.client, "Oi", contact="dani"))["conversation_id"]
    await resolve(company.client, conversation_id)
    await tasks.send_due_surveys(runtime)
    await tasks.send_due_surveys(runtime)
    surveys = (await company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    assert len(surveys) == 1
    shown = await messages(company.client, conversation_id)
    assert sum("csat" in m["meta"] for m in shown) == 1


async def test_each_resolution_of_a_conversation_gets_its_own_survey(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await enable(company.client)
    conversation_id = (await ask(company.client, "Oi", contact="fabi"))["conversation_id"]
    await resolve(company.client, conversation_id)
    [first] = await run_survey_job(runtime, company.id)
    await ask(company.client, "Voltei com outra dúvida", contact="fabi")  # a customer's message reopens it
    assert await state(company.client, conversation_id) != "resolved"
    await resolve(company.client, conversation_id)
    [second] = await run_survey_job(runtime, company.id)
    assert first.survey_id != second.survey_id
    assert await run_survey_job(runtime, company.id) == []
    surveys = (await company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    assert [s["id"] for s in surveys] == [str(second.survey_id), str(first.survey_id)]  # newest first
