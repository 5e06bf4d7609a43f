"""Company settings read through typed sections (``tenancy.settings``, ``teams.settings``):
a valid section round-trips, a missing one reads as its defaults, and one that no longer
validates reads as its defaults and is logged."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from atende.hours import ALWAYS_OPEN
from atende.teams.settings import HandoffRule, HandoffSettings, company_schedule, handoff_settings
from atende.tenancy.models import Company
from atende.tenancy.settings import EmbeddingsEndpoint, Instructions, LLMEndpoint, read_section


def company(settings: dict[str, Any] | None) -> Company:
    return Company(name="Loja", slug="loja", settings=settings)


HANDOFF = {
    "rules": [{"name": "legal", "keywords": ["procon", "advogado"], "team": "juridico"}],
    "team": "atendimento",
    "bot_answers_while_closed": True,
    "hand_off_on_repeat": False,
}


def test_a_valid_section_round_trips() -> None:
    read = handoff_settings(company({"handoff": HANDOFF}))
    assert read == HandoffSettings(
        rules=[HandoffRule(name="legal", keywords=["procon", "advogado"], team="juridico")],
        team="atendimento",
        bot_answers_while_closed=True,
        hand_off_on_repeat=False,
    )
    assert read.model_dump() == HANDOFF
    llm = {"base_url": "https://llm.example/v1", "model": "m", "api_key": "encrypted"}
    stored = company({"instructions": "Seja breve.", "llm": llm})
    assert read_section(stored, LLMEndpoint).model_dump() == llm
    assert read_section(stored, LLMEndpoint).configured
    assert read_section(stored, Instructions).instructions == "Seja breve."
    assert read_section(stored.settings, Instructions).instructions == "Seja breve."  # or the raw settings


def test_a_section_never_set_reads_as_its_defaults() -> None:
    for settings in (None, {}):
        assert handoff_settings(company(settings)) == HandoffSettings()
        assert read_section(company(settings), Instructions).instructions == ""
        assert not read_section(company(settings), EmbeddingsEndpoint).configured
        assert company_schedule(company(settings)) is ALWAYS_OPEN
    defaults = HandoffSettings()
    assert (defaults.rules, defaults.team) == ([], None)
    assert (defaults.bot_answers_while_closed, defaults.hand_off_on_repeat) == (False, True)


def test_a_stored_section_that_no_longer_validates_reads_as_its_defaults_and_is_logged() -> None:
    broken = {"handoff": {"rules": "procon", "bot_answers_while_closed": True}, "llm": ["not", "a", "map"]}
    with capture_logs() as logs:
        assert handoff_settings(company(broken)) == HandoffSettings()
        assert read_section(company(broken), LLMEndpoint) == LLMEndpoint()
    events = [e for e in logs if e["event"] == "company_settings.section_invalid"]
    assert [e["section"] for e in events] == ["handoff", "llm"]
    assert events[0]["fields"] == ["rules"]
    assert events[0]["log_level"] == "error"


def test_keys_a_section_does_not_know_are_ignored() -> None:
    """(Written by a newer version, or by hand): the section still reads."""
    read = handoff_settings(company({"handoff": {**HANDOFF, "later": 1}}))
    assert read.team == "atendimento"


def test_a_stored_schedule_that_no_longer_validates_is_logged_and_reads_as_always_open() -> None:
    stored = {"hours": {"timezone": "America/Sao_Paulo", "holidays": {"country": "BR", "subdiv": "GONE"}}}
    with capture_logs() as logs:
        assert company_schedule(company(stored)) is ALWAYS_OPEN
    assert [e["event"] for e in logs] == ["hours.stored_schedule_invalid"]
