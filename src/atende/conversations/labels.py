"""Labels: a company's own set ("urgente", "vip", "troca") and the labels on its conversations.

A label is named once per company whatever its case ("VIP" and "vip" are one label: a unique
index on ``lower(name)``); a request names a label by its id or by its name. Putting a label
on a conversation, or taking it off, is idempotent, and agents' screens hear of it live (the
conversation's topic and the company's queue topic). Labels do not move a conversation in
the inbox: they are not activity of the customer's or the team's.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations.models import ConversationLabel, Label
from atende.conversations.service import get_conversation, queue_topic
from atende.db.pubsub import publish
from atende.db.scope import company_of
from atende.errors import Conflict, InvalidInput, NotFound

NAME_MAX = 50
_SPACES = re.compile(r"\s+")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")


def clean_name(name: str, *, field: str = "name") -> str:
    """A label's name as stored: trimmed, inner runs of spaces made one; 1 to 50 characters,
    no control characters."""
    cleaned = _SPACES.sub(" ", name).strip()
    if not cleaned:
        raise InvalidInput(f"{field}: a label needs a name", field=field)
    if len(cleaned) > NAME_MAX:
        raise InvalidInput(f"{field}: a label's name has at most {NAME_MAX} characters", field=field)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in cleaned):
        raise InvalidInput(f"{field}: a label's name must not contain control characters", field=field)
    return cleaned


def clean_color(color: str | None) -> str | None:
    if color is None:
        return None
    if not _COLOR.fullmatch(color):
        raise InvalidInput(f"color: '{color}' is not a colour like #1f6feb", field="color")
    return color.lower()


async def list_labels(session: AsyncSession) -> list[Label]:
    return list(await session.scalars(select(Label).order_by(func.lower(Label.name), Label.id)))


async def create_label(session: AsyncSession, *, name: str, color: str | None = None) -> Label:
    """A new label; ``Conflict`` when the company has one of that name (in any case)."""
    name, color = clean_name(name), clean_color(color)
    if await _by_name(session, name) is not None:
        raise Conflict(f"a label '{name}' already exists", field="name")
    label = Label(id=uuid.uuid4(), name=name, color=color)
    session.add(label)
    try:
        async with session.begin_nested():  # two agents creating one label at once
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a label '{name}' already exists", field="name") from None
    return label


async def _by_name(session: AsyncSession, name: str) -> Label | None:
    label: Label | None = await session.scalar(select(Label).where(func.lower(Label.name) == name.lower()))
    return label


async def get_label(session: AsyncSession, ref: str) -> Label:
    """A label of the session's company by id or name; ``NotFound`` when there is none
    (another company's id included)."""
    label: Label | None = None
    if "\x00" in ref:  # no name holds one (``clean_name``)
        raise NotFound(f"no label {ref!r}")
    with contextlib.suppress(ValueError):  # not an id: a name
        label = await session.get(Label, uuid.UUID(ref))
    if label is None and len(ref) <= NAME_MAX * 4:
        label = await _by_name(session, _SPACES.sub(" ", ref).strip())
    if label is None:
        raise NotFound(f"no label '{ref}'")
    return label


async def delete_label(session: AsyncSession, ref: str) -> None:
    """Delete a label; it comes off every conversation that had it."""
    label = await get_label(session, ref)
    await session.delete(label)
    await session.flush()


async def conversation_labels(session: AsyncSession, conversation_id: uuid.UUID) -> list[Label]:
    return (await labels_of(session, [conversation_id])).get(conversation_id, [])


async def labels_of(
    session: AsyncSession, conversation_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Label]]:
    """The labels of each of these conversations, by name (one statement for a page)."""
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(ConversationLabel.conversation_id, Label)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.conversation_id.in_(conversation_ids))
        .order_by(func.lower(Label.name), Label.id)
    )
    found: dict[uuid.UUID, list[Label]] = {}
    for conversation_id, label in rows:
        found.setdefault(conversation_id, []).append(label)
    return found


async def _announce(session: AsyncSession, conversation_id: uuid.UUID, labels: list[Label]) -> None:
    names = [label.name for label in labels]
    await publish(session, str(conversation_id), "labels", labels=names)
    queue = queue_topic(company_of(session))
    await publish(session, queue, "labels", conversation_id=str(conversation_id), labels=names)


async def add_label(session: AsyncSession, conversation_id: uuid.UUID, ref: str) -> list[Label]:
    """Put a label on a conversation (nothing changes if it has it); its labels afterwards.
    ``NotFound`` for a conversation or a label the company does not have."""
    await get_conversation(session, conversation_id)
    label = await get_label(session, ref)
    inserted = await session.execute(
        pg_insert(ConversationLabel)
        .values(company_id=company_of(session), conversation_id=conversation_id, label_id=label.id)
        .on_conflict_do_nothing()
        .returning(ConversationLabel.label_id)
    )
    labels = await conversation_labels(session, conversation_id)
    if inserted.first() is not None:
        await _announce(session, conversation_id, labels)
    return labels


async def remove_label(session: AsyncSession, conversation_id: uuid.UUID, ref: str) -> list[Label]:
    """Take a label off a conversation (nothing changes if it has not it); its labels
    afterwards. ``NotFound`` for a conversation or a label the company does not have."""
    await get_conversation(session, conversation_id)
    label = await get_label(session, ref)
    removed = await session.execute(
        delete(ConversationLabel)
        .where(ConversationLabel.conversation_id == conversation_id, ConversationLabel.label_id == label.id)
        .returning(ConversationLabel.label_id)
        .execution_options(synchronize_session=False)
    )
    labels = await conversation_labels(session, conversation_id)
    if removed.first() is not None:
        await _announce(session, conversation_id, labels)
    return labels
