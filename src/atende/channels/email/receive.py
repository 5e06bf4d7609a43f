"""One e-mail taken into atende: the one path every e-mail goes, fetched over IMAP or POP3 or
posted by a provider's webhook (all hand over the raw RFC 822 bytes).

``take(runtime, account, raw)``:

1. **parse** (``parse.parse``); a message over the size the mailbox takes is stored as a
   note of its headers (who, subject, size) for the agents, never answered;
2. **our own mail** (``From`` is the mailbox: a copy of a reply we sent, a loop through a
   forwarding rule) is dropped, logged;
3. **who**: the customer is the ``Reply-To`` address, else ``From`` (a web form sends from
   ``noreply@`` with the customer in ``Reply-To``), lower-cased: the contact's external id;
4. **threading** (``threading.resolve``): the conversation its ``In-Reply-To`` /
   ``References`` name among this customer's e-mails, else the conversation token in the
   reply address or subject, else a new conversation;
5. **files**: attachments and inline images into the media store (``media.service.put``, in
   the transaction that stores the message, so a message fetched twice keeps one copy), up to
   ``FILES_MAX`` files of at most ``ATENDE_MEDIA_MAX_BYTES`` each; the HTML, sanitised, shows
   inline images from those copies and nothing remote;
6. **loop and noise protection** (RFC 3834): an auto-reply, a bounce, a mailing list or
   bulk mail (``ParsedEmail.automatic``), a message with no text, or a contact the bot has
   answered ``bot_replies_per_hour`` times in the last hour is stored with
   ``NOT_FOR_THE_BOT``: the bot turn stays silent (see ``conversations.schemas``);
7. **store** through the common intake (``channels.intake.receive``) with the quote-stripped
   text for the bot and, in ``meta.email``, the subject, the addresses, the ids, the full
   original text and the sanitised HTML for the agents. The intake dedupes by the message's
   ``Message-ID`` (``threading.message_key``): the same message taken twice (a worker killed
   mid-fetch, a provider's retry) is stored and answered once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels import intake
from atende.channels.base import Account, Channel
from atende.channels.email import csat, parse, quotes, threading
from atende.channels.email.config import EmailConfig, normal_address
from atende.conversations.models import Contact, Conversation, Message
from atende.conversations.schemas import NOT_FOR_THE_BOT, InboundMessage
from atende.errors import AtendeError
from atende.feedback import service as feedback
from atende.media import service as media_service
from atende.media.store import MediaStore, MediaTooLarge
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

KIND = threading.KIND
FILES_MAX = 50  # files of one e-mail kept; the others are listed, not stored
TEXT_MAX = 20_000  # characters the bot reads (the API's limit of a customer message)
ORIGINAL_MAX = 200_000  # characters of the full original text and of the HTML kept for agents
NAME_MAX = 200  # characters of a contact's name kept
META = "email"  # a message's meta: the e-mail's headers and bodies (``meta.email``)
ATTACHMENTS_META = "attachments"  # the files it carries: media_id, content_type, filename, size_bytes

Outcome = Literal["stored", "duplicate", "own", "no_sender"]


@dataclass(frozen=True)
class Taken:
    outcome: Outcome
    conversation_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    bot_turn: bool = False
    not_for_the_bot: str | None = None


class _Duplicate(Exception):
    """Another worker stored the same message first: this transaction is rolled back."""


def _bare(address: str) -> str:
    """An address without its ``+tag`` (``support+c-x@shop`` is the mailbox ``support@shop``)."""
    local, _, domain = normal_address(address).rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def _too_large(raw: bytes, error: parse.MessageTooLarge) -> parse.ParsedEmail:
    """What can be said of a message too large to parse: its headers, a note in its place."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    head = raw[: end + 4] if 0 <= end < 1_000_000 else raw[:65_536]
    parsed = parse.parse(head)
    note = f"[{error}. Read it in the mailbox.]"
    return parse.ParsedEmail(
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        subject=parsed.subject,
        date=parsed.date,
        from_=parsed.from_,
        to=parsed.to,
        cc=parsed.cc,
        reply_to=parsed.reply_to,
        return_path=parsed.return_path,
        auto_submitted=parsed.auto_submitted,
        precedence=parsed.precedence,
        list_id=parsed.list_id,
        list_unsubscribe=parsed.list_unsubscribe,
        x_autoreply=parsed.x_autoreply,
        text=note,
        size=len(raw),
        defects=("too_large",),
    )


