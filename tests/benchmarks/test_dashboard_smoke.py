"""A short run of ``benchmarks/dashboard.py`` (``python -m benchmarks.dashboard``): two small
companies filled by PostgreSQL, every inbox case timed through the service functions and
through a real ``atende serve``; the pages walk a view exactly once, and no row of the other
company is ever listed; live updates reach two screens of a conversation and two of the inbox
for a customer's message, a note, resolve and reopen."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.common import postgres
from benchmarks.dashboard import FANOUT_WAIT_SECONDS, benchmark, parse_args
from tests.conftest import TEST_DATA

ARGS = [
    "--conversations", "400",
    "--open", "160",
    "--messages", "4000",
    "--other-conversations", "60",
    "--other-messages", "400",
    "--agents", "4",
    "--teams", "2",
    "--labels", "4",
    "--deliveries", "300",
    "--repeat", "2",
    "--limit", "20",
    "--fanout", "2",
    "--fanout-rounds", "1",
    "--fanout-idle", "1",
    # the sample of the public sets that ships with the repository (tests/data/README.md)
    "--data-dir", str(TEST_DATA),
]  # fmt: skip


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    with postgres(None) as url:
        return benchmark(parse_args(ARGS), url)


def test_every_case_is_timed_through_the_services_and_the_api(result: dict[str, Any]) -> None:
    assert result["http_errors"] == []
    kinds = {r["kind"] for r in result["results"].values()}
    assert kinds == {"list", "page2", "counts", "conversation"}
    for name, r in result["results"].items():
        assert r["service_ms"]["n"] == 2, name
        assert r["http_ms"]["n"] == 2, name
        if r["kind"] in ("list", "page2"):
            assert r["rows"] == r["http_rows"] <= 20, name
    assert result["results"]["all"]["rows"] == 20
    searches = {name: r for name, r in result["results"].items() if r["params"].get("search")}
    assert any(r["rows"] > 0 for r in searches.values())
    assert [r["rows"] for name, r in searches.items() if "no match" in name] == [0]
    assert next(r for name, r in searches.items() if "an order" in name)["rows"] >= 1


def test_the_dashboards_pages_are_timed_signed_in(result: dict[str, Any]) -> None:
    pages = result["pages"]
    assert len(pages) == 12
    for name, r in pages.items():
        assert r["http_ms"]["n"] == 2, name
        assert r["bytes"] > 2000, name  # a whole page, not a sign-in redirect
    assert any(name.startswith("page: conversation") for name in pages)
    assert "page: knowledge · try a question" in pages  # a question through the bot's turn


def test_the_settings_pages_are_timed_signed_in_as_an_admin(result: dict[str, Any]) -> None:
    settings = result["settings"]
    team, hook = result["settings"]["settings: a team"], result["settings"]["settings: a webhook's log"]
    assert {r["params"]["path"] for r in settings.values()} == {
        "/app/settings",
        "/app/settings/company",
        "/app/settings/hours",
        "/app/settings/holidays",
        "/app/settings/handoff",
        "/app/settings/widget",
        "/app/settings/widget/preview",
        "/app/settings/teams",
        team["params"]["path"],
        "/app/settings/bot",
        "/app/settings/api-keys",
        "/app/settings/webhooks",
        hook["params"]["path"],
        "/app/settings/channels",
        "/app/analytics/gaps",
        "/app/logs/audit",
        "/app/logs",
    }
    assert result["http_errors"] == []  # each answered 200: a redirect to sign in would be an error
    for name, r in settings.items():
        assert r["http_ms"]["n"] == 2, name
        # a whole page, not a sign-in form or a refusal (the preview: the widget's frame)
        assert r["bytes"] > (500 if name == "settings: widget preview" else 2000), name
    # the busiest webhook's log, its first page and one halfway down its 300 deliveries
    logs = [r for r in settings.values() if r["params"]["path"].startswith("/app/settings/webhooks/")]
    assert [bool(r["params"].get("query")) for r in logs] == [False, True]
    assert result["sizes"]["webhook_deliveries"] == 300
    # the knowledge gaps: the last 30 days, 90 days, a year, and 90 days of one channel and language
    gaps = [r for r in settings.values() if r["params"]["path"] == "/app/analytics/gaps"]
    assert len(gaps) == 4


def test_the_pages_walk_a_view_once_and_the_other_company_never_shows(result: dict[str, Any]) -> None:
    assert result["walk"]["ok"], result["walk"]
    assert result["walk"]["listed"] > 0
    isolation = result["isolation"]
    assert isolation["ok"], isolation
    assert isolation["rows_checked"] > 100


def test_live_updates_reach_every_open_screen(result: dict[str, Any]) -> None:
    [level] = result["fanout"]
    assert (level["streams"], level["inbox_streams"], level["sessions"]) == (2, 2, 2)
    assert level["errors"] == []
    assert level["missed"] and not any(level["missed"].values()), level["missed"]
    events = level["events"]
    assert list(events) == ["customer message", "note", "resolve", "reopen"]
    for kind, entry in events.items():
        assert entry["request"]["n"] == 1, kind
        assert entry["conversation"]["n"] == 2, kind  # thread (message, note) or status
        assert entry["conversation"]["max"] < FANOUT_WAIT_SECONDS * 1000, kind
    assert "inbox" not in events["note"]  # a note does not move the conversation in the list
    for kind in ("customer message", "resolve", "reopen"):
        assert events[kind]["inbox"]["n"] == 2, kind
    assert level["db_connections"] > 0
    assert level["idle_server_cpu_percent"] >= 0


def test_the_data_is_the_size_asked_for(result: dict[str, Any]) -> None:
    assert result["sizes"]["conversations"] == 400
    assert result["fill_seconds"]["search index"] >= 0
    counts = result["results"]["counts · every state"]
    assert counts["rows"] > 0


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        parse_args(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--conversations",
        "--messages",
        "--repeat",
        "--data-dir",
        "--json",
        "--no-http",
        "--fanout",
    ):
        assert option in out
    assert "--quick" in out


def test_quick_is_a_small_run_and_the_options_given_win() -> None:
    args = parse_args(["--quick", "--fanout", "3,7", "--data-dir", str(TEST_DATA)])
    assert (args.conversations, args.messages, args.repeat) == (2_000, 20_000, 3)
    assert args.fanout == [3, 7]
    assert parse_args(["--fanout", "0", "--data-dir", str(TEST_DATA)]).fanout == []
    with pytest.raises(SystemExit):
        parse_args(["--fanout", "2,x", "--data-dir", str(TEST_DATA)])
