"""The WhatsApp survey against the fake Graph API and the live server: reply buttons inside
the 24-hour window, the company's approved template outside it, and the customer's button
press recorded as the survey's answer (changed by another press) without reopening the
conversation or reaching the bot."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from atende.conversations.models import Conversation, Message
from atende.conversations.schemas import NOT_FOR_THE_BOT
from atende.feedback import service
from atende.feedback.models import CsatSurvey
from atende.feedback.service import Sent
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import WhatsApp, answered_customer, new_number, new_wamid
from tests.channels.whatsapp.test_whatsapp_window import age
from tests.conftest import until
from tests.feedback.conftest import DELAY, enable, messages, resolve, run_survey_job, state

ASK = "Thank you for your rating! If you like, tell us more in one message (optional)."
COMMENTED = "Thank you for your comment! If you need anything else, just write to us again."


def press(
    wa: WhatsApp, wa_id: str, *, button_id: str | None = None, payload: str | None = None
) -> dict[str, Any]:
    """Meta's real payload of a reply button pressed (``button_id``) or a template's quick reply
    (``payload``), from ``wa_id``."""
    if button_id is not None:
        body = wa.payload("callback_button", "button", wa_id=wa_id, wamid=new_wamid())
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["interactive"]["button_reply"] = {"id": button_id, "title": "Excelente"}
    else:
        body = wa.payload("callback_button", "quick_reply", wa_id=wa_id, wamid=new_wamid())
        message = body["entry"][0]["changes"][0]["value"]["messages"][0]
        message["button"] = {"payload": payload, "text": "Regular"}
    return body


async def survey_answer(wa: WhatsApp, conversation_id: uuid.UUID) -> dict[str, Any]:
    [survey] = (await wa.company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    return dict(survey)


async def test_inside_the_window_the_survey_is_three_buttons_and_a_press_answers_it(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client)
    await resolve(client, str(conversation_id))
    [sent] = await run_survey_job(runtime, wa.company.id)
    survey = await until(
        lambda: [s for s in wa.graph.sent_to(wa_id) if s.body.get("type") == "interactive"], what="the survey"
    )
    interactive = survey[0].body["interactive"]
    assert interactive["type"] == "button" and interactive["body"]["text"].startswith("How would you rate")
    buttons = [b["reply"] for b in interactive["action"]["buttons"]]
    # in the conversation's language (Meta's sample message is English)
    assert [b["title"] for b in buttons] == ["Very poor", "Fair", "Excellent"]
    assert all(len(b["title"]) <= 20 for b in buttons)
    before = len(await messages(client, str(conversation_id)))

    assert (await wa.post(press(wa, wa_id, button_id=buttons[2]["id"]))).status_code == 200
    answer = await until(lambda: _answered(wa, conversation_id), what="the rating")
    assert (answer["score"], answer["answered_via"]) == (5, "whatsapp")
    thanks = await until(lambda: [s for s in wa.graph.sent_to(wa_id) if s.text == ASK], what="thanks")
    assert len(thanks) == 1
    assert await state(client, str(conversation_id)) == "resolved"  # never reopened
    shown = await messages(client, str(conversation_id))
    assert [m["author"] for m in shown[before:]] == ["customer", "system"]  # no bot answer

    assert (await wa.post(press(wa, wa_id, button_id=buttons[0]["id"]))).status_code == 200  # a change
    await until(lambda: _answered(wa, conversation_id, score=1), what="the changed rating")
    assert await state(client, str(conversation_id)) == "resolved"
    assert str(sent.survey_id) == answer["id"]


async def _answered(
    wa: WhatsApp, conversation_id: uuid.UUID, score: int | None = None
) -> dict[str, Any] | None:
    survey = await survey_answer(wa, conversation_id)
    if survey["score"] is None or (score is not None and survey["score"] != score):
        return None
    return survey


async def test_outside_the_window_the_template_goes_out_and_its_quick_reply_answers_it(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client, whatsapp_template={"name": "pesquisa_satisfacao", "language": "pt_BR"})
    await age(runtime, wa, str(conversation_id), hours=25)
    await resolve(client, str(conversation_id))
    [_sent] = await run_survey_job(runtime, wa.company.id)
    found = await until(
        lambda: [s for s in wa.graph.sent_to(wa_id) if s.body.get("type") == "template"], what="the template"
    )
    template = found[0].body["template"]
    assert template["name"] == "pesquisa_satisfacao" and template["language"] == {"code": "pt_BR"}
    payloads = [c["parameters"][0]["payload"] for c in template["components"]]
    assert [p.rsplit(":", 1)[1] for p in payloads] == ["1", "3", "5"]

    assert (await wa.post(press(wa, wa_id, payload=payloads[1]))).status_code == 200
    answer = await until(lambda: _answered(wa, conversation_id), what="the rating")
    assert answer["score"] == 3
    assert await state(client, str(conversation_id)) == "resolved"


async def test_outside_the_window_without_a_template_nobody_is_surveyed(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    _wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client)
    await age(runtime, wa, str(conversation_id), hours=25)
    await resolve(client, str(conversation_id))
    counted = _survey_counts()
    assert await run_survey_job(runtime, wa.company.id) == []
    # counted as skipped by the job, not as sent
    assert _survey_counts(since=counted) == {"sent": 0, "job": 1, "delivery": 0}
    assert (await client.get(f"/v1/conversations/{conversation_id}/csat")).json() == []
    # kept as skipped, with the reason, and never sent
    async with runtime.db.transaction(wa.company.id) as session:
        [skipped] = await session.scalars(
            select(CsatSurvey).where(CsatSurvey.conversation_id == conversation_id)
        )
    assert (skipped.status, skipped.sent_at, skipped.message_id) == ("skipped", None, None)
    assert "no approved template" in (skipped.skip_reason or "")


async def test_a_skipped_resolution_is_considered_once_and_starves_no_newer_one(
    wa: WhatsApp, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolutions that cannot be surveyed (window closed, no template) are read once: the
    next run goes on to newer ones, even when a run reads a single resolution."""
    client = wa.company.client
    _quiet, quiet_id = await answered_customer(wa, runtime)
    await enable(client)
    await age(runtime, wa, str(quiet_id), hours=25)
    wa_id = new_number()  # a second customer, inside the window
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id))).status_code == 200
    await until(lambda: wa.graph.sent_to(wa_id), what="the bot's answer")
    async with runtime.db.transaction(wa.company.id) as session:
        talking_id = await session.scalar(
            select(Conversation.id).where(Conversation.channel == "whatsapp", Conversation.id != quiet_id)
        )
    await resolve(client, str(quiet_id))
    await resolve(client, str(talking_id))
    monkeypatch.setattr(service, "BATCH", 1)
    assert await run_survey_job(runtime, wa.company.id) == []  # the quiet one: skipped
    [sent] = await run_survey_job(runtime, wa.company.id)  # then the newer one, not the same again
    assert sent.conversation_id == talking_id
    assert await run_survey_job(runtime, wa.company.id) == []


