"""The logs viewer's rated answers (``/app/logs/ratings``, owners and admins): the customers'
thumbs on the bot's answers, newest first, filtered to those rated "Not helpful" (or
"Helpful"), fifty at a time; each with the question, the answer, the comment, and a link to
the turn's trace, which shows the passages that produced the answer. The rows are
``atende.feedback.ratings``'s."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Response

from atende.dashboard.auth import AdminPage
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import company_zone
from atende.dashboard.web import PageRoute, gettext, render
from atende.feedback import ratings
from atende.teams import service as teams

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE = "/app/logs/ratings"
NOT_HELPFUL = "not_helpful"
HELPFUL = "helpful"
CHOICES = {"": N_("Any rating"), NOT_HELPFUL: N_("Rated not helpful"), HELPFUL: N_("Rated helpful")}
EXCERPT = 300  # characters of a question or an answer the list shows


def _url(rating: str, cursor: str = "") -> str:
    query = urlencode({k: v for k, v in (("rating", rating), ("cursor", cursor)) if v})
    return f"{PAGE}?{query}" if query else PAGE


def _cursor(last: ratings.Listed) -> str:
    return f"{last.rating.rated_at.isoformat()}_{last.rating.id}"


def _before(cursor: str) -> tuple[datetime, uuid.UUID] | None:
    """The keyset a cursor names; ``None`` for one atende did not give (read as the first page)."""
    at, _sep, ident = cursor.rpartition("_")
    try:
        return datetime.fromisoformat(at), uuid.UUID(ident)
    except ValueError:
        return None


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


@router.get("/logs/ratings")
async def ratings_page(
    member: AdminPage,
    rating: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    _ = gettext(member.visitor)
    error = None
    if rating not in CHOICES:
        error, rating = _("Choose a rating from the list."), ""
    before = _before(cursor) if cursor else None
    if cursor and before is None:
        error = _("That page no longer exists. Start again from the newest ratings.")
    helpful = None if not rating else rating == HELPFUL
    async with member.tenant.transaction() as session:
        zone = company_zone(await teams.company_hours(session, member.tenant.principal.company_id))
        rows = await ratings.list_ratings(
            session, helpful=helpful, before=before, limit=ratings.PAGE_SIZE + 1
        )
    more = len(rows) > ratings.PAGE_SIZE
    rows = rows[: ratings.PAGE_SIZE]
    return render(
        member.visitor,
        "logs_ratings.html",
        status=422 if error else 200,
        rows=rows,
        excerpt=excerpt,
        zone=zone,
        rating=rating,
        choices=CHOICES,
        error=error,
        first_url=_url(rating) if cursor else None,
        next_url=_url(rating, _cursor(rows[-1])) if more and rows else None,
    )
