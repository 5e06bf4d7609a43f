"""Who of the team is on a conversation now: viewing it, typing a reply or a note. Nothing is
stored: each dashboard screen says so on the conversation's live topic (``presence``, which
the web chat's stream never passes on to the customer) while it is open, again every few
seconds, and once more when it closes; screens forget what they have not heard again within
``EXPIRES_SECONDS``, so a closed laptop stops "viewing" without a word."""

from __future__ import annotations

import uuid
from enum import StrEnum

from atende.db.pubsub import publish_now
from atende.db.session import Database

KIND = "presence"
REPEAT_SECONDS = 15.0  # a viewing screen says so again this often
EXPIRES_SECONDS = 40  # a screen not heard from for this long is gone
TYPING_SECONDS = 6  # "typing" lasts this long after the last keystroke heard


class Doing(StrEnum):
    viewing = "viewing"
    typing = "typing"
    left = "left"


async def announce(
    db: Database, conversation_id: uuid.UUID, *, user_id: uuid.UUID, name: str, doing: Doing
) -> None:
    """Tell the conversation's live screens what this person is doing on it now."""
    await publish_now(
        db, str(conversation_id), KIND, user_id=str(user_id), name=name[:200], doing=doing.value
    )
