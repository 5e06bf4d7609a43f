"""Composing and sending one e-mail over SMTP (``ATENDE_SMTP_*``), with a timeout on every
step, or writing it to the log when no SMTP server is configured."""

from __future__ import annotations

import json
import smtplib
import ssl
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atende.config import Settings
from atende.runtime import Runtime
from atende.tenancy.crypto import decrypt_secret, encrypt_secret

log = structlog.get_logger(__name__)
TASK = "mail:send"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


def seal(secret_key: str, mail: Mail) -> str:
    """The message as a job argument: encrypted, since its link signs its holder in."""
    return encrypt_secret(secret_key, json.dumps(asdict(mail)))


def unseal(secret_key: str, sealed: str) -> Mail:
    return Mail(**json.loads(decrypt_secret(secret_key, sealed)))


async def enqueue(session: AsyncSession, runtime: Runtime, mail: Mail) -> None:
    """Send ``mail`` once ``session``'s transaction commits (a job; never if it rolls back)."""
    await runtime.jobs.enqueue(session, TASK, message=seal(runtime.secret_key, mail))


def message(settings: Settings, mail: Mail) -> EmailMessage:
    composed = EmailMessage()
    composed["From"] = settings.smtp_from
    composed["To"] = mail.to
    composed["Subject"] = mail.subject
    composed["Date"] = formatdate(localtime=False)
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "localhost"
    composed["Message-ID"] = make_msgid(domain=domain)
    composed.set_content(mail.text)
    return composed


def send(settings: Settings, mail: Mail) -> None:
    """Deliver ``mail`` to the configured SMTP server (blocking: run it in a thread). Each
    network step waits at most ``ATENDE_SMTP_TIMEOUT_SECONDS``."""
    host, port, timeout = settings.smtp_host or "", settings.smtp_port, settings.smtp_timeout_seconds
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if settings.smtp_tls == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        if settings.smtp_tls == "starttls":
            client.starttls(context=context)
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            client.login(settings.smtp_user, password)
        client.send_message(message(settings, mail))


def log_instead(mail: Mail) -> None:
    """No SMTP server: the message goes to the log, where a developer finds its link."""
    log.warning(
        "mail.not_sent",
        reason="ATENDE_SMTP_HOST is not set; the message follows",
        subject=mail.subject,
        text=mail.text,
    )
