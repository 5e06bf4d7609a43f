"""The WhatsApp channel (Cloud API): an account per business number, replies sent through
the Graph API, statuses applied through the outbox's status path.

An account's ``external_id`` is the number's ``phone_number_id`` (what Meta's webhooks name
it by); its secrets the ``access_token`` (a system user's token), the Meta app's
``app_secret`` (signs every webhook) and the ``verify_token`` (answers the subscription
handshake). Its config: the WABA id and where the Graph API is (tests point it at a fake).

Which conversation a message joins: the contact's latest on the channel (``Joins.contact``):
WhatsApp gives each customer one ongoing chat with the number.
"""

from __future__ import annotations

import dataclasses
import functools
import mimetypes
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from ipaddress import ip_address
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from atende.channels.base import (
    Account,
    Attachment,
    Channel,
    ConversationPolicy,
    DeliveryError,
    Joins,
    Outbound,
    SentMessage,
)
from atende.channels.delivery import Failed
from atende.channels.whatsapp import csat, graph, parse
from atende.channels.whatsapp.split import split_text
from atende.conversations import service as conversations
from atende.conversations.schemas import NOT_FOR_THE_BOT, InboundMessage
from atende.feedback import service as csat_service
from atende.feedback.service import META as CSAT_META
from atende.observability.credentials import Verdict

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from atende.runtime import Runtime

log = structlog.get_logger(__name__)

KIND = parse.KIND
_LOOPBACK_NAMES = frozenset({"localhost"})
TEMPLATE_META = "whatsapp_template"  # a stored message's meta: the template it goes out as
REPLY_WINDOW = timedelta(hours=24)  # Meta's customer-service window
PARTIAL_KEPT = 1000  # long answers whose first parts went out and whose rest is being retried
_MB = 1024 * 1024
_DOCUMENT_MAX = 100 * _MB
# the files an agent can send, and Meta's largest of each (Cloud API, "Supported media types")
SENDS: Mapping[str, int] = MappingProxyType(
    {
        "image/jpeg": 5 * _MB,
        "image/png": 5 * _MB,
        "audio/aac": 16 * _MB,
        "audio/amr": 16 * _MB,
        "audio/mpeg": 16 * _MB,
        "audio/mp4": 16 * _MB,
        "audio/ogg": 16 * _MB,
        "video/mp4": 16 * _MB,
        "video/3gpp": 16 * _MB,
        "application/pdf": _DOCUMENT_MAX,
        "text/plain": _DOCUMENT_MAX,
        "application/msword": _DOCUMENT_MAX,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": _DOCUMENT_MAX,
        "application/vnd.ms-excel": _DOCUMENT_MAX,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": _DOCUMENT_MAX,
        "application/vnd.ms-powerpoint": _DOCUMENT_MAX,
        "application/vnd.openxmlformats-officedocument.presentationml.presentation": _DOCUMENT_MAX,
    }
)


