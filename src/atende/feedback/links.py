"""The e-mail survey's one-click rating links: signed, expiring, each usable once.

A link carries ``<company id>.<survey id>.<score>.<expiry (Unix seconds)>.<signature>``, the
signature an HMAC-SHA256 of the rest under a key derived from ``ATENDE_SECRET_KEY``, so nobody can make
one for another survey or score, or stretch its life. That a link was used is the survey's
(``csat_surveys.spent_links``): a second use is refused. A comment token (score ``0``) lets
the page that recorded a rating take the customer's comment. Pure functions: no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

_PURPOSE = b"atende csat link v1"
COMMENT = 0  # the "score" of a comment token


class BadLink(ValueError):
    """A link that is not one of ours (altered, truncated, for another deployment)."""


class ExpiredLink(ValueError):
    """One of our links, past its expiry."""


@dataclass(frozen=True)
class Link:
    company_id: uuid.UUID
    survey_id: uuid.UUID
    score: int  # 1-5; COMMENT for a comment token
    expires: datetime

    @property
    def key(self) -> str:
        """What ``spent_links`` records of it (one link per survey and score)."""
        return f"{self.score}:{int(self.expires.timestamp())}"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()


def _sign(secret: str, body: str) -> str:
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def make(secret: str, company_id: uuid.UUID, survey_id: uuid.UUID, score: int, expires: datetime) -> str:
    body = f"{company_id.hex}.{survey_id.hex}.{score}.{int(expires.timestamp())}"
    return f"{body}.{_sign(secret, body)}"


def read(secret: str, token: str, now: datetime) -> Link:
    """The link ``token`` is; ``BadLink`` unless we signed it, ``ExpiredLink`` after its expiry."""
    parts = token.split(".")
    if len(parts) != 5 or len(token) > 200:
        raise BadLink("not a rating link")
    company, survey, score, expiry, signature = parts
    if not hmac.compare_digest(_sign(secret, f"{company}.{survey}.{score}.{expiry}"), signature):
        raise BadLink("the link's signature does not match")
    try:
        link = Link(
            uuid.UUID(hex=company),
            uuid.UUID(hex=survey),
            int(score),
            datetime.fromtimestamp(int(expiry), UTC),
        )
    except ValueError:
        raise BadLink("not a rating link") from None
    if link.score != COMMENT and not 1 <= link.score <= 5:
        raise BadLink("not a rating link")
    if link.expires <= now:
        raise ExpiredLink("the link has expired")
    return link
