"""A handful of messages through ``benchmarks/email_intake.py``: appended to the real Dovecot,
fetched by a real ``atende worker``, each stored once and answered once at the SMTP sink, and
the report and JSON written."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import postgres
from benchmarks.email_intake import main


def test_a_short_run_stores_and_answers_each_message_once(tmp_path: Path) -> None:
    out = tmp_path / "email.json"
    with postgres(None) as url:  # a throw-away PostgreSQL: the worker takes no other test's jobs
        main(["--messages", "5", "--timeout", "120", "--database-url", url, "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "email_intake"
    assert result["stored_distinct"] == result["replies"] == 5 and result["duplicate_replies"] == 0
    assert result["arrival_to_reply_ms"]["n"] == 5 and result["arrival_to_reply_ms"]["p50"] > 0
    assert result["intake_per_second"] > 0
