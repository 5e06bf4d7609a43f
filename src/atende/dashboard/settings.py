"""The settings index: one entry per settings page, shown to the roles that may use it.

Each settings page lives in its own module (``settings_*.py``) and adds its entry to
``SECTIONS`` here, in the order the index lists them, with the role its route requires: a
section a role cannot use is not linked (a direct request still answers 403)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Response

from atende.dashboard.auth import AdminPage
from atende.dashboard.i18n import N_
from atende.dashboard.web import PageRoute, render
from atende.tenancy.models import Role

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@dataclass(frozen=True)
class Section:
    href: str
    label: str
    description: str
    role: Role = Role.admin


# the settings pages, in the index's order; later pages add their entry here
SECTIONS: list[Section] = [
    Section("/app/users", N_("Users"), N_("Invite people, change their roles, deactivate them.")),
    Section("/app/settings/company", N_("Company profile"), N_("The company's name, language and timezone.")),
    Section("/app/settings/hours", N_("Business hours"), N_("When the team works, day by day.")),
    Section(
        "/app/settings/holidays",
        N_("Holidays and dates"),
        N_("Public holidays, closed dates, special hours, a calendar to import."),
    ),
    Section(
        "/app/settings/handoff",
        N_("Handoff rules"),
        N_("When the bot hands a conversation to a person, and to whom."),
    ),
    Section(
        "/app/settings/knowledge-rules",
        N_("Knowledge rules"),
        N_(
            "Which documents may answer whom: promotions only in their dates, and rules from the "
            "channel or the page the widget is on."
        ),
    ),
    Section(
        "/app/settings/widget",
        N_("Web chat widget"),
        N_(
            "Colours, title and greetings of the chat on your site, its Talk to a person button and "
            "offline contact form, with a live preview and the snippet to embed it."
        ),
    ),
    Section("/app/settings/teams", N_("Teams"), N_("Group agents into teams, each with its own queue.")),
    Section(
        "/app/settings/sla",
        N_("SLA"),
        N_("Reply and resolution targets in business time, and what a breach does."),
    ),
    Section(
        "/app/settings/bot", N_("Bot"), N_("The bot's persona and instructions, and the company's own LLM.")
    ),
    Section(
        "/app/settings/feedback",
        N_("Customer feedback"),
        N_("A satisfaction survey after each resolution: when, on which channels, and what it asks."),
    ),
    Section(
        "/app/settings/api-keys",
        N_("API keys"),
        N_("Keys that let your systems use the API; create and revoke them."),
    ),
    Section(
        "/app/settings/webhooks",
        N_("Webhooks"),
        N_("Send events to your systems; see what was delivered."),
    ),
    Section(
        "/app/settings/channels",
        N_("Channels"),
        N_("The accounts customers reach you through: web chat widget keys and more."),
    ),
    Section(
        "/app/settings/whatsapp",
        N_("WhatsApp"),
        N_("Connect the company's WhatsApp numbers step by step; see whether Meta accepts their tokens."),
    ),
    Section(
        "/app/settings/email",
        N_("E-mail"),
        N_("Connect the company's mailboxes (Gmail, Microsoft 365, IMAP, POP3 or a provider's webhook)."),
    ),
]


@router.get("/settings")
async def settings_index(member: AdminPage) -> Response:
    sections = [section for section in SECTIONS if member.role.allows(section.role)]
    return render(member.visitor, "settings.html", sections=sections)
