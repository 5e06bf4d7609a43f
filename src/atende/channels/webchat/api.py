"""Web chat endpoints used by ``widget.js``.

A visitor is anonymous: starting a conversation returns a random token that the widget
keeps (in ``localStorage``) and presents on every call; only its keyed hash is stored.
Replies arrive over Server-Sent Events; each event id is the message's id, so a
reconnecting ``EventSource`` (``Last-Event-ID``) resumes exactly after the last message it
saw: nothing lost, nothing repeated.

Visitors see a message as ``VisitorMessage``: what it says, who wrote it (``author``) and
the sources it cites, whether a bot reply answered or handed the chat to people, and how the
visitor rated it (thumbs up or down: ``atende.feedback.ratings``). Not
what the company's API shows: the platform-wide ``seq`` (which tells how busy the whole
platform is), who of the team answered (``meta.agent_id``: a key prefix or a user id), the
bot's confidence.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sse_starlette.sse import EventSourceResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from atende.channels import accounts, intake
from atende.channels.base import Account, Channel, ConversationPolicy, Joins
from atende.channels.webchat.limits import limits_for
from atende.channels.webchat.settings import WebChatConfig
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.conversations.schemas import InboundMessage
from atende.db.pubsub import until_database_lost
from atende.engine import handoff
from atende.engine import turn as engine
from atende.engine.messages import when_back
from atende.errors import Forbidden, NotFound, Unauthorized
from atende.feedback import ratings
from atende.feedback import service as csat
from atende.feedback.ratings_api import RatingIn
from atende.feedback.ratings_models import AnswerRating
from atende.knowledge import rules
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.accounts import EMAIL
from atende.tenancy.crypto import hash_token, new_token, tokens_equal
from atende.tenancy.deps import RuntimeDep

PAGE = 100  # messages read per query when (re)playing a conversation
STATIC = Path(__file__).parent / "static"
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape()
)
router = APIRouter(tags=["web chat"])


class WebChat(Channel):
    """The widget. Its account's ``external_id`` is the widget key the page embeds; a visitor's
    token names the conversation (``Joins.named``); replies reach the visitor over the SSE
    stream, fed when they commit (``live``)."""

    kind = "webchat"
    conversation_policy = ConversationPolicy(Joins.named)
    config_schema = WebChatConfig  # colours, title, greetings, handoff button, offline form
    delivery = "live"
    built_in = True  # the widget key a company is created with; the CLI and demo print it

    def router(self) -> APIRouter:
        return router

    def middleware(self) -> Sequence[Callable[[ASGIApp], ASGIApp]]:
        return (WidgetCors,)

    def parse(self, account: Account | None, payload: Any) -> list[InboundMessage]:
        """``payload``: a ``VisitorPost``."""
        post: VisitorPost = payload
        return [
            InboundMessage(
                channel=self.kind,
                contact_external_id=post.contact_external_id,
                text=post.text,
                conversation_id=post.conversation_id,
                # the widget's id of the message: a resend after a lost response is stored once
                channel_message_id=f"{post.conversation_id}:{post.client_id}" if post.client_id else None,
            )
        ]


@dataclass(frozen=True)
class VisitorPost:
    """A visitor's message as the web chat received it (its text cleaned)."""

    conversation_id: uuid.UUID
    contact_external_id: str
    text: str
    client_id: str | None


channel = WebChat()
# what a visitor's writes may answer besides success (``webchat.limits``)
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "Too fast: nothing was stored. `Retry-After` (and `retry_after`) says how many "
        "seconds to wait; `detail` which limit (this conversation, this address, this site)."
    }
}


class VisitorContext(BaseModel):
    """Where the widget sits: kept on the conversation, where the company's knowledge rules
    read it ("pages under /pro/ → product pro"). Only the page's path is kept (never its
    query string, which may carry a visitor's data); an empty value forgets one."""

    model_config = ConfigDict(extra="forbid")
    page: str | None = Field(default=None, max_length=rules.PAGE_CHARS, description="The page's URL or path.")
    product: str | None = Field(default=None, max_length=200, description="The product the page is about.")

    def stored(self) -> dict[str, str]:
        """As the conversation keeps it (``knowledge.rules.checked_context``, as the API's)."""
        return rules.checked_context(self.model_dump(exclude_none=True), channel=False)


class VisitorMessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=20000)
    client_id: str | None = Field(default=None, max_length=100, description="Dedupe id from the widget.")
    context: VisitorContext | None = Field(default=None, description="Where the widget is now.")


class ConversationStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    context: VisitorContext | None = Field(default=None, description="Where the widget sits.")


class VisitorCitation(BaseModel):
    title: str
    section: str


class VisitorSurvey(BaseModel):
    """A CSAT survey the message asks: show the scale, post the answer to `.../csat`."""

    survey_id: uuid.UUID
    scale: int = Field(description="Scores go from 1 to this (5).")
    closes_at: datetime = Field(description="Answers, and changes to them, are taken until then.")


class VisitorMeta(BaseModel):
    citations: list[VisitorCitation] = Field(default=[], description="The sources of a bot answer.")
    decision: Literal["answer", "handoff"] | None = Field(
        default=None, description="A bot reply's: it answered, or handed the chat to people."
    )
    rating: Literal["helpful", "not_helpful"] | None = Field(
        default=None, description="A bot reply's: how the visitor rated it (null: not rated)."
    )
    csat: VisitorSurvey | None = Field(default=None, description="A satisfaction survey's: its scale.")


class VisitorMessage(BaseModel):
    """A message as the visitor sees it (their own, the bot's, the team's)."""

    id: uuid.UUID = Field(description="Also the message's position: `after` and `Last-Event-ID` take it.")
    conversation_id: uuid.UUID
    author: Literal["customer", "bot", "agent", "system"]
    text: str
    language: str | None
    reply_to_id: uuid.UUID | None
    meta: VisitorMeta
    created_at: datetime


def as_visitor_message(message: Message, rating: AnswerRating | None = None) -> VisitorMessage:
    meta = message.meta or {}
    citations = meta.get("citations") or []
    decision = meta.get("decision") if message.author == "bot" else None
    return VisitorMessage(
        id=message.id,
        conversation_id=message.conversation_id,
        author=message.author,
        text=message.text,
        language=message.language,
        reply_to_id=message.reply_to_id,
        meta=VisitorMeta(
            citations=[
                VisitorCitation(title=str(c.get("title", "")), section=str(c.get("section", "")))
                for c in citations
                if isinstance(c, dict)
            ],
            decision=decision if decision in ("answer", "handoff") else None,
            rating=None if rating is None else "helpful" if rating.helpful else "not_helpful",
            csat=_survey(meta.get(csat.META)) if message.author == "system" else None,
        ),
        created_at=message.created_at,
    )


class VisitorRating(BaseModel):
    """A visitor's rating of a bot answer, as stored (not the trace it points at)."""

    message_id: uuid.UUID
    rating: Literal["helpful", "not_helpful"]
    comment: str | None


def _survey(stored: Any) -> VisitorSurvey | None:
    if not isinstance(stored, dict):
        return None
    try:
        return VisitorSurvey.model_validate(stored)
    except ValueError:
        return None


class VisitorMessageOut(VisitorMessage):
    awaiting_reply: bool = Field(description="The bot is answering this message (show 'typing').")


class ConversationStarted(BaseModel):
    conversation_id: uuid.UUID
    token: str


