"""The e-mail channel's servers: a real Dovecot (IMAP and POP3, ``tests.fixtures.dovecot``)
for the test session and a mailbox of its own for each test; the real SMTP server on
127.0.0.1 that keeps what it receives and can be told to defer or refuse a message
(aiosmtpd, ``tests.fixtures.mail``) is ``tests/conftest.py``'s ``smtp_sink``, shared with
the dashboard's tests.

Mail reaches a mailbox as it reaches a real one, through the server: ``Mailbox.deliver``
appends it over IMAP (``APPEND``), and the server gives it its UID."""

from __future__ import annotations

import imaplib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from atende.channels.email.transport import Server
from atende.channels.models import ChannelAccount
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.fixtures.dovecot import Dovecot


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot()
    server.start()
    yield server
    server.stop()
    server.remove()


def message(subject: str, *, sender: str = "cliente@example.org", to: str = "suporte@example.test") -> bytes:
    """One customer's e-mail, as a mail client writes it."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = format_datetime(datetime.now().astimezone())
    mail["Message-ID"] = make_msgid(domain="example.org")
    mail.set_content(f"{subject}\n\nObrigado.\n")
    return mail.as_bytes()


@dataclass
class Mailbox:
    """One test's mailbox on the session's Dovecot, and the channel account it belongs to."""

    dovecot: Dovecot
    user: str
    password: str
    company_id: uuid.UUID
    account_id: uuid.UUID
    db_url: str

    def server(self, *, security: str = "plain", password: str | None = None, **kwargs: object) -> Server:
        """The IMAP server and this mailbox's login on it."""
        port = self.dovecot.imaps_port if security == "tls" else self.dovecot.imap_port
        return self._server(port, security, password, **kwargs)

    def pop3_server(self, *, security: str = "plain", password: str | None = None) -> Server:
        """The POP3 server and this mailbox's login on it."""
        port = self.dovecot.pop3s_port if security == "tls" else self.dovecot.pop3_port
        return self._server(port, security, password)

    def _server(self, port: int, security: str, password: str | None, **kwargs: object) -> Server:
        return Server(
            host="127.0.0.1",
            port=port,
            user=self.user,
            password=self.password if password is None else password,
            security=security,  # type: ignore[arg-type]
            ssl_context=self.dovecot.tls_context(),
            timeout=10,
            **kwargs,  # type: ignore[arg-type]
        )

    def imap(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.dovecot.imap_port, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, raw: bytes, folder: str = "INBOX") -> int:
        """Put a message into the mailbox (IMAP APPEND); the UID the server gave it."""
        client = self.imap()
        try:
            typ, data = client.append(folder, "", None, raw)
            assert typ == "OK", data
            # [APPENDUID <uidvalidity> <uid>]
            return int(data[0].split(b"APPENDUID ")[1].split(b"]")[0].split()[1])
        finally:
            client.logout()

    def count(self, folder: str = "INBOX") -> int:
        client = self.imap()
        try:
            typ, data = client.select(folder)
            assert typ == "OK", data
            return int(data[0])
        finally:
            client.logout()


async def new_mailbox(dovecot: Dovecot, runtime: Runtime) -> Mailbox:
    user = f"box-{uuid.uuid4().hex[:10]}@example.test"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    dovecot.add_user(user, password)
    slug = f"co-{uuid.uuid4().hex[:10]}"
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name=slug, slug=slug)
    async with runtime.db.transaction(company.id) as session:
        account = ChannelAccount(
            company_id=company.id, kind="email", external_id=user, display_name=user, config={}, secrets={}
        )
        session.add(account)
        await session.flush()
        account_id = account.id
    return Mailbox(dovecot, user, password, company.id, account_id, runtime.db.url)


@pytest.fixture
async def mailbox(dovecot: Dovecot, runtime: Runtime) -> AsyncIterator[Mailbox]:
    return await new_mailbox(dovecot, runtime)
