"""Settings → WhatsApp (owners and admins): the company's WhatsApp numbers and how to connect
one, step by step (a Meta app, a system user's token, the app secret, a verify token, this
server's webhook URL, the ``messages`` subscription).

The page lists each number (its phone number id, WABA id, whether it is enabled, which
secrets are stored, and whether Meta accepts its access token: the readiness check's last
verdict on it, ``/health/ready``'s, refreshed at most once a minute) and connects a new one.
Connecting is ``channels.accounts.create`` with the ``/v1/channel-accounts`` API's schema, as
the generic channels page does; enabling, disabling, renewing a secret and removing a number
are that page's routes (``settings_channels``), which bring the reader back here. Secrets are
write-only: typed into password fields, stored encrypted, never shown again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Response
from pydantic import ValidationError

from atende.channels import accounts
from atende.channels.accounts_api import ChannelAccountIn
from atende.channels.delivery import credential_fingerprint
from atende.channels.models import ChannelAccount
from atende.channels.whatsapp import graph
from atende.channels.whatsapp.channel import KIND, WhatsAppChannel
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.errors import Conflict
from atende.observability.credentials import monitor_for

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/settings/whatsapp"
SECRETS = WhatsAppChannel.secret_fields
VERDICT_WAIT = 1.0  # seconds the page waits for a readiness round under way
Field = Annotated[str, Form(max_length=10_000)]


@dataclass(frozen=True)
class Number:
    account: ChannelAccount
    waba_id: str
    token: str  # "ok", "refused", "unchecked"
    reason: str = ""


async def _numbers(member: Member) -> list[Number]:
    async with member.tenant.transaction() as session:
        rows = await accounts.list_accounts(session, KIND)
    snapshot = await monitor_for(member.visitor.runtime).snapshot(wait=VERDICT_WAIT)
    verdicts = {s.credential.fingerprint: s.verdict for s in snapshot.states if s.credential.kind == KIND}
    found = []
    for row in rows:
        verdict = verdicts.get(credential_fingerprint(row)) if row.enabled else None
        token = "unchecked" if verdict is None else "ok" if verdict.ok else "refused"
        reason = verdict.reason if verdict is not None and not verdict.ok else ""
        found.append(Number(row, str((row.config or {}).get("waba_id") or ""), token, reason))
    return found


async def _page(
    member: Member, *, status: int = 200, error: str | None = None, form: dict[str, str] | None = None
) -> Response:
    settings = member.visitor.runtime.settings
    return render(
        member.visitor,
        "settings_whatsapp.html",
        status=status,
        numbers=await _numbers(member),
        webhook_url=settings.public_url.rstrip("/") + "/webhooks/whatsapp",
        default_graph_url=graph.DEFAULT_GRAPH_URL,
        secret_fields=SECRETS,
        error=error,
        form=form or {},
    )


@router.get("/settings/whatsapp")
async def whatsapp_page(member: AdminPage) -> Response:
    return await _page(member)


@router.post("/settings/whatsapp")
async def connect_number(
    member: AdminPage,
    phone_number_id: Field = "",
    waba_id: Field = "",
    display_name: Field = "",
    access_token: Field = "",
    app_secret: Field = "",
    verify_token: Field = "",
    graph_api_url: Field = "",
) -> Response:
    """Connect a number: an enabled ``whatsapp`` account with its three secrets."""
    _ = gettext(member.visitor)

    async def work() -> None:
        secrets = {"access_token": access_token, "app_secret": app_secret, "verify_token": verify_token}
        missing = [name for name, value in secrets.items() if not value.strip()]
        if missing:
            raise Refused(
                _("Fill in the access token, the app secret and the verify token: all three are needed.")
            )
        if not phone_number_id.strip().isdigit():
            raise Refused(
                _("The phone number ID is the number Meta shows under WhatsApp → API Setup: digits only.")
            )
        if waba_id.strip() and not waba_id.strip().isdigit():
            raise Refused(_("The WhatsApp Business Account ID has digits only."))
        try:
            checked = ChannelAccountIn.model_validate(
                {
                    "kind": KIND,
                    "external_id": phone_number_id.strip(),
                    "display_name": display_name.strip(),
                    "config": {
                        "waba_id": waba_id.strip(),
                        "graph_api_url": graph_api_url.strip() or graph.DEFAULT_GRAPH_URL,
                    },
                    "secrets": {k: v.strip() for k, v in secrets.items()},
                }
            )
        except ValidationError:
            raise Refused(_("An ID, the name or a secret is too long.")) from None
        try:
            async with member.tenant.transaction() as session:
                await accounts.create(
                    session,
                    member.visitor.runtime.secret_key,
                    kind=KIND,
                    external_id=checked.external_id,
                    display_name=checked.display_name,
                    config=checked.config,
                    secrets=checked.secrets,
                )
        except accounts.InvalidConfig as exc:
            if exc.where == "graph_api_url":
                raise Refused(
                    _(
                        "The Graph API address must be https, such as https://graph.facebook.com "
                        "(plain http only to 127.0.0.1 or localhost)."
                    )
                ) from None
            raise
        except Conflict:
            raise Refused(_("That phone number ID is connected already."), status=409) from None
        monitor_for(member.visitor.runtime).refresh()  # its token checked soon, not in a minute

    form = {
        "phone_number_id": phone_number_id,
        "waba_id": waba_id,
        "display_name": display_name,
        "graph_api_url": graph_api_url,
    }

    async def again(status: int, error: str) -> Response:
        return await _page(member, status=status, error=error, form=form)

    return await attempt(member.visitor, work(), again) or redirect(HOME, notice="whatsapp_connected")
