"""How the audit log says what happened, in plain words: one sentence per action
("Ana changed Bruno's role from Agent to Admin") and a short name per action and area for
the filter. The services record stable action names in English; the page says them in the
reader's language (every text is marked with ``N_`` and translated where it is shown)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from atende.dashboard.i18n import N_
from atende.dashboard.wording import CHANNEL_NAMES, STATE_NAMES

# the areas of the filter, in order (an area is a prefix of its actions' names)
AREAS: dict[str, str] = {
    "auth.": N_("Sign-ins"),
    "member.": N_("Members"),
    "invitation.": N_("Invitations"),
    "company.": N_("Companies"),
    "settings.": N_("Settings"),
    "team.": N_("Teams"),
    "api_key.": N_("API keys"),
    "webhook.": N_("Webhooks"),
    "document.": N_("Documents"),
    "channel_account.": N_("Channel accounts"),
    "conversation.": N_("Conversations"),
}

# each action: its name in the filter, and its sentence. The sentence's placeholders:
# actor, target (a person), and the event's details by name (role names and channel names
# translated: see ``describe``)
ACTIONS: dict[str, tuple[str, str]] = {
    "auth.signed_in": (N_("Signed in"), N_("%(actor)s signed in")),
    "auth.sign_in_failed": (
        N_("Failed sign-in"),
        N_("Someone failed to sign in as %(target)s: wrong password"),
    ),
    "auth.signed_out": (N_("Signed out"), N_("%(actor)s signed out")),
    "auth.password_changed": (N_("Password changed"), N_("%(actor)s changed their password")),
    "auth.password_reset": (
        N_("Password reset"),
        N_("%(actor)s chose a new password through an e-mailed link"),
    ),
    "member.role_changed": (
        N_("Role changed"),
        N_("%(actor)s changed %(target)s's role from %(from)s to %(to)s"),
    ),
    "member.deactivated": (N_("Member deactivated"), N_("%(actor)s deactivated %(target)s")),
    "member.reactivated": (N_("Member reactivated"), N_("%(actor)s reactivated %(target)s")),
    "invitation.sent": (N_("Invitation sent"), N_("%(actor)s invited %(email)s as %(role)s")),
    "invitation.cancelled": (
        N_("Invitation cancelled"),
        N_("%(actor)s cancelled the invitation of %(email)s"),
    ),
    "invitation.accepted": (
        N_("Invitation accepted"),
        N_("%(actor)s accepted an invitation and joined as %(role)s"),
    ),
    "company.created": (N_("Company created"), N_("%(actor)s created the company %(name)s")),
    "settings.company_changed": (N_("Company profile changed"), N_("%(actor)s changed the company profile")),
    "settings.hours_changed": (N_("Business hours changed"), N_("%(actor)s changed the business hours")),
    "settings.holidays_changed": (
        N_("Holidays changed"),
        N_("%(actor)s changed the holidays, closed dates or special hours"),
    ),
    "settings.handoff_changed": (N_("Handoff rules changed"), N_("%(actor)s changed the handoff rules")),
    "settings.bot_changed": (N_("Bot settings changed"), N_("%(actor)s changed the bot settings")),
    "settings.widget_changed": (N_("Widget changed"), N_("%(actor)s changed the web chat widget %(name)s")),
    "team.created": (N_("Team created"), N_("%(actor)s created the team %(name)s")),
    "team.changed": (N_("Team changed"), N_("%(actor)s changed the team %(name)s")),
    "team.deleted": (N_("Team deleted"), N_("%(actor)s deleted the team %(name)s")),
    "team.member_added": (N_("Added to a team"), N_("%(actor)s added %(target)s to the team %(team)s")),
    "team.member_removed": (
        N_("Removed from a team"),
        N_("%(actor)s removed %(target)s from the team %(team)s"),
    ),
    "api_key.created": (
        N_("API key created"),
        N_("%(actor)s created the API key %(name)s (%(prefix)s) with the %(role)s role"),
    ),
    "api_key.revoked": (N_("API key revoked"), N_("%(actor)s revoked the API key %(name)s (%(prefix)s)")),
    "webhook.created": (N_("Webhook added"), N_("%(actor)s added a webhook to %(host)s")),
    "webhook.changed": (N_("Webhook changed"), N_("%(actor)s changed the webhook to %(host)s")),
    "webhook.enabled": (N_("Webhook enabled"), N_("%(actor)s enabled the webhook to %(host)s")),
    "webhook.disabled": (N_("Webhook disabled"), N_("%(actor)s disabled the webhook to %(host)s")),
    "webhook.secret_rotated": (
        N_("Webhook secret renewed"),
        N_("%(actor)s made a new signing secret for the webhook to %(host)s"),
    ),
    "webhook.deleted": (N_("Webhook deleted"), N_("%(actor)s deleted the webhook to %(host)s")),
    "document.uploaded": (N_("Document uploaded"), N_("%(actor)s uploaded the document %(title)s")),
    "document.edited": (N_("Document edited"), N_("%(actor)s edited the document %(title)s")),
    "document.reindexed": (N_("Document re-indexed"), N_("%(actor)s re-indexed the document %(title)s")),
    "document.deleted": (N_("Document deleted"), N_("%(actor)s deleted the document %(title)s")),
    "channel_account.connected": (
        N_("Channel account connected"),
        N_("%(actor)s connected the %(kind)s account %(name)s"),
    ),
    "channel_account.changed": (
        N_("Channel account changed"),
        N_("%(actor)s changed the %(kind)s account %(name)s"),
    ),
    "channel_account.secrets_renewed": (
        N_("Channel account secrets renewed"),
        N_("%(actor)s renewed the secrets of the %(kind)s account %(name)s"),
    ),
    "channel_account.removed": (
        N_("Channel account removed"),
        N_("%(actor)s removed the %(kind)s account %(name)s"),
    ),
    "conversation.replied": (N_("Reply sent"), N_("%(actor)s replied to a customer")),
    "conversation.assigned": (
        N_("Conversation assigned"),
        N_("%(actor)s gave a conversation to %(assignee)s"),
    ),
    "conversation.resolved": (N_("Conversation resolved"), N_("%(actor)s resolved a conversation")),
    "conversation.reopened": (N_("Conversation reopened"), N_("%(actor)s reopened a conversation")),
    "conversation.handed_off": (N_("Handed to the team"), N_("%(actor)s handed a conversation to the team")),
    "conversation.handed_back": (
        N_("Handed back to the bot"),
        N_("%(actor)s handed a conversation back to the bot"),
    ),
    "conversation.snoozed": (
        N_("Conversation snoozed"),
        N_("%(actor)s snoozed a conversation until %(until)s"),
    ),
    "conversation.unsnoozed": (N_("Conversation woken"), N_("%(actor)s woke a snoozed conversation")),
}
# the same action said otherwise when a detail says so
VARIANTS: dict[tuple[str, str], str] = {
    ("document.uploaded", "new_version"): N_("%(actor)s uploaded a new version of the document %(title)s"),
    ("conversation.replied", "template"): N_("%(actor)s sent a template message to a customer"),
}
UNKNOWN = N_("%(actor)s: %(action)s")
NOBODY = N_("nobody")
SYSTEM = N_("The system")
API_KEY = N_("API key %(name)s")
SOMEONE = N_("someone")


class _Values(dict[str, Any]):
    """The sentence's values; a placeholder the event lacks reads as a dash."""

    def __missing__(self, key: str) -> str:
        return "-"


