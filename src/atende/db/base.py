"""Declarative base and the column conventions every table shares."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from sqlalchemy import DateTime, ForeignKey, MetaData, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


M = TypeVar("M", bound=Base)


def as_loaded(model: type[M], values: Mapping[str, Any]) -> M:
    """An instance of ``model`` holding a row read without the ORM (a SQL function's result),
    as a query loads one: its values with no change history. The constructor records every
    value as a change to write, about ten times the CPU (25 us for a message), once a
    request on the intake path. Attributes not given read as ``None``."""
    instance: M = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update(values)
    return instance


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), default=utcnow
    )


class CompanyOwned:
    """Marks a table whose rows belong to one company.

    Sessions opened for a company (see ``atende.db.session``) add
    ``company_id = <that company>`` to every query on such a table and refuse to write a
    row of another company.

    ``company_id`` gets an index of its own unless the table declares a composite index
    that starts with it (``company_index_in_table_args = True``): one fewer index to write.
    """

    company_index_in_table_args: ClassVar[bool] = False

    @declared_attr
    def company_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805
        return mapped_column(
            UUID(as_uuid=True),
            ForeignKey("companies.id", ondelete="CASCADE"),
            index=not cls.company_index_in_table_args,
        )