def _loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class WhatsAppConfig(BaseModel):
    """A WhatsApp account's settings (its secrets are ``WhatsAppChannel.secret_fields``)."""

    model_config = ConfigDict(extra="forbid")

    waba_id: str = Field(
        default="",
        max_length=40,
        pattern=r"^[0-9]*$",
        description="The WhatsApp Business Account id (Meta's Business Manager): the templates live there.",
    )
    graph_api_url: str = Field(
        default=graph.DEFAULT_GRAPH_URL,
        max_length=200,
        description="Where the Graph API is: Meta's, unless a test or an egress proxy on this host.",
    )
    graph_api_version: str = Field(
        default=graph.GRAPH_VERSION,
        pattern=r"^v[0-9]{1,3}\.[0-9]$",
        description="The Graph API version called (pinned; change it after checking Meta's changelog).",
    )

    @field_validator("graph_api_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        """HTTPS, or plain HTTP to this host only (a test's fake, a local proxy): the access
        token goes with every call, and must not cross a network in clear."""
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://graph.facebook.com")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise ValueError("must be https (plain http only to this host: 127.0.0.1, localhost)")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be a plain base URL: no query, fragment or credentials")
        return value.rstrip("/")


def graph_of(account: Account) -> graph.Graph:
    config = account.config
    assert isinstance(config, WhatsAppConfig)
    return graph.Graph(
        config.graph_api_url, config.graph_api_version, account.secrets.get("access_token", "")
    )


class WhatsAppChannel(Channel):
    kind = KIND
    conversation_policy = ConversationPolicy(Joins.contact)
    config_schema = WhatsAppConfig
    secret_fields = ("access_token", "app_secret", "verify_token")
    reply_window = REPLY_WINDOW
    attachment_types = SENDS

    def __init__(self) -> None:
        # message id -> wamids of the parts of a long answer already sent: a retry after a
        # later part hit a rate limit sends only the rest (in this process; see send)
        self._partial: OrderedDict[uuid.UUID, list[str]] = OrderedDict()

    def router(self) -> APIRouter:
        from atende.channels.whatsapp import api, webhook

        router = APIRouter()
        router.include_router(webhook.router)
        router.include_router(api.router)
        return router

    def parse(self, account: Account | None, payload: Any) -> list[InboundMessage]:
        """The customer messages of a webhook body (routing, reactions and statuses are the
        webhook's: ``atende.channels.whatsapp.webhook``)."""
        found: list[InboundMessage] = []
        for change in parse.changes(payload):
            if account is not None and change.phone_number_id != account.external_id:
                continue
            found.extend(inbound(change, message) for message in change.messages)
        return found

    async def prepare(
        self, runtime: Runtime, session: AsyncSession, account: Account, outbound: Outbound
    ) -> Outbound:
        """A satisfaction survey queued while the customer's 24-hour window was open that goes
        out after it closed: Meta would refuse its reply buttons, so the company's approved
        template goes instead; with none, the survey is skipped (marked so, with the reason)
        and the message is not sent (``Failed``: nothing a retry would change)."""
        survey = outbound.meta.get(CSAT_META)
        if not isinstance(survey, Mapping) or not survey.get("survey_id") or survey.get("template"):
            return outbound
        conversation = await conversations.get_conversation(session, outbound.conversation_id)
        if (await conversations.reply_window(session, conversation)).open:
            return outbound
        survey_id = uuid.UUID(str(survey["survey_id"]))
        template = await csat_service.template_at_delivery(session, survey_id, runtime.clock())
        if template is None:
            raise Failed(f"survey skipped: {csat_service.NO_TEMPLATE_AT_DELIVERY}")
        meta = {**outbound.meta, CSAT_META: {**survey, "template": template}}
        return dataclasses.replace(outbound, meta=meta)

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        """One reply, in as many WhatsApp messages as it needs: its text in texts of at most
        4,096 characters, each attached file uploaded and sent as an image, audio, video or
        document (the text as the first file's caption when it fits one); the last one's
        wamid, under which the message's statuses apply.

        The Graph API takes no idempotency key: a retry after a lost answer may send a part
        twice (docs/CHANNELS.md, "Exactly once"). Parts that went out before a later one
        failed are remembered by this process, so its retry sends only the rest."""
        if not account.secrets.get("access_token"):
            raise DeliveryError("the WhatsApp account has no access token", retryable=False)
        api = graph_of(account)
        survey = outbound.meta.get(CSAT_META)
        if isinstance(survey, Mapping) and survey.get("survey_id"):
            try:
                wamid = await graph.send_message(
                    api,
                    account.external_id,
                    csat.survey_body(outbound.contact_external_id, outbound.text, survey),
                )
            except graph.GraphError as exc:
                raise DeliveryError(_reason(exc), retryable=exc.retryable) from exc
            return SentMessage(wamid)
        template = outbound.meta.get(TEMPLATE_META)
        if isinstance(template, Mapping):
            try:
                wamid = await graph.send_message(
                    api,
                    account.external_id,
                    graph.template_body(outbound.contact_external_id, dict(template)),
                )
            except graph.GraphError as exc:
                raise DeliveryError(_reason(exc), retryable=exc.retryable) from exc
            return SentMessage(wamid)
        parts = _parts(api, account.external_id, outbound)
        done = self._partial.pop(outbound.message_id, [])
        try:
            for part in parts[len(done) :]:
                done.append(await part())
        except graph.GraphError as exc:
            if done:
                self._partial[outbound.message_id] = done
                while len(self._partial) > PARTIAL_KEPT:
                    self._partial.popitem(last=False)
            raise DeliveryError(_reason(exc), retryable=exc.retryable) from exc
        return SentMessage(done[-1])

    async def check_credentials(self, account: Account) -> Verdict:
        try:
            await graph.phone_number(graph_of(account), account.external_id)
        except graph.GraphError as exc:
            if exc.code == graph.TOKEN_REJECTED:
                return Verdict(False, f"access token rejected (error 190): {exc.message}")
            return Verdict(False, exc.reason)
        return Verdict(True, "ok")

    async def close(self) -> None:
        """Close the process's pooled Graph API client (``graph.client``)."""
        await graph.close_client()


def _parts(api: graph.Graph, phone_number_id: str, outbound: Outbound) -> list[Callable[[], Awaitable[str]]]:
    """The messages one reply goes out as, in order, each a call answering its wamid (the
    same list on every attempt: a retry skips the ones already sent)."""
    to = outbound.contact_external_id
    files = outbound.attachments
    text = outbound.text
    caption = ""
    captioned = bool(files) and graph.media_kind(files[0].content_type) != "audio"
    if captioned and text and len(text) <= graph.CAPTION_MAX:
        caption, text = text, ""
    texts = split_text(text) or ([text] if text or not files else [])
    parts: list[Callable[[], Awaitable[str]]] = [
        functools.partial(graph.send_message, api, phone_number_id, graph.text_body(to, part))
        for part in texts
    ]
    for index, file in enumerate(files):
        parts.append(
            functools.partial(_send_file, api, phone_number_id, to, file, caption if index == 0 else "")
        )
    return parts


async def _send_file(api: graph.Graph, phone_number_id: str, to: str, file: Attachment, caption: str) -> str:
    """Upload one file to the number's media and send it; its wamid."""
    content = await file.read()
    filename = file.filename or f"{file.media_id}{mimetypes.guess_extension(file.content_type) or ''}"
    media_id = await graph.upload_media(
        api, phone_number_id, content, mime_type=file.content_type, filename=filename
    )
    body = graph.media_body(to, media_id, file.content_type, caption=caption, filename=filename)
    return await graph.send_message(api, phone_number_id, body)


def _reason(exc: graph.GraphError) -> str:
    """Why a send failed, for the agent reading it on the message."""
    if exc.code == graph.TOKEN_REJECTED:
        return f"{exc.reason} (the account's access token was rejected: renew it)"
    if exc.code == graph.OUTSIDE_WINDOW:
        return f"{exc.reason} (the customer's last message is over 24 hours old: send an approved template)"
    return exc.reason


def inbound(change: parse.Change, message: parse.Incoming) -> InboundMessage:
    """The intake's message; a survey's button reply is handed in as its answer: stored in the
    conversation without reopening it, and not for the bot (``channels.whatsapp.csat``)."""
    meta = dict(message.meta)
    reopens: bool | None = None
    answer = csat.answer_of(meta)
    if answer is not None:
        meta[csat.ANSWER_META] = {"survey_id": str(answer[0]), "score": answer[1]}
        meta[NOT_FOR_THE_BOT] = {"reason": "a satisfaction survey's answer", "hand_off": False}
        reopens = False
    return InboundMessage(
        channel=KIND,
        contact_external_id=message.wa_id,
        text=message.text,
        channel_message_id=message.wamid,
        contact_name=change.names.get(message.wa_id),
        contact_phone=f"+{message.wa_id}" if message.wa_id.isdigit() else None,
        meta=meta,
        reopens_resolved=reopens,
    )


channel = WhatsAppChannel()
