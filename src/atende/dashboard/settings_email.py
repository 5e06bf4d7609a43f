"""Settings → E-mail (owners and admins): the company's mailboxes and how to connect one, step
by step (Gmail, Microsoft 365, any IMAP/POP3 provider, a provider's inbound webhook).

The page lists each mailbox (its address, how its mail arrives, its IMAP/POP3/SMTP servers,
which secrets are stored, and whether its logins work: the readiness check's last verdict on
it, ``/health/ready``'s, refreshed at most once a minute) and connects a new one. The form's
fields are ``EmailConfig``'s; a preset (``?preset=gmail``) fills in a provider's servers, so
the page works without JavaScript. What ``EmailConfig`` refuses is said beside its field, in
the reader's language, and nothing is stored. Connecting is ``channels.accounts.create`` as the
``/v1/channel-accounts`` API does; enabling, disabling, renewing a password and removing a
mailbox are the channels page's routes (``settings_channels``), which bring the reader back
here. Secrets are write-only: typed into password fields, stored encrypted, never shown again
— except a SendGrid or Postmark webhook's own URL, whose secret part the page shows once,
right after connecting (``shown_once``), as the provider needs it pasted whole."""

from __future__ import annotations

import secrets as random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Response
from pydantic import ValidationError

from atende.channels import accounts
from atende.channels.delivery import credential_fingerprint
from atende.channels.email.config import SECRET_FIELDS, EmailConfig
from atende.channels.email.providers.common import WEBHOOK_USER
from atende.channels.models import ChannelAccount
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.i18n import N_
from atende.dashboard.shown_once import show_once, take_shown
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.errors import Conflict, InvalidInput
from atende.observability.credentials import monitor_for

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME = "/app/settings/email"
KIND = "email"
WEBHOOK_PREFIX = "/webhooks/email/"
VERDICT_WAIT = 1.0  # seconds the page waits for a readiness round under way
SHOWN = "email_webhook_url"  # the shown-once kind: a SendGrid/Postmark webhook URL with its secrets
Field = Annotated[str, Form(max_length=10_000)]
Translate = Callable[[str], str]

# how mail arrives, as the form asks it: (inbound, provider)
ARRIVALS: dict[str, tuple[str, str | None]] = {
    "imap": ("imap", None),
    "pop3": ("pop3", None),
    "mailgun": ("webhook", "mailgun"),
    "sendgrid": ("webhook", "sendgrid"),
    "postmark": ("webhook", "postmark"),
}
ARRIVAL_LABELS = {
    "imap": N_("IMAP: atende fetches it from the mailbox"),
    "pop3": N_("POP3: atende fetches it (for providers without IMAP)"),
    "mailgun": N_("Mailgun posts it to atende (inbound route)"),
    "sendgrid": N_("SendGrid posts it to atende (Inbound Parse)"),
    "postmark": N_("Postmark posts it to atende (inbound webhook)"),
}
SECURITY_LABELS = {
    "tls": N_("TLS (SSL)"),
    "starttls": N_("STARTTLS"),
    "none": N_("None (only to this machine)"),
}
AUTH_LABELS = {"password": N_("Password or app password"), "oauth2": N_("OAuth2 access token")}
SECRET_LABELS = {
    "imap_password": N_("IMAP password"),
    "imap_oauth2_token": N_("OAuth2 token"),
    "pop3_password": N_("POP3 password"),
    "smtp_password": N_("SMTP password"),
    "smtp_oauth2_token": N_("SMTP OAuth2 token"),
    "mailgun_signing_key": N_("Mailgun signing key"),
    "webhook_password": N_("Webhook password"),
    "webhook_path_secret": N_("Webhook secret path"),
}


@dataclass(frozen=True)
class Preset:
    label: str
    values: Mapping[str, str]