async def survey_queued_then_window_closes(
    wa: WhatsApp, runtime: Runtime, conversation_id: uuid.UUID
) -> Sent:
    """The job sends the survey while the window is open, and the customer's last message turns
    25 hours old before the outbox delivers it (its job runs once this commits)."""
    now = datetime.now(UTC) + timedelta(seconds=DELAY + 1)
    async with runtime.db.transaction(wa.company.id) as session:
        [sent] = await service.send_due(session, runtime.jobs, now)
        [message] = await session.scalars(
            select(Message).where(Message.conversation_id == conversation_id, Message.author == "system")
        )
        assert "template" not in message.meta[service.META]  # queued as reply buttons
        await session.execute(
            update(Message)
            .where(Message.conversation_id == conversation_id, Message.author == "customer")
            .values(created_at=Message.created_at - timedelta(hours=25))
        )
    return sent


async def test_a_survey_delivered_after_the_window_closed_goes_as_the_template(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client, whatsapp_template={"name": "pesquisa_satisfacao", "language": "pt_BR"})
    await resolve(client, str(conversation_id))
    sent = await survey_queued_then_window_closes(wa, runtime, conversation_id)
    found = await until(
        lambda: [s for s in wa.graph.sent_to(wa_id) if s.body.get("type") == "template"], what="the template"
    )
    assert not [s for s in wa.graph.sent_to(wa_id) if s.body.get("type") == "interactive"]
    payloads = [c["parameters"][0]["payload"] for c in found[0].body["template"]["components"]]
    assert (await wa.post(press(wa, wa_id, payload=payloads[2]))).status_code == 200
    answer = await until(lambda: _answered(wa, conversation_id), what="the rating")
    assert (answer["id"], answer["score"]) == (str(sent.survey_id), 5)


