"""Settings → Customer feedback over HTTP: the form saves what ``PUT /v1/company/csat`` saves,
refuses bad values with the reason on the page (nothing changed), and is an admin's."""

from __future__ import annotations

import uuid

import httpx

from atende.feedback import service
from atende.feedback.csat_settings import CsatSettings
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import ask
from tests.dashboard.test_settings_company import notice, send
from tests.feedback.conftest import enable, resolve, run_survey_job
from tests.fixtures.dashboard import Team, signed_in

PAGE = "/app/settings/feedback"
FORM = {
    "enabled": "1",
    "delay_minutes": "10",
    "answer_window_hours": "48",
    "question_pt": "De 1 a 5, como foi o atendimento?",
    "question_en": "",
    "question_es": "",
    "channel_webchat": "1",
    "channel_email": "1",
    "template_name": "pesquisa_satisfacao",
    "template_language": "pt_BR",
    "template_buttons": "5",
}


async def stored(runtime: Runtime, company_id: uuid.UUID) -> CsatSettings:
    async with runtime.db.transaction(company_id) as session:
        return await service.csat_settings(session, company_id)


async def test_an_admin_turns_the_surveys_on_with_a_question_of_the_company(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.admin) as client:
        page = await client.get(PAGE)
        assert page.status_code == 200
        for label in ('for="enabled"', 'for="delay_minutes"', 'for="question_pt"', 'for="channel_whatsapp"'):
            assert label in page.text
        assert "Save feedback settings" in page.text or "Salvar" in page.text
        notice(await send(client, PAGE, FORM, page=PAGE), "feedback_saved", PAGE)
    settings = await stored(runtime, team.company_id)
    assert settings.enabled and settings.enabled_at is not None
    assert (settings.delay_seconds, settings.answer_window_hours) == (600, 48)
    assert settings.questions == {"pt": "De 1 a 5, como foi o atendimento?"}
    assert settings.channels == ["webchat", "email"]
    assert settings.whatsapp_template is not None
    assert (settings.whatsapp_template.name, settings.whatsapp_template.buttons) == ("pesquisa_satisfacao", 5)


async def test_bad_values_are_refused_on_the_page_and_nothing_changes(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.admin) as client:
        for changed in (
            {"delay_minutes": "soon"},
            {"answer_window_hours": "0"},
            {"template_name": "Bad Name"},
            {"template_buttons": "6"},
        ):
            r = await send(client, PAGE, {**FORM, **changed}, page=PAGE)
            assert r.status_code == 422, (changed, r.text)
            assert 'role="alert"' in r.text
    assert not (await stored(runtime, team.company_id)).enabled


async def test_agents_cannot_change_the_surveys(live_server: str, team: Team, runtime: Runtime) -> None:
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get(PAGE)).status_code == 403
    assert not (await stored(runtime, team.company_id)).enabled


async def test_the_conversation_page_shows_the_customers_rating(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=team.company_id, name="tests"
        )
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {full}"}) as api:
        await enable(api)
        conversation_id = (await ask(api, "Oi", contact="eva"))["conversation_id"]
        await resolve(api, conversation_id)
        [sent] = await run_survey_job(runtime, team.company_id)
        async with signed_in(live_server, team.agent) as client:
            page = await client.get(f"/app/conversations/{conversation_id}")
            assert "ainda sem resposta" in page.text or "not answered yet" in page.text
            r = await api.post(f"/v1/csat/{sent.survey_id}/answer", json={"score": 3, "comment": "Ok."})
            assert r.status_code == 200, r.text
            page = await client.get(f"/app/conversations/{conversation_id}")
    assert page.status_code == 200
    assert ("Nota 3 de 5" in page.text or "Rated 3 of 5" in page.text) and "Ok." in page.text