class WidgetCors:
    """CORS for the visitor API alone: the widget runs on each company's own site, so any origin
    may call ``/widget/v1``. No cookies are involved (the visitor token is a header or query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Content-Type", "X-Visitor-Token", "Last-Event-ID"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/widget/v1/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


@dataclass(frozen=True)
class Visitor:
    account: Account
    conversation_id: uuid.UUID
    contact_id: uuid.UUID

    @property
    def company_id(self) -> uuid.UUID:
        return self.account.company_id


async def company_widget_key(session: AsyncSession, company_id: uuid.UUID) -> str | None:
    """The company's widget key: its oldest enabled web chat account's ``external_id`` (the
    only place it is stored); ``None`` when every one is disabled."""
    return await accounts.first_external_id(session, company_id, channel.kind)


async def _account(runtime: Runtime, widget_key: str) -> Account:
    """The enabled web chat account whose widget key this is."""
    async with runtime.db.transaction() as session:
        try:
            row = await accounts.route(session, channel.kind, widget_key)
        except NotFound:
            raise NotFound("unknown widget key") from None
        return accounts.open_account(channel, row, runtime.secret_key)


async def _visitor(
    runtime: Runtime, widget_key: str, conversation_id: uuid.UUID, token: str | None
) -> Visitor:
    if not token:
        raise Unauthorized("missing visitor token")
    account = await _account(runtime, widget_key)
    async with runtime.db.transaction(account.company_id) as session:
        try:
            conversation = await conversations.get_conversation(session, conversation_id)
        except NotFound:
            raise NotFound("no such conversation") from None
        expected = conversation.visitor_token_hash or ""
    if not tokens_equal(expected, hash_token(runtime.secret_key, token)):
        raise NotFound("no such conversation")  # never confirm that an id exists
    return Visitor(account, conversation_id, conversation.contact_id)


@router.get("/widget.js", include_in_schema=False)
async def widget_js() -> FileResponse:
    return FileResponse(
        STATIC / "widget.js", media_type="text/javascript", headers={"Cache-Control": "max-age=300"}
    )


@router.get("/widget.css", include_in_schema=False)
async def widget_css() -> FileResponse:
    return FileResponse(
        STATIC / "widget.css", media_type="text/css", headers={"Cache-Control": "max-age=300"}
    )


@router.get("/demo.css", include_in_schema=False)
async def demo_css() -> FileResponse:
    return FileResponse(STATIC / "demo.css", media_type="text/css", headers={"Cache-Control": "max-age=300"})


@router.get("/demo", include_in_schema=False, response_class=HTMLResponse)
async def demo_page(runtime: RuntimeDep, company: str = Query("loja-exemplo", max_length=80)) -> HTMLResponse:
    """The web chat on a page of its own, for ``atende demo`` (``ATENDE_DEMO``) only: it names
    any company by its slug and shows its widget key, which a production server must not
    confirm to whoever asks. Elsewhere it is a 404 like any path that does not exist."""
    if not runtime.settings.demo:
        raise HTTPException(404)
    async with runtime.db.transaction() as session:
        try:
            found = await tenancy.get_company(session, company)
        except NotFound:
            return HTMLResponse(
                templates.get_template("no_company.html").render(slug=company), status_code=404
            )
        key = await company_widget_key(session, found.id)
    if key is None:
        return HTMLResponse(templates.get_template("no_widget.html").render(company=found), status_code=404)
    html = templates.get_template("demo.html").render(
        company=found, widget_key=key, base_url=runtime.settings.public_url
    )
    return HTMLResponse(html)


class WidgetSettings(BaseModel):
    """What the widget shows, from its account's configuration (``WebChatConfig``), and
    whether a person can answer now."""

    title: str = Field(description="Empty: the widget's own title in the visitor's language.")
    greeting: str | None = Field(description="The greeting in the visitor's language, if any.")
    primary_color: str
    primary_text_color: str
    accent_color: str
    handoff_button: bool
    offline_form: bool
    offer_person_on_thumbs_down: bool = Field(
        description="After a thumbs-down on an answer, offer 'Talk to a person'."
    )
    team_available: bool = Field(
        description="The team is open and someone is online: a person answers soon. Else a handoff "
        "waits as a ticket (and the offline form, when on, is offered)."
    )
    back: str | None = Field(
        description="When closed: when the team is back, in the visitor's language ('amanhã às 08:00')."
    )


def _back(runtime: Runtime, routing: handoff.Routing, language: str) -> str | None:
    """When a closed team is back, in the visitor's words ("amanhã às 08:00")."""
    if routing.opens is None:
        return None
    return when_back(runtime.clock(), routing.opens, routing.timezone, language)


def _language(lang: str | None) -> str:
    lang = (lang or "pt")[:2].lower()
    return lang if lang in ("pt", "en", "es") else "pt"


def widget_settings(
    config: WebChatConfig, language: str, *, available: bool, back: str | None
) -> WidgetSettings:
    return WidgetSettings(
        title=config.title,
        greeting=config.greeting_for(language),
        primary_color=config.primary_color,
        primary_text_color=config.primary_text_color,
        accent_color=config.accent_color,
        handoff_button=config.handoff_button,
        offline_form=config.offline_form,
        offer_person_on_thumbs_down=config.offer_person_on_thumbs_down,
        team_available=available,
        back=back,
    )