async def test_a_survey_delivered_after_the_window_closed_without_a_template_is_skipped(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client)
    await resolve(client, str(conversation_id))
    counted = _survey_counts()
    sent = await survey_queued_then_window_closes(wa, runtime, conversation_id)

    async def skipped() -> CsatSurvey | None:
        async with runtime.db.transaction(wa.company.id) as session:
            survey = await session.get_one(CsatSurvey, sent.survey_id)
        return survey if survey.status == "skipped" else None

    survey = await until(skipped, what="the survey skipped")
    assert survey.sent_at is None and "no approved template" in (survey.skip_reason or "")
    # the survey message says why it did not go out, and nothing went to Meta
    [shown] = [m for m in await messages(client, str(conversation_id)) if m["author"] == "system"]
    assert shown["delivery_status"] == "failed" and "survey skipped" in shown["delivery_error"]
    assert not [s for s in wa.graph.sent_to(wa_id) if s.body.get("type") in ("interactive", "template")]
    assert (await client.get(f"/v1/conversations/{conversation_id}/csat")).json() == []
    # counted as sent when queued, then as skipped at delivery: the dashboards' surveys that
    # went out are the sent less these
    delivered = {"sent": 1, "job": 0, "delivery": 1}
    await until(lambda: _survey_counts(since=counted) == delivered, what="the skip counted")


def _survey_counts(since: dict[str, float] | None = None) -> dict[str, float]:
    """WhatsApp surveys counted sent, and skipped by the job or at delivery (since ``since``)."""
    counts = {
        "sent": REGISTRY.get_sample_value("atende_csat_surveys_sent_total", {"channel": "whatsapp"}) or 0.0,
        **{
            stage: REGISTRY.get_sample_value(
                "atende_csat_surveys_skipped_total", {"channel": "whatsapp", "stage": stage}
            )
            or 0.0
            for stage in ("job", "delivery")
        },
    }
    return {k: v - (since or {}).get(k, 0.0) for k, v in counts.items()}


async def test_a_press_on_another_conversations_survey_is_kept_as_a_message_only(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client)
    await resolve(client, str(conversation_id))
    forged = f"csat:{uuid.uuid4().hex}:5"
    assert (await wa.post(press(wa, wa_id, button_id=forged))).status_code == 200
    await until(
        lambda: _has_text(client, str(conversation_id), "Excelente"), what="the press stored as a message"
    )
    assert await state(client, str(conversation_id)) == "resolved"
    assert not [s for s in wa.graph.sent_to(wa_id) if s.text == "Thank you for your rating!"]


async def _has_text(client: Any, conversation_id: str, text: str) -> bool:
    return any(m["text"] == text for m in await messages(client, conversation_id))


async def rated_by_button(wa: WhatsApp, runtime: Runtime) -> tuple[str, uuid.UUID]:
    """A customer's conversation resolved, surveyed and rated by button, the comment asked for:
    the customer's number and the conversation."""
    client = wa.company.client
    wa_id, conversation_id = await answered_customer(wa, runtime)
    await enable(client)
    await resolve(client, str(conversation_id))
    await run_survey_job(runtime, wa.company.id)
    survey = await until(
        lambda: [s for s in wa.graph.sent_to(wa_id) if s.body.get("type") == "interactive"], what="the survey"
    )
    button = survey[0].body["interactive"]["action"]["buttons"][1]["reply"]["id"]
    assert (await wa.post(press(wa, wa_id, button_id=button))).status_code == 200
    await until(lambda: [s for s in wa.graph.sent_to(wa_id) if s.text == ASK], what="the comment asked for")
    return wa_id, conversation_id


