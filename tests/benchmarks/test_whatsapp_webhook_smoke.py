"""A few seconds of ``benchmarks/whatsapp_webhook.py`` at a tiny rate: signed webhooks to a real
``atende serve`` with an ``atende worker`` beside it, every one acknowledged and stored once,
the bot's replies reaching the benchmark's Graph sink, and the report and JSON written."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.common import postgres
from benchmarks.whatsapp_webhook import benchmark, main, parse_args
from tests.conftest import TEST_DATA


def test_a_short_run_acknowledges_stores_once_and_the_bot_answers(tmp_path: Path) -> None:
    args = ["--rate", "4", "--seconds", "3", "--warmup", "0.5", "--data-dir", str(TEST_DATA)]
    with postgres(None) as url:  # a throw-away PostgreSQL: the worker takes no other test's jobs
        result = benchmark(parse_args(args), url)
        out = tmp_path / "wa.json"
        main([*args, "--database-url", url, "--seconds", "1", "--json", str(out)])
    assert result["statuses"] == {"200": 12}  # the 2 due in the warm-up are checked, not timed
    check = result["stored_exactly_once"]
    assert check["acknowledged"] == result["sent"] == 14
    assert check["stored"] == 14 and check["missing"] == check["duplicated"] == 0
    assert check["stored_not_acknowledged"] == 0
    # each new customer's first message is a bot turn (handed off: no knowledge base) whose
    # reply went out through the outbox to the Graph sink
    assert result["drain"]["drained"]
    assert check["bot_replies"] == check["bot_replies_sent"] == 5 == result["drain"]["replies_sent"]
    assert result["ack_latency_ms"]["n"] == 12 and result["ack_latency_ms"]["p50"] > 0
    written = json.loads(out.read_text())
    assert written["benchmark"] == "whatsapp_webhook" and written["stored_exactly_once"]["missing"] == 0
