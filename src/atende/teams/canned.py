"""Canned responses: the company's ready replies, which agents insert by a short code (``/code``
in the composer) and send after editing, with variables filled for the conversation.

A template names variables as ``{{contact.name}}``, optionally with the words to use when the
value is missing: ``{{contact.name | cliente}}``. The variables are a fixed, small set
(``VARIABLES``), filled by one pass of plain substitution: nothing is evaluated, and a value
that itself looks like a variable (a contact named ``{{agent.name}}``) goes in as it is. A
template naming anything else, or with a ``{{`` or ``}}`` that opens or closes no variable, is
refused when it is saved, with the names it may use, so a saved template always renders. A
variable without a value and without fallback words renders empty and is reported
(``Rendered.missing``), so that the agent sees it before sending.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import case, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atende.conversations import service as conversations
from atende.conversations.models import Contact, Conversation
from atende.db.scope import company_of
from atende.errors import Conflict, InvalidInput, NotFound
from atende.teams.models import CannedResponse
from atende.tenancy.models import Company, User

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
CODE_RULE = "1 to 40 lower-case letters, digits, '-' or '_', starting with a letter or digit"
TITLE_MAX = 200
_VARIABLE = re.compile(r"\{\{(?P<inside>[^{}]*)\}\}")


@dataclass(frozen=True)
class Values:
    """What the variables of one conversation are filled with."""

    contact: Contact
    agent: User | None
    company: Company


VARIABLES: dict[str, Callable[[Values], str | None]] = {
    "contact.name": lambda v: v.contact.name,
    "contact.email": lambda v: v.contact.email,
    "contact.phone": lambda v: v.contact.phone,
    "agent.name": lambda v: (v.agent.name or None) if v.agent is not None else None,
    "company.name": lambda v: v.company.name,
}


@dataclass(frozen=True)
class Placeholder:
    start: int
    end: int
    name: str
    fallback: str


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: list[str]  # variables with no value and no fallback words: rendered empty


def _known() -> str:
    return ", ".join(f"{{{{{name}}}}}" for name in VARIABLES)


def placeholders(template: str) -> list[Placeholder]:
    """The template's variables, in order; ``InvalidInput`` naming the first problem: an
    unknown variable, or a ``{{``/``}}`` that belongs to none."""
    found: list[Placeholder] = []
    for match in _VARIABLE.finditer(template):
        name, _bar, fallback = match["inside"].partition("|")
        name = name.strip()
        if name not in VARIABLES:
            raise InvalidInput(
                f"unknown variable {{{{{name}}}}}: a canned response may use {_known()}", field="text"
            )
        found.append(Placeholder(match.start(), match.end(), name, fallback.strip()))
    rest = _VARIABLE.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise InvalidInput(
            "text has a '{{' or '}}' that is not part of a variable such as {{contact.name}}", field="text"
        )
    return found


def render_template(template: str, values: Mapping[str, str | None]) -> Rendered:
    """Fill the template's variables in one pass (a value is never read as a template)."""
    parts: list[str] = []
    missing: list[str] = []
    at = 0
    for p in placeholders(template):
        value = (values.get(p.name) or "").strip()
        if not value:
            value = p.fallback
            if not value and p.name not in missing:
                missing.append(p.name)
        parts += [template[at : p.start], value]
        at = p.end
    parts.append(template[at:])
    return Rendered("".join(parts), missing)


def check_code(code: str) -> str:
    code = code.strip().lower()
    if not CODE.fullmatch(code):
        raise InvalidInput(f"code must be {CODE_RULE}; got '{code[:60]}'", field="code")
    return code


