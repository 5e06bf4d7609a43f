"""Fetch a knowledge-base document from a URL, carefully (``netguard.fetch_limited``).

A deadline for the whole fetch and a shorter one to connect, at most ``netguard.MAX_REDIRECTS``
redirects (each target checked like the first: no private addresses unless allowed), the
body streamed and cut off past the size limit, and only content types atende can read.
Every refusal is an ``InvalidInput`` naming the reason.
"""

from __future__ import annotations

from atende.netguard import MAX_REDIRECTS, Fetched, fetch_limited

__all__ = ["KINDS", "MAX_REDIRECTS", "Fetched", "fetch"]
KINDS = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/csv": "csv",
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
}


async def fetch(url: str, *, max_bytes: int, timeout: float, allow_private: bool) -> Fetched:
    """The document at ``url`` (see the module docstring)."""
    return await fetch_limited(
        url,
        kinds=KINDS,
        max_bytes=max_bytes,
        timeout=timeout,
        allow_private=allow_private,
        what="document",
        setting="ATENDE_INGEST_ALLOW_PRIVATE_NETWORKS",
    )
