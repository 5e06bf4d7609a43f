"""Turn one PostgreSQL URL into the forms our drivers need."""

from __future__ import annotations

from sqlalchemy.engine import make_url


def libpq_url(url: str) -> str:
    """A plain ``postgresql://`` URL (for psycopg, procrastinate and pg_dump)."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(url: str) -> str:
    """The async SQLAlchemy URL over psycopg 3."""
    u = make_url(url)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
