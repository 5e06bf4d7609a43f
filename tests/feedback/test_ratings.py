"""Thumbs on the bot's answers: a visitor rates an answer in the web chat, an API client
rates one through the API channel; a second rating replaces the first, only the bot's answers
of that conversation can be rated, the rating points at the turn's trace, and each change
reaches the company's ``message.rated`` webhook."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from atende.errors import InvalidInput
from atende.feedback.ratings import COMMENT_MAX, clean_comment
from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.channels.test_webchat import bot_replies, history, say, start, wait_for
from tests.conftest import CompanyCtx, ask
from tests.fakes.webhook_receiver import WebhookReceiver, running_receiver
from tests.tenancy.test_support_api import new_key


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_receiver() as server:
        yield server


@pytest.fixture
async def web(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous client, like a visitor's browser: no API key."""
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as client:
        yield client


def rating_path(conversation_id: str, message_id: str) -> str:
    return f"/v1/conversations/{conversation_id}/messages/{message_id}/rating"


async def test_a_visitor_rates_an_answer_and_rating_it_again_replaces_the_rating(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    visitor = await start(web, kb_company.widget_key)
    await say(web, visitor, "Qual o prazo de entrega?")
    _question, answer = await wait_for(web, visitor, bot_replies(1))
    assert answer["meta"]["rating"] is None
    path = f"{visitor.path}/messages/{answer['id']}/rating"

    r = await web.put(path, json={"helpful": False}, headers=visitor.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"message_id": answer["id"], "rating": "not_helpful", "comment": None}
    r = await web.put(
        path,
        json={"helpful": False, "comment": "  Quero o prazo para o Nordeste.  "},
        headers=visitor.headers,
    )
    assert r.json()["comment"] == "Quero o prazo para o Nordeste."
    [_q, shown] = await history(web, visitor)
    assert shown["meta"]["rating"] == "not_helpful"

    r = await web.put(path, json={"helpful": True}, headers=visitor.headers)
    assert (r.json()["rating"], r.json()["comment"]) == ("helpful", None)
    [_q, shown] = await history(web, visitor)
    assert shown["meta"]["rating"] == "helpful"
    # one rating per answer, seen by the company through the turn's trace
    [trace] = (await kb_company.client.get(f"/v1/conversations/{visitor.conversation_id}/traces")).json()
    assert trace["reply_message_id"] == answer["id"]


async def test_only_the_bots_answers_of_that_conversation_can_be_rated(
    web: httpx.AsyncClient, kb_company: CompanyCtx
) -> None:
    visitor = await start(web, kb_company.widget_key)
    await say(web, visitor, "Qual o prazo de entrega?")
    question, answer = await wait_for(web, visitor, bot_replies(1))
    other = await start(web, kb_company.widget_key)
    await say(web, other, "Qual o prazo de entrega?")
    _, elsewhere = await wait_for(web, other, bot_replies(1))

    own = await web.put(
        f"{visitor.path}/messages/{question['id']}/rating", json={"helpful": False}, headers=visitor.headers
    )
    assert own.status_code == 422
    assert (
        own.json()["detail"]
        == f"only the bot's answers can be rated; message {question['id']} is not the bot's"
    )
    # another conversation's answer, or no message at all: not found, nothing said about it
    for message_id in (elsewhere["id"], str(uuid.uuid4())):
        r = await web.put(
            f"{visitor.path}/messages/{message_id}/rating", json={"helpful": False}, headers=visitor.headers
        )
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == f"no message {message_id} in this conversation"
    path = f"{visitor.path}/messages/{answer['id']}/rating"
    assert (await web.put(path, json={"helpful": False})).status_code == 401  # no visitor token
    assert (await web.put(path, json={"helpful": "maybe"}, headers=visitor.headers)).status_code == 422
    long = await web.put(path, json={"helpful": False, "comment": "x" * 1001}, headers=visitor.headers)
    assert (long.status_code, long.json()["detail"]) == (
        422,
        "comment is 1001 characters long; the limit is 1000",
    )
    assert (await history(web, visitor))[1]["meta"]["rating"] is None  # nothing was stored


async def test_an_api_client_rates_an_answer_that_points_at_its_trace_and_each_change_is_a_webhook(
    kb_company: CompanyCtx, other_company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime
) -> None:
    hook = receiver.new_path()
    r = await kb_company.client.post(
        "/v1/webhooks", json={"url": receiver.url(hook), "events": ["message.rated"]}
    )
    assert r.status_code == 201, r.text
    body = await ask(kb_company.client, "Qual o prazo de entrega?")
    cid, reply = body["conversation_id"], body["reply"]
    [trace] = (await kb_company.client.get(f"/v1/conversations/{cid}/traces")).json()

    r = await kb_company.client.put(rating_path(cid, reply["id"]), json={"helpful": True})
    assert r.status_code == 200, r.text
    rated = r.json()
    assert (rated["trace_id"], rated["helpful"], rated["channel"], rated["changed"]) == (
        trace["id"],
        True,
        "api",
        True,
    )
    again = await kb_company.client.put(rating_path(cid, reply["id"]), json={"helpful": True, "comment": ""})
    assert again.json()["changed"] is False  # the same rating: nothing changed, no event
    down = await kb_company.client.put(
        rating_path(cid, reply["id"]), json={"helpful": False, "comment": "Não respondeu o que perguntei."}
    )
    assert (down.json()["helpful"], down.json()["changed"]) == (False, True)

    events = await receiver.wait_for(hook, lambda rs: len(rs) >= 2)
    assert [e.event["type"] for e in events] == ["message.rated", "message.rated"]
    assert [e.event["data"]["helpful"] for e in events] == [True, False]
    assert events[1].event["data"] | {"rated_at": None} == {
        "conversation_id": cid,
        "message_id": reply["id"],
        "trace_id": trace["id"],
        "helpful": False,
        "comment": "Não respondeu o que perguntei.",
        "channel": "api",
        "rated_at": None,
    }

    # another company cannot reach it; a viewer's key may not rate
    r = await other_company.client.put(rating_path(cid, reply["id"]), json={"helpful": True})
    assert r.status_code == 404
    async with kb_company.with_key(await new_key(runtime, kb_company, Role.viewer)) as viewer:
        assert (await viewer.put(rating_path(cid, reply["id"]), json={"helpful": True})).status_code == 403
    # the customer's own message is not an answer
    r = await kb_company.client.put(rating_path(cid, body["message"]["id"]), json={"helpful": False})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (None, None),
        ("", None),
        ("   \n ", None),
        ("  Faltou o Nordeste. ", "Faltou o Nordeste."),
        ("x" * COMMENT_MAX + "   ", "x" * COMMENT_MAX),
    ],
)
def test_a_comment_is_stored_trimmed_and_an_empty_one_is_none(given: str | None, stored: str | None) -> None:
    assert clean_comment(given) == stored


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("x" * (COMMENT_MAX + 1), "comment is 1001 characters long; the limit is 1000"),
        ("a\x00b", "comment must not contain NUL bytes (\\u0000)"),
    ],
)
def test_a_comment_too_long_or_with_a_nul_byte_is_refused(given: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        clean_comment(given)
    assert (refused.value.message, refused.value.field) == (says, "comment")


async def test_ratings_sent_at_once_leave_one_rating_and_none_fails(
    kb_company: CompanyCtx, runtime: Runtime
) -> None:
    """A double click, or two tabs: the first rating of an answer arriving several times at once."""
    import asyncio

    from sqlalchemy import select

    from atende.feedback.ratings_models import AnswerRating

    body = await ask(kb_company.client, "Qual o prazo de entrega?")
    path = rating_path(body["conversation_id"], body["reply"]["id"])
    answers = await asyncio.gather(
        *(kb_company.client.put(path, json={"helpful": n % 2 == 0, "comment": f"c{n}"}) for n in range(6))
    )
    assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
    assert [r.json()["changed"] for r in answers] == [True] * 6  # each replaced the one before
    async with runtime.db.transaction(kb_company.id) as session:
        [stored] = (
            await session.scalars(
                select(AnswerRating).where(AnswerRating.message_id == uuid.UUID(body["reply"]["id"]))
            )
        ).all()
    assert stored.comment in {f"c{n}" for n in range(6)} and stored.helpful == (
        int(stored.comment[1]) % 2 == 0
    )
