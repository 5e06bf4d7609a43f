"""The ``mail:send`` job: one e-mail, retried with backoff while the server is unreachable
or answers with a temporary error; a permanent refusal (5xx) is logged and not retried."""

from __future__ import annotations

import asyncio
import smtplib

import procrastinate
import structlog

from atende.mail import sender
from atende.observability.logging import describe
from atende.runtime import Runtime

log = structlog.get_logger(__name__)
RETRY = procrastinate.RetryStrategy(max_attempts=8, exponential_wait=2)


async def send(context: procrastinate.JobContext, message: str) -> str:
    runtime: Runtime = context.additional_context["runtime"]
    mail = sender.unseal(runtime.secret_key, message)
    if not runtime.settings.smtp_host:
        sender.log_instead(mail)
        return "logged"
    try:
        await asyncio.to_thread(sender.send, runtime.settings, mail)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
        code = getattr(exc, "smtp_code", None) or min(
            (c for c, _ in getattr(exc, "recipients", {}).values()), default=0
        )
        if code >= 500:
            log.warning("mail.refused", subject=mail.subject, error=describe(exc))
            return "refused"
        raise
    log.info("mail.sent", subject=mail.subject)
    return "sent"


def blueprint() -> procrastinate.Blueprint:
    """Mail tasks (a new blueprint each call: procrastinate binds one to one app)."""
    bp = procrastinate.Blueprint()
    bp.task(name="send", retry=RETRY, pass_context=True)(send)
    return bp
