"""What a channel is: the one small protocol every channel implements.

A channel (the web chat, the API, later WhatsApp or e-mail) lives in a folder of its own
under ``atende.channels`` and hands ``atende.channels.registry`` one ``Channel``. The channel
owns its wire format; the domains (``conversations``, ``engine``) never import a channel:

- ``router()``: its routes (webhooks, widget endpoints), mounted by the app;
- ``parse(account, payload)``: its wire format turned into ``InboundMessage``s, which
  ``atende.channels.intake.receive`` stores under the channel's ``conversation_policy``;
- ``prepare(runtime, session, account, outbound)``: what ``send`` needs from the conversation, read in the
  delivery job's transaction (e-mail: the subject and ids of the customer's message a reply
  answers), added to the outbound message before ``send`` runs outside any transaction;
- ``send(account, outbound)``: one outbound message sent, the provider's message id returned
  (called by the outbox's delivery job, ``atende.channels.tasks``, with retries: it raises
  ``DeliveryError`` to say whether trying again may help);
- ``apply_status(runtime, account, update)``: a delivery-status update applied to the message;
- ``check_credentials(account)``: one cheap authenticated call, for ``/health/ready``.

Per-company settings are ``channel_accounts`` (``atende.channels.accounts``): ``config`` is
validated by the channel's ``config_schema``, the ``secret_fields`` are stored encrypted and
reach the channel only here, decrypted, in ``Account.secrets``. See docs/CHANNELS.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp

from atende.conversations import service as conversations
from atende.conversations.schemas import InboundMessage
from atende.observability.credentials import Verdict
from atende.runtime import Runtime


class Joins(StrEnum):
    """Which conversation an inbound message joins (``ConversationPolicy.joins``)."""

    contact = "contact"  # the one the message names, else the contact's latest (API; WhatsApp, SMS)
    named = "named"  # always the one the channel names (web chat: the visitor's token opened it)
    # the one of the message its ``thread_refs`` name (e-mail's In-Reply-To/References: a
    # customer's message by its channel id, a reply we sent by the provider's id); a new
    # thread, or one never seen, opens a new conversation
    thread = "thread"


@dataclass(frozen=True)
class ConversationPolicy:
    """A channel's rule for the conversation an inbound message joins.

    ``reopens_resolved``: a message reopens its resolved conversation to the bot. ``False``
    for a channel whose messages must not (receipts, ratings): stored in the conversation,
    which stays resolved (no bot turn, no state webhook). One message may say otherwise
    (``InboundMessage.reopens_resolved``). What a message does to its conversation's state,
    and whether it gets a bot turn, is ``conversations.states``'."""

    joins: Joins
    reopens_resolved: bool = True


