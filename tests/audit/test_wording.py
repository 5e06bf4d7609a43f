"""Every action of the audit log says a sentence in each language, naming who did it, with
the details it recorded (and the same placeholders in each translation)."""

from __future__ import annotations

import re

import pytest

from atende.dashboard import i18n
from atende.dashboard.audit_wording import ACTIONS, AREAS, VARIANTS, describe
from atende.dashboard.web import ROLE_NAMES

DETAILS = {
    "from": "agent",
    "to": "admin",
    "role": "viewer",
    "email": "nova@example.com",
    "name": "Financeiro",
    "title": "Trocas e devoluções",
    "prefix": "atd_abcd1234",
    "host": "hooks.example.com",
    "kind": "whatsapp",
    "team": "Suporte",
    "assignee": "7d7f3c2a-0000-4000-8000-000000000001",
    "until": "2026-12-08T12:00:00+00:00",
}
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


@pytest.mark.parametrize("language", list(i18n.LANGUAGES))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_reads_as_a_sentence_naming_its_actor(action: str, language: str) -> None:
    translations = i18n.translations(language)
    sentence = describe(
        action,
        DETAILS,
        actor="Ana Souza",
        target="Bruno Lima",
        names={DETAILS["assignee"]: "Carla Dias"},
        gettext=translations.gettext,
        role_names=ROLE_NAMES,
        when=lambda value: "8 Dec, 12:00",
    )
    assert "Ana Souza" in sentence or "Bruno Lima" in sentence
    assert "%(" not in sentence and " - " not in sentence
    assert any(action.startswith(area) for area in AREAS)


def test_every_translation_keeps_the_placeholders() -> None:
    translations = i18n.translations("pt-BR")
    for template in [sentence for _label, sentence in ACTIONS.values()] + list(VARIANTS.values()):
        translated = translations.gettext(template)
        assert translated != template or template.startswith("%(actor)s: ")
        assert set(PLACEHOLDER.findall(translated)) == set(PLACEHOLDER.findall(template)), template


def test_roles_states_and_channels_are_said_in_the_readers_language() -> None:
    pt = i18n.translations("pt-BR").gettext
    said = describe(
        "member.role_changed",
        {"from": "agent", "to": "admin"},
        actor="Ana",
        target="Bruno",
        names={},
        gettext=pt,
        role_names=ROLE_NAMES,
        when=str,
    )
    assert said == f"Ana mudou o papel de Bruno de {pt('Agent')} para {pt('Admin')}"
    connected = describe(
        "channel_account.connected",
        {"kind": "email", "name": "vendas@loja.com"},
        actor="Ana",
        target="-",
        names={},
        gettext=pt,
        role_names=ROLE_NAMES,
        when=str,
    )
    assert connected == f"Ana conectou a conta de {pt('E-mail')} vendas@loja.com"
