"""Where a submitted document's bytes come from: the request's `content`, a file under the
server's ingest root (`path`), or a URL fetched within limits (`url`). The choice lives here,
not in the route, so that every caller that takes documents (the API, the dashboard next)
reads them alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from atende.config import Settings
from atende.errors import InvalidInput
from atende.knowledge.fetch import fetch
from atende.knowledge.schemas import DocumentIn


@dataclass(frozen=True)
class Submission:
    data: bytes
    source: str  # the name that identifies the document
    content_type: str | None  # None: told by the source's extension or the bytes


def resolve_under(root: Path | None, path: str) -> Path:
    """``path`` inside ``root``; refuses traversal out of it, symlinks included."""
    if root is None:
        raise InvalidInput("reading server paths is disabled: send `content`, or set ATENDE_INGEST_ROOT")
    if "\x00" in path:
        raise InvalidInput("path must not contain NUL bytes")
    base = root.resolve()
    target = (base / path).resolve()
    if not target.is_relative_to(base):
        raise InvalidInput(f"path '{path}' is outside the ingest root")
    if not target.is_file():
        raise InvalidInput(f"path '{path}' is not a file under the ingest root")
    return target


async def read_submission(body: DocumentIn, settings: Settings) -> Submission:
    """The bytes, source name and content type of a submitted document. ``InvalidInput``
    unless exactly one of `content`, `path` or `url` is sent, or when the one sent cannot
    be read."""
    if sum(x is not None for x in (body.content, body.path, body.url)) != 1:
        raise InvalidInput("send exactly one of `content`, `path` or `url`")
    kind: str | None = body.content_type
    if body.url is not None:
        fetched = await fetch(
            body.url,
            max_bytes=settings.max_document_bytes,
            timeout=settings.ingest_fetch_timeout_seconds,
            allow_private=settings.ingest_allow_private_networks,
        )
        data, source, kind = fetched.data, body.source or body.url, fetched.kind
    elif body.path is not None:
        target = resolve_under(settings.ingest_root, body.path)
        if target.stat().st_size > settings.max_document_bytes:
            raise InvalidInput(f"the file is larger than {settings.max_document_bytes} bytes")
        data, source = target.read_bytes(), body.source or body.path
    else:
        if not body.source:
            raise InvalidInput("`source` is required with `content` (e.g. 'faq/shipping.md')")
        data, source = (body.content or "").encode(), body.source
    return Submission(data, source, kind or ("markdown" if not Path(source).suffix else None))