def bot_text(parsed: parse.ParsedEmail) -> tuple[str, str]:
    """What the bot reads (the customer's words, quotes and signature stripped) and the whole
    text the agents see (``quotes.strip_email``: an HTML-only message is cut at its quote by
    markup first)."""
    stripped = quotes.strip_email(parsed)
    return stripped.text.strip()[:TEXT_MAX], stripped.original[:ORIGINAL_MAX]


async def bot_replies_last_hour(session: AsyncSession, company_id: uuid.UUID, contact: str) -> int:
    """The bot's replies to this e-mail contact in the last hour (its loop cap counts them)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(
            Message.company_id == company_id,
            Conversation.company_id == company_id,
            Contact.company_id == company_id,
            Contact.channel == KIND,
            Contact.external_id == contact,
            Message.author == "bot",
            Message.created_at > func.now() - timedelta(hours=1),
        )
    )
    return int(count or 0)


async def _rating(
    session: AsyncSession, company_id: uuid.UUID, parsed: parse.ParsedEmail, text: str
) -> tuple[uuid.UUID, int] | None:
    """The survey and score of a reply to a survey e-mail that is only a score."""
    score = csat.score_in(text)
    if score is None:
        return None
    survey = await csat.survey_answered(session, company_id, [*parsed.references, *parsed.in_reply_to])
    return (survey, score) if survey is not None else None


async def _record_rating(
    session: AsyncSession, runtime: Runtime, conversation_id: uuid.UUID, survey_id: uuid.UUID, score: int
) -> None:
    """Record it (in a savepoint: a survey that no longer takes answers leaves the message
    stored, for the agents, and nothing else)."""
    try:
        async with session.begin_nested():
            await feedback.record_answer(
                session,
                runtime.jobs,
                survey_id,
                score=score,
                comment=None,
                via=KIND,
                now=runtime.clock(),
                conversation_id=conversation_id,
            )
    except AtendeError as exc:
        log.info("email.rating_refused", reason=exc.message)


async def _already_stored(session: AsyncSession, company_id: uuid.UUID, key: str) -> bool:
    found = await session.scalar(
        select(Message.id)
        .where(Message.company_id == company_id, Message.channel == KIND, Message.channel_message_id == key)
        .limit(1)
    )
    return found is not None


async def _store_files(
    session: AsyncSession, store: MediaStore, parsed: parse.ParsedEmail, max_bytes: int, kept: list[str]
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The message's files in the media store: their ``meta.attachments`` and the URLs its
    HTML shows inline images by (content id -> URL)."""
    files: list[dict[str, Any]] = []
    cid_urls: dict[str, str] = {}
    for index, attachment in enumerate(parsed.attachments):
        described: dict[str, Any] = {
            "content_type": attachment.content_type,
            "filename": attachment.filename,
            "size_bytes": len(attachment.data),
            "inline": attachment.inline,
        }
        if index >= FILES_MAX:
            files.append({**described, "error": "too_many"})
            continue
        try:
            row = await media_service.put(
                session,
                store,
                attachment.data,
                content_type=attachment.content_type,
                filename=attachment.filename,
                max_bytes=max_bytes,
            )
        except MediaTooLarge:
            files.append({**described, "error": "too_large"})
            continue
        kept.append(row.storage_key)
        files.append({**described, "media_id": str(row.id), "content_type": row.content_type})
        if attachment.content_id:
            cid_urls[attachment.content_id.strip("<>")] = f"{parse.STORED_IMAGES}{row.id}"
    return files, cid_urls


def _address_list(addresses: tuple[parse.Address, ...]) -> list[str]:
    return [str(a) for a in addresses]


