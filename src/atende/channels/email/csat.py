"""The e-mail channel's satisfaction survey: its rating links, and the pages they open.

A survey message (``meta["csat"]``, ``atende.feedback``) goes out with the question and one
link per score, worst first; ``prepare`` writes them into the text (the HTML part makes them
links). Each link is signed, expires when the survey closes, and works once
(``feedback.links``). Opening it shows the score chosen and a button that sends it: mail
scanners (Safe Links, corporate proxies) open every link of an e-mail, and a rating recorded on
opening would record all five and use them up before the customer clicked. Sending it records
the score (or changes it) and shows a page with the rating and a comment box. A link that is
not ours, expired, used already, or of a closed survey shows a page saying so, in the
customer's language, with a 4xx status; never a 500. The comment goes with a token of its own,
valid until the survey closes. A reply to the survey e-mail that is only a score ("5", "4/5")
is its answer too (``score_in``, ``survey_answered``): the receiver hands it in without
reopening the conversation.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations.models import Message
from atende.engine.messages import phrase
from atende.errors import Conflict, InvalidInput, NotFound
from atende.feedback import links
from atende.feedback import service as csat
from atende.runtime import Runtime
from atende.tenancy.deps import RuntimeDep

router = APIRouter(include_in_schema=False)
PATH = "/csat/e"


def _link(
    runtime: Runtime, company_id: uuid.UUID, survey_id: uuid.UUID, score: int, expires: datetime
) -> str:
    token = links.make(runtime.secret_key, company_id, survey_id, score, expires)
    return f"{runtime.settings.public_url.rstrip('/')}{PATH}/{token}"


def survey_text(runtime: Runtime, company_id: uuid.UUID, text: str, survey: Mapping[str, Any]) -> str:
    """The survey's text with its rating links under the question, one line per score."""
    language = str(survey.get("language") or "en")
    survey_id = uuid.UUID(str(survey["survey_id"]))
    closes_at = datetime.fromisoformat(str(survey["closes_at"]))
    lines = [text.strip(), "", phrase("csat:email_choose", language)]
    for score in range(1, csat.SCALE + 1):
        label = phrase(f"csat:score:{score}", language)
        lines.append(f"{score} - {label}: {_link(runtime, company_id, survey_id, score, closes_at)}")
    return "\n".join(lines)


def _page(
    language: str,
    status: int,
    *paragraphs: str,
    comment_token: str | None = None,
    confirm: tuple[str, str] | None = None,
) -> HTMLResponse:
    title = html.escape(phrase("csat:title", language))
    body = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    if confirm is not None:
        action, button = (html.escape(part) for part in confirm)
        body += (
            f'<form method="post" action="{action}">\n'
            f'<p><button type="submit">{button}</button></p>\n</form>\n'
        )
    if comment_token is not None:
        label = html.escape(phrase("csat:comment", language))
        button = html.escape(phrase("csat:send_comment", language))
        body += (
            f'<form method="post" action="{PATH}/{html.escape(comment_token)}/comment">\n'
            f'<p><label for="comment">{label}</label></p>\n'
            '<p><textarea id="comment" name="comment" rows="5" cols="60" maxlength="2000"></textarea></p>\n'
            f'<p><button type="submit">{button}</button></p>\n</form>\n'
        )
    lang = {"pt": "pt-BR"}.get(language, language)
    page = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title></head>\n<body><main>\n<h1>{title}</h1>\n{body}</main></body></html>\n"
    )
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


async def _language(runtime: Runtime, link: links.Link) -> str:
    try:
        async with runtime.db.transaction(link.company_id) as session:
            return (await csat.get_survey(session, link.survey_id)).language
    except NotFound:
        return "en"


def _read(runtime: Runtime, token: str, now: datetime, *, comment: bool) -> links.Link | HTMLResponse:
    """The link ``token`` is, of the kind the route takes (a score's or a comment's); else
    the page saying why not, in the three languages (whose survey it is, nobody knows)."""
    try:
        link = links.read(runtime.secret_key, token, now)
    except links.ExpiredLink:
        return _page("pt", 410, *(phrase("csat:expired_link", lang) for lang in ("pt", "en", "es")))
    except links.BadLink:
        link = None
    if link is None or (link.score == links.COMMENT) != comment:
        return _page("pt", 404, *(phrase("csat:bad_link", lang) for lang in ("pt", "en", "es")))
    return link


