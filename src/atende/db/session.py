"""The engine, sessions, and the one mechanism that scopes every query to a company.

A session opened with ``Database.company_session(company_id)`` carries that id in
``session.info``; an ORM event adds ``company_id = :id`` to every SELECT, UPDATE and
DELETE that touches a company-owned table, and a flush hook refuses rows of any other
company. A ``platform_session()`` (CLI, authentication, job bootstrap) sees all companies
and must say so explicitly; a plain session that queries a company-owned table raises.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, NoReturn, cast

import psycopg
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util.concurrency import greenlet_spawn

from atende.db.base import Base, CompanyOwned
from atende.db.pubsub import Notifier
from atende.db.url import libpq_url, sqlalchemy_url

COMPANY_KEY = "company_id"
PLATFORM_KEY = "platform"


class UnscopedQuery(RuntimeError):
    """A query on company-owned rows from a session that is bound to no company."""


class CrossCompanyWrite(RuntimeError):
    """An attempt to write a row of one company through another company's session."""


def _touches_company_rows(state: ORMExecuteState) -> bool:
    # ``state.all_mappers`` misses entities named only in FROM or WHERE
    # (``select(func.count()).select_from(Message)``), so look at every table the statement reads
    company_tables = {m.local_table for m in Base.registry.mappers if issubclass(m.class_, CompanyOwned)}
    statement = cast(ClauseElement, state.statement)  # ORM statements are clause elements
    tables = find_tables(statement, check_columns=True, include_aliases=True, include_crud=True)
    return any(table in company_tables for table in tables)


