"""Files an agent's reply carries: media of the company (``atende.media``, uploaded first with
``POST /v1/media`` or the conversation page's composer), checked against what the
conversation's channel can send before the reply is stored.

What a channel can send is its ``Channel.attachment_types`` (content type → largest size),
told here by ``channels.registry.register`` (conversations imports no channel): a channel
with none (the web chat, the API) refuses files with a clear 422, and the composer offers no
file there. A type is looked up as itself, then ``major/*``, then ``*/*`` (a channel that
takes any file, such as e-mail). The reply keeps each file's description in its
``meta.attachments`` (``media_id``, ``content_type``, ``filename``, ``size_bytes``), in the
order given: the delivery job reads the bytes from the media store when it sends them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atende.errors import InvalidInput, NotFound
from atende.media import service as media

META = "attachments"  # a message's meta: the files it carries
MAX = 10  # files one reply carries

_TYPES: dict[str, Mapping[str, int]] = {}


def set_types(kind: str, types: Mapping[str, int]) -> None:
    """The files channel ``kind`` can send: content type (or ``major/*``, ``*/*``) → the
    largest, in bytes. Empty: none."""
    if types:
        _TYPES[kind] = dict(types)
    else:
        _TYPES.pop(kind, None)


def accepted(kind: str) -> Mapping[str, int]:
    """What channel ``kind`` can send (empty: no files)."""
    return _TYPES.get(kind, {})


def limit_for(kind: str, content_type: str) -> int | None:
    """The largest file of ``content_type`` channel ``kind`` sends; ``None``: not that type."""
    types = accepted(kind)
    major = content_type.split("/", 1)[0]
    for key in (content_type, f"{major}/*", "*/*"):
        if key in types:
            return types[key]
    return None


def of(message_meta: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The attachments a stored message's meta describes (none when it has none)."""
    found = (message_meta or {}).get(META)
    return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []


def check(kind: str, content_type: str, size: int, *, name: str = "the file") -> None:
    """Whether channel ``kind`` sends a file of this type and size (``InvalidInput`` saying
    why not): checked before a file is stored, where it can be."""
    if not accepted(kind):
        raise InvalidInput(
            f"this channel cannot send files: {kind} conversations take text only", field="attachments"
        )
    limit = limit_for(kind, content_type)
    if limit is None:
        raise InvalidInput(
            f"the {kind} channel cannot send files of type {content_type}; "
            f"it sends: {', '.join(sorted(accepted(kind)))}",
            field="attachments",
        )
    if size > limit:
        raise InvalidInput(
            f"{name} is {size} bytes; the {kind} channel sends {content_type} files of at most {limit} bytes",
            field="attachments",
        )


async def describe(session: AsyncSession, kind: str, media_ids: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    """The ``meta.attachments`` of a reply on channel ``kind`` carrying these files of the
    session's company (a file named twice goes once); ``InvalidInput`` (422) for a channel
    that cannot send files, another company's or an unknown id, a type the channel does not
    send or a file larger than it sends."""
    if not media_ids:
        return []
    ids = list(dict.fromkeys(media_ids))
    if len(ids) > MAX:
        raise InvalidInput(f"a reply carries at most {MAX} files; {len(ids)} were given", field="attachments")
    if not accepted(kind):
        raise InvalidInput(
            f"this channel cannot send files: {kind} conversations take text only", field="attachments"
        )
    described: list[dict[str, Any]] = []
    for media_id in ids:
        try:
            file = await media.get(session, media_id)
        except NotFound:
            raise InvalidInput(
                f"attachments: no file {media_id} in this company (upload it with POST /v1/media first)",
                field="attachments",
            ) from None
        check(kind, file.content_type, file.size_bytes, name=f"file {media_id}")
        described.append(
            {
                "media_id": str(file.id),
                "content_type": file.content_type,
                "filename": file.filename,
                "size_bytes": file.size_bytes,
            }
        )
    return described
