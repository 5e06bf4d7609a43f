"""Message templates: what an agent may send once WhatsApp's 24-hour customer-service window
has closed (the customer's last message is older than a day; Meta then refuses free-form
text with error 131047).

Templates are made and approved in Meta's WhatsApp Manager, not here: atende lists the
approved ones of the account's WABA (``GET /{waba_id}/message_templates``, with the Graph
client's timeouts, kept for ``CACHE_SECONDS`` per account so a page of agents does not call
Meta on every view), fills the body's parameters (``{{1}}``, ``{{2}}``... or named ones,
``{{order_id}}``), shows the text the customer will read, and the outbox sends it as a
``template`` message (``WhatsAppChannel.send`` reads ``meta.whatsapp_template``).

Only the body's text parameters are filled; a template whose header or buttons take
parameters (an image header, a URL button with a variable) is listed as not sendable from
here, with the reason.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atende.channels import delivery
from atende.channels.base import Account
from atende.channels.whatsapp import graph
from atende.channels.whatsapp.channel import KIND, TEMPLATE_META, WhatsAppConfig, channel, graph_of
from atende.conversations import service as conversations
from atende.conversations.models import Message
from atende.errors import AtendeError, Conflict, InvalidInput
from atende.runtime import Runtime
from atende.tenancy.deps import Tenant

CACHE_SECONDS = 60.0
PARAM_MAX = 1024  # characters of one body parameter (Meta's limit)
PAGES_MAX = 5  # of 100 templates each: a WABA with more is unusual
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass(frozen=True)
class Template:
    """An approved template, as the picker shows it."""

    name: str
    language: str
    category: str
    body: str
    header: str = ""
    footer: str = ""
    parameters: tuple[str, ...] = ()  # the body's placeholders, in order of first use
    unsupported: str = ""  # why it cannot be sent from here ("": it can)
    buttons: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.name}|{self.language}"

    @property
    def named(self) -> bool:
        return any(not p.isdigit() for p in self.parameters)

    def render(self, values: list[str] | tuple[str, ...]) -> str:
        """The text the customer reads, with ``values`` in place (``[name]`` where missing)."""
        filled = dict(zip(self.parameters, values, strict=False))

        def put(match: re.Match[str]) -> str:
            return filled.get(match[1]) or f"[{match[1]}]"

        parts = [self.header, _PLACEHOLDER.sub(put, self.body), self.footer]
        return "\n\n".join(p for p in parts if p)


def _template(raw: dict[str, Any]) -> Template | None:
    name, language = str(raw.get("name") or ""), str(raw.get("language") or "")
    if not name or not language:
        return None
    body = header = footer = ""
    unsupported = ""
    buttons: list[str] = []
    for component in raw.get("components") or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type") or "").upper()
        text = str(component.get("text") or "")
        if kind == "BODY":
            body = text
        elif kind == "HEADER":
            if str(component.get("format") or "TEXT").upper() != "TEXT":
                unsupported = "its header is a media file"
            elif _PLACEHOLDER.search(text):
                unsupported = "its header takes a parameter"
            header = text
        elif kind == "FOOTER":
            footer = text
        elif kind == "BUTTONS":
            for button in component.get("buttons") or []:
                if not isinstance(button, dict):
                    continue
                buttons.append(str(button.get("text") or ""))
                if _PLACEHOLDER.search(str(button.get("url") or "")):
                    unsupported = "a button takes a parameter"
    parameters = tuple(dict.fromkeys(m[1] for m in _PLACEHOLDER.finditer(body)))
    return Template(
        name,
        language,
        str(raw.get("category") or ""),
        body,
        header,
        footer,
        parameters,
        unsupported,
        tuple(buttons),
    )


# account id -> (fetched at, fingerprint of where and with which token, templates)
_cache: dict[uuid.UUID, tuple[float, str, list[Template]]] = {}


def _fingerprint(account: Account) -> str:
    config = account.config
    assert isinstance(config, WhatsAppConfig)
    token = account.secrets.get("access_token", "")
    return hashlib.sha256(
        "\n".join([config.graph_api_url, config.graph_api_version, config.waba_id, token]).encode()
    ).hexdigest()


async def approved(account: Account, *, fresh: bool = False) -> list[Template]:
    """The WABA's approved templates, sorted by name and language (cached briefly);
    ``graph.GraphError`` when Meta cannot be asked, ``InvalidInput`` when the account names no
    WABA."""
    config = account.config
    assert isinstance(config, WhatsAppConfig)
    if not config.waba_id:
        raise InvalidInput(
            "the WhatsApp account has no WABA id (config.waba_id): its templates cannot be listed",
            field="waba_id",
        )
    fingerprint = _fingerprint(account)
    cached = _cache.get(account.id)
    if not fresh and cached and cached[1] == fingerprint and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[2]
    api = graph_of(account)
    found: list[Template] = []
    params = {"fields": "name,language,status,category,components", "limit": "100"}
    for _page in range(PAGES_MAX):
        answer = await graph.call(api, "GET", (config.waba_id, "message_templates"), params=params)
        for raw in answer.get("data") or []:
            if isinstance(raw, dict) and str(raw.get("status") or "").upper() == "APPROVED":
                template = _template(raw)
                if template is not None:
                    found.append(template)
        after = ((answer.get("paging") or {}).get("cursors") or {}).get("after")
        if not after or not (answer.get("paging") or {}).get("next"):
            break
        params = {**params, "after": str(after)}
    found.sort(key=lambda t: (t.name, t.language))
    _cache[account.id] = (time.monotonic(), fingerprint, found)
    return found


def choose(templates: list[Template], name: str, language: str, values: list[str]) -> Template:
    """The template an agent picked with its parameters checked (``InvalidInput`` naming what
    is wrong): approved, sendable from here, every parameter filled."""
    template = next((t for t in templates if t.name == name and t.language == language), None)
    if template is None:
        raise InvalidInput(
            f"no approved template '{name}' in language '{language}' on this number", field="name"
        )
    if template.unsupported:
        raise InvalidInput(
            f"that template ('{name}') cannot be sent from here: {template.unsupported}", field="name"
        )
    if len(values) != len(template.parameters):
        raise InvalidInput(
            f"template '{name}' takes {len(template.parameters)} parameters; {len(values)} given",
            field="parameters",
        )
    for placeholder, value in zip(template.parameters, values, strict=True):
        if not value.strip():
            raise InvalidInput(f"parameter {{{{{placeholder}}}}} must not be empty", field="parameters")
        if len(value) > PARAM_MAX or "\x00" in value:
            raise InvalidInput(
                f"parameter {{{{{placeholder}}}}} is too long or holds a NUL (at most {PARAM_MAX})",
                field="parameters",
            )
    return template


def stored(template: Template, values: list[str]) -> dict[str, Any]:
    """What the message's meta keeps, for the channel to send."""
    return {
        TEMPLATE_META: {
            "name": template.name,
            "language": template.language,
            "parameters": [{"name": p, "value": v} for p, v in zip(template.parameters, values, strict=True)],
        }
    }


