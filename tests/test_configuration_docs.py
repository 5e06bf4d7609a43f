"""Every setting is documented in docs/CONFIGURATION.md."""

from atende.config import Settings
from tests.conftest import ROOT


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    missing = [name for name in Settings.model_fields if f"`ATENDE_{name.upper()}`" not in doc]
    assert missing == [], f"document these settings in docs/CONFIGURATION.md: {missing}"


def test_the_documentation_names_no_setting_that_does_not_exist() -> None:
    import re

    doc = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    named = set(re.findall(r"`ATENDE_([A-Z_]+)`", doc))
    assert named <= {n.upper() for n in Settings.model_fields}