# a provider's servers (their own help pages' values); "other" leaves them to the reader
PRESETS: dict[str, Preset] = {
    "gmail": Preset(
        N_("Gmail or Google Workspace"),
        {
            "imap_host": "imap.gmail.com",
            "imap_port": "993",
            "imap_security": "tls",
            "pop3_host": "pop.gmail.com",
            "pop3_port": "995",
            "pop3_security": "tls",
            "smtp_host": "smtp.gmail.com",
            "smtp_port": "587",
            "smtp_security": "starttls",
        },
    ),
    "microsoft365": Preset(
        N_("Microsoft 365, Outlook.com or Exchange Online"),
        {
            "imap_host": "outlook.office365.com",
            "imap_port": "993",
            "imap_security": "tls",
            "pop3_host": "outlook.office365.com",
            "pop3_port": "995",
            "pop3_security": "tls",
            "smtp_host": "smtp.office365.com",
            "smtp_port": "587",
            "smtp_security": "starttls",
        },
    ),
    "other": Preset(
        N_("Another provider (any IMAP or POP3 server)"),
        {
            "imap_port": "993",
            "imap_security": "tls",
            "pop3_port": "995",
            "pop3_security": "tls",
            "smtp_port": "587",
            "smtp_security": "starttls",
        },
    ),
}
OPTIONAL_NUMBERS = ("imap_port", "pop3_port", "smtp_port", "poll_seconds", "bot_replies_per_hour")


@dataclass(frozen=True)
class Mailbox:
    account: ChannelAccount
    config: Mapping[str, Any]
    arrival: str  # a key of ARRIVALS
    stored: list[str]  # the names of the secrets stored
    login: str  # "ok", "refused", "unchecked"
    reason: str
    webhook_url: str  # a webhook mailbox's URL (its secret part, if any, left out)


def arrival_of(config: Mapping[str, Any]) -> str:
    if config.get("inbound") == "webhook":
        return str(config.get("provider") or "mailgun")
    return str(config.get("inbound") or "imap")


def webhook_url(public_url: str, provider: str, account_id: uuid.UUID, path_secret: str = "") -> str:
    """Where a provider posts a webhook mailbox's mail (``channels.email.webhook``): Mailgun's
    raw-MIME route (``/mime``: the message byte for byte), SendGrid's and Postmark's behind
    their secret last segment."""
    url = f"{public_url.rstrip('/')}{WEBHOOK_PREFIX}{provider}/{account_id}"
    if provider == "mailgun":
        return url + "/mime"
    return url + "/" + quote(path_secret, safe="") if path_secret else url


def _with_login(url: str, username: str, password: str) -> str:
    """``url`` with basic-auth credentials in it, as SendGrid and Postmark take them (the user
    name ``atende`` unless the mailbox names another)."""
    if not password:
        return url
    scheme, _sep, rest = url.partition("://")
    user = quote(username or WEBHOOK_USER, safe="")
    return f"{scheme}://{user}:{quote(password, safe='')}@{rest}"


async def _mailboxes(member: Member) -> list[Mailbox]:
    async with member.tenant.transaction() as session:
        rows = await accounts.list_accounts(session, KIND)
    snapshot = await monitor_for(member.visitor.runtime).snapshot(wait=VERDICT_WAIT)
    verdicts = {s.credential.fingerprint: s.verdict for s in snapshot.states if s.credential.kind == KIND}
    public = member.visitor.runtime.settings.public_url
    found = []
    for row in rows:
        config = row.config or {}
        verdict = verdicts.get(credential_fingerprint(row)) if row.enabled else None
        login = "unchecked" if verdict is None else "ok" if verdict.ok else "refused"
        reason = verdict.reason if verdict is not None and not verdict.ok else ""
        arrival = arrival_of(config)
        url = webhook_url(public, arrival, row.id) if config.get("inbound") == "webhook" else ""
        stored = [name for name in SECRET_FIELDS if name in (row.secrets or {})]
        found.append(Mailbox(row, config, arrival, stored, login, reason, url))
    return found


async def _page(
    member: Member,
    *,
    status: int = 200,
    error: str | None = None,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    preset: str = "",
) -> Response:
    chosen = preset if preset in PRESETS else ""
    values = dict(PRESETS[chosen].values) if chosen else {}
    values.update(form or {})
    shown = take_shown(member.visitor, SHOWN)
    return render(
        member.visitor,
        "settings_email.html",
        status=status,
        mailboxes=await _mailboxes(member),
        presets=PRESETS,
        preset=chosen,
        arrivals=ARRIVAL_LABELS,
        securities=SECURITY_LABELS,
        auths=AUTH_LABELS,
        secret_labels=SECRET_LABELS,
        shown=shown,
        error=error,
        errors=errors or {},
        form=values,
    )


