"""``/v1`` route of answer ratings: the API channel's customer rates a bot answer (thumbs up
or down, an optional comment), as the web chat widget does through its own route."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from atende.feedback import ratings
from atende.feedback.ratings_models import AnswerRating
from atende.tenancy.deps import AgentTenant

router = APIRouter(prefix="/v1", tags=["conversations"])


class RatingIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"helpful": False, "comment": "Não respondeu."}]}
    )
    helpful: bool = Field(description="`true`: thumbs up (helpful); `false`: thumbs down.")
    comment: str | None = Field(
        default=None,
        max_length=4 * ratings.COMMENT_MAX,  # the service says the real limit, after stripping
        description=f"Optional, at most {ratings.COMMENT_MAX} characters; empty: none.",
    )


class RatingPublic(BaseModel):
    conversation_id: uuid.UUID
    message_id: uuid.UUID
    trace_id: uuid.UUID | None = Field(description="The trace of the turn that wrote the answer.")
    helpful: bool
    comment: str | None
    channel: str = Field(description="Where it was rated: `api` or `webchat`.")
    rated_at: datetime
    changed: bool = Field(description="False: the same rating was sent again (nothing changed).")


def rating_public(rating: AnswerRating, changed: bool) -> RatingPublic:
    return RatingPublic(
        conversation_id=rating.conversation_id,
        message_id=rating.message_id,
        trace_id=rating.trace_id,
        helpful=rating.helpful,
        comment=rating.comment,
        channel=rating.channel,
        rated_at=rating.rated_at,
        changed=changed,
    )


@router.put(
    "/conversations/{conversation_id}/messages/{message_id}/rating",
    response_model=RatingPublic,
    summary="Rate a bot answer (thumbs up or down)",
)
async def rate_answer(
    conversation_id: uuid.UUID, message_id: uuid.UUID, body: RatingIn, tenant: AgentTenant
) -> RatingPublic:
    """The customer's rating of one of the bot's answers in this conversation, with an
    optional comment; rating it again replaces the rating. A change emits `message.rated`.
    `404` for a conversation or message that is not yours or a message of another
    conversation, `422` for a message that is not the bot's or a comment over the limit."""
    async with tenant.transaction() as session:
        rated = await ratings.rate_answer(
            session,
            tenant.runtime.jobs,
            conversation_id,
            message_id,
            helpful=body.helpful,
            comment=body.comment,
            channel="api",
            now=tenant.runtime.clock(),
        )
        return rating_public(rated.rating, rated.changed)