@router.get("/widget/v1/{widget_key}/config", response_model=WidgetSettings)
async def widget_config(
    widget_key: str, runtime: RuntimeDep, lang: str | None = Query(None, max_length=10)
) -> Any:
    """How this widget looks and what it offers (`lang`: `pt`, `en` or `es`, the greeting's and
    `back`'s language), and whether the team can answer now. Not cached: availability changes."""
    account = await _account(runtime, widget_key)
    language = _language(lang)
    config = account.config
    assert isinstance(config, WebChatConfig)
    async with runtime.db.transaction(account.company_id) as session:
        company = await tenancy.get_company(session, str(account.company_id))
        routing = await handoff.route(session, company, None, runtime.clock())
    settings = widget_settings(
        config, language, available=not routing.ticket, back=_back(runtime, routing, language)
    )
    return JSONResponse(settings.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


class OfflineMessageIn(BaseModel):
    """The offline contact form: who to answer, at which address, and what about."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=320)
    message: str = Field(min_length=1, max_length=20000)
    lang: str | None = Field(default=None, max_length=10, description="`pt`, `en` or `es`: of `back`.")

    @field_validator("name", "email")
    @classmethod
    def _stripped(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if not EMAIL.fullmatch(value):
            raise ValueError("is not an e-mail address")
        return value


class OfflineMessageLeft(ConversationStarted):
    back: str | None = Field(description="When the team is back, in the visitor's language; none: open.")
    message: VisitorMessage


@router.post(
    "/widget/v1/{widget_key}/offline-messages",
    response_model=OfflineMessageLeft,
    status_code=201,
    responses={**RATE_LIMITED, 403: {"description": "This widget's offline form is turned off."}},
)
async def leave_offline_message(
    widget_key: str, body: OfflineMessageIn, request: Request, runtime: RuntimeDep
) -> OfflineMessageLeft:
    """The offline contact form: a new conversation of a contact with this name and e-mail,
    their message in it, queued for the team as a ticket (the bot does not answer it while
    the team is open). The token continues the conversation in the widget, like a started one."""
    account = await _account(runtime, widget_key)
    config = account.config
    assert isinstance(config, WebChatConfig)
    if not config.offline_form:
        raise Forbidden("this widget's offline contact form is turned off")
    text = conversations.clean_text(body.message, runtime.settings.max_message_chars)
    limits_for(runtime).conversation(request, account.company_id)
    token = new_token(24)
    async with runtime.db.transaction(account.company_id) as session:
        started = await conversations.start_visitor_conversation(
            session,
            channel=channel.kind,
            visitor_id="visitor-" + new_token(12),
            visitor_token_hash=hash_token(runtime.secret_key, token),
            name=body.name,
            email=body.email,
        )
        contact_external_id = await conversations.contact_external_id(session, started.contact_id)
        [inbound] = channel.parse(account, VisitorPost(started.id, contact_external_id, text, None))
        received = await intake.receive(
            await session.connection(), account.company_id, channel, inbound, account
        )
        conversation = await conversations.get_conversation(session, started.id, for_update=True)
        company = await tenancy.get_company(session, str(account.company_id))
        routing = await engine.leave_for_team(session, runtime, conversation, company)
    return OfflineMessageLeft(
        conversation_id=started.id,
        token=token,
        back=_back(runtime, routing, _language(body.lang)),
        message=as_visitor_message(received.message),
    )


@router.post(
    "/widget/v1/{widget_key}/conversations",
    response_model=ConversationStarted,
    status_code=201,
    responses=RATE_LIMITED,
)
async def start_conversation(
    widget_key: str, request: Request, runtime: RuntimeDep, body: ConversationStartIn | None = None
) -> ConversationStarted:
    company_id = (await _account(runtime, widget_key)).company_id
    limits_for(runtime).conversation(request, company_id)
    token = new_token(24)
    async with runtime.db.transaction(company_id) as session:
        conversation = await conversations.start_visitor_conversation(
            session,
            channel=channel.kind,
            visitor_id="visitor-" + new_token(12),
            visitor_token_hash=hash_token(runtime.secret_key, token),
        )
        if body is not None and body.context is not None:
            await conversations.set_context(session, conversation.id, body.context.stored())
    return ConversationStarted(conversation_id=conversation.id, token=token)


AFTER = Query(
    None,
    description="The id of the last message you have: only later ones. An id that is not one of "
    "this conversation's messages (any more) gives them all.",
)


async def _position(session: AsyncSession, conversation_id: uuid.UUID, after: uuid.UUID | str | None) -> int:
    """Where ``after`` (a message id, or an ``EventSource``'s ``Last-Event-ID``) stands in the
    conversation; anything else is the start (the widget ignores a message it already has)."""
    if isinstance(after, str):
        try:
            after = uuid.UUID(after)
        except ValueError:
            return 0
    if after is None:
        return 0
    return await conversations.seq_of(session, conversation_id, after) or 0


@router.get(
    "/widget/v1/{widget_key}/conversations/{conversation_id}/messages",
    response_model=list[VisitorMessage],
)
async def visitor_history(
    widget_key: str,
    conversation_id: uuid.UUID,
    runtime: RuntimeDep,
    x_visitor_token: Annotated[str | None, Header()] = None,
    after: uuid.UUID | None = AFTER,
) -> list[VisitorMessage]:
    """The conversation so far (up to 500 messages), oldest first."""
    visitor = await _visitor(runtime, widget_key, conversation_id, x_visitor_token)
    async with runtime.db.transaction(visitor.company_id) as session:
        start = await _position(session, conversation_id, after)
        rows = await conversations.list_messages(session, conversation_id, after_seq=start, limit=500)
        rated = await ratings.ratings_of(session, [m.id for m in rows if m.author == "bot"])
        return [as_visitor_message(m, rated.get(m.id)) for m in rows]


@router.post(
    "/widget/v1/{widget_key}/conversations/{conversation_id}/messages",
    response_model=VisitorMessageOut,
    status_code=201,
    responses=RATE_LIMITED,
)
async def visitor_message(
    widget_key: str,
    conversation_id: uuid.UUID,
    body: VisitorMessageIn,
    request: Request,
    runtime: RuntimeDep,
    x_visitor_token: Annotated[str | None, Header()] = None,
) -> VisitorMessageOut:
    visitor = await _visitor(runtime, widget_key, conversation_id, x_visitor_token)
    text = conversations.clean_text(body.text, runtime.settings.max_message_chars)
    limits_for(runtime).message(request, conversation_id, visitor.company_id)
    async with runtime.db.transaction(visitor.company_id) as session:
        contact_external_id = await conversations.contact_external_id(session, visitor.contact_id)
        [inbound] = channel.parse(
            visitor.account, VisitorPost(conversation_id, contact_external_id, text, body.client_id)
        )
        received = await intake.receive(
            await session.connection(), visitor.company_id, channel, inbound, visitor.account
        )
        if body.context is not None:  # in the message's transaction: its turn (queued) reads it
            await conversations.set_context(session, conversation_id, body.context.stored())
        # a new message cannot have been answered yet; a redelivered one may have been
        awaiting = received.bot_turn and not (
            received.duplicate and await conversations.bot_reply_exists(session, received.message.id)
        )
    return VisitorMessageOut(**as_visitor_message(received.message).model_dump(), awaiting_reply=awaiting)


@router.put(
    "/widget/v1/{widget_key}/conversations/{conversation_id}/messages/{message_id}/rating",
    response_model=VisitorRating,
    responses=RATE_LIMITED,
)
async def rate_answer(
    widget_key: str,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    body: RatingIn,
    request: Request,
    runtime: RuntimeDep,
    x_visitor_token: Annotated[str | None, Header()] = None,
) -> VisitorRating:
    """The visitor's rating of one of the bot's answers ("Helpful" / "Not helpful", an
    optional comment); rating it again replaces it. `404` for a message that is not one of
    this conversation's, `422` for one that is not the bot's. Counts against the
    conversation's message limits."""
    visitor = await _visitor(runtime, widget_key, conversation_id, x_visitor_token)
    limits_for(runtime).message(request, conversation_id, visitor.company_id)
    async with runtime.db.transaction(visitor.company_id) as session:
        rated = await ratings.rate_answer(
            session,
            runtime.jobs,
            conversation_id,
            message_id,
            helpful=body.helpful,
            comment=body.comment,
            channel=channel.kind,
            now=runtime.clock(),
        )
        return VisitorRating(
            message_id=message_id,
            rating="helpful" if rated.rating.helpful else "not_helpful",
            comment=rated.rating.comment,
        )


class VisitorCsatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    survey_id: uuid.UUID
    score: int | None = Field(default=None, ge=1, le=5, description="1 to 5; omit to add only a comment.")
    comment: str | None = Field(default=None, max_length=csat.COMMENT_MAX, description="Optional.")


class VisitorCsatOut(BaseModel):
    survey_id: uuid.UUID
    score: int | None
    comment: str | None
    closes_at: datetime = Field(description="The answer may be changed until then.")


@router.post(
    "/widget/v1/{widget_key}/conversations/{conversation_id}/csat",
    response_model=VisitorCsatOut,
    responses={**RATE_LIMITED, 409: {"description": "The survey's answer window has passed"}},
)
async def visitor_csat(
    widget_key: str,
    conversation_id: uuid.UUID,
    body: VisitorCsatIn,
    request: Request,
    runtime: RuntimeDep,
    x_visitor_token: Annotated[str | None, Header()] = None,
) -> VisitorCsatOut:
    """The visitor's answer to a satisfaction survey of their conversation: a score (1-5) and
    an optional comment, or a comment alone once scored. Sent again before `closes_at`, it
    replaces the answer; after it, 409. It is no message: the conversation stays resolved."""
    visitor = await _visitor(runtime, widget_key, conversation_id, x_visitor_token)
    limits_for(runtime).message(request, conversation_id, visitor.company_id)
    async with runtime.db.transaction(visitor.company_id) as session:
        survey = await csat.record_answer(
            session,
            runtime.jobs,
            body.survey_id,
            score=body.score,
            comment=body.comment,
            via=channel.kind,
            now=runtime.clock(),
            conversation_id=conversation_id,
        )
        return VisitorCsatOut(
            survey_id=survey.id, score=survey.score, comment=survey.comment, closes_at=survey.closes_at
        )


def _event(message: Message) -> dict[str, Any]:
    return {"id": str(message.id), "event": "message", "data": as_visitor_message(message).model_dump_json()}


@router.get("/widget/v1/{widget_key}/conversations/{conversation_id}/events")
async def visitor_events(
    widget_key: str,
    conversation_id: uuid.UUID,
    request: Request,
    runtime: RuntimeDep,
    token: str | None = Query(None, max_length=200),
    after: uuid.UUID | None = AFTER,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> EventSourceResponse:
    """Live stream of the conversation: `message` (id = the message's id), `typing` and `state`
    events, `idle` (the bot leaves the message `message_id` for people: stop showing
    "typing"), and `draft` (an answer as a streaming LLM writes it; the `message` that
    follows replaces it). A reconnect resumes after `Last-Event-ID`, else after `after`."""
    visitor = await _visitor(runtime, widget_key, conversation_id, token)
    async with runtime.db.transaction(visitor.company_id) as session:
        cursor = max(
            await _position(session, conversation_id, after),
            await _position(session, conversation_id, last_event_id),
        )

    async def stream() -> AsyncIterator[dict[str, Any]]:
        nonlocal cursor
        with runtime.listener.subscribe(str(conversation_id)) as sub:
            while not await request.is_disconnected():
                while True:  # a client far behind gets every page now, not one per wake-up
                    async with runtime.db.transaction(visitor.company_id) as session:
                        rows = await conversations.list_messages(
                            session, conversation_id, after_seq=cursor, limit=PAGE
                        )
                    for row in rows:
                        cursor = row.seq
                        yield _event(row)
                    if len(rows) < PAGE:
                        break
                note = await sub.next(timeout=15.0)
                while note is not None and note.get("kind") in ("typing", "idle", "state", "draft"):
                    yield {
                        "event": note["kind"],
                        "data": json.dumps({k: v for k, v in note.items() if k != "topic"}),
                    }
                    note = sub.queue.get_nowait() if not sub.queue.empty() else None

    return EventSourceResponse(
        until_database_lost(stream(), "widget"), ping=15, headers={"Cache-Control": "no-store"}
    )
