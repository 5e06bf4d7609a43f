"""Which conversation an e-mail belongs to.

Headers first (RFC 5322): a reply names the messages it answers in ``In-Reply-To`` and
``References``. We store each customer e-mail's ``Message-ID`` as its ``channel_message_id``
and the ``Message-ID`` of each e-mail we send as its ``provider_message_id`` (the outbox
records it), so the intake's thread lookup (``Joins.thread``, ``atende_receive_message``)
finds the conversation of the newest message a reply names: of this company, this channel
and this contact only. Another company's ids, another customer's, ids we never sent: nothing,
and the message opens a new conversation.

The fallback is a token we put in the reply address (``support+c-<token>@shop.com``) and in
the subject (``[#<token>]``) of what we send. It is read only when the headers name nothing
we know: the customer's client dropped them, or the sending provider (Microsoft 365, Amazon
SES) rewrote our ``Message-ID`` so the reply names an id we never stored. The token is the
conversation's id with an HMAC over company and conversation (``conversation_token``): a
stranger cannot make one, nor move one to another company, and it only joins a conversation
of the sender.

What never merges threads: a forward (``Fwd:``, ``Enc:``, ``RV:``...) starts a new
conversation whatever it references; the message's own id in its ``References`` (a loop) and
malformed ids are dropped; a new subject with no reply headers is a new conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels.email.parse import ParsedEmail
from atende.conversations.models import Contact, Conversation, Message
from atende.db.scope import company_of

KIND = "email"
REFS_MAX = 20  # the newest references looked up: a reply's parent is the last
ID_MAX = 255
_FORWARD = re.compile(
    r"^\s*(?:(?:re|res|aw|sv|vs|antw|r)\s*:\s*)*(?:fwd?|fw|enc|encaminhad[ao]|rv|reenv|tr|wg|doorst)\s*:",
    re.IGNORECASE,
)
_PLUS_TOKEN = re.compile(r"\+c-([a-z2-7]{42})@", re.IGNORECASE)
_SUBJECT_TOKEN = re.compile(r"\[#([a-z2-7]{42})\]", re.IGNORECASE)
_TOKEN_CONTEXT = b"atende email conversation token v1"
_MAC_BYTES = 10  # 80 bits: unguessable online, and the address stays under 64 characters


@dataclass(frozen=True)
class ThreadKey:
    """What an e-mail says about its thread: ``refs``, the ids it answers (oldest first, for
    ``InboundMessage.thread_refs``); ``token``, the conversation token in its reply address or
    subject; ``forwarded``: a forward, which starts a conversation of its own."""

    refs: tuple[str, ...]
    token: str | None
    forwarded: bool


@dataclass(frozen=True)
class Threading:
    """How to hand the message to the intake: ``conversation_id`` when a token named one of
    the sender's conversations, else ``thread_refs`` (possibly empty: a new conversation)."""

    thread_refs: tuple[str, ...]
    conversation_id: uuid.UUID | None = None


def is_forward(subject: str) -> bool:
    """``Fwd:``, ``Fw:``, ``Enc:`` (pt), ``RV:`` (es), ``WG:`` (de), ``TR:`` (fr)..., also
    behind ``Re:``s."""
    return _FORWARD.match(subject) is not None


def message_key(parsed: ParsedEmail, raw: bytes) -> str:
    """The id a customer's e-mail is stored (and deduplicated) under: its ``Message-ID``, or,
    for a message without one, one made of its bytes (the same message fetched twice is still
    stored once)."""
    if parsed.message_id:
        return parsed.message_id[:ID_MAX]
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@atende.invalid>"


def thread_key(parsed: ParsedEmail) -> ThreadKey:
    """The threading facts of a parsed e-mail (pure)."""
    forwarded = is_forward(parsed.subject)
    own = parsed.message_id
    refs = [r for r in (*parsed.references, *parsed.in_reply_to) if r != own and 0 < len(r) <= ID_MAX]
    refs = list(dict.fromkeys(reversed(refs)))[::-1]  # each once, at its last place
    token = None
    for address in (*parsed.to, *parsed.cc):
        if match := _PLUS_TOKEN.search(address.address):
            token = match.group(1).lower()
            break
    if token is None and (match := _SUBJECT_TOKEN.search(parsed.subject)):
        token = match.group(1).lower()
    return ThreadKey(refs=tuple(refs[-REFS_MAX:]), token=token, forwarded=forwarded)


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _mac(key: bytes, company_id: uuid.UUID, conversation_id: uuid.UUID) -> bytes:
    return hmac.digest(key, _TOKEN_CONTEXT + company_id.bytes + conversation_id.bytes, "sha256")[:_MAC_BYTES]


def token_key(secret_key: str) -> bytes:
    """The key of conversation tokens, derived from the installation's ``secret_key`` (one
    key, one purpose: it signs nothing else)."""
    return hmac.digest(secret_key.encode(), _TOKEN_CONTEXT, "sha256")


