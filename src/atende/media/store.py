"""The media store port: bytes kept under a key, and the two stores that keep them.

A key is made by ``key_for(company_id, media_id)`` (``<company id>/<media id>``): nothing a
customer or a provider sends (a file name, a type) ever becomes part of a path or an object
name, so no input can reach outside its company's folder or prefix. The stores check the
shape of a key again all the same.

What a store is given to keep is already complete (``Spooled``: counted against the size
limit, hashed, in memory or in a temporary file), so a file over the limit is refused
before any store sees a byte of it, and a store writes whole files only: the local folder
renames a finished temporary file into place, S3 makes an object visible once it is whole.

Every failure of the storage itself is ``MediaUnavailable`` (a 503 that says why); a key
that holds nothing is ``MediaMissing`` (a 404).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import IO, Protocol

from atende.config import Settings
from atende.errors import AtendeError, NotFound

CHUNK_BYTES = 64 * 1024  # read and streamed in pieces of this size
SPOOL_IN_MEMORY_BYTES = 1024 * 1024  # a file being received stays in memory up to this size
_KEY = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")


class MediaTooLarge(AtendeError):
    """A file over ``ATENDE_MEDIA_MAX_BYTES``: refused whole, nothing stored."""

    status_code = 413
    code = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the file is larger than {limit} bytes, the largest the media store accepts "
            "(ATENDE_MEDIA_MAX_BYTES); nothing was stored"
        )
        self.limit = limit


class MediaUnavailable(AtendeError):
    """The media storage failed or did not answer in time (its reason, never a secret)."""

    status_code = 503
    code = "media_unavailable"


class MediaMissing(NotFound):
    """A key with no file behind it."""


def key_for(company_id: uuid.UUID, media_id: uuid.UUID) -> str:
    """Where a company's file is kept: its company's folder (or prefix), then its id."""
    return f"{company_id}/{media_id}"


def checked_key(key: str) -> str:
    """``key`` when it is one ``key_for`` makes; ``ValueError`` otherwise (a bug, never input)."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a media key: {key!r}")
    return key


@dataclass
class Spooled:
    """A received file, whole: its bytes (in memory, or a temporary file past 1 MiB), size
    and SHA-256. Close it (``with``) to drop the temporary file."""

    file: IO[bytes]
    size: int
    sha256: str

    def __enter__(self) -> Spooled:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.file.close()


async def spool(data: bytes | AsyncIterable[bytes], max_bytes: int) -> Spooled:
    """Receive ``data`` whole, counting and hashing it; ``MediaTooLarge`` as soon as it
    passes ``max_bytes`` (the rest is never read, nothing is kept)."""
    file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115 (returned open)
    digest = hashlib.sha256()
    size = 0
    try:
        pieces = _pieces(data)
        async for piece in pieces:
            size += len(piece)
            if size > max_bytes:
                raise MediaTooLarge(max_bytes)
            digest.update(piece)
            file.write(piece)
        file.seek(0)
    except BaseException:
        file.close()
        raise
    return Spooled(file, size, digest.hexdigest())


async def _pieces(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        whole = bytes(data)
        for start in range(0, len(whole), CHUNK_BYTES):
            yield whole[start : start + CHUNK_BYTES]
        return
    async for piece in data:
        yield piece


@dataclass
class Blob:
    """A stored file being read: its size and its bytes, piece by piece (read once)."""

    size: int
    chunks: AsyncIterator[bytes]


class MediaStore(Protocol):
    """Where media bytes live. Every method bounds its time; every storage failure is
    ``MediaUnavailable``."""

    @property
    def description(self) -> str:
        """What it is, for logs and /health/ready (a folder, a bucket; never a secret)."""
        ...

    async def put(self, key: str, spooled: Spooled, *, content_type: str) -> None:
        """Keep the whole file under ``key`` (replacing one there): visible whole or not at all."""
        ...

    async def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Blob:
        """The file under ``key`` (only bytes ``start..end``, inclusive, with ``byte_range``:
        a range within the file); ``MediaMissing`` when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the file under ``key``; nothing there is not an error."""
        ...

    async def check(self) -> str:
        """Whether files can be kept now: a short detail, or ``MediaUnavailable`` saying why."""
        ...


def build_store(settings: Settings) -> MediaStore:
    """The store ``settings`` choose (``ATENDE_MEDIA_BACKEND``)."""
    if settings.media_backend == "s3":
        from atende.media.s3 import S3Bucket

        return S3Bucket.from_settings(settings)
    from atende.media.local import LocalDirectory

    return LocalDirectory(settings.media_root)
