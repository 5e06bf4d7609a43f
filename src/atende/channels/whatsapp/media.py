"""A customer's media file fetched from the Graph API and handed to a media store.

The webhook keeps what Meta sends about a file (its Graph media id, mime type, sha256,
caption, file name) in the message's ``meta.media``; the bytes are fetched separately, with
timeouts and a size limit (``graph.download_media``), and handed to a ``MediaSink``: the
media store (``atende.media``, being built beside this channel) is to be plugged in here,
by a job that runs ``fetch_media`` for each stored message with ``meta.media`` and records
the store's id on the message. Until then nothing calls it but the tests: the dashboard
shows what ``meta.media`` says.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from atende.channels.base import Account
from atende.channels.whatsapp import graph
from atende.channels.whatsapp.channel import graph_of


class MediaSink(Protocol):
    """Where fetched bytes go (the media store); answers the store's id of the file."""

    async def __call__(
        self, company_id: uuid.UUID, content: bytes, *, mime_type: str, filename: str | None
    ) -> str: ...


async def fetch_media(
    account: Account,
    media_id: str,
    sink: MediaSink,
    *,
    filename: str | None = None,
    max_bytes: int = graph.MEDIA_MAX_BYTES,
) -> str:
    """Download one media file of ``account``'s number and store it; the store's id.
    Raises ``graph.GraphError`` (``retryable`` says whether a later try may work: a
    rate limit, a timeout; not a file over ``max_bytes`` or a rejected token)."""
    media = await graph.download_media(graph_of(account), media_id, max_bytes=max_bytes)
    return await sink(account.company_id, media.content, mime_type=media.mime_type, filename=filename)