async def take(
    runtime: Runtime, channel: Channel, account: Account, raw: bytes, *, max_bytes: int = parse.MAX_BYTES
) -> Taken:
    """Store one e-mail that arrived in ``account``'s mailbox (see the module's docstring);
    one over ``max_bytes`` is kept as a note of its headers."""
    config = account.config
    assert isinstance(config, EmailConfig)
    try:
        parsed = parse.parse(raw, max_bytes=max_bytes)
    except parse.MessageTooLarge as exc:
        parsed = _too_large(raw, exc)
    sender = parsed.reply_address or parsed.from_
    if parsed.from_ is not None and _bare(parsed.from_.address) == _bare(config.address):
        log.info("email.own_message_dropped", account_id=str(account.id))
        return Taken("own")
    if sender is None or "@" not in sender.address:
        log.warning("email.no_sender", account_id=str(account.id), subject=parsed.subject[:80])
        return Taken("no_sender")
    contact = normal_address(sender.address)
    if _bare(contact) == _bare(config.address):  # Reply-To: us, From: someone (a forwarding loop)
        contact = normal_address(parsed.from_.address) if parsed.from_ else contact
    key = threading.message_key(parsed, raw)
    text, original = bot_text(parsed)
    company_id = account.company_id
    store = media_service.media_store(runtime)
    kept: list[str] = []
    try:
        async with runtime.db.transaction(company_id) as session:
            if await _already_stored(session, company_id, key):
                return Taken("duplicate")
            thread = await threading.resolve(
                session, threading.token_key(runtime.secret_key), contact, threading.thread_key(parsed)
            )
            files, cid_urls = await _store_files(
                session, store, parsed, runtime.settings.media_max_bytes, kept
            )
            why, hand_off = parsed.automatic(), False
            if "too_large" in parsed.defects:
                why, hand_off = "too large to read", True
            elif why is None and not text:
                text = parsed.subject.strip()[:TEXT_MAX]
                if not text:
                    why, hand_off = "an e-mail with no text", True
            if why is None:
                cap = config.bot_replies_per_hour
                answered = await bot_replies_last_hour(session, company_id, contact) if cap else 0
                if answered >= cap:
                    why, hand_off = (
                        f"the bot answered this contact {answered} times in the last hour "
                        f"(the mailbox's limit is {cap})",
                        True,
                    )
            meta: dict[str, Any] = {
                META: {
                    "subject": parsed.subject,
                    "from": str(parsed.from_) if parsed.from_ else None,
                    "to": _address_list(parsed.to),
                    "cc": _address_list(parsed.cc),
                    "reply_to": _address_list(parsed.reply_to),
                    "date": parsed.date.isoformat() if parsed.date else None,
                    "message_id": parsed.message_id,
                    "in_reply_to": list(parsed.in_reply_to),
                    "references": list(parsed.references),
                    "text": original,
                    "html": parse.safe_html(parsed.html, cid_urls)[:ORIGINAL_MAX] if parsed.html else None,
                    "automatic": parsed.automatic(),
                    "size": parsed.size,
                    "defects": list(parsed.defects[:20]),
                },
            }
            if files:
                meta[ATTACHMENTS_META] = files
            if why is not None:
                meta[NOT_FOR_THE_BOT] = {"reason": why, "hand_off": hand_off}
            rating = await _rating(session, company_id, parsed, text) if why is None else None
            if rating is not None:  # a score in answer to the survey e-mail: no reopening, no bot
                meta[NOT_FOR_THE_BOT] = {"reason": "a satisfaction survey's answer", "hand_off": False}
            inbound = InboundMessage(
                channel=KIND,
                contact_external_id=contact,
                contact_email=contact,
                contact_name=sender.name[:NAME_MAX] or None,
                channel_message_id=key,
                conversation_id=thread.conversation_id,
                thread_refs=thread.thread_refs,
                text=text or parsed.subject or "(no text)",
                meta=meta,
                reopens_resolved=False if rating is not None else None,
            )
            received = await intake.receive(await session.connection(), company_id, channel, inbound, account)
            if received.duplicate:
                raise _Duplicate
            if rating is not None:
                await _record_rating(session, runtime, received.conversation_id, *rating)
    except _Duplicate:
        for storage_key in kept:  # the rows went with the rollback; the bytes go here
            await store.delete(storage_key)
        return Taken("duplicate")
    if why is not None:
        log.info(
            "email.not_for_the_bot",
            account_id=str(account.id),
            conversation_id=str(received.conversation_id),
            reason=why[:200],
        )
    return Taken(
        "stored",
        received.conversation_id,
        received.message.id,
        received.bot_turn,
        why,
    )
