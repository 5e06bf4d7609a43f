"""The ``media`` table: what the media store keeps for each company, described."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from atende.db.base import Base, CompanyOwned, IdMixin


class Media(IdMixin, CompanyOwned, Base):
    """One stored file of a company. ``storage_key`` is where the store keeps its bytes
    (``<company id>/<id>``); ``filename`` is the name it came with (shown and offered when
    it is downloaded, never used as a path); ``sha256`` of its bytes, hex."""

    __tablename__ = "media"

    content_type: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str | None] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200))
