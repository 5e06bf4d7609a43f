"""Where a mailbox's fetching stands, in PostgreSQL, and the lock that gives a mailbox one
fetcher at a time across every worker.

A fetcher holds a ``MailboxLock`` for as long as it runs: a session-level advisory lock
(``pg_try_advisory_lock``) on a connection of its own, outside the pool (it is held for
hours). The lock goes with the connection: a worker that dies, or loses its database
connection, frees its mailboxes at once, and another worker's next attempt takes them over.
Every read and write of the state goes through that same connection, so a fetcher whose
connection (and so its lock) was lost cannot record anything: its next write fails and it
stops, instead of racing the worker that took over.

Every statement names the company and the account (``company_id = %s AND account_id = %s``):
the rows are company-owned like every table (``models``)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

CONNECT_TIMEOUT_SECONDS = 10
STATEMENT_TIMEOUT_SECONDS = 15.0


class MailboxBusy(Exception):
    """Another fetcher (in this or another worker) holds the mailbox."""


@dataclass(frozen=True)
class ImapState:
    uid_validity: int
    last_uid: int
    last_internal_date: datetime | None


class MailboxLock:
    """The one-fetcher-per-mailbox lock and the connection the mailbox's state is kept through.

    ``async with MailboxLock(url, company_id, account_id, "imap:INBOX") as lock:`` raises
    ``MailboxBusy`` when another fetcher holds it."""

    def __init__(self, db_url: str, company_id: uuid.UUID, account_id: uuid.UUID, what: str) -> None:
        self.db_url = db_url
        self.company_id = company_id
        self.account_id = account_id
        self.key = f"email-fetch:{account_id}:{what}"
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> MailboxLock:
        conn = await psycopg.AsyncConnection.connect(
            self.db_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        )
        try:
            row = await self._one(conn, "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (self.key,))
        except BaseException:
            await conn.close()
            raise
        if not (row and row[0]):
            await conn.close()
            raise MailboxBusy(self.key)
        self._conn = conn
        return self

    async def __aexit__(self, *_exc: object) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # released now: the server ends a closed connection's session (and its locks) a
            # moment later, and a fetcher started right after this one would find it busy
            await self._one(conn, "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (self.key,))
        except (psycopg.Error, TimeoutError):
            pass  # a lost connection: its lock went with it
        finally:
            await conn.close()

    @staticmethod
    async def _one(
        conn: psycopg.AsyncConnection[Any], statement: str, params: tuple[Any, ...]
    ) -> tuple[Any, ...] | None:
        async with asyncio.timeout(STATEMENT_TIMEOUT_SECONDS):
            cursor = await conn.execute(statement, params)
            return await cursor.fetchone() if cursor.description else None

    async def _run(self, statement: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self._conn is None:
            raise RuntimeError("the mailbox lock is not held")
        return await self._one(self._conn, statement, params)

    async def _all(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._conn is None:
            raise RuntimeError("the mailbox lock is not held")
        async with asyncio.timeout(STATEMENT_TIMEOUT_SECONDS):
            cursor = await self._conn.execute(statement, params)
            return await cursor.fetchall()

    # IMAP: one row per account and folder

    async def imap_state(self, folder: str) -> ImapState | None:
        row = await self._run(
            "SELECT uid_validity, last_uid, last_internal_date FROM email_mailbox_states"
            " WHERE company_id = %s AND account_id = %s AND folder = %s",
            (self.company_id, self.account_id, folder),
        )
        return ImapState(int(row[0]), int(row[1]), row[2]) if row else None

    async def save_imap_state(self, folder: str, state: ImapState) -> None:
        await self._run(
            "INSERT INTO email_mailbox_states (id, company_id, account_id, folder, uid_validity, last_uid,"
            " last_internal_date, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (account_id, folder) DO UPDATE SET uid_validity = EXCLUDED.uid_validity,"
            " last_uid = EXCLUDED.last_uid, last_internal_date = EXCLUDED.last_internal_date,"
            " updated_at = EXCLUDED.updated_at WHERE email_mailbox_states.company_id = EXCLUDED.company_id",
            (
                uuid.uuid4(),
                self.company_id,
                self.account_id,
                folder,
                state.uid_validity,
                state.last_uid,
                state.last_internal_date,
                datetime.now(UTC),
            ),
        )

    # POP3: one row per UIDL taken and still on the server

    async def pop3_seen(self) -> set[str]:
        rows = await self._all(
            "SELECT uidl FROM email_pop3_uidls WHERE company_id = %s AND account_id = %s",
            (self.company_id, self.account_id),
        )
        return {str(row[0]) for row in rows}

    async def pop3_taken(self, uidl: str) -> None:
        await self._run(
            "INSERT INTO email_pop3_uidls (id, company_id, account_id, uidl) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (account_id, uidl) DO NOTHING",
            (uuid.uuid4(), self.company_id, self.account_id, uidl),
        )

    async def pop3_forget(self, uidls: set[str]) -> None:
        """Drop the UIDLs of messages no longer on the server: the table never outgrows it."""
        if uidls:
            await self._run(
                "DELETE FROM email_pop3_uidls WHERE company_id = %s AND account_id = %s AND uidl = ANY(%s)",
                (self.company_id, self.account_id, sorted(uidls)),
            )