class TemplatesUnavailable(AtendeError):
    """Meta could not be asked for the templates (unreachable, or the token refused)."""

    status_code = 502
    code = "whatsapp_unavailable"


@dataclass(frozen=True)
class Offer:
    """What an agent may send on a WhatsApp conversation now."""

    window: conversations.ReplyWindow
    templates: list[Template]


async def _account(runtime: Runtime, session: AsyncSession, conversation_id: uuid.UUID) -> Account:
    conversation = await conversations.get_conversation(session, conversation_id)
    if conversation.channel != KIND:
        raise InvalidInput(
            f"the conversation is on the {conversation.channel} channel: templates are WhatsApp's",
            field="conversation_id",
        )
    try:
        return await delivery.conversation_account(session, runtime, channel, conversation_id)
    except delivery.Failed as exc:
        raise Conflict(str(exc)) from exc


async def _approved(account: Account) -> list[Template]:
    try:
        return await approved(account)
    except graph.GraphError as exc:
        raise TemplatesUnavailable(f"the templates could not be listed: {exc.reason}") from exc


async def offer(tenant: Tenant, conversation_id: uuid.UUID) -> Offer:
    """The conversation's reply window and its number's approved templates (the Graph call
    outside any transaction)."""
    async with tenant.transaction() as session:
        account = await _account(tenant.runtime, session, conversation_id)
        conversation = await conversations.get_conversation(session, conversation_id)
        window = await conversations.reply_window(session, conversation)
    return Offer(window, await _approved(account))


async def send(
    tenant: Tenant, conversation_id: uuid.UUID, name: str, language: str, values: list[str]
) -> Message:
    """An agent sends an approved template: stored as the agent's reply (its text what the
    customer reads), delivered by the outbox as a ``template`` message; allowed outside the
    24-hour window, which is what templates are for."""
    async with tenant.transaction() as session:
        account = await _account(tenant.runtime, session, conversation_id)
    template = choose(await _approved(account), name, language, values)
    async with tenant.transaction() as session:
        return await conversations.post_agent_reply(
            session,
            tenant.runtime.jobs,
            conversation_id,
            text=template.render(values),
            agent_id=tenant.actor_id,
            assignee_id=tenant.principal.user_id,
            meta=stored(template, values),
            free_form=False,
        )
