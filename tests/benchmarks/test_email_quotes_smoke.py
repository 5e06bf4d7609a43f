"""``benchmarks/email_quotes.py`` on the e-mail samples shipped in ``tests/data/email``: every
talon reply and every crisp sample with an expected result stripped exactly, and the JSON
report written."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.email_quotes import main
from tests.conftest import TEST_DATA


def test_the_shipped_samples_are_all_stripped_exactly(tmp_path: Path) -> None:
    out = tmp_path / "quotes.json"
    assert main(["--data-dir", str(TEST_DATA), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = {row["corpus"]: row for row in report["rows"]}
    assert rows["talon/standard_replies"]["files"] == 12 and rows["talon/standard_replies"]["share"] == 1
    assert rows["talon/html_replies"]["files"] == 9 and rows["talon/html_replies"]["share"] == 1
    assert rows["crisp"]["files"] == 4 and rows["crisp"]["misses"] == []  # the 4 sampled ones with one
    assert report["all"] == {"files": 25, "exact": 25, "share": 1.0}
