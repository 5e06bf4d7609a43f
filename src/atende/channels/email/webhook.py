"""``/webhooks/email/{address}``: where a provider (Mailgun, SendGrid Inbound Parse, Postmark)
posts the mail of a mailbox whose ``inbound`` is ``webhook``.

The address routes the post to its account (enabled, of any company: a platform lookup, as a
webhook names no company until it is trusted); the account's ``provider`` says how the post
is checked (``providers``: Mailgun's signature, timestamp and token replay ledger; SendGrid's
and Postmark's basic auth and/or the secret path segment, ``/webhooks/email/{address}/
{secret}``) and read into the message's RFC 822 bytes, which take the one path every e-mail
takes (``receive.take``). A refused post is answered with its status (401 forged or
replayed, 400/415 not the provider's format, 413 too large, 422 no message) and nothing is
stored; a stored message (or one stored before: the provider retried) is ``200``.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from atende.channels import accounts
from atende.channels.email import receive
from atende.channels.email.config import EmailConfig, normal_address
from atende.channels.email.providers import mailgun, postmark, sendgrid
from atende.channels.email.providers.common import Inbound, Unauthorized, WebhookError
from atende.channels.email.providers.replay import PostgresTokenLedger
from atende.errors import NotFound
from atende.tenancy.deps import RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(tags=["email"])
PREFIX = "/webhooks/email/"
BODY_MAX_BYTES = 50 * 1024 * 1024  # the providers' own caps, base64 included (providers.common.Limits)
RESPONSES: dict[int | str, dict[str, str]] = {
    401: {
        "description": "Wrong or missing signature or credentials, a stale or replayed post: nothing stored"
    },
    404: {"description": "No enabled e-mail account takes webhooks at this address"},
    413: {"description": "Over the size a post may have"},
    422: {"description": "The post carries no message"},
}


async def _take(request: Request, runtime: RuntimeDep, address: str, path_secret: str | None) -> JSONResponse:
    from atende.channels.email.channel import channel

    try:
        async with runtime.db.transaction() as session:
            row = await accounts.route(session, receive.KIND, normal_address(address)[:254])
    except NotFound:
        return JSONResponse({"detail": "no e-mail account takes webhooks at this address"}, status_code=404)
    try:
        account = accounts.open_account(channel, row, runtime.secret_key)
    except ValueError as exc:  # a secret that no longer decrypts, a configuration gone stale
        log.error("email.account_unreadable", account_id=str(row.id), reason=str(exc)[:200])
        return JSONResponse({"detail": "the account cannot be opened"}, status_code=503)
    config = account.config
    assert isinstance(config, EmailConfig)
    if config.inbound != "webhook":
        return JSONResponse({"detail": "no e-mail account takes webhooks at this address"}, status_code=404)
    secrets = account.secrets
    try:
        inbound: Inbound
        if config.provider == "mailgun":
            key = secrets.get("mailgun_signing_key", "")
            if not key:
                raise Unauthorized("this mailbox has no Mailgun signing key set: it takes no post")
            ledger = PostgresTokenLedger(runtime.db, account.company_id, account.id)
            inbound = await mailgun.receive(request, signing_key=key, ledger=ledger)
        else:
            provider = sendgrid if config.provider == "sendgrid" else postmark
            inbound = await provider.receive(
                request,
                path_secret=path_secret,
                username=config.webhook_username,
                password=secrets.get("webhook_password", ""),
                expected_path_secret=secrets.get("webhook_path_secret", ""),
            )
    except WebhookError as exc:
        log.warning(
            "email.webhook_refused",
            account_id=str(account.id),
            provider=config.provider,
            status=exc.status_code,
            reason=exc.detail[:200],
        )
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    taken = await receive.take(runtime, channel, account, inbound.mime)
    return JSONResponse({"outcome": taken.outcome})


@router.post(PREFIX + "{address}", summary="An e-mail provider's inbound webhook", responses=RESPONSES)
async def post_mail(address: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """A message posted by the mailbox's provider (Mailgun signed; SendGrid or Postmark with
    basic auth); `200` with what became of it (`stored`, `duplicate`, `own`)."""
    return await _take(request, runtime, address, None)


@router.post(
    PREFIX + "{address}/{secret}",
    summary="An e-mail provider's inbound webhook, behind a secret path",
    responses=RESPONSES,
)
async def post_mail_secret(address: str, secret: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """As `POST /webhooks/email/{address}`, with the mailbox's `webhook_path_secret` in the
    path (SendGrid, Postmark)."""
    return await _take(request, runtime, address, secret)
