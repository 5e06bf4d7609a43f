"""The web chat widget's settings page (owners and admins): colours, title, a greeting per
language, the "Talk to a person" button and the offline contact form of one web chat account,
beside a live preview of the real widget and the snippet that embeds it.

Saving calls ``channels.accounts.update``, the service of ``PATCH /v1/channel-accounts/{id}``:
the web chat's schema (``channels.webchat.settings``) decides what is valid, and its refusals
are said here in the reader's language, with the form kept. The preview is a page of its own
(``/app/settings/widget/preview``, framed by this page only) that loads the real ``widget.js``
with the form's unsaved values, validated by the same schema; nothing it shows is sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from atende.channels import accounts, registry
from atende.channels.models import ChannelAccount
from atende.channels.webchat.settings import GREETING_MAX, TITLE_MAX, WebChatConfig
from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, environment, explain, gettext, redirect, render
from atende.errors import AtendeError, NotFound
from atende.pages import OWN_PAGES

router = APIRouter(route_class=PageRoute, include_in_schema=False)
KIND = "webchat"
PAGE = "/app/settings/widget"
PREVIEW = "/app/settings/widget/preview"
# the preview may be framed by the dashboard's own pages, and by nothing else
PREVIEW_POLICY = OWN_PAGES.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
COLOURS = ("primary_color", "primary_text_color", "accent_color")
# the greeting's language → its form field
GREETING_FIELDS = {"pt-BR": "greeting_pt_br", "en": "greeting_en", "es": "greeting_es"}
PREVIEW_LANGUAGES = ("pt", "en", "es")
FORM_MAX = 5000  # a field longer than this is not a mistake to explain: 422 before reading it


async def _webchat_account(
    member: Member, account_id: uuid.UUID | None
) -> tuple[ChannelAccount, list[ChannelAccount]]:
    """The web chat account asked for (else the company's oldest), and all of them. Another
    company's id, or an account of another channel, is a 404."""
    async with member.tenant.transaction() as session:
        every = await accounts.list_accounts(session, KIND)
        if account_id is None:
            if not every:
                raise NotFound("no web chat account")
            return every[0], every
        account = await accounts.get(session, account_id)
    if account.kind != KIND:
        raise NotFound(f"no web chat account {account_id}")
    return account, every


def _form_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored (or refused) configuration as the form's fields."""
    saved = WebChatConfig.model_validate({})
    values: dict[str, Any] = {name: config.get(name, getattr(saved, name)) for name in COLOURS}
    values["title"] = config.get("title", "")
    greeting = config.get("greeting") or {}
    for lang, name in GREETING_FIELDS.items():
        values[name] = greeting.get(lang, "") if isinstance(greeting, dict) else ""
    values["handoff_button"] = config.get("handoff_button", True)
    values["offline_form"] = config.get("offline_form", True)
    values["offer_person_on_thumbs_down"] = config.get("offer_person_on_thumbs_down", True)
    return values


class WidgetForm(BaseModel):
    """The form's fields (a form POST, or the preview's query): what ``PATCH`` would send as
    the account's ``config``. Lengths are the schema's to refuse, with a message; only a field
    no person types (over ``FORM_MAX``) is a 422 before that."""

    primary_color: str = Field(default="", max_length=FORM_MAX)
    primary_text_color: str = Field(default="", max_length=FORM_MAX)
    accent_color: str = Field(default="", max_length=FORM_MAX)
    title: str = Field(default="", max_length=FORM_MAX)
    greeting_pt_br: str = Field(default="", max_length=FORM_MAX)
    greeting_en: str = Field(default="", max_length=FORM_MAX)
    greeting_es: str = Field(default="", max_length=FORM_MAX)
    handoff_button: bool = False  # an unticked box is not sent
    offline_form: bool = False
    offer_person_on_thumbs_down: bool = False

    def config(self) -> dict[str, Any]:
        greetings = {"pt-BR": self.greeting_pt_br, "en": self.greeting_en, "es": self.greeting_es}
        return {
            "primary_color": self.primary_color,
            "primary_text_color": self.primary_text_color,
            "accent_color": self.accent_color,
            "title": self.title,
            "greeting": {lang: text for lang, text in greetings.items() if text.strip()},
            "handoff_button": self.handoff_button,
            "offline_form": self.offline_form,
            "offer_person_on_thumbs_down": self.offer_person_on_thumbs_down,
        }


class PreviewForm(WidgetForm):
    """The preview's request: the form's values (none: the saved settings), its language and
    whether to show the widget as when the team is away."""

    account: uuid.UUID | None = None
    preview_lang: str = Field(default="", max_length=10)
    preview_away: bool = False


PROBLEMS = {
    "low_contrast:primary_text_color": N_(
        "The text colour is hard to read on the primary colour (contrast %(ratio)s:1). "
        "Choose colours with a contrast of at least 4.5:1."
    ),
    "low_contrast:accent_color": N_(
        "The accent colour is hard to read on the widget's white panel (contrast %(ratio)s:1). "
        "Choose a darker colour, with a contrast of at least 4.5:1."
    ),
    "string_pattern_mismatch": N_("Choose a colour written as #rrggbb, such as #2454d6."),
    "string_too_long:title": N_("The title can have at most %(max)s characters."),
    "string_too_long:greeting": N_("A greeting can have at most %(max)s characters."),
}


def _field_error(member: Member, exc: accounts.InvalidConfig) -> tuple[str | None, str]:
    """The form field a refused configuration names, and what to say about it."""
    _ = gettext(member.visitor)
    top, _dot, rest = exc.where.partition(".")
    field = GREETING_FIELDS.get(rest) if top == "greeting" else top
    kind = "greeting" if top == "greeting" else top
    values = {"ratio": exc.context.get("ratio", "?"), "max": exc.context.get("max_length", "?")}
    for key in (f"{exc.problem}:{kind}", exc.problem):
        if key in PROBLEMS:
            return field, _(PROBLEMS[key]) % values
    return field, explain(member.visitor, exc)


def _snippet(member: Member, account: ChannelAccount) -> str:
    base = member.visitor.runtime.settings.public_url.rstrip("/")
    return f'<script src="{base}/widget.js" data-widget-key="{account.external_id}" defer></script>'


def _page(
    member: Member,
    account: ChannelAccount,
    every: list[ChannelAccount],
    values: Mapping[str, Any],
    *,
    status: int = 200,
    error: str | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return render(
        member.visitor,
        "settings_widget.html",
        status=status,
        account=account,
        accounts=every,
        values=values,
        error=error,
        errors=errors or {},
        snippet=_snippet(member, account),
        preview_url=f"{PREVIEW}?account={account.id}",
        title_max=TITLE_MAX,
        greeting_max=GREETING_MAX,
        preview_languages=PREVIEW_LANGUAGES,
    )


@router.get("/settings/widget")
async def widget_page(member: AdminPage, account: uuid.UUID | None = None) -> Response:
    found, every = await _webchat_account(member, account)
    return _page(member, found, every, _form_values(found.config or {}))


@router.post("/settings/widget")
async def save_widget(member: AdminPage, account: uuid.UUID, form: Annotated[WidgetForm, Form()]) -> Response:
    found, every = await _webchat_account(member, account)
    config = form.config()
    try:
        async with member.tenant.transaction() as session:
            await accounts.update(session, member.visitor.runtime.secret_key, found.id, config=config)
    except AtendeError as exc:
        if isinstance(exc, NotFound):
            raise
        field, message = (
            _field_error(member, exc)
            if isinstance(exc, accounts.InvalidConfig)
            else (None, explain(member.visitor, exc))
        )
        return _page(
            member,
            found,
            every,
            _form_values(config),
            status=exc.status_code,
            error=None if field else message,
            errors={field: message} if field else {},
        )
    return redirect(f"{PAGE}?account={found.id}", notice="widget_saved")


@router.get("/settings/widget/preview")
async def widget_preview(member: AdminPage, form: Annotated[PreviewForm, Query()]) -> Response:
    """The real widget, open, with the form's values (as the page's script asks, as you type);
    values the schema refuses are said above it, and the saved ones shown instead."""
    return await _preview(member, form, given="primary_color" in member.visitor.request.query_params)


@router.post("/settings/widget/preview")
async def widget_preview_form(member: AdminPage, form: Annotated[PreviewForm, Form()]) -> Response:
    """The same, from the form's "Update preview" (without JavaScript), into the frame."""
    return await _preview(member, form, given=True)


async def _preview(member: Member, form: PreviewForm, *, given: bool) -> Response:
    found, _every = await _webchat_account(member, form.account)
    config, problem = WebChatConfig.model_validate(found.config or {}), None
    if given:  # the form's values, not only the account's
        try:
            validated = accounts.validate_config(registry.get(KIND), form.config())
            assert isinstance(validated, WebChatConfig)
            config = validated
        except accounts.InvalidConfig as exc:
            problem = _field_error(member, exc)[1]
    lang = form.preview_lang if form.preview_lang in PREVIEW_LANGUAGES else member.visitor.language[:2]
    lang = lang if lang in PREVIEW_LANGUAGES else "pt"
    widget = {
        **config.model_dump(mode="json"),
        "greeting": config.greeting_for(lang),
        "team_available": not form.preview_away,
        "back": None,  # the widget says "as soon as possible" in the visitor's language
    }
    html = (
        environment(member.visitor.language)
        .get_template("widget_preview.html")
        .render(
            lang=member.visitor.language,
            widget_lang=lang,
            widget_key=found.external_id,
            widget_config=json.dumps(widget),
            problem=problem,
        )
    )
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": PREVIEW_POLICY,
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "no-store",
        },
    )
