"""A conversation's page: the whole thread (the customer, the bot with its cited sources and a
link to its turn's trace, agents with each reply's delivery status, the team's private notes,
the customers' files shown, played or offered for download, state changes in words), why it
was handed to people, the customer, and what an agent does to it: reply, note, assign, give
to a team, hand back to the bot, resolve, reopen, snooze, labels, canned responses by ``/``
and a suggested reply.

Every read and every action is a service the API calls (``conversations.service``,
``conversations.labels``, ``teams.service``, ``teams.canned``, ``engine.assist``,
``engine.service``) with the signed-in person as the caller. Actions answer HTMX with the
parts of the page they changed (the conversation's status, its thread, a notice); a form
sent without JavaScript gets the page again. Viewers see no action, and an action they send
anyway is refused (403) by the page's role; another company's conversation is a 404.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from atende.channels.whatsapp import templates as wa_templates
from atende.channels.whatsapp.channel import KIND as WHATSAPP
from atende.conversations import attachments, labels
from atende.conversations import service as conversations
from atende.conversations.models import Message, StateTransition
from atende.conversations.states import State
from atende.dashboard.auth import AgentPage, Member, ViewerPage
from atende.dashboard.i18n import N_
from atende.dashboard.inbox import choices
from atende.dashboard.sla_time import STATUS_NAMES, TARGET_NAMES, priority_names, time_to_breach
from atende.dashboard.traces import turn_view
from atende.dashboard.web import (
    NOTICES,
    PageRoute,
    context,
    environment,
    gettext,
    is_htmx,
    problem,
    redirect,
    render,
)
from atende.dashboard.wording import LANGUAGE_NAMES, handoff_reason
from atende.engine import assist
from atende.engine import service as engine
from atende.engine.models import Trace
from atende.errors import AtendeError, InvalidInput, NotFound
from atende.feedback import ratings
from atende.feedback import service as csat
from atende.feedback.ratings_models import AnswerRating
from atende.media import service as media
from atende.media.store import CHUNK_BYTES, MediaTooLarge, spool
from atende.sla import service as sla
from atende.teams import canned
from atende.teams import service as teams
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)

THREAD_MAX = 500  # messages a page shows (the newest, if a conversation has more)
PREVIOUS_MAX = 10
Text = Annotated[str, Form(max_length=100_000)]
Ref = Annotated[str, Form(max_length=320)]


@dataclass(frozen=True)
class ThreadItem:
    """A line of the thread: a message, or a state change said in words (``event``)."""

    at: datetime
    message: Message | None = None
    event: str | None = None
    author: str = ""  # who wrote the message, as the page names them
    trace: Trace | None = None  # the bot turn that wrote it
    rating: AnswerRating | None = None  # the customer's thumbs on it (a bot answer)
    media: MediaView | None = None  # the file it carries (``_media.html``)


@dataclass(frozen=True)
class MediaView:
    """A message's file as the thread shows it: ``kind`` (image, sticker, audio, voice, video,
    document) says how, ``state`` whether it is ``stored`` (at ``src``), still ``fetching``,
    or ``failed`` (``error``: a kind of ``channels.whatsapp.media.ERRORS``, ``detail``)."""

    kind: str
    state: str
    src: str = ""
    filename: str = ""
    size: int | None = None
    caption: str = ""
    sent_by_customer: bool = True
    error: str = ""
    detail: str = ""


MEDIA_KINDS = frozenset({"image", "sticker", "audio", "voice", "video", "document"})


def media_view(message: Message) -> MediaView | None:
    """What ``message.meta.media`` says of its file (WhatsApp's, filled in by the fetch job),
    or ``None``: no file. Its kind is WhatsApp's type, else told by the stored type."""
    meta = message.meta or {}
    media = meta.get("media")
    if not isinstance(media, dict):
        return None
    content_type = str(media.get("content_type") or media.get("mime_type") or "")
    kind = str(meta.get("whatsapp_type") or "")
    if kind not in MEDIA_KINDS:
        major = content_type.split("/", 1)[0]
        kind = major if major in ("image", "audio", "video") else "document"
    placeholder = f"[{meta.get('whatsapp_type')}]"
    caption = "" if message.text == placeholder else message.text
    size = media.get("size")
    view = MediaView(
        kind=kind,
        state="fetching",
        filename=str(media.get("filename") or ""),
        size=size if isinstance(size, int) else None,
        caption=caption,
        sent_by_customer=message.author == "customer",
    )
    if media.get("media_id"):
        return dataclasses.replace(view, state="stored", src=f"/app/media/{media['media_id']}")
    if media.get("error"):
        detail = str(media.get("error_detail") or "")
        return dataclasses.replace(view, state="failed", error=str(media["error"]), detail=detail)
    return view


# --- reading ---------------------------------------------------------------------------------


def _who(actor_type: str, actor_id: str | None, people: dict[str, str], _: Callable[[str], str]) -> str:
    if actor_type == "agent" and actor_id in people:
        return people[actor_id]
    return {
        "agent": _("an agent"),
        "api": _("the API"),
        "bot": _("the bot"),
        "customer": _("the customer"),
        "system": _("the system"),
    }.get(actor_type, actor_type)


def _event(t: StateTransition, people: dict[str, str], _: Callable[[str], str]) -> str | None:
    """A state change in words (``None``: not worth a line, the conversation's opening)."""
    who = _who(t.actor_type, t.actor_id, people, _)
    reason = t.reason or ""
    if t.from_state == "new":
        return None
    if t.to_state == State.waiting_human.value:
        if t.from_state == t.to_state:
            return _("%(who)s moved it to another team's queue.") % {"who": who}
        return _("Handed to the team. %(why)s") % {"why": handoff_reason(reason, _)}
    if t.to_state == State.human.value:
        if reason.startswith("assigned to "):
            assignee = people.get(reason.removeprefix("assigned to "), _("an agent"))
            return _("%(who)s assigned it to %(assignee)s.") % {"who": who, "assignee": assignee}
        if t.from_state == State.resolved.value:
            return _("%(who)s reopened it.") % {"who": who}
        return _("%(who)s took the conversation.") % {"who": who}
    if t.to_state == State.bot.value:
        if t.actor_type == "customer":
            return _("The customer wrote again: the bot answers.")
        return _("%(who)s handed it back to the bot.") % {"who": who}
    if t.to_state == State.resolved.value:
        return _("%(who)s resolved it.") % {"who": who}
    return None


def context_shown(context: dict[str, Any] | None) -> dict[str, Any]:
    """A conversation's context as its page shows it: the page and the product, then the other
    keys (the company's own, such as ``region``) in order of their names; empty: none given."""
    given = {str(k): str(v) for k, v in (context or {}).items() if str(v)}
    page, product = given.pop("page", ""), given.pop("product", "")
    return {
        "page": page,
        "product": product,
        "others": sorted(given.items()),
        "any": bool(page or product or given),
    }


async def _people(session: AsyncSession) -> dict[str, str]:
    """The company's agents' names by user id (as a transition's ``actor_id`` holds them)."""
    return {str(a.user.id): a.user.name or a.user.email for a in await teams.agents(session)}


async def read(member: Member, conversation_id: uuid.UUID) -> dict[str, Any]:
    """Everything the page shows of one conversation (``NotFound``: not the company's)."""
    _ = gettext(member.visitor)
    principal = member.tenant.principal
    async with member.tenant.transaction() as session:
        conversation = await conversations.get_conversation(session, conversation_id)
        messages = await conversations.list_messages(
            session, conversation_id, include_notes=True, limit=THREAD_MAX
        )
        transitions = await conversations.list_transitions(session, conversation_id)
        traces = await engine.list_traces(session, conversation_id)
        contact = await conversations.get_contact(session, conversation.contact_id)
        previous = [
            c
            for c in await conversations.contact_conversations(session, contact.id, limit=PREVIOUS_MAX + 1)
            if c.id != conversation.id
        ][:PREVIOUS_MAX]
        on_it = await labels.conversation_labels(session, conversation_id)
        offered = await choices(session, principal.company_id)
        people = await _people(session)
        window = await conversations.reply_window(session, conversation)
        rated = await ratings.ratings_of(session, [m.id for m in messages if m.author == "bot"])
        surveys = await csat.conversation_surveys(session, conversation_id)
        now = member.visitor.runtime.clock()
        clocks = await sla.conversation_sla(session, conversation_id, now)
    by_reply = {t.reply_message_id: t for t in traces if t.reply_message_id}
    items: list[ThreadItem] = []
    for m in messages:
        if m.author == "customer":
            author = contact.name or _("Customer")
        elif m.author in ("agent", "note"):
            author = people.get(str(m.author_user_id), "") or _("an agent")
        else:
            author = ""
        items.append(
            ThreadItem(
                m.created_at,
                message=m,
                author=author,
                trace=by_reply.get(m.id),
                media=media_view(m),
                rating=rated.get(m.id),
            )
        )
    for t in transitions:
        said = _event(t, people, _)
        if said:
            items.append(ThreadItem(t.created_at, event=said))
    items.sort(key=lambda item: (item.at, item.message.seq if item.message else 0))
    handoffs = [
        t for t in transitions if t.to_state == State.waiting_human.value and t.from_state != t.to_state
    ]
    return {
        "conversation": conversation,
        "contact": contact,
        "thread": items,
        "last_seq": messages[-1].seq if messages else 0,
        "previous": previous,
        "on_it": on_it,
        "assignee_name": people.get(str(conversation.assignee_id), "") if conversation.assignee_id else "",
        "team": next((t for t in offered["teams"] if t.id == conversation.team_id), None),
        "handoff": handoff_reason(handoffs[-1].reason, _) if handoffs else None,
        "where": context_shown(conversation.context),
        "can_act": member.role.allows(Role.agent),
        "max_chars": member.visitor.runtime.settings.max_message_chars,
        "window": window,
        "surveys": surveys,  # the customer's satisfaction answers, newest first
        "sla": clocks,
        "breach": time_to_breach(clocks.next_due_at, now, _) if clocks.next_due_at else None,
        "priority_names": priority_names(_),
        "target_names": TARGET_NAMES,
        "sla_status_names": STATUS_NAMES,
        "whatsapp": conversation.channel == WHATSAPP,
        # the files the composer offers to attach (none: no "Attach a file")
        "attach_types": sorted(attachments.accepted(conversation.channel)),
        "attach_max_mb": round(member.visitor.runtime.settings.media_max_bytes / 1024 / 1024, 1),
        **offered,
    }


async def template_picker(
    member: Member, conversation_id: uuid.UUID, chosen: str, values: list[str]
) -> dict[str, Any]:
    """The template picker of a WhatsApp conversation: the number's approved templates (one
    cached Graph call), the one chosen (``name|language``) with its parameters and the text
    the customer would read; ``error``: why the templates could not be listed."""
    _ = gettext(member.visitor)
    try:
        offer = await wa_templates.offer(member.tenant, conversation_id)
    except AtendeError as exc:
        return {"error": _("The templates could not be listed: %(reason)s") % {"reason": exc.message}}
    template = next((t for t in offer.templates if t.key == chosen and not t.unsupported), None)
    values = (values + [""] * len(template.parameters))[: len(template.parameters)] if template else []
    return {
        "items": offer.templates,
        "chosen": template,
        "values": values,
        "preview": template.render(values) if template else "",
    }


@router.get("/conversations/{conversation_id}")
async def conversation_page(
    member: ViewerPage,
    conversation_id: uuid.UUID,
    part: Annotated[str, Query(max_length=20)] = "",
    templates: Annotated[str, Query(max_length=1)] = "",
    template: Annotated[str, Query(max_length=600)] = "",
    p: Annotated[list[str], Query(max_length=60)] = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    values = await read(member, conversation_id)
    if values["whatsapp"] and values["can_act"] and (templates or template or not values["window"].open):
        picked = [v[: wa_templates.PARAM_MAX] for v in p]
        values["picker"] = await template_picker(member, conversation_id, template, picked)
    if part == "thread":
        return render(member.visitor, "_thread.html", **values)
    if part == "status":
        return render(member.visitor, "_conversation_status.html", **values)
    return render(member.visitor, "conversation.html", **values)


@router.get("/conversations/{conversation_id}/traces")
async def traces_page(member: ViewerPage, conversation_id: uuid.UUID) -> Response:
    """Each bot turn of the conversation: the question, the chunks it retrieved with their
    scores, the decision and its reason, and how long each step took."""
    async with member.tenant.transaction() as session:
        conversation = await conversations.get_conversation(session, conversation_id)
        contact = await conversations.get_contact(session, conversation.contact_id)
        traces = await engine.list_traces(session, conversation_id)
        rated = await ratings.ratings_of_traces(session, conversation_id)
        messages = {
            m.id: m for m in await conversations.list_messages(session, conversation_id, limit=THREAD_MAX)
        }
        offered = await choices(session, member.tenant.principal.company_id)
    _ = gettext(member.visitor)
    turns = [
        turn_view(t, messages[t.message_id].text if t.message_id in messages else "", _, rated.get(t.id))
        for t in traces
    ]
    return render(
        member.visitor,
        "traces.html",
        conversation=conversation,
        contact=contact,
        turns=turns,
        zone=offered["zone"],
        language_names=LANGUAGE_NAMES,
    )


# --- acting ----------------------------------------------------------------------------------

_TOO_LONG = re.compile(r"text is (?P<length>\d+) characters long; the limit is (?P<limit>\d+)")


def explain_action(member: Member, exc: AtendeError) -> str:
    """A service's refusal of an action, said in the reader's language."""
    _ = gettext(member.visitor)
    message = exc.message
    if (too_long := _TOO_LONG.fullmatch(message)) is not None:
        return _("The text is too long: %(length)s characters; at most %(limit)s.") % {
            "length": too_long["length"],
            "limit": too_long["limit"],
        }
    known = (
        ("text must not be empty", N_("Write something first.")),
        ("text must not contain NUL", N_("The text holds a character that cannot be stored. Remove it.")),
        ("agent:", N_("That person is not an agent of this company.")),
        ("the conversation is already assigned", N_("It is assigned to that person already.")),
        ("team:", N_("The company has no such team.")),
        ("the conversation waits in that team's queue", N_("It waits in that team's queue already.")),
        ("conversation is already", N_("The conversation is in that state already.")),
        ("cannot move a conversation", N_("The conversation cannot go there from where it is.")),
        ("only a resolved conversation", N_("Only a resolved conversation can be reopened.")),
        ("a resolved conversation cannot be snoozed", N_("A resolved conversation cannot be snoozed.")),
        ("until must be in the future", N_("Choose a time in the future.")),
        ("a conversation is snoozed for at most", N_("A conversation is snoozed for at most 366 days.")),
        ("until must", N_("Choose a date and time.")),
        ("no business hours are set", N_("No business hours are set, so there is no next business day.")),
        ("the business hours never open", N_("The business hours never open again.")),
        ("the conversation is not snoozed", N_("The conversation is not snoozed.")),
        (
            "the customer has not written yet",
            N_("The customer has not written yet: there is nothing to answer."),
        ),
        (
            "the customer's last message is more than",
            N_(
                "The customer's last message was more than 24 hours ago: WhatsApp accepts only "
                "an approved template now. Choose one under “Send a template”."
            ),
        ),
        ("no approved template", N_("That template is not approved on this number.")),
        ("template '", N_("Fill in every parameter of the template.")),
        (
            "that template",
            N_(
                "That template has a media file or parameters in its header or buttons: "
                "it cannot be sent from here."
            ),
        ),
        ("parameter {{", N_("Fill in every parameter of the template (at most 1,024 characters each).")),
        ("the templates could not be listed", N_("WhatsApp could not be asked for the templates.")),
        ("name", N_("A label's name has 1 to 50 characters.")),
        ("this channel cannot send files", N_("This channel cannot send files: send text only.")),
        ("attachments:", N_("That file is not one of this company's.")),
    )
    if isinstance(exc, MediaTooLarge):
        return _("The file is too large: at most %(mb)s MB.") % {"mb": round(exc.limit / 1024 / 1024, 1)}
    if exc.field == "attachments" and " bytes; the " in message:
        return _("The file is larger than this channel sends.")
    if exc.field == "attachments" and "cannot send files of type" in message:
        return _("This channel cannot send this type of file.")
    for start, said in known:
        if message.startswith(start):
            return _(said)
    if isinstance(exc, NotFound) and "label" in message:
        return _("The company has no such label.")
    return _("Nothing was changed: %(reason)s") % {"reason": message}


async def _after(member: Member, conversation_id: uuid.UUID, notice: str) -> Response:
    """What an action answers: HTMX gets the conversation's status and thread and a notice,
    swapped in place (the composer keeps its place); a plain form, the page again."""
    url = f"/app/conversations/{conversation_id}"
    if not is_htmx(member.visitor.request):
        return redirect(url, notice=notice)
    values = await read(member, conversation_id)
    env = environment(member.visitor.language)
    full = context(member.visitor, **values)
    status = env.get_template("_conversation_status.html").render(full)
    thread = env.get_template("_thread.html").render(full)
    note = env.get_template("_notice.html").render(
        message=gettext(member.visitor)(NOTICES[notice]), error=False
    )
    return Response(
        status
        + thread.replace('id="thread"', 'id="thread" hx-swap-oob="outerHTML"', 1)
        + f'<div id="notice" hx-swap-oob="innerHTML">{note}</div>',
        media_type="text/html",
    )


async def _act(member: Member, conversation_id: uuid.UUID, notice: str, work: Any) -> Response:
    """Run ``work(session)`` in one transaction; a refusal is a notice (or a page), nothing
    changed; another company's conversation, a 404."""
    try:
        async with member.tenant.transaction() as session:
            await work(session)
    except AtendeError as exc:
        if isinstance(exc, NotFound) and "conversation" in exc.message:
            raise
        _ = gettext(member.visitor)
        return problem(
            member.visitor,
            exc.status_code if exc.status_code != 404 else 422,
            _("This could not be done"),
            explain_action(member, exc),
        )
    return await _after(member, conversation_id, notice)


async def _write(
    member: Member,
    conversation_id: uuid.UUID,
    text: str,
    notice: str,
    write: Callable[..., Awaitable[Any]],
    **person: uuid.UUID | None,
) -> Response:
    """A reply or a note: ``text`` checked against the company's message limit, then written
    by ``write`` as the signed-in agent; ``person`` names them as that service asks (the
    reply's assignee, the note's author)."""
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        body = conversations.clean_text(text, tenant.runtime.settings.max_message_chars)
        await write(
            session, tenant.runtime.jobs, conversation_id, text=body, agent_id=tenant.actor_id, **person
        )

    return await _act(member, conversation_id, notice, work)


REPLY_PATH = re.compile(r"/app/conversations/[0-9A-Fa-f-]{32,36}/reply")  # may carry a file


@router.post("/conversations/{conversation_id}/reply")
async def reply(member: AgentPage, conversation_id: uuid.UUID, request: Request, text: Text = "") -> Response:
    """The agent's reply, with the file chosen in "Attach a file" if one was (a multipart
    form): stored in the company's media store and sent with the reply, in one transaction
    (a refused reply keeps no row of it). Too large, or a channel that cannot send files, is
    a notice; nothing is sent."""
    me = member.tenant.principal.user_id
    sent = (await request.form()).get("file")
    if not isinstance(sent, UploadFile) or not sent.filename:
        return await _write(
            member, conversation_id, text, "reply", conversations.post_agent_reply, assignee_id=me
        )
    tenant = member.tenant
    settings = tenant.runtime.settings
    try:
        received = await spool(_chunks(sent), settings.media_max_bytes)
    except MediaTooLarge as exc:
        _ = gettext(member.visitor)
        return problem(member.visitor, 413, _("This could not be done"), explain_action(member, exc))

    async def work(session: AsyncSession) -> None:
        body = conversations.clean_text(text, settings.max_message_chars) if text.strip() else ""
        conversation = await conversations.get_conversation(session, conversation_id)
        attachments.check(conversation.channel, media.media_type(sent.content_type), received.size)
        store = media.media_store(tenant.runtime)
        file = await media.put(
            session,
            store,
            received,
            content_type=sent.content_type,
            filename=sent.filename,
            max_bytes=settings.media_max_bytes,
        )
        try:
            await conversations.post_agent_reply(
                session,
                tenant.runtime.jobs,
                conversation_id,
                text=body,
                agent_id=tenant.actor_id,
                assignee_id=me,
                attachments=[file.id],
            )
        except BaseException:  # refused (the window closed...): its file goes with its row
            await store.delete(file.storage_key)
            raise

    try:
        return await _act(member, conversation_id, "reply", work)
    finally:
        received.file.close()


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while piece := await upload.read(CHUNK_BYTES):
        yield piece


@router.post("/conversations/{conversation_id}/template")
async def send_template(
    member: AgentPage,
    conversation_id: uuid.UUID,
    name: Annotated[str, Form(max_length=512)] = "",
    language: Annotated[str, Form(max_length=15)] = "",
    p: Annotated[list[str], Form(max_length=60)] = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    """Send an approved WhatsApp template (the API's ``POST .../whatsapp/templates``)."""
    try:
        await wa_templates.send(member.tenant, conversation_id, name, language, list(p))
    except AtendeError as exc:
        if isinstance(exc, NotFound) and "conversation" in exc.message:
            raise
        _ = gettext(member.visitor)
        return problem(
            member.visitor,
            exc.status_code if exc.status_code != 404 else 422,
            _("This could not be done"),
            explain_action(member, exc),
        )
    return await _after(member, conversation_id, "template")


@router.post("/conversations/{conversation_id}/note")
async def note(member: AgentPage, conversation_id: uuid.UUID, text: Text = "") -> Response:
    me = member.tenant.principal.user_id
    return await _write(member, conversation_id, text, "note", conversations.add_note, author_user_id=me)


@router.post("/conversations/{conversation_id}/assign")
async def assign(member: AgentPage, conversation_id: uuid.UUID, agent: Ref = "me") -> Response:
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        await conversations.get_conversation(session, conversation_id)  # 404 before the agent's 422
        assignee = await tenancy.assignee(session, tenant.principal, agent or "me")
        await conversations.assign(
            session,
            tenant.runtime.jobs,
            conversation_id,
            assignee_id=assignee,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
        )

    return await _act(member, conversation_id, "assign", work)


@router.post("/conversations/{conversation_id}/team")
async def give_to_team(member: AgentPage, conversation_id: uuid.UUID, team: Ref = "") -> Response:
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        await teams.send_to_team(
            session,
            tenant.runtime.jobs,
            conversation_id,
            team,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
            now=tenant.runtime.clock(),
        )

    return await _act(member, conversation_id, "team", work)


async def _move(
    member: Member, conversation_id: uuid.UUID, target: State, reason: str, notice: str
) -> Response:
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        await conversations.change_state(
            session,
            tenant.runtime.jobs,
            conversation_id,
            target,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
            reason=reason,
            now=tenant.runtime.clock(),
        )

    return await _act(member, conversation_id, notice, work)


@router.post("/conversations/{conversation_id}/handback")
async def hand_back(member: AgentPage, conversation_id: uuid.UUID) -> Response:
    return await _move(member, conversation_id, State.bot, "handed back", "handback")


@router.post("/conversations/{conversation_id}/resolve")
async def resolve(member: AgentPage, conversation_id: uuid.UUID) -> Response:
    return await _move(member, conversation_id, State.resolved, "resolved", "resolve")


@router.post("/conversations/{conversation_id}/reopen")
async def reopen(member: AgentPage, conversation_id: uuid.UUID) -> Response:
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        await conversations.reopen(
            session,
            tenant.runtime.jobs,
            conversation_id,
            assignee_id=tenant.principal.user_id,
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
        )

    return await _act(member, conversation_id, "reopen", work)


def snooze_instant(until: str, zone: str, fallback: Any) -> datetime:
    """The instant a snooze form names: a ``datetime-local`` value read in the browser's zone
    (``zone``, filled by dashboard.js), else the company's."""
    try:
        local = datetime.fromisoformat(until)
    except ValueError:
        raise InvalidInput("until must be a date and time", field="until") from None
    if local.tzinfo is not None:
        return local
    try:
        where = ZoneInfo(zone) if zone else fallback
    except (ZoneInfoNotFoundError, ValueError):
        where = fallback
    return local.replace(tzinfo=where)


@router.post("/conversations/{conversation_id}/snooze")
async def snooze(
    member: AgentPage,
    conversation_id: uuid.UUID,
    until: Annotated[str, Form(max_length=40)] = "",
    zone: Annotated[str, Form(max_length=60)] = "",
    next_business_day: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        when: datetime | str
        if next_business_day:
            when = teams.NEXT_BUSINESS_DAY
        else:
            offered = await choices(session, tenant.principal.company_id)
            when = snooze_instant(until, zone, offered["zone"])
        await teams.snooze(
            session,
            tenant.runtime.jobs,
            tenant.principal.company_id,
            conversation_id,
            when,
            now=tenant.runtime.clock(),
            actor_type=tenant.actor_type,
            actor_id=tenant.actor_id,
        )

    return await _act(member, conversation_id, "snooze", work)


@router.post("/conversations/{conversation_id}/unsnooze")
async def unsnooze(member: AgentPage, conversation_id: uuid.UUID) -> Response:
    tenant = member.tenant

    async def work(session: AsyncSession) -> None:
        await conversations.unsnooze(session, tenant.runtime.jobs, conversation_id, actor_id=tenant.actor_id)

    return await _act(member, conversation_id, "unsnooze", work)


@router.post("/conversations/{conversation_id}/labels")
async def add_label(
    member: AgentPage, conversation_id: uuid.UUID, label: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """Put a label on: one of the company's by name, or a new one of that name."""

    async def work(session: AsyncSession) -> None:
        await conversations.get_conversation(session, conversation_id)
        name = labels.clean_name(label)
        try:
            found = await labels.get_label(session, name)
        except NotFound:
            found = await labels.create_label(session, name=name)
        await labels.add_label(session, conversation_id, str(found.id))

    return await _act(member, conversation_id, "label_added", work)


@router.post("/conversations/{conversation_id}/priority")
async def set_priority(
    member: AgentPage, conversation_id: uuid.UUID, priority: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    """Set the priority SLA policies choose by."""

    async def work(session: AsyncSession) -> None:
        await sla.set_priority(session, conversation_id, priority)

    return await _act(member, conversation_id, "priority_set", work)


@router.post("/conversations/{conversation_id}/labels/remove")
async def remove_label(
    member: AgentPage, conversation_id: uuid.UUID, label: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    async def work(session: AsyncSession) -> None:
        await labels.remove_label(session, conversation_id, label)

    return await _act(member, conversation_id, "label_removed", work)


# --- the composer's helpers ------------------------------------------------------------------


@router.get("/conversations/{conversation_id}/canned")
async def canned_choices(
    member: AgentPage, conversation_id: uuid.UUID, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    """The canned responses whose code starts with ``q`` (then titles containing it), as the
    options of the composer's list."""
    async with member.tenant.transaction() as session:
        await conversations.get_conversation(session, conversation_id)
        found = await canned.list_canned(session, q=q, limit=20)
    return render(member.visitor, "_canned_options.html", found=found)


@router.get("/conversations/{conversation_id}/canned/render")
async def canned_render(
    member: AgentPage, conversation_id: uuid.UUID, code: Annotated[str, Query(max_length=40)] = ""
) -> Response:
    """A canned response filled for this conversation and this agent (nothing is stored)."""
    _ = gettext(member.visitor)
    try:
        async with member.tenant.transaction() as session:
            _row, rendered = await canned.render(
                session, code, conversation_id, member.tenant.principal.user_id
            )
    except NotFound as exc:
        if "conversation" in exc.message:
            raise
        return JSONResponse({"error": _("There is no canned response with that code.")}, status_code=404)
    missing = (
        _("These variables have no value here and were left empty: %(names)s")
        % {"names": ", ".join("{{" + name + "}}" for name in rendered.missing)}
        if rendered.missing
        else ""
    )
    return JSONResponse({"text": rendered.text, "missing": missing})


@router.post("/conversations/{conversation_id}/suggestion")
async def suggestion(member: AgentPage, conversation_id: uuid.UUID) -> Response:
    """A draft reply to the customer's last message from the knowledge base, with its sources,
    for the composer (nothing is stored or sent)."""
    _ = gettext(member.visitor)
    try:
        draft = await assist.suggest_reply(
            member.visitor.runtime, member.tenant.principal.company_id, conversation_id
        )
    except InvalidInput as exc:
        return problem(member.visitor, 422, _("No suggested reply"), explain_action(member, exc))
    return render(member.visitor, "_suggestion.html", draft=draft)