def describe(
    action: str,
    details: Mapping[str, Any],
    *,
    actor: str,
    target: str,
    names: Mapping[str, str],
    gettext: Callable[[str], str],
    role_names: Mapping[Any, str],
    when: Callable[[str], str],
) -> str:
    """The sentence of an event in the reader's language. ``names``: people's names by user
    id (an assignee); ``when``: an ISO instant as the page shows times."""
    _ = gettext
    values = _Values(details)
    values.update(actor=actor, target=target, action=action)
    roles = {str(getattr(role, "value", role)): name for role, name in role_names.items()}
    for key in ("role", "from", "to"):
        value = details.get(key)
        if isinstance(value, str) and action != "conversation.assigned":
            values[key] = _(roles[value]) if value in roles else _(STATE_NAMES.get(value, value))
    if isinstance(details.get("kind"), str):
        values["kind"] = _(CHANNEL_NAMES.get(details["kind"], details["kind"]))
    assignee = details.get("assignee")
    values["assignee"] = names.get(str(assignee), _(SOMEONE)) if assignee else _(NOBODY)
    if isinstance(details.get("until"), str):
        values["until"] = when(details["until"])
    template = next(
        (variant for (name, flag), variant in VARIANTS.items() if name == action and details.get(flag)),
        ACTIONS[action][1] if action in ACTIONS else UNKNOWN,
    )
    return _(template) % values
