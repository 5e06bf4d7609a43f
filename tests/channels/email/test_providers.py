"""The e-mail providers' inbound webhooks (``channels.email.providers``), each post built as
the provider sends it (httpx's own multipart and JSON encoders; payload fields as Mailgun's,
SendGrid's and Postmark's documentation describe them), through a small FastAPI app of the
routes the channel will mount, so the real form parsing runs: a good post gives the message
as MIME that Python's e-mail parser reads back with the same headers, bodies and attachment
bytes; a forged, stale, replayed or unauthenticated one is refused with 401 and stores
nothing; garbage gets a 4xx with a message, never a 500. Mailgun's tokens are recorded in
the session's real PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from atende.channels.email.providers import mailgun, postmark, sendgrid
from atende.channels.email.providers.common import (
    Attachment,
    Limits,
    WebhookError,
    build_mime,
    clean_headers,
    parse_form,
)
from atende.channels.email.providers.models import WebhookToken
from atende.channels.email.providers.replay import PostgresTokenLedger
from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from atende.tenancy import service as tenancy

SIGNING_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
SMALL = Limits(max_body_bytes=64 * 1024, max_attachments=3)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 8 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(255, -1, -1)) * 2

SUBJECT = "Re: Pedido nº 4521 — não chegou (¿dónde está?)"
TEXT = "Olá, equipe!\n\nMeu pedido ainda não chegou. Vocês podem verificar?\n\nObrigada,\nJoão\n"
HTML = '<p>Olá, equipe!</p><p>Meu pedido <b>ainda não chegou</b>.</p><img src="cid:ii_logo01">'
MESSAGE_ID = "<CAF=8z+Q1nA7@mail.gmail.com>"
IN_REPLY_TO = "<atende.7f3c@suporte.loja.com.br>"
REFERENCES = "<atende.1a2b@suporte.loja.com.br> <atende.7f3c@suporte.loja.com.br>"
FROM = "João Conceição <joao.conceicao@example.com.br>"
TO = "Atendimento Loja <suporte@loja.com.br>"
CC = "María Peña <maria@example.es>"
DATE = "Mon, 07 Dec 2026 09:15:02 -0300"


# -- the routes the channel will mount, as a test app -------------------------------------


@dataclass
class Mailbox:
    company_id: uuid.UUID
    account_id: uuid.UUID


@dataclass
class Hooks:
    client: httpx.AsyncClient
    mailbox: Mailbox
    clock: list[datetime]  # the app's "now"; empty: the real one
    runtime: Runtime

    async def tokens(self) -> int:
        async with self.runtime.db.transaction(self.mailbox.company_id) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(WebhookToken)
                .where(WebhookToken.account_id == self.mailbox.account_id)
            )
        return int(count or 0)


SENDGRID_USER, SENDGRID_PASSWORD = "sendgrid", "s3nd-grid-pa55"
POSTMARK_USER, POSTMARK_PASSWORD = "atende", "p0stm4rk-pa55"  # the user name a URL gets by default
PATH_SECRET = secrets.token_urlsafe(32)


def hooks_app(mailbox: Mailbox, runtime: Runtime, clock: list[datetime]) -> FastAPI:
    app = FastAPI()

    def answer(inbound: Any) -> Response:
        return Response(
            inbound.mime,
            media_type="message/rfc822",
            headers={
                "x-rebuilt": str(inbound.rebuilt).lower(),
                "x-envelope-to": ",".join(inbound.envelope_to),
                "x-envelope-from": inbound.envelope_from,
            },
        )

    def refused(exc: WebhookError) -> Response:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.post("/webhooks/email/mailgun/{account_id}")
    async def mailgun_hook(account_id: uuid.UUID, request: Request) -> Response:
        ledger = PostgresTokenLedger(runtime.db, mailbox.company_id, account_id)
        try:
            inbound = await mailgun.receive(
                request, signing_key=SIGNING_KEY, ledger=ledger, now=clock[0] if clock else None, limits=SMALL
            )
        except WebhookError as exc:
            return refused(exc)
        return answer(inbound)

    @app.post("/webhooks/email/sendgrid/{account_id}/{path_secret}")
    async def sendgrid_hook(account_id: uuid.UUID, path_secret: str, request: Request) -> Response:
        try:
            inbound = await sendgrid.receive(
                request,
                path_secret=path_secret,
                username=SENDGRID_USER,
                password=SENDGRID_PASSWORD,
                expected_path_secret=PATH_SECRET,
                limits=SMALL,
            )
        except WebhookError as exc:
            return refused(exc)
        return answer(inbound)

    @app.post("/webhooks/email/sendgrid-open/{account_id}/{path_secret}")
    async def unprotected_hook(account_id: uuid.UUID, path_secret: str, request: Request) -> Response:
        try:  # an account with no credentials set
            inbound = await sendgrid.receive(request, path_secret=path_secret, limits=SMALL)
        except WebhookError as exc:
            return refused(exc)
        return answer(inbound)

    @app.post("/webhooks/email/postmark/{account_id}")
    async def postmark_hook(account_id: uuid.UUID, request: Request) -> Response:
        try:
            inbound = await postmark.receive(request, password=POSTMARK_PASSWORD, limits=SMALL)
        except WebhookError as exc:
            return refused(exc)
        return answer(inbound)

    return app


@pytest.fixture
async def hooks(runtime: Runtime) -> AsyncIterator[Hooks]:
    slug = f"co-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug, default_language="pt")
    account_id = uuid.uuid4()
    async with runtime.db.transaction(company.id) as session:
        session.add(
            ChannelAccount(
                id=account_id, kind="email", external_id=f"{slug}@loja.com.br", config={}, secrets={}
            )
        )
    mailbox = Mailbox(company.id, account_id)
    clock: list[datetime] = []
    transport = httpx.ASGITransport(app=hooks_app(mailbox, runtime, clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://atende.test", timeout=15) as client:
        yield Hooks(client, mailbox, clock, runtime)


def parsed(response: httpx.Response) -> EmailMessage:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "message/rfc822"
    message = BytesParser(policy=policy.default).parsebytes(response.content)
    assert isinstance(message, EmailMessage)
    return message


def body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    assert part is not None, f"no text/{kind} part"
    return str(part.get_content()).replace("\r\n", "\n")


def files(message: EmailMessage) -> dict[str, tuple[str, bytes, str | None]]:
    """Every non-body part by filename: (type, bytes, Content-ID)."""
    found = {}
    for part in message.walk():
        if part.get_content_maintype() in ("multipart", "text"):
            continue
        found[part.get_filename() or ""] = (
            part.get_content_type(),
            part.get_payload(decode=True),
            part["content-id"],
        )
    return found


def assert_threading_headers(message: EmailMessage) -> None:
    assert message["subject"] == SUBJECT
    assert message["from"].addresses[0].display_name == "João Conceição"
    assert message["from"].addresses[0].addr_spec == "joao.conceicao@example.com.br"
    assert message["to"].addresses[0].addr_spec == "suporte@loja.com.br"
    assert message["message-id"] == MESSAGE_ID
    assert message["in-reply-to"] == IN_REPLY_TO
    assert message["references"] == REFERENCES
    assert message["date"].datetime == datetime(2026, 12, 7, 9, 15, 2, tzinfo=UTC) + timedelta(hours=3)


# -- Mailgun --------------------------------------------------------------------------------


def signed(fields: dict[str, Any], *, key: str = SIGNING_KEY, at: float | None = None) -> dict[str, Any]:
    timestamp = str(int(at if at is not None else time.time()))
    token = secrets.token_hex(25)  # Mailgun's: 50 characters
    return {
        **fields,
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun.sign(key, timestamp, token),
    }


def mailgun_parsed_fields() -> dict[str, Any]:
    """A parsed forward() post as Mailgun documents it (receive-http)."""
    headers = [
        ["Received", "by luna.mailgun.net with SMTP mgrt 8734663311733; Mon, 07 Dec 2026 12:15:04 +0000"],
        ["Content-Type", 'multipart/mixed; boundary="000000000000a1b2c3"'],
        ["Mime-Version", "1.0"],
        ["Date", DATE],
        ["Message-Id", MESSAGE_ID],
        ["In-Reply-To", IN_REPLY_TO],
        ["References", REFERENCES],
        ["Subject", SUBJECT],
        ["From", FROM],
        ["To", TO],
        ["Cc", CC],
        ["X-Mailgun-Variables", "{}"],
    ]
    return {
        "recipient": "suporte@loja.com.br",
        "sender": "joao.conceicao@example.com.br",
        "from": FROM,
        "subject": SUBJECT,
        "body-plain": TEXT,
        "stripped-text": "Olá, equipe!\n\nMeu pedido ainda não chegou.",
        "stripped-signature": "Obrigada,\nJoão",
        "body-html": HTML,
        "stripped-html": "<p>Olá, equipe!</p>",
        "attachment-count": "2",
        "message-headers": json.dumps(headers),
        "content-id-map": json.dumps({"<ii_logo01>": "attachment-2"}),
    }


MAILGUN_FILES = [
    ("attachment-1", ("nota-fiscal-nº4521.pdf", PDF, "application/pdf")),
    ("attachment-2", ("logo.png", PNG, "image/png")),
]


async def test_a_parsed_mailgun_post_becomes_its_message_headers_bodies_and_files_intact(
    hooks: Hooks,
) -> None:
    url = f"/webhooks/email/mailgun/{hooks.mailbox.account_id}"
    response = await hooks.client.post(url, data=signed(mailgun_parsed_fields()), files=MAILGUN_FILES)
    message = parsed(response)
    assert response.headers["x-rebuilt"] == "true"
    assert response.headers["x-envelope-to"] == "suporte@loja.com.br"
    assert response.headers["x-envelope-from"] == "joao.conceicao@example.com.br"
    assert_threading_headers(message)
    assert message["cc"].addresses[0].display_name == "María Peña"
    assert message["x-mailgun-variables"] == "{}"
    assert message["return-path"] == "<joao.conceicao@example.com.br>"  # the envelope sender
    assert message.get_all("received")  # the other headers kept too
    assert body(message, "plain") == TEXT
    assert body(message, "html") == HTML + "\n"  # its last line ended, as MIME text's
    assert files(message) == {
        "nota-fiscal-nº4521.pdf": ("application/pdf", PDF, None),
        "logo.png": ("image/png", PNG, "<ii_logo01>"),
    }
    assert await hooks.tokens() == 1


async def test_a_mailgun_notification_without_message_headers_keeps_the_top_level_ones(hooks: Hooks) -> None:
    """``store(notify=…)`` and older routes: urlencoded (no files), headers as fields."""
    fields = {
        "domain": "loja.com.br",
        "recipient": "suporte@loja.com.br",
        "sender": "joao.conceicao@example.com.br",
        "from": FROM,
        "To": TO,
        "subject": SUBJECT,
        "Message-Id": MESSAGE_ID,
        "In-Reply-To": IN_REPLY_TO,
        "References": REFERENCES,
        "Date": DATE,
        "body-plain": TEXT,
        "message-url": "https://storage.eu.mailgun.net/v3/domains/loja.com.br/messages/AgEFx",
    }
    response = await hooks.client.post(
        f"/webhooks/email/mailgun/{hooks.mailbox.account_id}", data=signed(fields)
    )
    assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
    message = parsed(response)
    assert_threading_headers(message)
    assert body(message, "plain") == TEXT
    assert message.get_body(("html",)) is None


async def test_a_bounce_through_mailgun_keeps_its_null_sender(hooks: Hooks) -> None:
    """MAIL FROM:<> (a bounce, an auto-reply): ``Return-Path: <>``, which loop protection reads."""
    fields = {
        "recipient": "suporte@loja.com.br",
        "sender": "",
        "from": "Mail Delivery Subsystem <mailer-daemon@example.com.br>",
        "subject": "Undelivered Mail Returned to Sender",
        "body-plain": "This is the mail system at host example.com.br.",
        "message-headers": json.dumps([["Auto-Submitted", "auto-replied"], ["Subject", "Undelivered Mail"]]),
    }
    response = await hooks.client.post(
        f"/webhooks/email/mailgun/{hooks.mailbox.account_id}", data=signed(fields)
    )
    message = parsed(response)
    assert message["return-path"] == "<>"
    assert message["auto-submitted"] == "auto-replied"


async def test_mailgun_raw_mime_is_kept_byte_for_byte(hooks: Hooks) -> None:
    """A route URL ending in ``mime``: ``body-mime``, here 8-bit Latin-1, as it came."""
    raw = (
        b"From: =?iso-8859-1?q?Jos=E9?= <jose@example.es>\r\nTo: suporte@loja.com.br\r\n"
        b"Subject: =?iso-8859-1?q?Informaci=F3n?=\r\nMessage-ID: <raw.1@example.es>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n\xbfD\xf3nde est\xe1 mi pedido?\r\n"
    )
    fields = signed({"recipient": "suporte@loja.com.br", "sender": "jose@example.es"})
    response = await hooks.client.post(
        f"/webhooks/email/mailgun/{hooks.mailbox.account_id}",
        files={**{k: (None, v, None) for k, v in fields.items()}, "body-mime": (None, raw, None)},
    )
    assert response.status_code == 200, response.text
    assert response.content == raw
    assert response.headers["x-rebuilt"] == "false"
    assert body(parsed(response), "plain") == "¿Dónde está mi pedido?\n"


@pytest.mark.parametrize(
    "forge",
    [
        lambda f: {**f, "signature": "0" * 64},
        lambda f: {**f, "token": f["token"][:-1] + "x"},  # signature of another token
        lambda f: {**f, "timestamp": str(int(f["timestamp"]) + 1)},
        lambda f: {k: v for k, v in f.items() if k != "signature"},
        lambda f: signed(
            {k: v for k, v in f.items() if k not in ("timestamp", "token", "signature")}, key="other"
        ),
    ],
    ids=["zero-signature", "other-token", "other-timestamp", "no-signature", "another-key"],
)
async def test_a_forged_mailgun_post_is_refused_and_stores_nothing(hooks: Hooks, forge: Any) -> None:
    fields = forge(signed(mailgun_parsed_fields()))
    response = await hooks.client.post(
        f"/webhooks/email/mailgun/{hooks.mailbox.account_id}", data=fields, files=MAILGUN_FILES
    )
    assert response.status_code == 401
    assert "Mailgun" in response.json()["detail"]
    assert await hooks.tokens() == 0


@pytest.mark.parametrize("age", [timedelta(minutes=6), -timedelta(minutes=6), timedelta(days=400)])
async def test_a_mailgun_post_signed_too_long_ago_or_ahead_is_refused(hooks: Hooks, age: timedelta) -> None:
    fields = signed(mailgun_parsed_fields(), at=time.time() - age.total_seconds())
    response = await hooks.client.post(
        f"/webhooks/email/mailgun/{hooks.mailbox.account_id}", data=fields, files=MAILGUN_FILES
    )
    assert response.status_code == 401
    assert response.json()["detail"].startswith("stale Mailgun timestamp")
    assert await hooks.tokens() == 0


async def test_a_replayed_mailgun_post_is_refused_even_when_both_arrive_at_once(hooks: Hooks) -> None:
    url = f"/webhooks/email/mailgun/{hooks.mailbox.account_id}"
    fields = signed(mailgun_parsed_fields())
    first = await hooks.client.post(url, data=fields, files=MAILGUN_FILES)
    assert first.status_code == 200
    again = await hooks.client.post(url, data=fields, files=MAILGUN_FILES)
    assert again.status_code == 401
    assert again.json() == {"detail": "this Mailgun token was used before (a replayed post)"}

    racing = signed(mailgun_parsed_fields())
    answers = await asyncio.gather(
        *(hooks.client.post(url, data=racing, files=MAILGUN_FILES) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [200, 401, 401, 401]
    assert await hooks.tokens() == 2


async def test_a_token_is_per_mailbox_and_forgotten_once_it_could_only_be_stale(hooks: Hooks) -> None:
    """Another mailbox may take the same token (its own ledger); a mailbox's tokens older
    than the tolerance are deleted by its next post, the table stays small."""
    url = f"/webhooks/email/mailgun/{hooks.mailbox.account_id}"
    start = datetime.now(UTC)
    hooks.clock.append(start)
    fields = signed({**mailgun_parsed_fields(), "attachment-count": "0"}, at=start.timestamp())
    assert (await hooks.client.post(url, data=fields)).status_code == 200
    assert await hooks.tokens() == 1

    async with hooks.runtime.db.transaction(hooks.mailbox.company_id) as session:
        other = ChannelAccount(id=uuid.uuid4(), kind="email", external_id=f"{uuid.uuid4().hex}@loja.com.br")
        session.add(other)
    assert (await hooks.client.post(f"/webhooks/email/mailgun/{other.id}", data=fields)).status_code == 200

    later = start + mailgun.TOLERANCE + timedelta(seconds=2)
    hooks.clock[0] = later
    stale_replay = await hooks.client.post(url, data=fields)
    assert stale_replay.status_code == 401  # refused by its timestamp now
    fresh = signed({**mailgun_parsed_fields(), "attachment-count": "0"}, at=later.timestamp())
    assert (await hooks.client.post(url, data=fresh)).status_code == 200
    assert await hooks.tokens() == 1  # the first one was deleted


async def chunks(chunk: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield chunk


async def test_mailgun_garbage_gets_a_4xx_with_a_message(hooks: Hooks) -> None:
    url = f"/webhooks/email/mailgun/{hooks.mailbox.account_id}"
    cases: list[tuple[dict[str, Any], int, str]] = [
        (
            {"content": b"\x00\xff garbage", "headers": {"content-type": "multipart/form-data; boundary=x"}},
            400,
            "",
        ),
        ({"content": b"{}", "headers": {"content-type": "application/json"}}, 415, "multipart/form-data"),
        (
            {
                "content": b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb",
                "headers": {"content-type": "multipart/form-data; boundary=x"},
            },
            400,
            "closing boundary",
        ),
        ({"content": b"a=b", "headers": {"content-type": "multipart/form-data"}}, 400, "boundary"),
        ({"data": {"body-plain": "x"}}, 401, "missing Mailgun signature"),
        ({"data": signed({"recipient": "a@b"})}, 422, "no message"),
        (
            {"data": signed({**mailgun_parsed_fields(), "attachment-count": "2"})},
            422,
            "attachment-1 is missing",
        ),
        ({"data": signed({**mailgun_parsed_fields(), "attachment-count": "two"})}, 422, "not a number"),
        ({"data": signed({**mailgun_parsed_fields(), "message-headers": "[[1]]"})}, 422, "message-headers"),
        ({"data": signed({**mailgun_parsed_fields(), "message-headers": "{"})}, 422, "not JSON"),
        ({"data": signed({**mailgun_parsed_fields(), "attachment-count": "9"})}, 413, "attachments"),
        (
            {
                "data": signed(mailgun_parsed_fields()),
                "files": [
                    (f"attachment-{i}", (f"f{i}.bin", b"x", "application/octet-stream")) for i in range(1, 5)
                ],
            },
            413,
            "files",
        ),
        ({"data": signed({**mailgun_parsed_fields(), "body-plain": "x" * 70_000})}, 413, "limit"),
        (
            {
                "content": chunks(b"x" * 8192, 10),  # streamed: no Content-Length
                "headers": {"content-type": "application/x-www-form-urlencoded"},
            },
            413,
            "limit",
        ),
    ]
    for request, status, words in cases:
        response = await hooks.client.post(url, **request)
        assert response.status_code == status, (request.keys(), response.text)
        assert words in response.json()["detail"]
    assert await hooks.tokens() == 0  # a signed post with no message spends no token


# -- SendGrid -------------------------------------------------------------------------------


def sendgrid_fields(*, text_charset: str = "UTF-8") -> dict[str, Any]:
    """A default (parsed) Inbound Parse post as SendGrid documents it."""
    headers = (
        "Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Mon, 07 Dec 2026 12:15:04 +0000\n"
        "MIME-Version: 1.0\n"
        f"Date: {DATE}\n"
        f"Message-ID: {MESSAGE_ID}\n"
        f"In-Reply-To: {IN_REPLY_TO}\n"
        "References: <atende.1a2b@suporte.loja.com.br>\n <atende.7f3c@suporte.loja.com.br>\n"
        "Subject: =?UTF-8?Q?Re=3A_Pedido_n=C2=BA_4521_=E2=80=94_n=C3=A3o_chegou_=28=C2=BFd=C3=B3nde_est?=\n"
        " =?UTF-8?Q?=C3=A1=3F=29?=\n"
        "From: =?UTF-8?Q?Jo=C3=A3o_Concei=C3=A7=C3=A3o?= <joao.conceicao@example.com.br>\n"
        f"To: {TO}\n"
        "Auto-Submitted: no\n"
        'Content-Type: multipart/mixed; boundary="000000000000c0ffee"\n'
    )
    return {
        "headers": headers,
        "dkim": "{@example.com.br : pass}",
        "content-ids": json.dumps({"ii_logo01": "attachment2"}),
        "to": TO,
        "from": FROM,
        "subject": SUBJECT,
        "text": TEXT.encode(text_charset),
        "html": HTML,
        "sender_ip": "209.85.223.176",
        "spam_score": "0.1",
        "spam_report": "Spam detection software ...",
        "envelope": json.dumps({"to": ["suporte@loja.com.br"], "from": "joao.conceicao@example.com.br"}),
        "attachments": "2",
        "attachment-info": json.dumps(
            {
                "attachment1": {
                    "filename": "nota-fiscal-nº4521.pdf",
                    "name": "nota",
                    "type": "application/pdf",
                },
                "attachment2": {
                    "filename": "logo.png",
                    "name": "logo.png",
                    "type": "image/png",
                    "content-id": "ii_logo01",
                },
            }
        ),
        "charsets": json.dumps(
            {"to": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": text_charset}
        ),
        "SPF": "pass",
    }


SENDGRID_FILES = [
    ("attachment1", ("nota-fiscal-nº4521.pdf", PDF, "application/pdf")),
    ("attachment2", ("logo.png", PNG, "image/png")),
]


def sendgrid_url(hooks: Hooks, secret: str = PATH_SECRET) -> str:
    return f"/webhooks/email/sendgrid/{hooks.mailbox.account_id}/{secret}"


SENDGRID_AUTH = (SENDGRID_USER, SENDGRID_PASSWORD)


@pytest.mark.parametrize("charset", ["UTF-8", "iso-8859-1"])
async def test_a_parsed_sendgrid_post_becomes_its_message(hooks: Hooks, charset: str) -> None:
    response = await hooks.client.post(
        sendgrid_url(hooks),
        data=sendgrid_fields(text_charset=charset),
        files=SENDGRID_FILES,
        auth=SENDGRID_AUTH,
    )
    message = parsed(response)
    assert response.headers["x-rebuilt"] == "true"
    assert response.headers["x-envelope-to"] == "suporte@loja.com.br"
    assert_threading_headers(message)
    assert message["auto-submitted"] == "no"
    assert message["return-path"] == "<joao.conceicao@example.com.br>"  # from the envelope
    assert body(message, "plain") == TEXT  # decoded by the charset SendGrid named
    assert body(message, "html") == HTML + "\n"  # its last line ended, as MIME text's
    assert files(message) == {
        "nota-fiscal-nº4521.pdf": ("application/pdf", PDF, None),
        "logo.png": ("image/png", PNG, "<ii_logo01>"),
    }


async def test_sendgrid_raw_mime_is_kept_byte_for_byte(hooks: Hooks) -> None:
    """ "POST the raw, full MIME message": ``email``, here UTF-8 8-bit."""
    raw = (
        f"From: {FROM}\r\nTo: {TO}\r\nSubject: {SUBJECT}\r\nMessage-ID: {MESSAGE_ID}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: 8bit\r\n\r\n{TEXT}"
    ).encode()
    fields = {
        "email": raw,
        "to": TO,
        "from": FROM,
        "subject": SUBJECT,
        "envelope": json.dumps({"to": ["suporte@loja.com.br"], "from": "joao@example.com.br"}),
    }
    response = await hooks.client.post(
        sendgrid_url(hooks), files={k: (None, v, None) for k, v in fields.items()}, auth=SENDGRID_AUTH
    )
    assert response.status_code == 200, response.text
    assert response.content == raw
    assert response.headers["x-rebuilt"] == "false"
    assert response.headers["x-envelope-from"] == "joao@example.com.br"


@pytest.mark.parametrize(
    ("auth", "secret", "words"),
    [
        (("sendgrid", "wrong"), PATH_SECRET, "wrong credentials"),
        (("wrong", SENDGRID_PASSWORD), PATH_SECRET, "wrong credentials"),
        (None, PATH_SECRET, "basic authentication is required"),
        (
            SENDGRID_AUTH,
            PATH_SECRET[:-1] + ("A" if PATH_SECRET[-1] != "A" else "B"),
            "secret in the webhook URL",
        ),
        (SENDGRID_AUTH, "x", "secret in the webhook URL"),
    ],
    ids=["wrong-password", "wrong-user", "no-auth", "wrong-secret", "short-secret"],
)
async def test_a_sendgrid_post_without_the_mailbox_credentials_is_refused(
    hooks: Hooks, auth: tuple[str, str] | None, secret: str, words: str
) -> None:
    response = await hooks.client.post(
        sendgrid_url(hooks, secret), data=sendgrid_fields(), files=SENDGRID_FILES, auth=auth
    )
    assert response.status_code == 401
    assert words in response.json()["detail"]


async def test_a_sendgrid_mailbox_with_no_credentials_set_takes_no_post(hooks: Hooks) -> None:
    response = await hooks.client.post(
        f"/webhooks/email/sendgrid-open/{hooks.mailbox.account_id}/anything",
        data=sendgrid_fields(),
        files=SENDGRID_FILES,
    )
    assert response.status_code == 401
    assert "no webhook credentials" in response.json()["detail"]


async def test_sendgrid_garbage_gets_a_4xx_with_a_message(hooks: Hooks) -> None:
    for fields, status, words in [
        ({"to": TO, "text": "hi"}, 422, "no message"),
        ({**sendgrid_fields(), "charsets": "[1]"}, 422, "charsets"),
        ({**sendgrid_fields(), "attachment-info": "not json"}, 422, "attachment-info is not JSON"),
        ({**sendgrid_fields(), "headers": "Subject: x\nBad Header Line\nFrom: \x00\n"}, 200, ""),
    ]:
        response = await hooks.client.post(
            sendgrid_url(hooks), files={k: (None, v, None) for k, v in fields.items()}, auth=SENDGRID_AUTH
        )
        assert response.status_code == status, response.text
        if words:
            assert words in response.json()["detail"]


# -- Postmark -------------------------------------------------------------------------------


def postmark_payload() -> dict[str, Any]:
    """An inbound post as Postmark documents it (Inbound webhook)."""
    return {
        "FromName": "João Conceição",
        "MessageStream": "inbound",
        "From": "joao.conceicao@example.com.br",
        "FromFull": {"Email": "joao.conceicao@example.com.br", "Name": "João Conceição", "MailboxHash": ""},
        "To": "suporte@loja.com.br",
        "ToFull": [{"Email": "suporte@loja.com.br", "Name": "Atendimento Loja", "MailboxHash": ""}],
        "Cc": '"María Peña" <maria@example.es>',
        "CcFull": [{"Email": "maria@example.es", "Name": "María Peña", "MailboxHash": ""}],
        "Bcc": "",
        "BccFull": [],
        "OriginalRecipient": "suporte+4521@loja.com.br",
        "Subject": SUBJECT,
        "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "",
        "MailboxHash": "4521",
        "Date": DATE,
        "TextBody": TEXT,
        "HtmlBody": HTML,
        "StrippedTextReply": "Olá, equipe!\n\nMeu pedido ainda não chegou.",
        "Tag": "",
        "Headers": [
            {
                "Name": "X-Spam-Checker-Version",
                "Value": "SpamAssassin 3.3.1 (2010-03-16) onrs-ord-pm-inbound1.wildbit.com",
            },
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "X-Spam-Score", "Value": "-0.1"},
            {"Name": "Received-SPF", "Value": "Pass (sender SPF authorized) identity=mailfrom"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": MESSAGE_ID},
            {"Name": "In-Reply-To", "Value": IN_REPLY_TO},
            {"Name": "References", "Value": REFERENCES},
            {"Name": "Precedence", "Value": "bulk"},
        ],
        "Attachments": [
            {
                "Name": "nota-fiscal-nº4521.pdf",
                "Content": base64.b64encode(PDF).decode(),
                "ContentType": "application/pdf",
                "ContentLength": len(PDF),
            },
            {
                "Name": "logo.png",
                "Content": base64.b64encode(PNG).decode(),
                "ContentType": "image/png",
                "ContentLength": len(PNG),
                "ContentID": "ii_logo01",
            },
        ],
    }


POSTMARK_AUTH = (POSTMARK_USER, POSTMARK_PASSWORD)


async def test_a_postmark_post_becomes_its_message_with_the_original_message_id(hooks: Hooks) -> None:
    url = f"/webhooks/email/postmark/{hooks.mailbox.account_id}"
    response = await hooks.client.post(url, json=postmark_payload(), auth=POSTMARK_AUTH)
    message = parsed(response)
    assert response.headers["x-rebuilt"] == "true"
    assert response.headers["x-envelope-to"] == "suporte+4521@loja.com.br"
    assert_threading_headers(message)  # Message-ID from Headers, not Postmark's MessageID
    assert message["to"].addresses[0].display_name == "Atendimento Loja"
    assert message["cc"].addresses[0].display_name == "María Peña"
    assert message["precedence"] == "bulk"
    assert message["x-spam-status"] == "No"
    assert body(message, "plain") == TEXT
    assert body(message, "html") == HTML + "\n"  # its last line ended, as MIME text's
    assert files(message) == {
        "nota-fiscal-nº4521.pdf": ("application/pdf", PDF, None),
        "logo.png": ("image/png", PNG, "<ii_logo01>"),
    }


async def test_a_postmark_post_with_the_raw_email_keeps_it(hooks: Hooks) -> None:
    raw = f"From: {FROM}\r\nTo: {TO}\r\nSubject: {SUBJECT}\r\nMessage-ID: {MESSAGE_ID}\r\n\r\n{TEXT}"
    payload = {**postmark_payload(), "RawEmail": raw}
    response = await hooks.client.post(
        f"/webhooks/email/postmark/{hooks.mailbox.account_id}", json=payload, auth=POSTMARK_AUTH
    )
    assert response.status_code == 200
    assert response.content == raw.encode()
    assert response.headers["x-rebuilt"] == "false"


async def test_postmark_refuses_wrong_credentials_and_garbage_with_a_message(hooks: Hooks) -> None:
    url = f"/webhooks/email/postmark/{hooks.mailbox.account_id}"
    bad_attachment = postmark_payload()
    bad_attachment["Attachments"][0]["Content"] = "not base64!"
    for request, status, words in [
        ({"json": postmark_payload(), "auth": (POSTMARK_USER, "nope")}, 401, "wrong credentials"),
        ({"json": postmark_payload(), "auth": SENDGRID_AUTH}, 401, "wrong credentials"),
        ({"json": postmark_payload(), "headers": {"authorization": "Basic !!!"}}, 401, "wrong credentials"),
        ({"json": postmark_payload(), "headers": {"authorization": "Bearer x"}}, 401, "basic authentication"),
        ({"content": b"\xff\xfe not json", "auth": POSTMARK_AUTH}, 400, "not JSON"),
        ({"json": [postmark_payload()], "auth": POSTMARK_AUTH}, 422, "JSON object"),
        ({"json": {"MessageID": "x"}, "auth": POSTMARK_AUTH}, 422, "no message"),
        ({"json": bad_attachment, "auth": POSTMARK_AUTH}, 422, "not base64"),
        (
            {"json": {**postmark_payload(), "Subject": 4}, "auth": POSTMARK_AUTH},
            422,
            "Subject must be a string",
        ),
        (
            {"json": {**postmark_payload(), "Headers": [{"Value": "x"}]}, "auth": POSTMARK_AUTH},
            422,
            "Headers",
        ),
        ({"json": {**postmark_payload(), "ToFull": [{"Name": "x"}]}, "auth": POSTMARK_AUTH}, 422, "ToFull"),
        (
            {"json": {**postmark_payload(), "Attachments": [{"Content": ""}] * 4}, "auth": POSTMARK_AUTH},
            413,
            "attach",
        ),
        ({"json": {**postmark_payload(), "TextBody": "x" * 70_000}, "auth": POSTMARK_AUTH}, 413, "limit"),
    ]:
        response = await hooks.client.post(url, **request)
        assert response.status_code == status, response.text
        assert words in response.json()["detail"]


# -- the pieces, on anything ----------------------------------------------------------------

header_names = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3FF), min_size=0, max_size=20)
header_values = st.text(max_size=300)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(
        st.tuples(
            st.one_of(
                st.sampled_from(
                    ["From", "To", "Cc", "Subject", "Message-ID", "References", "Date", "Reply-To"]
                ),
                header_names,
            ),
            header_values,
        ),
        max_size=12,
    ),
    text=st.one_of(st.none(), st.text(max_size=500)),
    html=st.one_of(st.none(), st.text(max_size=500)),
    data=st.binary(max_size=200),
    filename=st.text(max_size=40),
    content_type=st.text(max_size=40),
    content_id=st.text(max_size=20),
)
def test_any_fields_rebuild_into_a_message_that_reads_back_or_a_422(
    headers: list[tuple[str, str]],
    text: str | None,
    html: str | None,
    data: bytes,
    filename: str,
    content_type: str,
    content_id: str,
) -> None:
    attachment = Attachment(filename, content_type, data, content_id)
    try:
        mime = build_mime(clean_headers(headers), text, html, [attachment])
    except WebhookError as exc:
        refused: WebhookError | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.status_code == 422
        return
    message = BytesParser(policy=policy.default).parsebytes(mime)
    assert mime.isascii()
    payloads = [
        part.get_payload(decode=True) for part in message.walk() if part.get_content_maintype() != "multipart"
    ]
    assert data in payloads  # the file's bytes, whatever they are
    if html is not None and not (text or "").strip():  # an empty plain part beside HTML is none
        assert message.get_body(("plain",)) is None
    elif text is not None:  # as written, its line ends made CRLF (MIME's) and the last one ended
        lines = text.replace("\r\n", "\n").replace("\r", "\n")
        assert body(message, "plain") == (lines if lines.endswith("\n") else lines + "\n")


@settings(max_examples=300, deadline=None)
@given(
    body_=st.one_of(
        st.binary(max_size=400),
        st.builds(
            b"".join,
            st.lists(
                st.sampled_from(
                    [
                        b"--b\r\n",
                        b'Content-Disposition: form-data; name="a"\r\n',
                        b"\r\n",
                        b'filename="x"',
                        b"--b--\r\n",
                        b"value",
                        b"\xff\x00",
                    ]
                ),
                max_size=20,
            ),
        ),
    ),
    content_type=st.sampled_from(
        [
            "multipart/form-data; boundary=b",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
            "text/plain",
        ]
    ),
)
def test_any_body_parses_as_a_form_or_a_4xx(body_: bytes, content_type: str) -> None:
    status = 200
    try:
        parse_form(content_type, body_, SMALL)
    except WebhookError as exc:
        status = exc.status_code
    assert 200 <= status < 500
