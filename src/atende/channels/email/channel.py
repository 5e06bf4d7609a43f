"""The e-mail channel: one account per mailbox, mail fetched (IMAP, POP3) or posted by a
provider's webhook, replies sent over SMTP in the customer's thread.

An account's ``external_id`` is the mailbox's address, lower-cased (``EmailConfig.address``
says the same); its secrets are ``config.SECRET_FIELDS``.

- **In**: ``watch`` runs in the workers for each enabled account (``channels.watchers``):
  the IMAP fetcher (``imap.ImapFetcher``: IDLE or polling, each message once across
  restarts and workers) or the POP3 poller, each message handed to ``receive.take``. A
  webhook mailbox has nothing to fetch: its provider posts to ``webhook``'s routes.
- **Which conversation**: the one the message's ``In-Reply-To`` / ``References`` name
  (``Joins.thread``), else its conversation token, else a new one (``threading``).
- **Out**: ``prepare`` reads, in the delivery job's transaction, the customer's e-mail a
  reply answers (the bot's ``reply_to_id``, else the conversation's latest customer e-mail):
  its ``Message-ID``, ``References`` and subject; ``send`` composes the reply
  (``compose.reply``: ``Re:`` subject, ``In-Reply-To``, ``References``, ``Auto-Submitted:
  auto-replied`` on the bot's, plain and HTML parts, citations as footnotes, the signature,
  the agent's files) and sends it over SMTP. Its ``Message-ID`` is made from the message's
  id (a retry after a lost answer sends the same one) and is returned as the provider's id,
  so the customer's answer, naming it, threads back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import structlog
from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels.base import (
    Account,
    Channel,
    ConversationPolicy,
    DeliveryError,
    Joins,
    Outbound,
    SentMessage,
)
from atende.channels.email import compose, imap, pop3, receive, smtp, threading
from atende.channels.email.config import SECRET_FIELDS, EmailConfig, imap_server, pop3_server, smtp_server
from atende.channels.email.imap import Fetched, ImapFetcher, ImapMailbox
from atende.channels.email.pop3 import Pop3Fetched, Pop3Fetcher
from atende.conversations.models import Message
from atende.feedback.service import META as CSAT_META
from atende.observability.credentials import Verdict
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

KIND = receive.KIND
REPLY_META = "email_reply"  # an outbound's meta, added by ``prepare``: what its e-mail answers
FILE_MAX_BYTES = 25 * 1024 * 1024  # what Gmail and Microsoft 365 take in one message
SOURCES = {"pt": "Fontes", "en": "Sources", "es": "Fuentes"}
_NO_ID = "@atende.invalid>"  # the key of a customer's e-mail that had no Message-ID


def _config(account: Account) -> EmailConfig:
    config = account.config
    assert isinstance(config, EmailConfig)
    return config


def _sources(citations: Any, language: str) -> list[str]:
    """The answer's sources, one line each (``Title › Section``), for its footnotes."""
    lines: list[str] = []
    for citation in citations if isinstance(citations, list) else []:
        if not isinstance(citation, Mapping) or not citation.get("title"):
            continue
        line = str(citation["title"])
        if citation.get("section"):
            line += f" › {citation['section']}"
        if line not in lines:
            lines.append(line)
    return lines


def body_of(outbound: Outbound, config: EmailConfig, language: str) -> tuple[str, str]:
    """The reply's plain text and HTML: the message, its sources as numbered footnotes, the
    company's signature under ``-- `` (the separator mail clients fold away)."""
    text = outbound.text.strip()
    sources = _sources(outbound.meta.get("citations"), language)
    label = SOURCES.get(language[:2], SOURCES["en"])
    plain = text
    rich = compose.text_to_html(text).split("<body>\n", 1)[1].rsplit("\n</body>", 1)[0]
    if sources:
        plain += f"\n\n{label}:\n" + "\n".join(f"[{n}] {line}" for n, line in enumerate(sources, 1))
        items = "".join(f"<li>{html.escape(line)}</li>" for line in sources)
        rich += f'\n<p style="font-size:smaller">{html.escape(label)}:</p>\n'
        rich += f'<ol style="font-size:smaller">{items}</ol>'
    signature = config.signature.strip()
    if signature:
        plain += f"\n\n-- \n{signature}"
        lines = "<br>\n".join(html.escape(line) for line in signature.splitlines())
        rich += f'\n<div class="signature">-- <br>\n{lines}</div>'
    return plain + "\n", f"<!DOCTYPE html>\n<html><body>\n{rich}\n</body></html>\n"


