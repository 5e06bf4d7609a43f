"""The Customer feedback settings page (owners and admins): whether a satisfaction survey
follows each resolution, after how long, on which channels, the question in each language,
how long the customer may answer or change the answer, and the WhatsApp template sent once the
customer's 24-hour window has closed. Saving calls ``feedback.service.update_csat_settings``,
as ``PUT /v1/company/csat`` does, with the same validation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Response
from pydantic import ValidationError

from atende.dashboard.auth import AdminPage, Member
from atende.dashboard.forms import Refused, attempt
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, gettext, redirect, render
from atende.feedback import service
from atende.feedback.csat_settings import DEFAULT_QUESTIONS, LANGUAGES, SURVEYED_CHANNELS, WhatsAppTemplate

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PATH = "/app/settings/feedback"
CHANNEL_LABELS = {
    "webchat": N_("Web chat"),
    "api": N_("API"),
    "whatsapp": N_("WhatsApp"),
    "email": N_("E-mail"),
}
LANGUAGE_LABELS = {"pt": N_("Portuguese (Brazil)"), "en": N_("English"), "es": N_("Spanish")}


async def _page(
    member: Member, *, status: int = 200, error: str | None = None, form: dict[str, str] | None = None
) -> Response:
    async with member.tenant.transaction() as session:
        shown = await service.csat_settings(session, member.tenant.principal.company_id)
    if form is None:
        template = shown.whatsapp_template
        form = {
            "enabled": "1" if shown.enabled else "",
            "delay_minutes": str(shown.delay_seconds // 60),
            "answer_window_hours": str(shown.answer_window_hours),
            "template_name": template.name if template else "",
            "template_language": template.language if template else "",
            "template_buttons": str(template.buttons) if template else "3",
            **{f"question_{lang}": shown.questions.get(lang, "") for lang in LANGUAGES},
            **{f"channel_{kind}": "1" for kind in shown.channels},
        }
    return render(
        member.visitor,
        "settings_feedback.html",
        status=status,
        form=form,
        error=error,
        shown=shown,
        question_languages=[(lang, LANGUAGE_LABELS[lang], DEFAULT_QUESTIONS[lang]) for lang in LANGUAGES],
        channels=[(kind, CHANNEL_LABELS[kind]) for kind in SURVEYED_CHANNELS],
    )


@router.get("/settings/feedback")
async def feedback_page(member: AdminPage) -> Response:
    return await _page(member)


def _whole(value: str, low: int, high: int, message: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise Refused(message) from None
    if not low <= number <= high:
        raise Refused(message)
    return number


@router.post("/settings/feedback")
async def save_feedback(
    member: AdminPage,
    enabled: Annotated[str, Form(max_length=10)] = "",
    delay_minutes: Annotated[str, Form(max_length=20)] = "5",
    answer_window_hours: Annotated[str, Form(max_length=20)] = "168",
    question_pt: Annotated[str, Form(max_length=5000)] = "",
    question_en: Annotated[str, Form(max_length=5000)] = "",
    question_es: Annotated[str, Form(max_length=5000)] = "",
    channel_webchat: Annotated[str, Form(max_length=10)] = "",
    channel_api: Annotated[str, Form(max_length=10)] = "",
    channel_whatsapp: Annotated[str, Form(max_length=10)] = "",
    channel_email: Annotated[str, Form(max_length=10)] = "",
    template_name: Annotated[str, Form(max_length=1000)] = "",
    template_language: Annotated[str, Form(max_length=100)] = "",
    template_buttons: Annotated[str, Form(max_length=20)] = "3",
) -> Response:
    _ = gettext(member.visitor)
    chosen = {
        "webchat": channel_webchat,
        "api": channel_api,
        "whatsapp": channel_whatsapp,
        "email": channel_email,
    }
    questions = {"pt": question_pt, "en": question_en, "es": question_es}
    form = {
        "enabled": enabled,
        "delay_minutes": delay_minutes,
        "answer_window_hours": answer_window_hours,
        "template_name": template_name,
        "template_language": template_language,
        "template_buttons": template_buttons,
        **{f"question_{lang}": text for lang, text in questions.items()},
        **{f"channel_{kind}": on for kind, on in chosen.items() if on},
    }

    async def work() -> None:
        delay = _whole(
            delay_minutes, 0, 7 * 24 * 60, _("The delay is a whole number of minutes, 0 to 10080.")
        )
        window = _whole(
            answer_window_hours, 1, 90 * 24, _("The answer window is a whole number of hours, 1 to 2160.")
        )
        if any(len(" ".join(text.split())) > 500 for text in questions.values()):
            raise Refused(_("A question can have up to 500 characters."))
        template = None
        if template_name.strip() or template_language.strip():
            buttons = _whole(template_buttons, 2, 5, _("The template's quick-reply buttons are 2 to 5."))
            try:
                template = WhatsAppTemplate(
                    name=template_name.strip(), language=template_language.strip(), buttons=buttons
                )
            except ValidationError:
                raise Refused(
                    _(
                        "The WhatsApp template needs its name as approved (lower-case letters, digits and "
                        "underscores) and its language code, such as pt_BR."
                    )
                ) from None
        changes = {
            "enabled": bool(enabled),
            "delay_seconds": delay * 60,
            "answer_window_hours": window,
            "questions": questions,
            "channels": [kind for kind, on in chosen.items() if on],
            "whatsapp_template": template.model_dump() if template else None,
        }
        async with member.tenant.transaction() as session:
            await service.update_csat_settings(
                session, member.tenant.principal.company_id, changes, member.visitor.runtime.clock()
            )

    async def again(status: int, error: str) -> Response:
        return await _page(member, status=status, error=error, form=form)

    return await attempt(member.visitor, work(), again) or redirect(PATH, notice="feedback_saved")
