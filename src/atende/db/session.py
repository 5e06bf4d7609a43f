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
from typing import Any, cast

import psycopg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.util import find_tables
from sqlalchemy.util.concurrency import greenlet_spawn

from atende.db.base import Base, CompanyOwned
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


async def fetch_one(
    connection: AsyncConnection, statement: str, parameters: Sequence[Any]
) -> tuple[Any, ...] | None:
    """The first row of one statement (``%s`` placeholders) run by the driver on
    ``connection``, in its transaction if it has one; for the hot path of intake.

    ``connection.exec_driver_sql`` costs as much CPU as the driver's own execute (an execution
    context, a result object and a greenlet for each, measured with ``benchmarks.intake``);
    the row it returns would be the same, as such a statement's values are the driver's.
    A driver error is handed to SQLAlchemy's own handler, so that it is raised and acted on
    as any statement's would be: as SQLAlchemy's ``DataError``, ``OperationalError``... (its
    parameters hidden), and a lost connection invalidates the pool."""
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

    def company_session(self, company_id: uuid.UUID) -> AsyncSession:
        """A session that sees and writes only ``company_id``'s rows."""
        return self._factory(info={COMPANY_KEY: company_id})

    def platform_session(self) -> AsyncSession:
        """A session that sees every company (administration, authentication, jobs)."""
        return self._factory(info={PLATFORM_KEY: True})

    @asynccontextmanager
    async def transaction(self, company_id: uuid.UUID | None = None) -> AsyncIterator[AsyncSession]:
        """A session in a transaction that commits on success and rolls back on error."""
        session = self.company_session(company_id) if company_id else self.platform_session()
        async with session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection whose every statement commits on its own (no BEGIN and COMMIT
        round trips, no ORM): for work that is one atomic statement taking its company as an
        argument, such as receiving a message (``conversations.service.receive_inbound``)."""
        async with self._autocommit_engine.connect() as connection:
            yield connection

    async def dispose(self) -> None:
        await self.engine.dispose()
