"""The e-mail survey: its one-click rating links, against the live server, the real SMTP
server the replies go to and the test Dovecot the customer's mail comes from. A link records
its score once, changes an earlier one, and is refused with a clear page (never a 500) when
forged, used again, or past the survey's close; the conversation stays resolved."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.channels.email.test_email_channel import (  # noqa: F401 (watching: a fixture)
    Shop,
    connect,
    customer_mail,
    fetching,
    wait_mail,
    watching,
)
from tests.conftest import Clock, CompanyCtx, until
from tests.feedback.conftest import enable, messages, resolve, run_survey_job, state
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mail import MailSink, body


@pytest.fixture
async def mail_shop(
    company: CompanyCtx,
    dovecot: Dovecot,
    smtp_sink: MailSink,
    runtime: Runtime,
    watching: None,  # noqa: F811 (the fixture imported above)
) -> Shop:
    """A company's mailbox, connected and fetched by the watchers (``test_email_channel``'s)."""
    shop = await connect(company, dovecot, smtp_sink, runtime)
    await fetching(shop, runtime)
    return shop


LINK = re.compile(r"^([1-5]) - [^:]+: (http://\S+/csat/e/\S+)$", re.MULTILINE)


async def surveyed(shop: Shop, runtime: Runtime) -> tuple[str, str, dict[int, str]]:
    """A customer's mail answered, its conversation resolved and surveyed: the conversation,
    the survey id and the survey e-mail's links by score."""
    company: CompanyCtx = shop.company
    await enable(company.client, questions={"pt": "Que nota você dá ao nosso atendimento?"})
    raw, _ = customer_mail("Prazo", "Qual o prazo de entrega?", to=shop.address)
    shop.mailbox.deliver(raw)
    await wait_mail(shop.sink, "ana@example.org", after=0)  # the bot's answer
    listed = (await company.client.get("/v1/conversations", params={"channel": "email"})).json()
    [conversation] = listed["items"]
    await resolve(company.client, conversation["id"])
    [sent] = await run_survey_job(runtime, company.id)
    mail = await wait_mail(shop.sink, "ana@example.org", after=1)
    text = body(mail).replace("\r\n", "\n")
    assert "Que nota você dá ao nosso atendimento?" in text
    found = {int(score): url for score, url in LINK.findall(text)}
    assert sorted(found) == [1, 2, 3, 4, 5], text
    html_part = mail.get_body(preferencelist=("html",))
    assert html_part is not None and f'href="{found[5]}"' in html_part.get_content()
    return conversation["id"], str(sent.survey_id), found


async def answer(company: CompanyCtx, conversation_id: str) -> dict:
    [survey] = (await company.client.get(f"/v1/conversations/{conversation_id}/csat")).json()
    return dict(survey)


async def test_a_rating_link_records_once_changes_and_takes_a_comment(
    mail_shop: Shop, runtime: Runtime, live_server: str
) -> None:
    shop = mail_shop
    conversation_id, _survey_id, links = await surveyed(shop, runtime)
    async with httpx.AsyncClient(timeout=10) as browser:
        # opening a link (as mail scanners open them all) shows the score and records nothing
        for url in links.values():
            shown = await browser.get(url)
            assert shown.status_code == 200, shown.text
        assert "Você escolheu a nota 5 de 5" in shown.text and "Enviar minha nota" in shown.text
        assert (await answer(shop.company, conversation_id))["score"] is None
        [send] = re.findall(r'action="([^"]+)"', (await browser.get(links[4])).text)

        page = await browser.post(live_server + send)  # "Send my rating"
        assert page.status_code == 200, page.text
        assert "Obrigado pela sua avaliação!" in page.text and "4 de 5" in page.text
        assert (await answer(shop.company, conversation_id))["score"] == 4

        again = await browser.post(links[4])  # the same link: used
        assert again.status_code == 409 and "já foi usado" in again.text

        changed = await browser.post(links[2])  # another score: a change
        assert changed.status_code == 200
        [action] = re.findall(r'action="([^"]+)"', changed.text)
        r = await browser.post(live_server + action, data={"comment": "Demoraram a responder."})
        assert r.status_code == 200 and "Obrigado pelo comentário!" in r.text
    survey = await answer(shop.company, conversation_id)
    assert (survey["score"], survey["comment"], survey["answered_via"]) == (
        2,
        "Demoraram a responder.",
        "email",
    )
    assert survey["changed_at"] is not None
    assert await state(shop.company.client, conversation_id) == "resolved"


