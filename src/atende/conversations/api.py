"""``/v1`` routes of conversations: reading one, agent replies and state changes, private
notes, reopening and waking a snoozed conversation, labels (the API channel's intake,
``POST /v1/messages``, is ``atende.channels.api``; the inbox's list, ``GET
/v1/conversations``, is ``atende.teams.api``'s: its views are the caller's as a person;
snoozing, which reads business hours, is ``atende.teams.actions_api``; the suggested reply,
``atende.engine.api``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query

from atende.conversations import labels, service
from atende.conversations.schemas import (
    AgentReplyIn,
    AssignIn,
    ConversationDetail,
    ConversationPublic,
    LabelIn,
    LabelPublic,
    LabelRefIn,
    MessagePublic,
    NoteIn,
    Page,
    ReasonIn,
    StateChangeIn,
    TransitionPublic,
)
from atende.conversations.states import State
from atende.tenancy import service as tenancy
from atende.tenancy.deps import AgentTenant, Tenant, ViewerTenant

router = APIRouter(prefix="/v1", tags=["conversations"])


@router.get("/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation(conversation_id: uuid.UUID, tenant: ViewerTenant) -> ConversationDetail:
    async with tenant.transaction() as session:
        conversation = await service.get_conversation(session, conversation_id)
        transitions = await service.list_transitions(session, conversation_id)
        on_it = await labels.conversation_labels(session, conversation_id)
        due = await service.sla_due(session, [conversation_id], tenant.runtime.clock())
        return ConversationDetail(
            **ConversationPublic.model_validate(conversation).model_dump(),
            transitions=[TransitionPublic.model_validate(t) for t in transitions],
            context={k: str(v) for k, v in (conversation.context or {}).items()},
            labels=[LabelPublic.model_validate(label) for label in on_it],
            sla=due.get(conversation_id, []),
        )


@router.get("/conversations/{conversation_id}/messages", response_model=Page[MessagePublic])
async def list_messages(
    conversation_id: uuid.UUID,
    tenant: ViewerTenant,
    after: int = Query(0, ge=0, le=2**62, description="Only messages with a larger `seq`."),
    limit: int = Query(100, ge=1, le=500),
    include_notes: bool = Query(
        False, description="Also the team's private notes (`author: note`); never shown to customers."
    ),
) -> Page[MessagePublic]:
    async with tenant.transaction() as session:
        rows = await service.list_messages(
            session, conversation_id, after_seq=after, limit=limit + 1, include_notes=include_notes
        )
    items = [MessagePublic.model_validate(m) for m in rows[:limit]]
    return Page[MessagePublic](items=items, next_cursor=str(items[-1].seq) if len(rows) > limit else None)


@router.post(
    "/conversations/{conversation_id}/replies",
    response_model=MessagePublic,
    status_code=201,
    summary="Reply as a human agent",
)
async def post_agent_reply(
    conversation_id: uuid.UUID, body: AgentReplyIn, tenant: AgentTenant
) -> MessagePublic:
    """Send a reply to the customer; it may carry files uploaded with `POST /v1/media`
    (`attachments`, then `text` may be empty). A channel that cannot send files, another
    company's media id or a type the channel does not send answer 422, nothing stored."""
    files_only = bool(body.attachments) and not body.text.strip() and "\x00" not in body.text
    text = "" if files_only else service.clean_text(body.text, tenant.runtime.settings.max_message_chars)
    async with tenant.transaction() as session:
        message = await service.post_agent_reply(
            session,
            tenant.runtime.jobs,
            conversation_id,
            text=text,
            agent_id=body.agent_id or tenant.actor_id,
            assignee_id=tenant.principal.user_id,
            attachments=body.attachments,
        )
    return MessagePublic.model_validate(message)


@router.post("/conversations/{conversation_id}/state", response_model=ConversationPublic)
async def change_state(
    conversation_id: uuid.UUID, body: StateChangeIn, tenant: AgentTenant
) -> ConversationPublic:
    return await _move(tenant, conversation_id, body.state, body.reason)


@router.post("/conversations/{conversation_id}/assign", response_model=ConversationPublic)
async def assign(conversation_id: uuid.UUID, body: AssignIn, tenant: AgentTenant) -> ConversationPublic:
    """Take a conversation (`me`, with a personal key) or give it to an agent: it becomes
    `human` and theirs, and the bot stays silent until it is handed back."""
    async with tenant.transaction() as session:
        await service.get_conversation(session, conversation_id)  # 404 before anything else
        assignee = await tenancy.assignee(session, tenant.principal, body.agent)
        conversation = await service.assign(
            session,
            tenant.runtime.jobs,
            conversation_id,
            assignee_id=assignee,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
        )
    return ConversationPublic.model_validate(conversation)


async def _move(
    tenant: Tenant, conversation_id: uuid.UUID, target: State, reason: str | None
) -> ConversationPublic:
    async with tenant.transaction() as session:
        conversation = await service.change_state(
            session,
            tenant.runtime.jobs,
            conversation_id,
            target,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
            reason=reason,
            now=tenant.runtime.clock(),
        )
    return ConversationPublic.model_validate(conversation)