def check_fields(code: str, title: str, text: str, max_chars: int) -> tuple[str, str, str]:
    """The fields as stored: code lower-cased, title and text stripped; ``InvalidInput`` for
    any that cannot be, naming the field."""
    code = check_code(code)
    title = title.strip()
    if not title or "\x00" in title or len(title) > TITLE_MAX:
        raise InvalidInput(f"title must be 1 to {TITLE_MAX} characters, without NUL bytes", field="title")
    try:
        text = conversations.clean_text(text, max_chars)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="text") from exc
    placeholders(text)
    return code, title, text


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def list_canned(
    session: AsyncSession, *, q: str | None = None, limit: int = 100
) -> list[CannedResponse]:
    """The company's canned responses by code; with ``q``, those whose code starts with it
    (first) or whose title contains it."""
    stmt = select(CannedResponse)
    if q and q.strip():
        term = q.strip().lower().removeprefix("/")
        by_code = CannedResponse.code.like(_like_prefix(term), escape="\\")
        stmt = stmt.where(
            or_(by_code, CannedResponse.title.ilike("%" + _like_prefix(term), escape="\\"))
        ).order_by(case((by_code, 0), else_=1))
    return list(await session.scalars(stmt.order_by(CannedResponse.code).limit(limit)))


async def get_canned(session: AsyncSession, code: str) -> CannedResponse:
    found = await session.scalar(select(CannedResponse).where(CannedResponse.code == code.strip().lower()))
    if found is None:
        raise NotFound(f"no canned response '{code[:60]}'")
    return found


async def _store(session: AsyncSession, canned: CannedResponse) -> CannedResponse:
    """Flush in a savepoint: a code taken meanwhile is a ``Conflict``, the transaction goes on."""
    try:
        async with session.begin_nested():
            session.add(canned)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"a canned response '{canned.code}' exists already", field="code") from exc
    return canned


async def _code_taken(session: AsyncSession, code: str, other_than: uuid.UUID | None = None) -> None:
    stmt = select(CannedResponse.id).where(CannedResponse.code == code)
    if other_than is not None:
        stmt = stmt.where(CannedResponse.id != other_than)
    if await session.scalar(stmt) is not None:
        raise Conflict(f"a canned response '{code}' exists already", field="code")


async def create_canned(
    session: AsyncSession, *, code: str, title: str, text: str, max_chars: int
) -> CannedResponse:
    code, title, text = check_fields(code, title, text, max_chars)
    await _code_taken(session, code)
    return await _store(
        session,
        CannedResponse(id=uuid.uuid4(), company_id=company_of(session), code=code, title=title, text=text),
    )


async def replace_canned(
    session: AsyncSession, current: str, *, code: str, title: str, text: str, max_chars: int
) -> CannedResponse:
    """Replace the canned response ``current`` names (its code may change, to a free one)."""
    canned = await get_canned(session, current)
    code, title, text = check_fields(code, title, text, max_chars)
    await _code_taken(session, code, other_than=canned.id)
    canned.code, canned.title, canned.text = code, title, text
    return await _store(session, canned)


async def delete_canned(session: AsyncSession, code: str) -> None:
    await session.delete(await get_canned(session, code))


async def values_for(
    session: AsyncSession, conversation_id: uuid.UUID, agent_id: uuid.UUID | None
) -> dict[str, str | None]:
    """The variables' values in this conversation, for this agent (``None``: a company key,
    no person: ``agent.name`` is missing)."""
    conversation: Conversation = await conversations.get_conversation(session, conversation_id)
    contact = await session.get_one(Contact, conversation.contact_id)
    company = await session.get_one(Company, company_of(session))
    agent = await session.get(User, agent_id) if agent_id is not None else None
    values = Values(contact, agent, company)
    return {name: read(values) for name, read in VARIABLES.items()}


async def render(
    session: AsyncSession, code: str, conversation_id: uuid.UUID, agent_id: uuid.UUID | None
) -> tuple[CannedResponse, Rendered]:
    """The canned response ``code`` filled for the conversation (404 for either, first the
    conversation: another company's is simply not there)."""
    values = await values_for(session, conversation_id, agent_id)
    canned = await get_canned(session, code)
    return canned, render_template(canned.text, values)