@event.listens_for(Session, "do_orm_execute")
def _scope_to_company(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    company_id = state.session.info.get(COMPANY_KEY)
    if company_id is None:
        if state.session.info.get(PLATFORM_KEY) or not _touches_company_rows(state):
            return
        raise UnscopedQuery("company-owned rows queried outside a company or platform session")
    state.statement = state.statement.options(
        with_loader_criteria(
            CompanyOwned,
            lambda cls: cls.company_id == company_id,
            include_aliases=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_company(session: Session, _ctx: Any, _instances: Any) -> None:
    company_id = session.info.get(COMPANY_KEY)
    if company_id is None:
        return
    # deleted rows too: a row merged in without loading would be deleted by primary key alone
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if not isinstance(obj, CompanyOwned):
            continue
        if obj.company_id is None:
            obj.company_id = company_id
        elif obj.company_id != company_id:
            raise CrossCompanyWrite(f"{type(obj).__name__} belongs to another company")


async def driver_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under ``session``'s transaction (begun if it was not), for the
    few statements that go around the ORM: enqueueing jobs, the one-statement intake."""
    raw = await (await session.connection()).get_raw_connection()
    return cast("psycopg.AsyncConnection[Any]", raw.driver_connection)


def _raise_unconnected(engine: Engine, error: psycopg.Error) -> NoReturn:
    """Raise ``error``, met while opening a connection, as SQLAlchemy does when it opens one
    (``Connection._handle_dbapi_exception_noconnection``): ``Engine.raw_connection`` leaves the
    driver's error bare, and the app maps only SQLAlchemy's (``OperationalError``: 503)."""
    dialect = engine.dialect
    raise DBAPIError.instance(
        None,
        None,
        error,
        psycopg.Error,
        hide_parameters=engine.hide_parameters,
        connection_invalidated=dialect.is_disconnect(cast(Any, error), None, None),
        dialect=dialect,
    ) from error


class DriverConnection:
    """A pooled connection lent to the driver itself (psycopg), in autocommit: each statement
    is its own transaction. From ``Database.driver_autocommit()``; for single statements on a
    hot path (receiving a message), where SQLAlchemy's connection around the driver's costs
    more CPU than the statement (``benchmarks/README.md``, intake).

    ``notices``: notifications its committed statements left to send (``[(channel,
    payload)]``, see ``pubsub.Notifier``); ``driver_autocommit()`` sends them when it is
    given back."""

    def __init__(self, engine: Engine, fairy: PoolProxiedConnection) -> None:
        self.engine = engine
        self.fairy = fairy
        self.driver = cast("psycopg.AsyncConnection[Any]", fairy.driver_connection)
        self.notices: list[tuple[str, str]] = []

    async def fetch_one(self, statement: str, parameters: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of ``statement`` (``%s`` placeholders), committed when it returns."""
        try:
            cursor = await self.driver.execute(statement, parameters)
            row = await cursor.fetchone()
        except psycopg.Error as exc:
            await greenlet_spawn(self._raise, exc, statement, parameters)
            raise  # not reached
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled mid-statement: its state is unknown
                await greenlet_spawn(self.fairy.invalidate, exc)
            raise
        return tuple(row) if row is not None else None

    def _raise(self, error: psycopg.Error, statement: str | None, parameters: Sequence[Any]) -> NoReturn:
        """Raise ``error`` as SQLAlchemy does for a statement it ran (``Connection.
        _handle_dbapi_exception``), so the app maps it alike (``DataError``: 422,
        ``OperationalError``: 503): wrapped, parameters hidden, and when the connection was
        lost, every pooled connection opened before it is renewed on its next checkout."""
        dialect = self.engine.dialect
        lost = dialect.is_disconnect(cast(Any, error), self.fairy.dbapi_connection, None)
        if lost:
            self.engine.pool._invalidate(self.fairy, error)  # what SQLAlchemy calls; closes this one
        raise DBAPIError.instance(
            statement,
            parameters,
            error,
            psycopg.Error,
            hide_parameters=self.engine.hide_parameters,
            connection_invalidated=lost,
            dialect=dialect,
        ) from error


async def fetch_one(
    connection: AsyncConnection | DriverConnection, statement: str, parameters: Sequence[Any]
) -> tuple[Any, ...] | None:
    """The first row of one statement (``%s`` placeholders) run by the driver on
    ``connection``: a ``DriverConnection``, or SQLAlchemy's, in its transaction if it has one
    (``await session.connection()``).

    ``connection.exec_driver_sql`` costs as much CPU as the driver's own execute (an execution
    context, a result object and a greenlet for each, measured with ``benchmarks.intake``);
    the row it returns would be the same, as such a statement's values are the driver's.
    A driver error is handed to SQLAlchemy's own handler, so that it is raised and acted on
    as any statement's would be: as SQLAlchemy's ``DataError``, ``OperationalError``... (its
    parameters hidden), and a lost connection invalidates the pool."""
    if isinstance(connection, DriverConnection):
        return await connection.fetch_one(statement, parameters)
    sync = connection.sync_connection
    if sync is None:
        raise ValueError("fetch_one needs a started connection (async with, or session.connection())")
    fairy = await connection.get_raw_connection() if sync.invalidated else sync.connection
    driver = cast("psycopg.AsyncConnection[Any]", fairy.driver_connection)
    try:
        cursor = await driver.execute(statement, parameters)
        row = await cursor.fetchone()
    except psycopg.Error as exc:
        # private, but the one place SQLAlchemy decides what a driver error means; it raises
        await greenlet_spawn(sync._handle_dbapi_exception, exc, statement, parameters, None, None)
        raise  # not reached
    except BaseException as exc:
        if not isinstance(exc, Exception):  # cancelled mid-statement, as SQLAlchemy does
            await connection.invalidate(exc)
        raise
    return tuple(row) if row is not None else None


class Database:
    """One PostgreSQL database: an async engine and its session factories."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 20,
        max_overflow: int = 0,
        pool_timeout: float = 30.0,
        pre_ping: bool = False,
    ) -> None:
        # No overflow by default: a connection opened for a burst and closed right after
        # costs PostgreSQL a new backend per request, exactly when it is busiest.
        self.url = libpq_url(url)
        self.engine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            pool_pre_ping=pre_ping,
            pool_recycle=1800,
            # an error's text never quotes a statement's values (customers' messages, replies):
            # it reaches logs, Sentry and stored handoff reasons
            hide_parameters=True,
        )
        self._factory = async_sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.notifier = Notifier(self)

    def company_session(self, company_id: uuid.UUID) -> AsyncSession:
        """A session that sees and writes only ``company_id``'s rows."""
        return self._factory(info={COMPANY_KEY: company_id})

    def platform_session(self) -> AsyncSession:
        """A session that sees every company (administration, authentication, jobs)."""
        return self._factory(info={PLATFORM_KEY: True})

    @asynccontextmanager
    async def transaction(
        self, company_id: uuid.UUID | None = None, *, notify_after_commit: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success and rolls back on error.

        ``notify_after_commit``: its notifications (``pubsub.publish``, procrastinate's on the
        jobs it queues) are sent by ``notifier`` once it has committed, not by its commit, for
        a transaction that holds a lock others wait for (a conversation's row): a notifying
        commit queues for PostgreSQL's database-wide NOTIFY lock, holding its own locks
        meanwhile (migration 0033)."""
        session = self.company_session(company_id) if company_id else self.platform_session()
        notices: list[tuple[str, str]] = []
        async with session:
            async with session.begin():
                if notify_after_commit:
                    await session.execute(text("SELECT set_config('atende.defer_notify', 'on', true)"))
                yield session
                if notify_after_commit:
                    taken = await session.scalar(text("SELECT atende_take_notices_v1()"))
                    notices = [(str(channel), str(payload)) for channel, payload in taken or ()]
            self.notifier.send(notices)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection whose every statement commits on its own (no BEGIN and COMMIT
        round trips, no ORM): for work that is one atomic statement taking its company as an
        argument, such as receiving a message (``conversations.service.receive_inbound``).
        On a hot path, ``driver_autocommit()`` does the same for less CPU."""
        async with self._autocommit_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def driver_autocommit(self) -> AsyncIterator[DriverConnection]:
        """A pooled connection for the driver alone, in autocommit (``DriverConnection``):
        ``autocommit()`` without SQLAlchemy's connection and its isolation-level switch on
        every checkout and return. The connection goes back to the pool out of autocommit,
        as its other users expect, and rolled back as any other is; the notifications its
        statements left (``DriverConnection.notices``) are sent after, by ``notifier``."""
        try:
            fairy = await self.engine.raw_connection()
        except psycopg.Error as exc:  # no connection could be opened (the server is down, starting)
            await greenlet_spawn(_raise_unconnected, self.engine.sync_engine, exc)
            raise  # not reached
        connection = DriverConnection(self.engine.sync_engine, fairy)
        try:
            try:
                await connection.driver.set_autocommit(True)
            except psycopg.Error as exc:  # a connection already known to be closed
                await greenlet_spawn(connection._raise, exc, None, ())
            yield connection
        finally:
            try:
                if fairy.is_valid:
                    await connection.driver.set_autocommit(False)
            except psycopg.Error as exc:
                await greenlet_spawn(fairy.invalidate, exc)
            finally:
                await greenlet_spawn(fairy.close)
                self.notifier.send(connection.notices)

    async def dispose(self) -> None:
        await self.notifier.drain()
        await self.engine.dispose()
