"""Storing and reading a company's media: what channels, e-mail and uploads call.

Every function takes the caller's company session: ``put`` files the bytes under that
company's key and describes them in a ``media`` row; ``get`` finds a row of that company
only (another company's id is ``NotFound``, as if it did not exist). Bytes are stored before
the row is written: if the transaction then fails, the file is deleted again (or, if the
process dies in between, left unreferenced: never a row without its file).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import AsyncIterable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atende.db.scope import company_of, get_or_404
from atende.media.models import Media
from atende.media.store import Blob, MediaStore, MediaTooLarge, Spooled, build_store, key_for, spool
from atende.runtime import Runtime

log = structlog.get_logger(__name__)

STORE = "media_store"  # the process's store, in ``Runtime.extras``
UNKNOWN_TYPE = "application/octet-stream"
_NAME_CHARS = r"[A-Za-z0-9!#$&^_.+-]{1,100}"
_MEDIA_TYPE = re.compile(rf"({_NAME_CHARS})/({_NAME_CHARS})")
FILENAME_MAX_CHARS = 255


def media_store(runtime: Runtime) -> MediaStore:
    """This process's media store (built from its settings once)."""
    store: MediaStore | None = runtime.extras.get(STORE)
    if store is None:
        store = runtime.extras[STORE] = build_store(runtime.settings)
    return store


def media_type(value: str | None) -> str:
    """``type/subtype`` of a declared content type, lower-case, without parameters; what
    is not one (empty, garbage) is ``application/octet-stream``: served as a download."""
    essence = (value or "").split(";", 1)[0].strip()
    match = _MEDIA_TYPE.fullmatch(essence)
    return essence.lower() if match else UNKNOWN_TYPE


def clean_filename(value: str | None) -> str | None:
    """The last part of a sent file name, without control characters, at most 255
    characters; ``None`` when nothing is left. Only ever shown or offered, never a path."""
    if not value:
        return None
    name = re.split(r"[/\\]", value)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    if name in {"", ".", ".."}:
        return None
    return name[-FILENAME_MAX_CHARS:]


async def put(
    session: AsyncSession,
    store: MediaStore,
    data: bytes | AsyncIterable[bytes] | Spooled,
    *,
    content_type: str | None,
    filename: str | None = None,
    max_bytes: int,
) -> Media:
    """Keep a file of the session's company; ``MediaTooLarge`` past ``max_bytes`` (nothing
    stored), ``MediaUnavailable`` when the store fails. A file that arrives slowly (an
    upload, a download) is better received first with ``store.spool`` and passed here
    ``Spooled``: the transaction then holds its connection only while the file is stored."""
    company_id = company_of(session)
    media_id = uuid.uuid4()
    key = key_for(company_id, media_id)
    kind = media_type(content_type)
    received = data if isinstance(data, Spooled) else await spool(data, max_bytes)
    if received.size > max_bytes:
        received.file.close()
        raise MediaTooLarge(max_bytes)
    with received as spooled:
        await store.put(key, spooled, content_type=kind)
        media = Media(
            id=media_id,
            company_id=company_id,
            content_type=kind,
            size_bytes=spooled.size,
            filename=clean_filename(filename),
            sha256=spooled.sha256,
            storage_key=key,
        )
    try:
        session.add(media)
        await session.flush()
    except BaseException:
        await store.delete(key)
        raise
    log.info("media.stored", media_id=str(media_id), content_type=kind, size=media.size_bytes)
    return media


async def get(session: AsyncSession, media_id: uuid.UUID) -> Media:
    """The description of a file of the session's company; ``NotFound`` otherwise."""
    return await get_or_404(session, Media, media_id, "media")


async def read(store: MediaStore, media: Media) -> Blob:
    """The bytes of a file (its row read first, through the company's session)."""
    return await store.open(media.storage_key)


async def delete(session: AsyncSession, store: MediaStore, media_id: uuid.UUID) -> None:
    """Delete a file of the session's company: its row, then its bytes."""
    media = await get(session, media_id)
    await session.delete(media)
    await session.flush()
    await store.delete(media.storage_key)
    log.info("media.deleted", media_id=str(media_id))
