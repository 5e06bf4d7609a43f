"""Tables of the e-mail channel: where each mailbox's fetching stands.

A mailbox is a channel account (``channel_accounts``); these rows belong to its company like
every other table and go with the account (and the company) when it is deleted.

- ``email_mailbox_states``: per IMAP account and folder, the ``UIDVALIDITY`` last seen, the
  highest UID taken and that message's ``INTERNALDATE`` (``imap.ImapFetcher``: what has been
  taken, so that a restart or another worker takes each message once);
- ``email_pop3_uidls``: per POP3 account, the ``UIDL`` of each message taken and still on the
  server (``pop3.Pop3Fetcher``; one left on the server is never taken twice, and the UIDLs
  of messages deleted from the server are dropped, so the table holds at most the mailbox).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class MailboxState(IdMixin, CompanyOwned, Base):
    __tablename__ = "email_mailbox_states"
    __table_args__ = (UniqueConstraint("account_id", "folder"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("channel_accounts.id", ondelete="CASCADE")
    )
    folder: Mapped[str] = mapped_column(String(255))
    uid_validity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    # INTERNALDATE of the message of ``last_uid``: after a UIDVALIDITY change, only mail
    # that arrived later is taken (``imap``'s policy)
    last_internal_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Pop3Uidl(IdMixin, CompanyOwned, Base):
    __tablename__ = "email_pop3_uidls"
    __table_args__ = (UniqueConstraint("account_id", "uidl"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("channel_accounts.id", ondelete="CASCADE")
    )
    uidl: Mapped[str] = mapped_column(String(70))  # RFC 1939: 1 to 70 printable characters