def _explain(_: Translate, field: str, kind: str, message: str, context: Mapping[str, Any]) -> str:
    """One of ``EmailConfig``'s refusals in the reader's words."""
    if kind == "literal_error":  # a choice the form does not offer
        return _("Choose one of the options.")
    if field == "address":
        return _("Enter a plain e-mail address, such as support@example.com.")
    if field.endswith("_port"):
        return _("A port is a number from 1 to 65535.")
    if field == "poll_seconds":
        return _("A number of seconds from 1 to 3600.")
    if field == "bot_replies_per_hour":
        return _("A number from 0 to 1000 (0: the bot never answers e-mail).")
    if field.endswith("_security"):
        return str(
            _(
                "Without encryption only to this machine (127.0.0.1, localhost): a password must "
                "not cross a network in clear. Choose TLS or STARTTLS."
            )
        )
    if field == "smtp_host" and "required" in message:
        return _("Required: replies go out over SMTP.")
    if field in ("imap_host", "pop3_host") and "required" in message:
        return _("Required to fetch the mail from this server.")
    if field.endswith("_host"):
        return _("Enter a host name or an IP address, without https:// or a port.")
    if kind == "string_too_long":
        return _("Too long: at most %(max)s characters.") % {"max": context.get("max_length", "")}
    if kind == "string_too_short":
        return _("Required.")
    return message


def _problems(_: Translate, exc: ValidationError) -> dict[str, str]:
    """``EmailConfig``'s refusals by field (its whole-form checks name theirs first: ``smtp_host:
    required``)."""
    found: dict[str, str] = {}
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", ""))
        if location:
            field = location[0]
        else:  # a model check: "Value error, smtp_host: required ..."
            message = message.removeprefix("Value error, ")
            field, _sep, message = message.partition(": ")
        found.setdefault(
            field, _explain(_, field, str(error.get("type", "")), message, error.get("ctx") or {})
        )
    return found


