"""The channel accounts settings page (owners and admins): each channel's accounts (a web
chat's widget key, a phone number's id); add one, rename it, enable or disable it, set or
remove its secrets (write-only: the page names the ones stored, never their values), delete
it. The rules (an external id unique per channel, the company's last web chat account kept)
are ``channels.accounts``'s, and the input is checked by the ``/v1/channel-accounts`` API's
own schema. A web chat account links to its widget's appearance page."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Mapping
from typing import Annotated, TypeVar

from fastapi import APIRouter, Form, Request, Response
from pydantic import BaseModel, ValidationError

from atende.channels import accounts, registry
from atende.channels.accounts_api import ChannelAccountIn, ChannelAccountPatch
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.errors import Conflict

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Checked = TypeVar("Checked", bound=BaseModel)

HOME = "/app/settings/channels"
# pages that list accounts and send their forms here (``back``): where to return after one
BACK = frozenset({HOME, "/app/settings/whatsapp", "/app/settings/email"})
Back = Annotated[str, Form(max_length=100)]
SECRET_FIELD = "secret_"  # noqa: S105 (a form's secret inputs: secret_<the channel's secret field>)
CLEAR_FIELD = "clear_"  # a form's checkboxes that remove a stored secret


async def _page(
    member: Member, *, status: int = 200, error: str | None = None, form: dict[str, str] | None = None
) -> Response:
    async with member.tenant.transaction() as session:
        found = await accounts.list_accounts(session)
    kinds = [channel for channel in registry.channels() if channel.has_accounts]
    by_kind = {channel.kind: [a for a in found if a.kind == channel.kind] for channel in kinds}
    return render(
        member.visitor,
        "settings_channels.html",
        status=status,
        kinds=kinds,
        by_kind=by_kind,
        error=error,
        form=form or {},
    )


async def _secrets(request: Request, channel_kind: str) -> dict[str, str]:
    """The secrets a form sets (typed) or removes (ticked); those left empty are kept."""
    channel = registry.get(channel_kind)
    form = await request.form()
    given: dict[str, str] = {}
    for name in channel.secret_fields:
        value = form.get(SECRET_FIELD + name)
        if isinstance(value, str) and value:
            given[name] = value
        elif form.get(CLEAR_FIELD + name):
            given[name] = ""
    return given


def _problem(member: Member, exc: ValidationError) -> Refused:
    _ = gettext(member.visitor)
    wrong = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")}
    if "external_id" in wrong:
        return Refused(_("The ID must have 1 to 255 characters and no spaces."))
    if "display_name" in wrong:
        return Refused(_("The name can have up to 200 characters."))
    if "secrets" in wrong:
        return Refused(_("A secret is too long."))
    return Refused(_("Choose a channel."))


def _checked(member: Member, model: type[Checked], typed: Mapping[str, object]) -> Checked:
    """``typed`` read as ``model`` (the API's own request model, so the page and the API accept
    the same); what it refuses, refused in the page's words."""
    try:
        return model.model_validate(typed)
    except ValidationError as exc:
        raise _problem(member, exc) from None


async def _attempt(
    member: Member, work: Awaitable[None], form: dict[str, str] | None = None
) -> Response | None:
    """``None`` when ``work`` succeeded; else this page saying why not (404s stay 404s)."""

    async def again(status: int, error: str) -> Response:
        return await _page(member, status=status, error=error, form=form)

    return await attempt(member.visitor, work, again)


@router.get("/settings/channels")
async def channels_page(member: AdminPage) -> Response:
    return await _page(member)


@router.post("/settings/channels")
async def create_account(
    request: Request,
    member: AdminPage,
    kind: Annotated[str, Form(max_length=100)] = "",
    external_id: Annotated[str, Form(max_length=10_000)] = "",
    display_name: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    async def work() -> None:
        secrets = await _secrets(request, kind) if registry.find(kind) else {}
        typed = {
            "kind": kind,
            "external_id": external_id.strip(),
            "display_name": display_name.strip(),
            "secrets": secrets,
        }
        checked = _checked(member, ChannelAccountIn, typed)
        async with member.tenant.transaction() as session:
            await accounts.create(
                session,
                member.visitor.runtime.secret_key,
                kind=checked.kind,
                external_id=checked.external_id,
                display_name=checked.display_name,
                secrets=checked.secrets,
            )

    form = {"kind": kind, "external_id": external_id, "display_name": display_name}
    return await _attempt(member, work(), form) or redirect(HOME, notice="channel_account_created")


def _home(back: str) -> str:
    return back if back in BACK else HOME


async def _update(
    member: Member, account_id: uuid.UUID, notice: str, back: str = "", **changes: object
) -> Response:
    async def work() -> None:
        checked = _checked(member, ChannelAccountPatch, changes)
        async with member.tenant.transaction() as session:
            await accounts.update(
                session,
                member.visitor.runtime.secret_key,
                account_id,
                display_name=checked.display_name,
                enabled=checked.enabled,
                secrets=checked.secrets,
            )

    return await _attempt(member, work()) or redirect(_home(back), notice=notice)


@router.post("/settings/channels/{account_id}/rename")
async def rename_account(
    member: AdminPage, account_id: uuid.UUID, display_name: Annotated[str, Form(max_length=10_000)] = ""
) -> Response:
    return await _update(member, account_id, "channel_account_renamed", display_name=display_name.strip())


@router.post("/settings/channels/{account_id}/enable")
async def enable_account(member: AdminPage, account_id: uuid.UUID, back: Back = "") -> Response:
    return await _update(member, account_id, "channel_account_enabled", back, enabled=True)


@router.post("/settings/channels/{account_id}/disable")
async def disable_account(member: AdminPage, account_id: uuid.UUID, back: Back = "") -> Response:
    return await _update(member, account_id, "channel_account_disabled", back, enabled=False)


@router.post("/settings/channels/{account_id}/secrets")
async def save_secrets(request: Request, member: AdminPage, account_id: uuid.UUID) -> Response:
    async with member.tenant.transaction() as session:
        account = await accounts.get(session, account_id)
    secrets = await _secrets(request, account.kind)
    back = (await request.form()).get("back")
    return await _update(
        member,
        account_id,
        "channel_account_secrets_saved",
        back if isinstance(back, str) else "",
        secrets=secrets,
    )


@router.post("/settings/channels/{account_id}/delete")
async def delete_account(member: AdminPage, account_id: uuid.UUID, back: Back = "") -> Response:
    async def work() -> None:
        _ = gettext(member.visitor)
        try:
            async with member.tenant.transaction() as session:
                await accounts.delete(session, account_id)
        except Conflict:  # the company's last web chat account: the API's 409
            raise Refused(
                _(
                    "This is the company's last web chat account, so it cannot be deleted: "
                    "disable it instead, or add another web chat account first."
                ),
                status=409,
            ) from None

    return await _attempt(member, work()) or redirect(_home(back), notice="channel_account_deleted")
