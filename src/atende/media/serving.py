"""How a stored file is sent to a browser, so that no file can act as part of atende.

Media come from customers and providers: an HTML page or an SVG image served from the
dashboard's origin would run its scripts with the agent's session. So every file is sent
with its stored type and ``nosniff`` (never guessed into HTML), a
``Content-Security-Policy`` whose ``sandbox`` gives a file opened on its own a unique
origin with no script, and ``Content-Disposition: attachment`` (a download, never a page)
for every type but the images, audio and video a browser only displays or plays. SVG is
not one of those: it can hold script. ``Cross-Origin-Resource-Policy: same-origin`` keeps
other sites from embedding a company's files.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from atende.media.models import Media
from atende.media.store import MediaStore

# images a browser decodes as pictures only (no SVG: it is a document that can run script)
INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"})
INLINE_PREFIXES = ("audio/", "video/")
_RANGE = re.compile(r"bytes=(\d{0,18})-(\d{0,18})")
SANDBOX = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"


def shown_inline(content_type: str) -> bool:
    """Whether a browser may show the file in place (an image, a player) rather than save it."""
    return content_type in INLINE_IMAGES or content_type.startswith(INLINE_PREFIXES)


def disposition(media: Media) -> str:
    """``inline`` or ``attachment``, with the file's name (ASCII, and UTF-8 per RFC 6266)."""
    kind = "inline" if shown_inline(media.content_type) else "attachment"
    name = media.filename or f"{media.id}"
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def headers_for(media: Media) -> dict[str, str]:
    """The response headers of a file (its length is added by whoever streams it)."""
    return {
        "Content-Type": media.content_type,
        "Content-Disposition": disposition(media),
        "Content-Security-Policy": SANDBOX,
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "same-origin",
        # a company's file, for its signed-in people: kept by no shared cache
        "Cache-Control": "private, max-age=300",
    }


def requested_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The one byte range a ``Range`` header asks of a file of ``size`` bytes, as (start,
    end) inclusive; ``None``: the whole file (no header, several ranges, another unit or a
    malformed one: RFC 9110 lets a server ignore them); ``"unsatisfiable"``: a range wholly
    past the end (416)."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":  # the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(size - length, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size:
        return "unsatisfiable"
    if last != "" and int(last) < start:
        return None
    return start, end


async def stream(store: MediaStore, media: Media, range_header: str | None = None) -> Response:
    """The file as a response, streamed from the store piece by piece (read after the
    caller's transaction ended: no database connection is held while it is sent). A single
    byte range is answered ``206`` (players seek in audio and video; Safari plays no video
    without it)."""
    headers = headers_for(media)
    headers["Accept-Ranges"] = "bytes"
    wanted = requested_range(range_header, media.size_bytes)
    if wanted == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{media.size_bytes}"
        return Response(status_code=416, headers=headers)
    byte_range = wanted if isinstance(wanted, tuple) else None
    blob = await store.open(media.storage_key, byte_range)
    headers["Content-Length"] = str(blob.size)
    status = 200
    if byte_range is not None:
        status = 206
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{media.size_bytes}"
    return StreamingResponse(blob.chunks, status_code=status, headers=headers, media_type=media.content_type)