def _secrets(
    _: Translate, arrival: str, config: EmailConfig, typed: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The secrets to store (named as the channel names them) and what is missing, by field."""
    given = {name: value.strip() for name, value in typed.items() if value.strip()}
    stored: dict[str, str] = {}
    missing: dict[str, str] = {}
    if arrival == "imap":
        name = "imap_oauth2_token" if config.imap_auth == "oauth2" else "imap_password"
        if "imap_secret" in given:
            stored[name] = given["imap_secret"]
        else:
            missing["imap_secret"] = _("Required: the mailbox's password, app password or token.")
    if arrival == "pop3":
        if "pop3_password" in given:
            stored["pop3_password"] = given["pop3_password"]
        else:
            missing["pop3_password"] = _("Required: the mailbox's password or app password.")
    if "smtp_secret" in given:
        stored["smtp_oauth2_token" if config.smtp_auth == "oauth2" else "smtp_password"] = given[
            "smtp_secret"
        ]
    elif arrival not in ("imap", "pop3") and config.smtp_auth == "password" and not _local(config.smtp_host):
        missing["smtp_secret"] = _("Required: the password replies are sent with.")
    elif arrival not in ("imap", "pop3") and config.smtp_auth == "oauth2":
        missing["smtp_secret"] = _("Required: the token replies are sent with.")
    if arrival == "mailgun":
        if "mailgun_signing_key" in given:
            stored["mailgun_signing_key"] = given["mailgun_signing_key"]
        else:
            missing["mailgun_signing_key"] = str(
                _("Required: Mailgun signs every post with it, and atende refuses what it did not sign.")
            )
    if arrival in ("sendgrid", "postmark"):
        if "webhook_password" in given:
            stored["webhook_password"] = given["webhook_password"]
        # a secret path always: made here unless typed (the provider posts to it; nobody else can)
        stored["webhook_path_secret"] = given.get("webhook_path_secret") or random.token_urlsafe(32)
    return stored, missing


def _local(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")


@router.get("/settings/email")
async def email_page(member: AdminPage, preset: str = "") -> Response:
    return await _page(member, preset=preset)


@router.post("/settings/email")
async def connect_mailbox(
    member: AdminPage,
    arrival: Field = "imap",
    preset: Field = "",
    address: Field = "",
    from_name: Field = "",
    webhook_username: Field = "",
    imap_host: Field = "",
    imap_port: Field = "",
    imap_security: Field = "tls",
    imap_username: Field = "",
    imap_folder: Field = "",
    imap_auth: Field = "password",
    imap_secret: Field = "",
    pop3_host: Field = "",
    pop3_port: Field = "",
    pop3_security: Field = "tls",
    pop3_username: Field = "",
    pop3_password: Field = "",
    smtp_host: Field = "",
    smtp_port: Field = "",
    smtp_security: Field = "starttls",
    smtp_username: Field = "",
    smtp_auth: Field = "password",
    smtp_secret: Field = "",
    poll_seconds: Field = "",
    signature: Field = "",
    bot_replies_per_hour: Field = "",
    mailgun_signing_key: Field = "",
    webhook_password: Field = "",
    webhook_path_secret: Field = "",
) -> Response:
    """Connect a mailbox: an enabled ``email`` account, its settings ``EmailConfig``'s."""
    _ = gettext(member.visitor)
    typed = {
        "address": address,
        "from_name": from_name,
        "webhook_username": webhook_username,
        "imap_host": imap_host,
        "imap_port": imap_port,
        "imap_security": imap_security,
        "imap_username": imap_username,
        "imap_folder": imap_folder,
        "imap_auth": imap_auth,
        "pop3_host": pop3_host,
        "pop3_port": pop3_port,
        "pop3_security": pop3_security,
        "pop3_username": pop3_username,
        "smtp_host": smtp_host,
        "smtp_port": smtp_port,
        "smtp_security": smtp_security,
        "smtp_username": smtp_username,
        "smtp_auth": smtp_auth,
        "poll_seconds": poll_seconds,
        "signature": signature,
        "bot_replies_per_hour": bot_replies_per_hour,
    }
    form = {**typed, "arrival": arrival}
    secrets_typed = {
        "imap_secret": imap_secret,
        "pop3_password": pop3_password,
        "smtp_secret": smtp_secret,
        "mailgun_signing_key": mailgun_signing_key,
        "webhook_password": webhook_password,
        "webhook_path_secret": webhook_path_secret,
    }

    async def refused(errors: Mapping[str, str], status: int = 422) -> Response:
        summary = _("The mailbox was not connected: correct the fields marked below.")
        return await _page(member, status=status, error=summary, form=form, errors=errors, preset=preset)

    if arrival not in ARRIVALS:
        return await refused({"arrival": _("Choose how mail arrives.")})
    inbound, provider = ARRIVALS[arrival]
    values: dict[str, Any] = {
        name: value.strip() if name != "signature" else value.replace("\r\n", "\n").rstrip()
        for name, value in typed.items()
    }
    for name in OPTIONAL_NUMBERS:
        if not values[name]:
            del values[name]  # EmailConfig's default
    if not values["imap_folder"]:
        del values["imap_folder"]
    values.update(inbound=inbound, provider=provider)
    try:
        config = EmailConfig.model_validate(values)
    except ValidationError as exc:
        return await refused(_problems(_, exc))
    stored, missing = _secrets(_, arrival, config, secrets_typed)
    if missing:
        return await refused(missing)

    async def work() -> None:
        try:
            async with member.tenant.transaction() as session:
                account = await accounts.create(
                    session,
                    member.visitor.runtime.secret_key,
                    kind=KIND,
                    external_id=config.address,
                    display_name=config.from_name,
                    config=config.model_dump(mode="json"),
                    secrets=stored,
                )
        except Conflict:
            raise Refused(_("That mailbox is connected already."), status=409) from None
        except InvalidInput as exc:  # a secret too long, a rule of the channel's
            raise Refused(str(exc)) from None
        if arrival in ("sendgrid", "postmark"):
            public = member.visitor.runtime.settings.public_url
            url = webhook_url(public, arrival, account.id, stored["webhook_path_secret"])
            show_once(
                member.visitor,
                SHOWN,
                config.address,
                _with_login(url, config.webhook_username, stored.get("webhook_password", "")),
            )
        monitor_for(member.visitor.runtime).refresh()  # its login checked soon, not in a minute

    async def again(status: int, error: str) -> Response:
        field = "address" if status == 409 else ""
        return await _page(
            member,
            status=status,
            error=error,
            form=form,
            errors={field: error} if field else {},
            preset=preset,
        )

    return await attempt(member.visitor, work(), again) or redirect(HOME, notice="email_connected")
