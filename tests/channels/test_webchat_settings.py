"""The web chat widget's settings: stored in its account's ``config`` through
``/v1/channel-accounts`` (validated by the web chat's schema: hex colours, readable contrast,
lengths), served to the widget by ``/widget/v1/{key}/config`` in the visitor's language, and
the offline contact form that leaves a message for the team."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from atende.channels.webchat.settings import WebChatConfig, contrast
from atende.conversations import service as conversations
from atende.engine.intent import asks_for_a_person
from atende.runtime import Runtime
from tests.conftest import Clock, CompanyCtx

PATH = "/v1/channel-accounts"
SP = ZoneInfo("America/Sao_Paulo")
OFFICE = {
    "timezone": "America/Sao_Paulo",
    "weekly": {day: [{"start": "08:00", "end": "18:00"}] for day in ("monday", "tuesday", "wednesday")},
}
SETTINGS = {
    "primary_color": "#7A1F5C",
    "primary_text_color": "#ffffff",
    "accent_color": "#0f766e",
    "title": "Loja Exemplo",
    "greeting": {"pt-BR": "Olá! Como podemos ajudar?", "en": "Hi! How can we help?", "es": "¡Hola!"},
    "handoff_button": True,
    "offline_form": True,
}


async def webchat_account(company: CompanyCtx) -> dict[str, Any]:
    [account] = (await company.client.get(PATH, params={"kind": "webchat"})).json()
    return dict(account)


@pytest.mark.parametrize(
    ("one", "other", "ratio"),
    [("#ffffff", "#000000", 21.0), ("#ffffff", "#ffffff", 1.0), ("#767676", "#ffffff", 4.54)],
)
def test_contrast_is_wcag_s_ratio(one: str, other: str, ratio: float) -> None:
    assert contrast(one, other) == pytest.approx(ratio, abs=0.01)
    assert contrast(other, one) == pytest.approx(ratio, abs=0.01)


def test_an_empty_config_is_the_widget_as_it_always_looked() -> None:
    config = WebChatConfig.model_validate({})
    assert (config.primary_color, config.primary_text_color, config.title) == ("#2454d6", "#ffffff", "")
    assert (
        config.handoff_button
        and config.offline_form
        and config.offer_person_on_thumbs_down
        and config.greeting_for("en") is None
    )


@pytest.mark.parametrize(
    "text",
    [
        "Quero falar com uma pessoa, por favor.",
        "I'd like to talk to a person, please.",
        "Quiero hablar con una persona, por favor.",
    ],
)
def test_the_widget_s_talk_to_a_person_words_ask_for_a_person(text: str) -> None:
    # widget.js sends these words when the visitor presses "Talk to a person": the engine must
    # read them as a request for a person, in each language
    assert asks_for_a_person(text)


async def test_settings_are_saved_in_the_account_and_served_to_the_widget_in_its_language(
    company: CompanyCtx,
) -> None:
    account = await webchat_account(company)
    r = await company.client.patch(f"{PATH}/{account['id']}", json={"config": SETTINGS})
    assert r.status_code == 200, r.text
    assert r.json()["config"]["primary_color"] == "#7a1f5c"  # kept in one spelling

    r = await company.client.get(f"/widget/v1/{company.widget_key}/config", params={"lang": "en"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    served = r.json()
    assert served["title"] == "Loja Exemplo" and served["greeting"] == "Hi! How can we help?"
    assert (served["primary_color"], served["handoff_button"], served["team_available"]) == (
        "#7a1f5c",
        True,
        True,
    )
    pt = (await company.client.get(f"/widget/v1/{company.widget_key}/config", params={"lang": "pt"})).json()
    assert pt["greeting"] == "Olá! Como podemos ajudar?"
    assert (await company.client.get("/widget/v1/wk_nobody/config")).status_code == 404


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"primary_color": "blue"}, "config.primary_color"),
        ({"primary_color": "#12345"}, "config.primary_color"),
        ({"primary_color": "#ffff00", "primary_text_color": "#ffffff"}, "too low to read"),
        ({"accent_color": "#f5a524"}, "the accent colour on the white panel"),
        ({"title": "x" * 61}, "config.title"),
        ({"greeting": {"en": "x" * 501}}, "config.greeting.en"),
        ({"greeting": {"fr": "Bonjour"}}, "config.greeting.fr"),
        ({"handoff_button": "maybe"}, "config.handoff_button"),
        ({"colour": "red"}, "config.colour"),
    ],
)
async def test_bad_settings_are_refused_and_nothing_changes(
    company: CompanyCtx, config: dict[str, Any], said: str
) -> None:
    account = await webchat_account(company)
    r = await company.client.patch(f"{PATH}/{account['id']}", json={"config": config})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "config" and said in r.json()["detail"]
    assert (await webchat_account(company))["config"] == {}


async def test_with_the_team_closed_the_widget_hears_when_it_is_back_and_the_offline_form_reaches_the_inbox(
    company: CompanyCtx, clock: Clock, runtime: Runtime
) -> None:
    assert (await company.client.put("/v1/company/hours", json=OFFICE)).status_code == 200
    clock.at(datetime(2027, 9, 1, 19, 0, tzinfo=SP))  # a Wednesday evening: closed until Monday
    config = (await company.client.get(f"/widget/v1/{company.widget_key}/config?lang=pt")).json()
    assert config["team_available"] is False and config["back"] == "segunda-feira às 08:00"

    r = await company.client.post(
        f"/widget/v1/{company.widget_key}/offline-messages",
        json={
            "name": "Rita",
            "email": "rita@example.com",
            "message": "Meu pedido 123 não chegou.",
            "lang": "pt",
        },
    )
    assert r.status_code == 201, r.text
    left = r.json()
    assert (
        left["back"] == "segunda-feira às 08:00" and left["message"]["text"] == "Meu pedido 123 não chegou."
    )
    detail = (await company.client.get(f"/v1/conversations/{left['conversation_id']}")).json()
    assert detail["state"] == "waiting_human" and detail["ticket"] is True
    async with runtime.db.transaction(company.id) as session:
        contact = await conversations.get_contact(session, uuid.UUID(detail["contact_id"]))
    assert (contact.name, contact.email) == ("Rita", "rita@example.com")
    reason = detail["transitions"][-1]["reason"]
    assert reason == "the customer left a message for the team (closed)"
    # the visitor's token continues it in the widget
    history = await company.client.get(
        f"/widget/v1/{company.widget_key}/conversations/{left['conversation_id']}/messages",
        headers={"X-Visitor-Token": left["token"]},
    )
    assert [m["text"] for m in history.json()] == ["Meu pedido 123 não chegou."]
    # the bot leaves it to the team (its turn stays silent while the conversation waits)
    await asyncio.sleep(0.5)
    history = await company.client.get(
        f"/widget/v1/{company.widget_key}/conversations/{left['conversation_id']}/messages",
        headers={"X-Visitor-Token": left["token"]},
    )
    assert [m["author"] for m in history.json()] == ["customer"]


async def test_the_offline_form_refuses_bad_input_and_is_closed_when_turned_off(company: CompanyCtx) -> None:
    url = f"/widget/v1/{company.widget_key}/offline-messages"
    good = {"name": "Rita", "email": "rita@example.com", "message": "Oi"}
    for bad in ({"email": "rita"}, {"name": "  "}, {"message": ""}, {"message": "x" * 20001}):
        assert (await company.client.post(url, json={**good, **bad})).status_code == 422
    account = await webchat_account(company)
    r = await company.client.patch(f"{PATH}/{account['id']}", json={"config": {"offline_form": False}})
    assert r.status_code == 200
    r = await company.client.post(url, json=good)
    assert r.status_code == 403 and "turned off" in r.json()["detail"]