def conversation_token(key: bytes, company_id: uuid.UUID, conversation_id: uuid.UUID) -> str:
    """42 lower-case base32 characters: the conversation's id and an HMAC of it (case-proof:
    some mail servers lower-case the local part of an address)."""
    return _b32(conversation_id.bytes) + _b32(_mac(key, company_id, conversation_id))


def read_token(key: bytes, company_id: uuid.UUID, token: str) -> uuid.UUID | None:
    """The conversation a token names, if this company made it; ``None`` for a forged,
    altered or another company's token."""
    token = token.strip().lower()
    if not re.fullmatch(r"[a-z2-7]{42}", token):
        return None
    try:
        conversation_id = uuid.UUID(bytes=base64.b32decode(token[:26].upper() + "======"))
        mac = base64.b32decode(token[26:].upper())
    except (ValueError, TypeError):
        return None
    if not hmac.compare_digest(mac, _mac(key, company_id, conversation_id)):
        return None
    return conversation_id


def reply_address(mailbox: str, token: str) -> str:
    """The mailbox's address with the token as a plus-address (``support+c-<token>@shop.com``)."""
    local, _, domain = mailbox.rpartition("@")
    return f"{local}+c-{token}@{domain}"


def tag_subject(subject: str, token: str) -> str:
    """``subject`` carrying the token (``... [#<token>]``), once."""
    if _SUBJECT_TOKEN.search(subject):
        return subject
    return f"{subject} [#{token}]".strip()


def reply_subject(subject: str) -> str:
    """``Re: <subject>``, without stacking prefixes (``Re: Re: RES: x`` becomes ``Re: x``)."""
    bare = re.sub(r"^\s*(?:(?:re|res|aw|sv|antw)\s*(?:\[\d+\])?\s*:\s*)+", "", subject, flags=re.IGNORECASE)
    return f"Re: {bare}".strip()


def new_message_id(domain: str) -> str:
    """A ``Message-ID`` for an e-mail we send, ``<...@domain>`` like the parsed ones (store
    it as the message's ``provider_message_id`` in this form): 128 random bits, so nobody
    can guess the id of a reply we sent and write into its thread from another address."""
    return f"<{secrets.token_hex(16)}@{domain}>"


def reply_references(parent_references: tuple[str, ...], parent_id: str | None) -> tuple[str, ...]:
    """The ``References`` of a reply: the parent's, then the parent (RFC 5322 3.6.4), the
    newest ``REFS_MAX`` kept."""
    chain = [*parent_references, *([parent_id] if parent_id else [])]
    return tuple(dict.fromkeys(chain))[-REFS_MAX:]


async def resolve(
    session: AsyncSession, key: bytes, contact_external_id: str, thread: ThreadKey
) -> Threading:
    """Where the intake should put the message (in the session's company).

    A forward: a new conversation. References naming a message of this contact: the intake
    joins it (``thread_refs``). Otherwise a valid token naming a conversation of this
    contact on e-mail: that conversation. Otherwise a new conversation."""
    if thread.forwarded:
        return Threading(())
    if thread.refs and await _known(session, contact_external_id, thread.refs):
        return Threading(thread.refs)
    if thread.token is not None:
        conversation_id = await _token_conversation(session, key, contact_external_id, thread.token)
        if conversation_id is not None:
            return Threading((), conversation_id)
    return Threading(thread.refs)


async def _known(session: AsyncSession, contact_external_id: str, refs: tuple[str, ...]) -> bool:
    """Whether one of ``refs`` is an e-mail of this contact's conversations: the same rows the
    intake's lookup would find."""
    company_id = company_of(session)
    found = await session.scalar(
        select(
            exists()
            .where(
                Message.company_id == company_id,
                Message.channel == KIND,
                or_(Message.channel_message_id.in_(refs), Message.provider_message_id.in_(refs)),
                Conversation.company_id == company_id,
                Conversation.id == Message.conversation_id,
                Contact.company_id == company_id,
                Contact.id == Conversation.contact_id,
                Contact.channel == KIND,
                Contact.external_id == contact_external_id,
            )
            .correlate(None)
        )
    )
    return bool(found)


async def _token_conversation(
    session: AsyncSession, key: bytes, contact_external_id: str, token: str
) -> uuid.UUID | None:
    company_id = company_of(session)
    conversation_id = read_token(key, company_id, token)
    if conversation_id is None:
        return None
    found: uuid.UUID | None = await session.scalar(
        select(Conversation.id)
        .join(Contact, Contact.id == Conversation.contact_id)
        .where(
            Conversation.company_id == company_id,
            Conversation.id == conversation_id,
            Contact.company_id == company_id,
            Contact.channel == KIND,
            Contact.external_id == contact_external_id,
        )
    )
    return found