async def _files(outbound: Outbound) -> list[compose.Attachment]:
    """The files an agent's reply carries, read from the media store now (a missing one is a
    permanent ``DeliveryError``, a store that cannot answer a retryable one)."""
    return [
        compose.Attachment(file.filename or "file", file.content_type, await file.read())
        for file in outbound.attachments
    ]


class EmailChannel(Channel):
    kind = KIND
    conversation_policy = ConversationPolicy(Joins.thread)
    config_schema = EmailConfig
    secret_fields = SECRET_FIELDS
    watches = True
    # an agent's reply may carry any file, up to what mail providers take in one message
    attachment_types: ClassVar[Mapping[str, int]] = {"*/*": FILE_MAX_BYTES}
    large_bodies: ClassVar[Mapping[str, int]] = {
        "/webhooks/email/": 50 * 1024 * 1024
    }  # a provider posting a message with its files

    def account_external_id(self, config: BaseModel) -> str | None:
        """The mailbox's address, lower-cased: what the webhooks route by."""
        return config.address if isinstance(config, EmailConfig) else None

    def router(self) -> APIRouter:
        from atende.channels.email import csat, webhook

        router = APIRouter()
        router.include_router(webhook.router)
        router.include_router(csat.router)
        return router

    async def watch(self, runtime: Runtime, account: Account) -> None:
        """Fetch the mailbox until cancelled: IMAP (IDLE or polling) or POP3 (polling). A
        webhook mailbox waits: its provider posts its mail."""
        config = _config(account)
        if config.inbound == "webhook":
            await asyncio.Event().wait()
            return

        async def taken(raw: bytes) -> None:
            await receive.take(runtime, self, account, raw)

        fetcher: ImapFetcher | Pop3Fetcher
        if config.inbound == "imap":

            async def on_imap(fetched: Fetched) -> None:
                await taken(fetched.raw)

            fetcher = ImapFetcher(
                ImapMailbox(imap_server(config, account.secrets), config.imap_folder),
                on_imap,
                db_url=runtime.db.url,
                company_id=account.company_id,
                account_id=account.id,
                poll_seconds=config.poll_seconds,
            )
        else:

            async def on_pop3(fetched: Pop3Fetched) -> None:
                await taken(fetched.raw)

            fetcher = Pop3Fetcher(
                pop3_server(config, account.secrets),
                on_pop3,
                db_url=runtime.db.url,
                company_id=account.company_id,
                account_id=account.id,
                poll_seconds=config.poll_seconds,
            )
        try:
            await fetcher.run()
        finally:
            fetcher.stop()
            await fetcher.close()

    async def prepare(
        self, runtime: Runtime, session: AsyncSession, account: Account, outbound: Outbound
    ) -> Outbound:
        """Add what the reply answers: the customer's e-mail it replies to (the bot's
        ``reply_to_id``), else the conversation's latest customer e-mail; and the
        conversation's token when the mailbox marks replies with it (``thread_marker``)."""
        parent = None
        if outbound.reply_to_id is not None:
            parent = await session.scalar(
                select(Message).where(
                    Message.company_id == account.company_id,
                    Message.id == outbound.reply_to_id,
                    Message.author == "customer",
                    Message.channel == KIND,
                )
            )
        if parent is None:
            parent = await session.scalar(
                select(Message)
                .where(
                    Message.company_id == account.company_id,
                    Message.conversation_id == outbound.conversation_id,
                    Message.author == "customer",
                    Message.channel == KIND,
                )
                .order_by(Message.seq.desc())
                .limit(1)
            )
        language = await session.scalar(
            select(Message.language).where(
                Message.company_id == account.company_id, Message.id == outbound.message_id
            )
        )
        reply: dict[str, Any] = {"language": language or ""}
        if _config(account).thread_marker != "off":
            key = threading.token_key(runtime.secret_key)
            reply["token"] = threading.conversation_token(key, account.company_id, outbound.conversation_id)
        if parent is not None:
            email = (parent.meta or {}).get(receive.META) or {}
            message_id = parent.channel_message_id or ""
            reply.update(
                message_id=None if message_id.endswith(_NO_ID) else message_id,
                subject=str(email.get("subject") or ""),
                references=[str(r) for r in email.get("references") or []],
                in_reply_to=[str(r) for r in email.get("in_reply_to") or []],
            )
        text = outbound.text
        survey = outbound.meta.get(CSAT_META)
        if isinstance(survey, Mapping) and survey.get("survey_id"):  # its one-click rating links
            from atende.channels.email import csat

            text = csat.survey_text(runtime, account.company_id, text, survey)
        return dataclasses.replace(outbound, text=text, meta={**outbound.meta, REPLY_META: reply})

    async def send(self, account: Account, outbound: Outbound) -> SentMessage:
        """One reply, over the mailbox's SMTP server; its ``Message-ID``. A 4xx or a lost
        connection is retried; a 5xx fails the message with the server's words."""
        config = _config(account)
        reply = outbound.meta.get(REPLY_META)
        reply = reply if isinstance(reply, Mapping) else {}
        original = None
        if reply.get("message_id") or reply.get("subject"):
            original = compose.Original(
                message_id=reply.get("message_id"),
                subject=reply.get("subject"),
                references=" ".join(_strings(reply.get("references"))) or None,
                in_reply_to=" ".join(_strings(reply.get("in_reply_to"))) or None,
            )
        plain, rich = body_of(outbound, config, str(reply.get("language") or ""))
        try:
            server = smtp_server(config, account.secrets)
        except ValueError as exc:
            raise DeliveryError(f"the mailbox's SMTP settings: {exc}", retryable=False) from exc
        message = compose.reply(
            sender=config.address,
            sender_name=config.from_name or None,
            to=outbound.contact_external_id,
            text=plain,
            html_body=rich,
            original=original,
            by_bot=outbound.author == "bot",
            attachments=await _files(outbound),
            message_id=f"<{outbound.message_id.hex}@{config.domain}>",
        )
        token = reply.get("token")
        if isinstance(token, str) and token and config.thread_marker == "address":
            message["Reply-To"] = threading.reply_address(config.address, token)
        elif isinstance(token, str) and token and config.thread_marker == "subject":
            message.replace_header("Subject", threading.tag_subject(str(message["Subject"]), token))
        sent = await smtp.send(server, message)
        return SentMessage(sent)

    async def check_credentials(self, account: Account) -> Verdict:
        """Log in where the mailbox's mail comes from (IMAP or POP3) and where its replies
        go (SMTP); the first refusal, naming the mailbox."""
        config = _config(account)
        checks: list[tuple[str, Any]] = []
        try:
            if config.inbound == "imap":
                mailbox = ImapMailbox(imap_server(config, account.secrets), config.imap_folder)
                checks.append(("IMAP", imap.check_login(mailbox)))
            elif config.inbound == "pop3":
                checks.append(("POP3", pop3.check_login(pop3_server(config, account.secrets))))
            checks.append(("SMTP", smtp.check_login(smtp_server(config, account.secrets))))
        except ValueError as exc:
            for _name, pending in checks:
                pending.close()
            return Verdict(False, f"{config.address}: {exc}")
        verdicts: Sequence[Verdict] = await asyncio.gather(*(pending for _name, pending in checks))
        for (name, _pending), verdict in zip(checks, verdicts, strict=True):
            if not verdict.ok:
                return Verdict(False, f"{config.address}: {name} login failed: {verdict.reason}")
        return Verdict(True, f"{config.address}: " + ", ".join(name for name, _ in checks) + " logged in")


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


channel = EmailChannel()
