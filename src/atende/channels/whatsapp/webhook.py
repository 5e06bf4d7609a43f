"""``/webhooks/whatsapp``: Meta's subscription handshake (``GET``) and its deliveries (``POST``).

A delivery is trusted only after its ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body,
keyed by the Meta app's secret) matches the app secret of an enabled WhatsApp account,
compared in constant time, before the body is parsed: otherwise ``401`` and nothing stored.
The accounts and their secrets are this process's copy (``numbers``: kept until an account
changes, read again before refusing what the copy cannot place).
Each change is routed by its ``metadata.phone_number_id`` to the account of that number —
one whose app secret signed the body, so one Meta app cannot write into a number of
another's — and:

- each message is stored through the common intake (the bot turn runs as a job); a
  redelivery (the same ``wamid``) is found stored and changes nothing; a message the bot
  cannot read (media without a caption, an unsupported type) gets a polite note in its
  place, in the same transaction, so the bot turn finds it answered; a message with a file
  (image, audio, voice, video, document, sticker) queues, in the same transaction, the job
  that fetches it into the media store (``atende.channels.whatsapp.media``);
- a survey's button press is its answer (``_record_rating``), and the customer's next text
  that asks nothing (``engine.questions.asks``), within ``feedback.COMMENT_WINDOW``, its
  comment, decided in the transaction that stores it (``_take_comment``): only the first
  text is taken; a question, a second text, or one the survey refuses is an ordinary message;
- a reaction is put on the message it reacts to (``meta.reactions``), never a new turn;
- a status goes to the outbox's status path (``Channel.apply_status``), in any order;
- a number no account has is acknowledged and logged, nothing stored (Meta would otherwise
  retry it for days).

The answer is ``200`` once everything is stored: the acknowledgement makes no Graph call
(the customer's message is marked read by the worker, when the bot takes it: ``read``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from typing import Any

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels import intake
from atende.channels.base import Account, StatusUpdate
from atende.channels.whatsapp import csat, media, parse
from atende.channels.whatsapp.channel import KIND, channel, inbound
from atende.channels.whatsapp.numbers import Number, Snapshot, numbers_of
from atende.conversations import service as conversations
from atende.conversations.models import Contact, Conversation, Message
from atende.conversations.schemas import NOT_FOR_THE_BOT, InboundMessage
from atende.db.pubsub import publish
from atende.engine import handoff, questions
from atende.engine.messages import phrase
from atende.errors import AtendeError
from atende.feedback import service as feedback
from atende.feedback.models import CsatSurvey
from atende.runtime import Runtime
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.deps import RuntimeDep

log = structlog.get_logger(__name__)
router = APIRouter(tags=["whatsapp"])

SIGNATURE_HEADER = "X-Hub-Signature-256"
CHALLENGE_MAX = 256
QUOTE_CHARS = 200  # of a quoted message kept beside a reply

# the note a customer gets for what the bot cannot read (the team sees the message itself)
UNREADABLE = {
    "pt": "Desculpe, ainda não consigo ler {what}. Pode me escrever sua dúvida em texto?",
    "en": "Sorry, I can't read {what} yet. Could you write your question as text?",
    "es": "Lo siento, todavía no puedo leer {what}. ¿Puedes escribirme tu pregunta en texto?",
}
WHAT = {
    "pt": {
        "image": "imagens",
        "audio": "áudios",
        "voice": "mensagens de voz",
        "video": "vídeos",
        "document": "documentos",
        "sticker": "figurinhas",
        "": "este tipo de mensagem",
    },
    "en": {
        "image": "images",
        "audio": "audio files",
        "voice": "voice messages",
        "video": "videos",
        "document": "documents",
        "sticker": "stickers",
        "": "this kind of message",
    },
    "es": {
        "image": "imágenes",
        "audio": "audios",
        "voice": "mensajes de voz",
        "video": "videos",
        "document": "documentos",
        "sticker": "stickers",
        "": "este tipo de mensaje",
    },
}


def unreadable_note(kind: str, language: str) -> str:
    language = language if language in UNREADABLE else "en"
    what = WHAT[language].get(kind, WHAT[language][""])
    return UNREADABLE[language].format(what=what)


@router.get(
    "/webhooks/whatsapp",
    summary="WhatsApp webhook verification (Meta's subscription handshake)",
    response_class=PlainTextResponse,
    responses={403: {"description": "The verify token is no account's"}},
)
async def verify(
    runtime: RuntimeDep,
    mode: str = Query("", alias="hub.mode", max_length=40),
    token: str = Query("", alias="hub.verify_token", max_length=500),
    challenge: str = Query("", alias="hub.challenge", max_length=CHALLENGE_MAX),
) -> Response:
    """Echo `hub.challenge` when `hub.mode` is `subscribe` and `hub.verify_token` is the
    verify token of an enabled WhatsApp account; `403` otherwise."""
    if mode == "subscribe" and token and challenge:
        given = token.encode()
        cache = numbers_of(runtime)
        snapshot = await cache.get(runtime)
        found = _verified_by(given, snapshot)
        if found is None and not snapshot.fresh:  # a verify token set a moment ago
            found = _verified_by(given, await cache.load(runtime))
        if found is not None:
            log.info("whatsapp.verified", account_id=str(found.row.id))
            return PlainTextResponse(challenge)
    log.warning("whatsapp.verification_refused", mode=mode[:40])
    return PlainTextResponse("verification refused", status_code=403)


def _verified_by(given: bytes, snapshot: Snapshot) -> Number | None:
    """The number whose verify token is ``given`` (each compared in constant time)."""
    for found, secret in snapshot.having("verify_token"):
        if hmac.compare_digest(secret.encode(), given):
            return found
    return None


def _signed_by(raw: bytes, header: str | None, snapshot: Snapshot) -> dict[str, Number]:
    """The numbers (by ``phone_number_id``) whose app secret signed ``raw`` (each compared
    in constant time)."""
    if not header or not header.startswith("sha256="):
        return {}
    given = header.removeprefix("sha256=").strip().lower().encode()
    digests: dict[str, bytes] = {}
    matched = {}
    for found, secret in snapshot.having("app_secret"):
        digest = digests.get(secret)
        if digest is None:
            digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().encode()
            digests[secret] = digest
        if hmac.compare_digest(digest, given):
            matched[found.row.external_id] = found
    return matched


@router.post(
    "/webhooks/whatsapp",
    summary="WhatsApp Cloud API webhook (messages and statuses)",
    responses={
        401: {"description": "Missing or wrong X-Hub-Signature-256: nothing stored"},
        400: {"description": "Signed, but not JSON"},
    },
)
async def receive(request: Request, runtime: RuntimeDep) -> Response:
    """Check the signature on the raw body, then store every message, reaction and status
    for the account of each `phone_number_id`; `200` once stored."""
    raw = await request.body()
    header = request.headers.get(SIGNATURE_HEADER)
    cache = numbers_of(runtime)
    snapshot = await cache.get(runtime)
    signed = _signed_by(raw, header, snapshot)
    if not signed and not snapshot.fresh:  # an account connected, or a secret rotated, just now
        snapshot = await cache.load(runtime)
        signed = _signed_by(raw, header, snapshot)
    if not signed:
        log.warning("whatsapp.signature_refused", has_signature=header is not None)
        return JSONResponse({"detail": "invalid or missing X-Hub-Signature-256"}, status_code=401)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
    changes = parse.changes(payload)
    if not snapshot.fresh and any(
        (c.messages or c.reactions or c.statuses) and c.phone_number_id not in signed for c in changes
    ):
        # a number the copy lacks (connected a moment ago, under an app secret it knows)
        snapshot = await cache.load(runtime)
        signed = _signed_by(raw, header, snapshot)
    stored = 0
    for change in changes:
        if change.skipped:
            log.info("whatsapp.skipped", phone_number_id=change.phone_number_id, what=change.skipped[:10])
        found = signed.get(change.phone_number_id)
        if found is None:
            if change.messages or change.reactions or change.statuses:
                log.warning(
                    "whatsapp.unknown_number",
                    phone_number_id=change.phone_number_id[:40],
                    messages=len(change.messages),
                    statuses=len(change.statuses),
                )
            continue
        account = found.account
        if account is None:  # a secret that no longer decrypts (ATENDE_SECRET_KEY changed)
            log.error("whatsapp.account_unreadable", account_id=str(found.row.id), reason=found.error[:200])
            return JSONResponse({"detail": "the account cannot be opened"}, status_code=503)
        for message in change.messages:
            if await _store(runtime, account, change, message):
                stored += 1
        for reaction in change.reactions:
            await _react(runtime, account, reaction)
        for status in change.statuses:
            update_ = StatusUpdate(status.wamid, status.status, status.reason)
            await channel.apply_status(runtime, account, update_)
    return JSONResponse({"stored": stored})


async def _quoted(session: AsyncSession, company_id: uuid.UUID, wamid: str) -> dict[str, Any]:
    """What a reply quotes: our message of that wamid (a customer's, or one we sent)."""
    quoted = await session.scalar(
        select(Message)
        .where(
            Message.company_id == company_id,
            Message.channel == KIND,
            or_(Message.channel_message_id == wamid, Message.provider_message_id == wamid),
        )
        .order_by(Message.seq.desc())
        .limit(1)
    )
    if quoted is None:
        return {"wamid": wamid}
    return {
        "wamid": wamid,
        "message_id": str(quoted.id),
        "author": quoted.author,
        "text": quoted.text[:QUOTE_CHARS],
    }


async def _store(
    runtime: Runtime,
    account: Account,
    change: parse.Change,
    message: parse.Incoming,
) -> bool:
    """Store one message (and, for one the bot cannot read, its polite note); whether it was
    new. A plain message is one atomic statement on a driver connection, as the API channel's
    (the hot path); a quoted reply, an unreadable one or one with a file (its fetch job is
    queued with it) needs a transaction around it."""
    incoming = inbound(change, message)
    has_media = isinstance(incoming.meta.get("media"), dict)
    rating = incoming.meta.get(csat.ANSWER_META)
    awaited = None
    if (
        not rating
        and not has_media
        and not message.unreadable
        and incoming.text.strip()
        and not questions.asks(incoming.text)  # a question after the rating wants an answer
    ):
        # a look without a lock keeps the hot path for the texts no survey awaits; the
        # transaction below decides again, holding the survey
        awaited = await _comment_awaited(runtime, account, incoming.contact_external_id)
    if (
        "reply_to_wamid" not in incoming.meta
        and not message.unreadable
        and not has_media
        and not rating
        and not awaited
    ):
        async with runtime.db.driver_autocommit() as connection:
            received = await intake.receive(connection, account.company_id, channel, incoming, account)
    else:
        async with runtime.db.transaction(account.company_id) as session:
            if "reply_to_wamid" in incoming.meta:
                incoming.meta["reply_to"] = await _quoted(
                    session, account.company_id, str(incoming.meta.pop("reply_to_wamid"))
                )
            commented = None
            if awaited is not None:
                commented = await _take_comment(session, runtime, account, awaited, incoming)
            if commented is not None:  # the survey's comment: joins the conversation as a rating does
                incoming.meta[NOT_FOR_THE_BOT] = {
                    "reason": "a satisfaction survey's comment",
                    "hand_off": False,
                }
                incoming = dataclasses.replace(incoming, reopens_resolved=False)
            received = await intake.receive(
                await session.connection(), account.company_id, channel, incoming, account
            )
            if received.bot_turn and message.unreadable and not received.duplicate:
                # answered here, in the transaction that stores it: the bot turn, which can
                # only run once this commits, finds the message answered and says nothing more
                await _unreadable_note(session, runtime, account, received, message)
            if isinstance(rating, dict) and not received.duplicate:
                await _record_rating(session, runtime, received, rating)
            if commented is not None:
                await _thank_for_comment(session, runtime, received, commented)
            if has_media and not received.duplicate:
                # its file is fetched by a job that can only start once the message is stored
                await media.enqueue(session, runtime.jobs, account.company_id, received.message.id)
    if received.duplicate:
        return False
    if "unsupported" in message.meta:
        log.info(
            "whatsapp.unsupported_message",
            account_id=str(account.id),
            type=str(message.meta["unsupported"].get("type", ""))[:40],
        )
    return True


async def _record_rating(
    session: AsyncSession, runtime: Runtime, received: conversations.Received, rating: dict[str, Any]
) -> None:
    """A survey's button reply: the answer recorded (or changed) and thanked for, in the
    transaction that stores the message. One the survey no longer takes (closed, not this
    conversation's) stays a message for the agents, and nothing else."""
    try:
        async with session.begin_nested():
            survey = await feedback.record_answer(
                session,
                runtime.jobs,
                uuid.UUID(str(rating["survey_id"])),
                score=int(rating["score"]),
                comment=None,
                via=KIND,
                now=runtime.clock(),
                conversation_id=received.conversation_id,
            )
    except AtendeError as exc:
        log.info("whatsapp.rating_refused", reason=exc.message)
        return
    # the first answer asks for an optional comment: the customer's next text that asks
    # nothing, within feedback.COMMENT_WINDOW, is taken as it (_take_comment)
    thanks = "csat:ask_comment" if survey.changed_at is None and survey.comment is None else "csat:thanks"
    conversation = await conversations.get_conversation(session, received.conversation_id)
    await conversations.add_reply(
        session,
        runtime.jobs,
        conversation,
        author="system",
        text=phrase(thanks, survey.language),
        reply_to_id=received.message.id,
        language=survey.language,
    )


async def _comment_awaited(runtime: Runtime, account: Account, wa_id: str) -> uuid.UUID | None:
    """The conversation whose survey may take the customer's text as its comment: their latest,
    still resolved, with a survey they rated by button moments ago (``feedback.awaiting_comment``).
    A first look, without a lock: ``_take_comment`` decides."""
    async with runtime.db.transaction(account.company_id) as session:
        conversation = await conversations.latest_conversation_of(session, KIND, wa_id)
        if conversation is None or conversation.state != "resolved":
            return None
        survey = await feedback.awaiting_comment(session, conversation.id, KIND, runtime.clock())
        return conversation.id if survey is not None else None


async def _take_comment(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    conversation_id: uuid.UUID,
    incoming: InboundMessage,
) -> CsatSurvey | None:
    """The customer's text recorded as the comment of the survey awaiting one, in the
    transaction that then stores it; ``None`` when it is an ordinary message after all. The
    conversation is locked first (as the intake does, before a rating locks its survey), then
    the survey: of two texts at once, the second waits, finds the comment given, and is an
    ordinary message, as is one the survey refuses (closed meanwhile) and a redelivery, and a
    request for a person or a text one of the company's handoff rules matches (an unhappy
    customer's "I want to talk to someone" reaches the team)."""
    if handoff.signal(incoming.text, [], await teams.company_handoff(session, account.company_id)):
        return None
    # intake's lock order (migration 0017): the contact, then the conversation; taken the
    # other way round, a comment and another message of the customer's at once deadlock
    await session.execute(
        select(Contact.id)
        .join(Conversation, Conversation.contact_id == Contact.id)
        .where(Conversation.id == conversation_id)
        .with_for_update(of=Contact, key_share=True)
    )
    conversation = await conversations.get_conversation(session, conversation_id, for_update=True)
    if conversation.state != "resolved":  # reopened meanwhile (a question just before)
        return None
    stored = incoming.channel_message_id is not None and await session.scalar(
        select(Message.id)
        .where(
            Message.company_id == account.company_id,
            Message.channel == KIND,
            Message.channel_message_id == incoming.channel_message_id,
        )
        .limit(1)
    )
    if stored:  # a redelivery: the intake finds it stored
        return None
    now = runtime.clock()
    survey = await feedback.awaiting_comment(session, conversation_id, KIND, now, for_update=True)
    if survey is None:
        return None
    try:
        async with session.begin_nested():
            return await feedback.record_answer(
                session,
                runtime.jobs,
                survey.id,
                score=None,
                comment=incoming.text,
                via=KIND,
                now=now,
                conversation_id=conversation_id,
            )
    except AtendeError as exc:
        log.info("whatsapp.comment_refused", reason=exc.message)
        return None


async def _thank_for_comment(
    session: AsyncSession, runtime: Runtime, received: conversations.Received, survey: CsatSurvey
) -> None:
    conversation = await conversations.get_conversation(session, received.conversation_id)
    await conversations.add_reply(
        session,
        runtime.jobs,
        conversation,
        author="system",
        text=phrase("csat:commented", survey.language),
        reply_to_id=received.message.id,
        language=survey.language,
    )


async def _unreadable_note(
    session: AsyncSession,
    runtime: Runtime,
    account: Account,
    received: conversations.Received,
    message: parse.Incoming,
) -> None:
    conversation = await conversations.get_conversation(session, received.conversation_id)
    company = await tenancy.get_company(session, str(account.company_id))
    language = conversation.language or company.default_language
    await conversations.add_reply(
        session,
        runtime.jobs,
        conversation,
        author="bot",
        text=unreadable_note(message.kind if "unsupported" not in message.meta else "", language),
        reply_to_id=received.message.id,
        language=language,
        meta={"decision": "unreadable", "whatsapp_type": message.kind},
    )


async def _react(runtime: Runtime, account: Account, reaction: parse.Reaction) -> None:
    """Put a customer's reaction on the message it reacts to (``meta.reactions``: emoji by
    the reacting wa_id; an empty emoji takes it back), announced on its conversation."""
    async with runtime.db.transaction(account.company_id) as session:
        reactions = func.coalesce(Message.meta["reactions"], func.jsonb_build_object())
        if reaction.emoji:
            changed = func.jsonb_set(
                Message.meta,
                ["reactions"],
                reactions.op("||")(func.jsonb_build_object(reaction.wa_id, reaction.emoji)),
            )
        else:
            changed = func.jsonb_set(Message.meta, ["reactions"], reactions.op("-")(reaction.wa_id))
        target = await session.execute(
            update(Message)
            .where(
                Message.company_id == account.company_id,
                Message.channel == KIND,
                or_(
                    Message.channel_message_id == reaction.target_wamid,
                    Message.provider_message_id == reaction.target_wamid,
                ),
            )
            .values(meta=changed)
            .returning(Message.id, Message.conversation_id)
        )
        found = target.first()
        if found is None:
            log.info("whatsapp.reaction_unmatched", account_id=str(account.id))
            return
        await publish(
            session,
            str(found.conversation_id),
            "reaction",
            message_id=str(found.id),
            emoji=reaction.emoji,
            by=reaction.wa_id,
        )