@router.get(PATH + "/{token}", response_class=HTMLResponse)
async def choose(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """A score's link opened: the score shown with the button that sends it (nothing recorded,
    the link not used: a mail scanner's visit changes nothing)."""
    link = _read(runtime, token, runtime.clock(), comment=False)
    if isinstance(link, HTMLResponse):
        return link
    language = await _language(runtime, link)
    label = phrase(f"csat:score:{link.score}", language)
    return _page(
        language,
        200,
        phrase("csat:chosen", language).format(score=link.score, label=label),
        confirm=(f"{PATH}/{token}", phrase("csat:confirm", language)),
    )


@router.post(PATH + "/{token}", response_class=HTMLResponse)
async def rate(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """The chosen score sent: recorded (the link used), the comment box offered."""
    now = runtime.clock()
    link = _read(runtime, token, now, comment=False)
    if isinstance(link, HTMLResponse):
        return link
    language = await _language(runtime, link)
    try:
        async with runtime.db.transaction(link.company_id) as session:
            survey = await csat.record_answer(
                session,
                runtime.jobs,
                link.survey_id,
                score=link.score,
                comment=None,
                via="email",
                now=now,
                spend_link=link.key,
            )
            closes_at = survey.closes_at
    except NotFound:
        return _page(language, 404, phrase("csat:bad_link", language))
    except csat.SurveyClosed:
        return _page(language, 410, phrase("csat:closed", language))
    except Conflict:
        return _page(language, 409, phrase("csat:used_link", language))
    comment_token = links.make(runtime.secret_key, link.company_id, link.survey_id, links.COMMENT, closes_at)
    label = phrase(f"csat:score:{link.score}", language)
    return _page(
        language,
        200,
        phrase("csat:thanks", language),
        phrase("csat:rated", language).format(score=link.score, label=label),
        phrase("csat:change", language).format(until=closes_at.strftime("%Y-%m-%d %H:%M UTC")),
        comment_token=comment_token,
    )


@router.post(PATH + "/{token}/comment", response_class=HTMLResponse)
async def comment(
    token: str, runtime: RuntimeDep, comment: Annotated[str, Form(max_length=csat.COMMENT_MAX)] = ""
) -> HTMLResponse:
    """The comment the rating page offered to take (it may be sent again until the survey closes)."""
    now = runtime.clock()
    link = _read(runtime, token, now, comment=True)
    if isinstance(link, HTMLResponse):
        return link
    language = await _language(runtime, link)
    try:
        async with runtime.db.transaction(link.company_id) as session:
            await csat.record_answer(
                session, runtime.jobs, link.survey_id, score=None, comment=comment, via="email", now=now
            )
    except InvalidInput as exc:
        return _page(language, 422, exc.message)
    except NotFound:
        return _page(language, 404, phrase("csat:bad_link", language))
    except csat.SurveyClosed:
        return _page(language, 410, phrase("csat:closed", language))
    return _page(language, 200, phrase("csat:commented", language))


# a reply to the survey e-mail that is only a score: "5", "4/5", "3 de 5", "2 of 5."
_SCORE_REPLY = re.compile(r"^\s*([1-5])\s*(?:(?:/|de|of)\s*5)?\s*[.!]?\s*$", re.IGNORECASE)


def score_in(text: str) -> int | None:
    """The score a reply's text is, when it is nothing but one."""
    found = _SCORE_REPLY.match(text)
    return int(found.group(1)) if found else None


async def survey_answered(
    session: AsyncSession, company_id: uuid.UUID, refs: Sequence[str]
) -> uuid.UUID | None:
    """The survey whose e-mail one of ``refs`` (a reply's In-Reply-To and References) names."""
    if not refs:
        return None
    meta = await session.scalar(
        select(Message.meta)
        .where(
            Message.company_id == company_id,
            Message.channel == "email",
            Message.author == "system",
            Message.provider_message_id.in_(list(refs)[-100:]),
        )
        .order_by(Message.seq.desc())
        .limit(1)
    )
    survey = (meta or {}).get(csat.META)
    try:
        return uuid.UUID(str(survey["survey_id"])) if isinstance(survey, dict) else None
    except (KeyError, ValueError):
        return None
