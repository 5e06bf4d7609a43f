"""The dashboard's e-mails: a password-reset link and an invitation, written in the
recipient's language and queued in the caller's transaction (``atende.mail``)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atende.dashboard import i18n
from atende.dashboard.web import PRODUCT, ROLE_NAMES, environment
from atende.mail import sender
from atende.runtime import Runtime
from atende.tenancy.models import Role, User


def _link(runtime: Runtime, path: str) -> str:
    return runtime.settings.public_url.rstrip("/") + path


async def send_reset_link(
    session: AsyncSession, runtime: Runtime, *, user: User, token: str, language: str
) -> None:
    """``language``: the person's own choice wins over the page's they asked from."""
    language = i18n.choose(user.language, None, None) if user.language else language
    _ = i18n.translations(language).gettext
    text = (
        environment(language)
        .get_template("mail/reset.txt")
        .render(
            name=user.name or user.email,
            email=user.email,
            link=_link(runtime, f"/app/password/reset/{token}"),
            minutes=runtime.settings.password_reset_minutes,
        )
    )
    subject = _("Choose a new password for %(product)s") % {"product": PRODUCT}
    await sender.enqueue(session, runtime, sender.Mail(to=user.email, subject=subject, text=text))


async def send_invitation(
    session: AsyncSession,
    runtime: Runtime,
    *,
    email: str,
    token: str,
    company_name: str,
    role: Role,
    company_language: str,
) -> None:
    """In the company's default language: the invitee's own is not known yet."""
    language = i18n.choose(None, None, company_language)
    _ = i18n.translations(language).gettext
    text = (
        environment(language)
        .get_template("mail/invitation.txt")
        .render(
            company=company_name,
            role=_(ROLE_NAMES[role]),
            link=_link(runtime, f"/app/join/{token}"),
            days=runtime.settings.invitation_days,
        )
    )
    subject = _("You were invited to %(company)s") % {"company": company_name}
    await sender.enqueue(session, runtime, sender.Mail(to=email, subject=subject, text=text))