class NoConfig(BaseModel):
    """The configuration of a channel that needs none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Account:
    """One company's account of a channel, as the channel sees it: ``config`` validated by its
    schema, ``secrets`` decrypted (never logged: not in the repr)."""

    id: uuid.UUID
    company_id: uuid.UUID
    kind: str
    external_id: str
    display_name: str
    enabled: bool
    config: BaseModel
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Attachment:
    """A file an outbound message carries (a media of the company, ``atende.media``): what
    the channel needs to send it. ``read`` fetches its bytes from the media store, called by
    ``send`` outside any transaction (a file is read only when it goes out)."""

    media_id: uuid.UUID
    content_type: str
    filename: str | None
    size_bytes: int
    read: Callable[[], Awaitable[bytes]] = field(repr=False, compare=False)


@dataclass(frozen=True)
class Outbound:
    """One message to deliver: a reply of the bot, an agent or the system. ``message_id`` is
    the same on every attempt: a channel whose provider takes an idempotency key passes it, so
    a retry after a send whose answer was lost is not delivered twice."""

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    contact_external_id: str  # where the channel sends it: a phone number, an address, a visitor
    author: str
    text: str
    reply_to_id: uuid.UUID | None = None
    # the stored message's meta: what a channel may need beyond the text (a template's name)
    meta: Mapping[str, Any] = field(default_factory=dict)
    # the files it carries, in order (only on a channel with ``attachment_types``); ``text``
    # may then be empty
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class SentMessage:
    provider_message_id: str


DeliveryStatus = Literal["sent", "delivered", "read", "failed"]


class DeliveryError(Exception):
    """``send`` could not deliver the message. ``retryable``: trying again later may work (a
    network error, a timeout, the provider's 5xx or 429), and the delivery job retries with
    backoff; otherwise (the provider refused the message or the recipient, a revoked token)
    the message is marked ``failed`` with ``reason`` at once. Any other exception ``send``
    raises counts as retryable."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


@dataclass(frozen=True)
class StatusUpdate:
    """What the provider says became of a message it sent (its id is ``SentMessage``'s)."""

    provider_message_id: str
    status: DeliveryStatus
    reason: str | None = None  # why it failed, in the provider's words


class Channel:
    """The protocol. Subclasses set ``kind`` and ``conversation_policy`` and override what
    they support; the defaults are those of a channel with nothing to send and no secrets."""

    kind: ClassVar[str]
    conversation_policy: ClassVar[ConversationPolicy]
    config_schema: ClassVar[type[BaseModel]] = NoConfig
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # "live": the customer reads the live stream (web chat, API ``?wait=``), fed when the message
    # commits: nothing to push, the delivery job marks it sent without calling ``send``.
    # "push": the delivery job calls ``send``.
    delivery: ClassVar[Literal["live", "push"]] = "push"
    # False: the channel routes without accounts (the API channel: by API key)
    has_accounts: ClassVar[bool] = True
    # True: every company has an account of it, created with the company (the web chat's, by
    # a trigger on ``companies``); its last one cannot be deleted, only disabled
    built_in: ClassVar[bool] = False
    # how long after the customer's last message the provider still takes a free-form reply
    # (WhatsApp: 24 hours); an agent's reply after it is refused before it is stored
    reply_window: ClassVar[timedelta | None] = None
    # True: the channel fetches its messages (a mailbox): ``watch`` runs for each enabled
    # account in the worker processes (``channels.watchers``)
    watches: ClassVar[bool] = False
    # path prefixes of its routes whose requests may be larger than ATENDE_MAX_BODY_BYTES (an
    # e-mail provider's webhook posting a message with its files) -> the largest, in bytes
    large_bodies: ClassVar[Mapping[str, int]] = {}
    # the files an agent's reply may carry on it: content type (or "image/*", "*/*") -> the
    # largest in bytes; empty: none (the reply is refused with a 422, the composer offers no
    # file). ``send`` finds them in ``Outbound.attachments``.
    attachment_types: ClassVar[Mapping[str, int]] = {}

    def router(self) -> APIRouter | None:
        return None

    def account_external_id(self, config: BaseModel) -> str | None:
        """The external_id an account with this (validated) configuration must have, when the
        configuration names it (an e-mail account's address); ``None``: any."""
        return None

    def middleware(self) -> Sequence[Callable[[ASGIApp], ASGIApp]]:
        """ASGI middleware its routes need (each wraps the app), added by the app."""
        return ()

    def parse(self, account: Account | None, payload: Any) -> list[InboundMessage]:
        """The inbound messages in one request of the channel's wire format."""
        raise NotImplementedError(f"the {self.kind} channel receives no messages")

    async def prepare(
        self, runtime: Runtime, session: AsyncSession, account: Account, outbound: Outbound
    ) -> Outbound:
        """``outbound`` with what ``send`` needs from the conversation besides the message
        (read in ``session``, the delivery job's company transaction; ``send`` then runs
        outside it). Most channels need nothing more."""
        return outbound

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        """Send one message; the provider's id of it. For a ``live`` channel the live stream
        already delivered it when it committed: its own id."""
        if self.delivery == "live":
            return SentMessage(str(outbound.message_id))
        raise NotImplementedError(f"the {self.kind} channel sends no messages")

    async def apply_status(self, runtime: Runtime, account: Account, update: StatusUpdate) -> bool:
        """Record a delivery status on the message the provider sent; ``False``: no message of
        this company and channel has that provider id yet (its send has not answered): the
        update is kept and applied when the delivery job records the id, or forgotten after
        an hour. A channel overrides it to translate its own statuses."""
        async with runtime.db.transaction(account.company_id) as session:
            found = await conversations.apply_delivery_status(
                session, runtime.jobs, self.kind, update.provider_message_id, update.status, update.reason
            )
        return found is not None

    async def watch(self, runtime: Runtime, account: Account) -> None:
        """Fetch what arrives for ``account`` and hand it to the intake, until cancelled
        (``watches`` channels; ``channels.watchers`` runs it, and starts it again after a
        failure). Several workers run it at once: it must make sure one of them fetches."""
        raise NotImplementedError(f"the {self.kind} channel fetches no messages")

    async def check_credentials(self, account: Account) -> Verdict:
        """One cheap authenticated call with the account's secrets (``secret_fields``)."""
        return Verdict(True, "no credentials to check")

    async def close(self) -> None:
        """Release what the channel holds for the process (pooled connections to its
        provider), when the process stops (``atende.bootstrap.open_runtime``)."""