def text_from(wa: WhatsApp, wa_id: str, text: str) -> dict[str, Any]:
    said = wa.payload("message", "text", wa_id=wa_id, wamid=new_wamid())
    said["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text
    return said


async def test_after_a_press_the_next_text_is_the_surveys_comment_and_reopens_nothing(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await rated_by_button(wa, runtime)
    before = len(await messages(client, str(conversation_id)))

    assert (await wa.post(text_from(wa, wa_id, "Demorou um pouco, mas resolveu."))).status_code == 200
    answer = await until(lambda: _commented(wa, conversation_id), what="the comment")
    assert (answer["score"], answer["comment"]) == (3, "Demorou um pouco, mas resolveu.")
    # thanked, and told that another message is an ordinary one
    await until(lambda: [s for s in wa.graph.sent_to(wa_id) if s.text == COMMENTED], what="thanks")
    assert await state(client, str(conversation_id)) == "resolved"  # never reopened
    shown = await messages(client, str(conversation_id))
    assert [m["author"] for m in shown[before:]] == ["customer", "system"]  # no bot answer

    # the comment given, the next text is an ordinary message again: it reopens the conversation
    again = wa.payload("message", "text", wa_id=wa_id, wamid=new_wamid())
    assert (await wa.post(again)).status_code == 200
    await until(lambda: _state_is_not(client, str(conversation_id), "resolved"), what="reopened")
    assert (await survey_answer(wa, conversation_id))["comment"] == "Demorou um pouco, mas resolveu."


async def test_a_question_after_the_press_is_no_comment_it_reopens_and_the_bot_answers(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await rated_by_button(wa, runtime)
    answers_before = len(_bot_answers(wa, wa_id))

    asked = "One more thing: when does my order arrive?"
    assert (await wa.post(text_from(wa, wa_id, asked))).status_code == 200
    await until(lambda: _state_is_not(client, str(conversation_id), "resolved"), what="reopened")
    await until(lambda: len(_bot_answers(wa, wa_id)) > answers_before, what="the bot's answer")
    shown = await messages(client, str(conversation_id))
    [question] = [m for m in shown if m["text"] == asked]
    assert shown[-1]["author"] == "bot" and shown[-1]["seq"] > question["seq"]
    assert (await survey_answer(wa, conversation_id))["comment"] is None
    assert not [s for s in wa.graph.sent_to(wa_id) if s.text == COMMENTED]


async def test_a_request_for_a_person_after_the_press_is_no_comment_it_reaches_the_team(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await rated_by_button(wa, runtime)
    asked = "Quero falar com um atendente"  # asks nothing, but wants a person
    assert (await wa.post(text_from(wa, wa_id, asked))).status_code == 200
    # reopened, then handed to the team by the bot's turn
    await until(lambda: _state_is_not(client, str(conversation_id), "resolved"), what="reopened")
    await until(lambda: _state_is_not(client, str(conversation_id), "bot"), what="handed off")
    assert await state(client, str(conversation_id)) == "waiting_human"
    assert (await survey_answer(wa, conversation_id))["comment"] is None
    assert not [s for s in wa.graph.sent_to(wa_id) if s.text == COMMENTED]


async def test_of_two_texts_at_once_after_the_press_one_is_the_comment_the_other_a_message(
    wa: WhatsApp, runtime: Runtime
) -> None:
    client = wa.company.client
    wa_id, conversation_id = await rated_by_button(wa, runtime)
    texts = ["Foi rápido.", "O atendente foi muito educado."]
    posted = await asyncio.gather(*(wa.post(text_from(wa, wa_id, t)) for t in texts))
    assert [r.status_code for r in posted] == [200, 200]

    answer = await until(lambda: _commented(wa, conversation_id), what="the comment")
    [ordinary] = [t for t in texts if t != answer["comment"]]  # the comment is one of them, whole
    # the other is an ordinary message: it reopens the conversation, for the bot and the agents
    await until(lambda: _state_is_not(client, str(conversation_id), "resolved"), what="reopened")
    async with runtime.db.transaction(wa.company.id) as session:
        stored = {
            m.text: m.meta
            for m in await session.scalars(
                select(Message).where(Message.conversation_id == conversation_id, Message.text.in_(texts))
            )
        }
    assert NOT_FOR_THE_BOT in stored[answer["comment"]] and NOT_FOR_THE_BOT not in stored[ordinary]
    await until(
        lambda: [s for s in wa.graph.sent_to(wa_id) if s.text == COMMENTED], what="thanks for the comment"
    )
    assert (await survey_answer(wa, conversation_id))["comment"] == answer["comment"]  # not overwritten


def _bot_answers(wa: WhatsApp, wa_id: str) -> list[Any]:
    return [
        s for s in wa.graph.sent_to(wa_id) if s.body.get("type") == "text" and s.text not in (ASK, COMMENTED)
    ]


async def _commented(wa: WhatsApp, conversation_id: uuid.UUID) -> dict[str, Any] | None:
    survey = await survey_answer(wa, conversation_id)
    return survey if survey["comment"] else None


async def _state_is_not(client: Any, conversation_id: str, name: str) -> bool:
    return await state(client, conversation_id) != name