@router.post("/conversations/{conversation_id}/handback", response_model=ConversationPublic)
async def hand_back(
    conversation_id: uuid.UUID, tenant: AgentTenant, body: ReasonIn | None = None
) -> ConversationPublic:
    """Give the conversation back to the bot: it answers the customer's next message."""
    return await _move(tenant, conversation_id, State.bot, (body.reason if body else None) or "handed back")


@router.post("/conversations/{conversation_id}/resolve", response_model=ConversationPublic)
async def resolve(
    conversation_id: uuid.UUID, tenant: AgentTenant, body: ReasonIn | None = None
) -> ConversationPublic:
    """Close the conversation; a new customer message reopens it (to the bot)."""
    return await _move(tenant, conversation_id, State.resolved, (body.reason if body else None) or "resolved")


@router.post(
    "/conversations/{conversation_id}/notes",
    response_model=MessagePublic,
    status_code=201,
    summary="Add a private note for the team",
)
async def add_note(conversation_id: uuid.UUID, body: NoteIn, tenant: AgentTenant) -> MessagePublic:
    """A note the team reads in the thread (`author: note`, listed with `include_notes=true`);
    the customer never receives it, the bot never reads it, and only the `note.created`
    webhook carries it. It changes neither the state nor the assignee."""
    text = service.clean_text(body.text, tenant.runtime.settings.max_message_chars)
    async with tenant.transaction() as session:
        note = await service.add_note(
            session,
            tenant.runtime.jobs,
            conversation_id,
            text=text,
            agent_id=body.agent_id or tenant.actor_id,
            author_user_id=tenant.principal.user_id,
        )
    return MessagePublic.model_validate(note)


@router.post("/conversations/{conversation_id}/reopen", response_model=ConversationPublic)
async def reopen(
    conversation_id: uuid.UUID, tenant: AgentTenant, body: ReasonIn | None = None
) -> ConversationPublic:
    """Reopen a `resolved` conversation to follow it up: it becomes `human` (the bot stays
    silent) and, with a personal key, yours. Any other state is open already: `422`."""
    async with tenant.transaction() as session:
        conversation = await service.reopen(
            session,
            tenant.runtime.jobs,
            conversation_id,
            assignee_id=tenant.principal.user_id,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
            reason=body.reason if body else None,
        )
    return ConversationPublic.model_validate(conversation)


@router.post("/conversations/{conversation_id}/unsnooze", response_model=ConversationPublic)
async def unsnooze(conversation_id: uuid.UUID, tenant: AgentTenant) -> ConversationPublic:
    """Wake a snoozed conversation now (`422` when it is not snoozed)."""
    async with tenant.transaction() as session:
        conversation = await service.unsnooze(
            session, tenant.runtime.jobs, conversation_id, actor_id=tenant.actor_id
        )
    return ConversationPublic.model_validate(conversation)


# labels


@router.get("/labels", response_model=list[LabelPublic], summary="The company's labels")
async def list_labels(tenant: ViewerTenant) -> list[LabelPublic]:
    async with tenant.transaction() as session:
        return [LabelPublic.model_validate(label) for label in await labels.list_labels(session)]


@router.post("/labels", response_model=LabelPublic, status_code=201, summary="Create a label")
async def create_label(body: LabelIn, tenant: AgentTenant) -> LabelPublic:
    """A name the company has not used, whatever its case (else `409`)."""
    async with tenant.transaction() as session:
        label = await labels.create_label(session, name=body.name, color=body.color)
        return LabelPublic.model_validate(label)


LabelRef = Annotated[str, Path(min_length=1, max_length=200, description="The label's id or name.")]


@router.delete("/labels/{label}", status_code=204, summary="Delete a label (from every conversation too)")
async def delete_label(label: LabelRef, tenant: AgentTenant) -> None:
    async with tenant.transaction() as session:
        await labels.delete_label(session, label)


@router.get("/conversations/{conversation_id}/labels", response_model=list[LabelPublic])
async def conversation_labels(conversation_id: uuid.UUID, tenant: ViewerTenant) -> list[LabelPublic]:
    async with tenant.transaction() as session:
        await service.get_conversation(session, conversation_id)
        on_it = await labels.conversation_labels(session, conversation_id)
        return [LabelPublic.model_validate(label) for label in on_it]


@router.post(
    "/conversations/{conversation_id}/labels",
    response_model=list[LabelPublic],
    summary="Put a label on a conversation",
)
async def add_label(conversation_id: uuid.UUID, body: LabelRefIn, tenant: AgentTenant) -> list[LabelPublic]:
    """Answers the conversation's labels; putting on a label it has changes nothing."""
    async with tenant.transaction() as session:
        on_it = await labels.add_label(session, conversation_id, body.label)
        return [LabelPublic.model_validate(label) for label in on_it]


@router.delete(
    "/conversations/{conversation_id}/labels/{label}",
    response_model=list[LabelPublic],
    summary="Take a label off a conversation",
)
async def remove_label(conversation_id: uuid.UUID, label: LabelRef, tenant: AgentTenant) -> list[LabelPublic]:
    """Answers the conversation's labels; taking off a label it has not changes nothing."""
    async with tenant.transaction() as session:
        on_it = await labels.remove_label(session, conversation_id, label)
        return [LabelPublic.model_validate(label) for label in on_it]
