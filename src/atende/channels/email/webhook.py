"""``/webhooks/email/{provider}/{account_id}``: where a provider (Mailgun, SendGrid Inbound
Parse, Postmark) posts the mail of a mailbox whose ``inbound`` is ``webhook``.

The path names the account (enabled, of any company: a platform lookup, as a webhook names no
company until it is trusted) and its provider, which must be the account's. The provider's
module checks the post (``providers``: Mailgun's signature, timestamp and token replay ledger;
SendGrid's and Postmark's basic auth and/or the secret path segment, ``…/{account_id}/
{secret}``; Mailgun's ``…/{account_id}/mime`` is the raw-MIME route's URL) and reads it into the
message's RFC 822 bytes, which take the one path every e-mail takes (``receive.take``). A
refused post is answered with its status (401 forged or replayed, 400/415 not the provider's
format, 413 too large, 422 no message) and nothing is stored; a stored message (or one stored
before: the provider retried) is ``200``.
"""

from __future__ import annotations

import uuid
from typing import Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from atende.channels import accounts
from atende.channels.email import receive
from atende.channels.email.config import EmailConfig
from atende.channels.email.providers import mailgun, postmark, sendgrid
from atende.channels.email.providers.common import WEBHOOK_USER, Inbound, Unauthorized, WebhookError
from atende.channels.email.providers.replay import PostgresTokenLedger
from atende.channels.models import ChannelAccount
from atende.errors import HTTP_ERROR_CODES
from atende.observability.logging import describe
from atende.runtime import Runtime
from atende.tenancy.deps import RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(tags=["email"])
PREFIX = "/webhooks/email/"
BODY_MAX_BYTES = 50 * 1024 * 1024  # the providers' own caps, base64 included (providers.common.Limits)
RESPONSES: dict[int | str, dict[str, str]] = {
    401: {
        "description": "Wrong or missing signature or credentials, a stale or replayed post: nothing stored"
    },
    404: {"description": "No enabled e-mail account of this id takes this provider's webhook"},
    413: {"description": "Over the size a post may have"},
    503: {"description": "Checked, but it could not be stored now (the provider retries it)"},
    422: {"description": "The post carries no message"},
}


async def _account(runtime: Runtime, account_id: uuid.UUID) -> ChannelAccount | None:
    async with runtime.db.transaction() as session:
        return await session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.id == account_id, ChannelAccount.kind == receive.KIND, ChannelAccount.enabled
            )
        )


def _refused(status: int, detail: str) -> JSONResponse:
    code = HTTP_ERROR_CODES.get(status, "refused")
    return JSONResponse({"detail": detail, "code": code}, status_code=status)


async def _take(
    request: Request, runtime: Runtime, provider: str, account_id: uuid.UUID, path_secret: str | None
) -> JSONResponse:
    from atende.channels.email.channel import channel

    row = await _account(runtime, account_id)
    if row is None:
        return _refused(404, f"no enabled e-mail account {account_id}")
    try:
        account = accounts.open_account(channel, row, runtime.secret_key)
    except ValueError as exc:  # a secret that no longer decrypts, a configuration gone stale
        log.error("email.account_unreadable", account_id=str(row.id), reason=str(exc)[:200])
        return _refused(503, "the account cannot be opened")
    config = account.config
    assert isinstance(config, EmailConfig)
    if config.inbound != "webhook" or config.provider != provider:
        return _refused(404, f"e-mail account {account_id} takes no {provider} webhook")
    secrets = account.secrets
    try:
        inbound: Inbound
        if provider == "mailgun":
            if path_secret not in (None, "mime"):
                return _refused(404, "not found")
            key = secrets.get("mailgun_signing_key", "")
            if not key:
                raise Unauthorized("this mailbox has no Mailgun signing key set: it takes no post")
            ledger = PostgresTokenLedger(runtime.db, account.company_id, account.id)
            inbound = await mailgun.receive(request, signing_key=key, ledger=ledger)
        else:
            module = sendgrid if provider == "sendgrid" else postmark
            inbound = await module.receive(
                request,
                path_secret=path_secret,
                username=config.webhook_username or WEBHOOK_USER,
                password=secrets.get("webhook_password", ""),
                expected_path_secret=secrets.get("webhook_path_secret", ""),
            )
    except WebhookError as exc:
        log.warning(
            "email.webhook_refused",
            account_id=str(account.id),
            provider=provider,
            status=exc.status_code,
            reason=exc.detail[:200],
        )
        return _refused(exc.status_code, exc.detail)
    try:
        taken = await receive.take(runtime, channel, account, inbound.mime)
    except Exception as exc:  # the database or the media store away: the provider retries
        log.error("email.webhook_store_failed", account_id=str(account.id), reason=describe(exc))
        return _refused(503, "the message could not be stored now; retry later")
    return JSONResponse({"outcome": taken.outcome})


Provider = Literal["mailgun", "sendgrid", "postmark"]


@router.post(
    PREFIX + "{provider}/{account_id}", summary="An e-mail provider's inbound webhook", responses=RESPONSES
)
async def post_mail(
    provider: Provider, account_id: uuid.UUID, request: Request, runtime: RuntimeDep
) -> JSONResponse:
    """A message posted by the mailbox's provider (Mailgun signed; SendGrid or Postmark with
    basic auth); `200` with what became of it (`stored`, `duplicate`, `own`)."""
    return await _take(request, runtime, provider, account_id, None)


@router.post(
    PREFIX + "{provider}/{account_id}/{secret}",
    summary="An e-mail provider's inbound webhook, behind a secret path (Mailgun: /mime)",
    responses=RESPONSES,
)
async def post_mail_secret(
    provider: Provider, account_id: uuid.UUID, secret: str, request: Request, runtime: RuntimeDep
) -> JSONResponse:
    """As `POST /webhooks/email/{provider}/{account_id}`, with the mailbox's
    `webhook_path_secret` in the path (SendGrid, Postmark), or Mailgun's raw-MIME route
    (`/mime`)."""
    return await _take(request, runtime, provider, account_id, secret)