async def test_forged_and_expired_links_get_a_clear_page_never_a_500(
    mail_shop: Shop, runtime: Runtime, live_server: str, clock: Clock
) -> None:
    shop = mail_shop
    conversation_id, _survey_id, links = await surveyed(shop, runtime)
    token = links[5].rsplit("/", 1)[1]
    company, survey, score, expiry, signature = token.split(".")
    forged = [
        f"{company}.{survey}.1.{expiry}.{signature}",  # another score under the same signature
        f"{company}.{survey}.{score}.{int(expiry) + 86400}.{signature}",  # a longer life
        token[:-3],
        "nonsense",
        "a.b.c.d.e",
    ]
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as browser:
        for bad in forged:
            r = await browser.get(f"/csat/e/{bad}")
            assert r.status_code == 404, (bad, r.text)
            assert "não é válido" in r.text and "is not valid" in r.text
            r = await browser.post(f"/csat/e/{bad}")
            assert r.status_code == 404, (bad, r.text)
            r = await browser.post(f"/csat/e/{bad}/comment", data={"comment": "x"})
            assert r.status_code == 404, (bad, r.text)
        r = await browser.get(f"/csat/e/{token}/comment")
        assert r.status_code in (404, 405)
        assert (await answer(shop.company, conversation_id))["score"] is None

        survey_row = await answer(shop.company, conversation_id)
        clock.at(datetime.fromisoformat(survey_row["closes_at"]) + timedelta(seconds=1))
        r = await browser.get(links[5])
        assert r.status_code == 410 and "expirou" in r.text
        r = await browser.post(links[5])
        assert r.status_code == 410 and "expirou" in r.text
    assert (await answer(shop.company, conversation_id))["score"] is None


async def test_a_reply_that_is_only_a_score_answers_the_survey_without_reopening(
    mail_shop: Shop, runtime: Runtime
) -> None:
    shop = mail_shop
    conversation_id, _survey_id, _links = await surveyed(shop, runtime)
    sent_id = await _survey_mail_id(shop, runtime, conversation_id)
    raw, reply_id = customer_mail(
        "Re: Prazo",
        "4/5\n\nEm seg., Suporte escreveu:\n> Que nota?",
        to=shop.address,
        headers={"In-Reply-To": sent_id, "References": sent_id},
    )
    shop.mailbox.deliver(raw)
    survey = await until(lambda: _scored(shop.company, conversation_id), what="the score from the reply")
    assert (survey["score"], survey["answered_via"]) == (4, "email")
    assert await state(shop.company.client, conversation_id) == "resolved"
    shown = await messages(shop.company.client, conversation_id)
    assert shown[-1]["author"] == "customer" and shown[-1]["channel_message_id"] == reply_id


async def _scored(company: CompanyCtx, conversation_id: str) -> dict | None:
    survey = await answer(company, conversation_id)
    return survey if survey["score"] is not None else None


async def _survey_mail_id(shop: Shop, runtime: Runtime, conversation_id: str) -> str:
    """The Message-ID the survey e-mail went out with (its provider id)."""

    async def sent() -> str | None:
        for message in await messages(shop.company.client, conversation_id):
            if message["author"] == "system" and message["delivery_status"] in ("sent", "delivered"):
                async with runtime.db.transaction(shop.company.id) as session:
                    return await session.scalar(
                        select(Message.provider_message_id).where(Message.id == uuid.UUID(message["id"]))
                    )
        return None

    return str(await until(sent, what="the survey's Message-ID"))
