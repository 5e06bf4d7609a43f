"""Every environment variable atende reads is documented in docs/CONFIGURATION.md (each
``Settings`` field under ``ATENDE_<NAME>`` or the names it is read from, such as
``SENTRY_DSN``; tests/test_configuration_docs.py checks the plain ``ATENDE_<NAME>`` half), and
the deployment's example environment names only real settings."""

from __future__ import annotations

import re

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from atende.config import Settings
from tests.conftest import ROOT
from tests.deploy.conftest import ENV_EXAMPLE


def environment_names(name: str, field: FieldInfo) -> list[str]:
    """The variables pydantic-settings reads a field from (case-insensitively)."""
    alias = field.validation_alias
    if alias is None:
        return [f"ATENDE_{name.upper()}"]
    if isinstance(alias, str):
        return [alias.upper()]
    assert isinstance(alias, AliasChoices), f"{name}: an alias this test cannot read"
    return [choice.upper() for choice in alias.choices if isinstance(choice, str)]


def test_every_variable_the_settings_read_is_documented() -> None:
    doc = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    read = [env for name, field in Settings.model_fields.items() for env in environment_names(name, field)]
    assert "ATENDE_DATABASE_URL" in read and "ATENDE_SECRET_KEY" in read
    missing = [env for env in read if f"`{env}`" not in doc]
    assert missing == [], f"document these variables in docs/CONFIGURATION.md: {missing}"


def test_the_example_environment_names_only_real_settings() -> None:
    known = {env for name, field in Settings.model_fields.items() for env in environment_names(name, field)}
    named = set(re.findall(r"^#?\s*(ATENDE_[A-Z_]+)=", ENV_EXAMPLE.read_text(), re.M))
    assert "ATENDE_SECRET_KEY" in named
    assert named - known == set(), f"deploy/.env.example names no such setting: {sorted(named - known)}"
