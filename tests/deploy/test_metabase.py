"""Metabase: the dashboard export (deploy/metabase/atende-dashboard.json) and the script that
loads it (scripts/metabase_load.py). Metabase cannot run here: the script is run against a
loopback Metabase that speaks the endpoints it calls (tests/fakes/metabase.py); every card's
SQL runs against the real database as Metabase's read-only login would, with and without
the company filter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from atende.runtime import Runtime
from tests.conftest import ROOT, CompanyCtx, ask
from tests.deploy.conftest import DEPLOY
from tests.deploy.test_analytics import VIEWS
from tests.fakes.loopback import running
from tests.fakes.metabase import FakeMetabase
from tests.feedback.conftest import enable, resolve, run_survey_job
from tests.sla.test_job import check_at, handed_off, policy, settled

EXPORT = DEPLOY / "metabase" / "atende-dashboard.json"
SCRIPT = ROOT / "scripts" / "metabase_load.py"
ADMIN_PASSWORD = "s3cret-admin-password"
DB_PASSWORD = "s3cret-reader-password"
GRID_WIDTH = 24  # Metabase's dashboard grid


def export() -> dict[str, Any]:
    return dict(json.loads(EXPORT.read_text()))


def load(url: str, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MB_", "ANALYTICS_DB"))}
    environ |= {"MB_ADMIN_PASSWORD": ADMIN_PASSWORD, "ANALYTICS_DB_PASSWORD": DB_PASSWORD} | env
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url, "--email", "admin@example.com", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        check=False,
    )


@pytest.fixture
def metabase() -> Iterator[FakeMetabase]:
    with running(FakeMetabase()) as server:
        yield server


def test_a_new_metabase_gets_its_admin_the_analytics_database_and_the_dashboard(
    metabase: FakeMetabase,
) -> None:
    done = load(metabase.origin)
    assert done.returncode == 0, done.stderr
    assert (metabase.email, metabase.password) == ("admin@example.com", ADMIN_PASSWORD)
    assert ADMIN_PASSWORD not in done.stdout + done.stderr and DB_PASSWORD not in done.stdout + done.stderr

    [db] = metabase.databases.values()
    assert db["engine"] == "postgres" and db["name"] == "atende analytics"
    assert db["details"] | {"password": None} == {
        "host": "postgres",
        "port": 5432,
        "dbname": "atende",
        "user": "metabase_reader",
        "password": None,
        "ssl": False,
        "schema-filters-type": "inclusion",
        "schema-filters-patterns": "analytics",
    }
    assert db["details"]["password"] == DB_PASSWORD
    assert metabase.synced == [db["id"]]

    [collection] = metabase.collections.values()
    cards = export()["cards"]
    assert sorted(c["name"] for c in metabase.cards.values()) == sorted(c["name"] for c in cards)
    for made in metabase.cards.values():
        spec = next(c for c in cards if c["name"] == made["name"])
        query = made["dataset_query"]
        assert (query["type"], query["database"], made["collection_id"]) == (
            "native",
            db["id"],
            collection["id"],
        )
        assert query["native"]["query"] == spec["query"]
        assert set(query["native"]["template-tags"]) == {"company"}
        assert query["native"]["template-tags"]["company"]["type"] == "text"

    [dashboard] = metabase.dashboards.values()
    assert dashboard["name"] == export()["dashboard"]["name"]
    assert [p["slug"] for p in dashboard["parameters"]] == ["company"]
    placed = {d["card_id"]: d for d in dashboard["dashcards"]}
    assert set(placed) == set(metabase.cards)
    for card_id, dashcard in placed.items():
        assert dashcard["parameter_mappings"] == [
            {
                "parameter_id": "company",
                "card_id": card_id,
                "target": ["variable", ["template-tag", "company"]],
            }
        ]
    # every call but the first ones carried the session it was given
    signed = [
        r
        for r in metabase.requests
        if r.path not in ("/api/session/properties", "/api/setup", "/api/session")
    ]
    assert signed and all(r.session in metabase.sessions for r in signed)
    assert f"{metabase.origin}/dashboard/{dashboard['id']}" in done.stdout


def test_loading_again_updates_what_it_made_and_makes_nothing_twice(metabase: FakeMetabase) -> None:
    assert load(metabase.origin).returncode == 0
    before = (
        set(metabase.databases),
        set(metabase.collections),
        set(metabase.cards),
        set(metabase.dashboards),
    )
    metabase.cards[min(metabase.cards)]["dataset_query"]["native"]["query"] = "SELECT 'edited by hand'"
    again = load(metabase.origin)
    assert again.returncode == 0, again.stderr
    assert (
        set(metabase.databases),
        set(metabase.collections),
        set(metabase.cards),
        set(metabase.dashboards),
    ) == before
    assert metabase.of("POST", "/api/setup") and len(metabase.of("POST", "/api/setup")) == 1
    assert len(metabase.of("POST", "/api/database")) == 1 and len(metabase.of("POST", "/api/card")) == len(
        export()["cards"]
    )
    assert all("edited" not in c["dataset_query"]["native"]["query"] for c in metabase.cards.values())
    # the same tags on every run: a filter wired to them keeps working
    tags = [
        r.body["dataset_query"]["native"]["template-tags"]["company"]["id"]
        for r in metabase.of("PUT", r"/api/card/\d+")
    ]
    first = [
        r.body["dataset_query"]["native"]["template-tags"]["company"]["id"]
        for r in metabase.of("POST", "/api/card")
    ]
    assert tags == first


def test_an_api_key_replaces_signing_in(metabase: FakeMetabase) -> None:
    metabase.set_up = True
    metabase.api_keys.add("mb_api_key_123")
    done = load(metabase.origin, MB_API_KEY="mb_api_key_123", MB_ADMIN_PASSWORD="")
    assert done.returncode == 0, done.stderr
    assert not metabase.of("POST", "/api/session")
    assert len(metabase.dashboards) == 1 and len(metabase.cards) == len(export()["cards"])
    assert "mb_api_key_123" not in done.stdout + done.stderr


def test_a_refusal_or_a_hung_metabase_ends_with_a_clear_message(metabase: FakeMetabase) -> None:
    metabase.set_up = True
    wrong = load(metabase.origin, MB_ADMIN_PASSWORD="not-the-password")
    assert wrong.returncode == 1
    assert "POST /api/session answered 401" in wrong.stderr and "not-the-password" not in wrong.stderr
    assert metabase.databases == {}

    new = FakeMetabase()
    with running(new):
        missing = load(new.origin, MB_ADMIN_PASSWORD="")
    assert missing.returncode == 1 and "this Metabase is new" in missing.stderr

    hung = FakeMetabase(delay=5)
    with running(hung):
        started = time.monotonic()
        slow = load(hung.origin, "--timeout", "0.5")
        assert time.monotonic() - started < 4
    assert slow.returncode == 1 and "ReadTimeout" in slow.stderr


def test_the_export_lays_out_every_card_and_covers_every_view() -> None:
    spec = export()
    cards = spec["cards"]
    names = [c["name"] for c in cards]
    assert len(names) == len(set(names)) and len({c["key"] for c in cards}) == len(cards)
    cells: set[tuple[int, int]] = set()
    for card in cards:
        box = card["layout"]
        assert box["col"] + box["size_x"] <= GRID_WIDTH, card["name"]
        mine = {(box["row"] + r, box["col"] + c) for r in range(box["size_y"]) for c in range(box["size_x"])}
        assert not mine & cells, f"{card['name']} overlaps another card"
        cells |= mine
        assert card["display"] in {"line", "bar", "table", "scalar", "pie", "row", "area"}
        assert re.findall(r"\{\{(\w+)\}\}", card["query"]) in ([], ["company"]), card["name"]
    used = {v for c in cards for v in re.findall(r"analytics\.(\w+)", c["query"])}
    assert used == VIEWS, f"no card reads {sorted(VIEWS - used)}; {sorted(used - VIEWS)} are no views"


def sql(query: str, company: bool) -> str:
    """The card's SQL as Metabase runs it: the optional clause dropped, or filled in."""
    if company:
        return re.sub(r"\[\[(.*?)\]\]", r"\1", query, flags=re.S).replace("{{company}}", "%(company)s")
    return re.sub(r"\[\[.*?\]\]", "", query, flags=re.S)


async def test_every_card_runs_as_the_read_only_login_and_the_filter_keeps_one_company(
    company: CompanyCtx,
    other_company: CompanyCtx,
    reader: str,
    runtime: Runtime,
) -> None:
    for ctx, helpful in ((company, True), (other_company, False)):
        body = await ask(ctx.client, "Oi")
        r = await ctx.client.put(
            f"/v1/conversations/{body['conversation_id']}/messages/{body['reply']['id']}/rating",
            json={"helpful": helpful},
        )
        assert r.status_code == 200, r.text
    # a CSAT survey answered 5 (ours) and 2 (theirs); an SLA breach raised by the job (ours)
    for ctx, score in ((company, 5), (other_company, 2)):
        await enable(ctx.client)
        cid = (await ask(ctx.client, "Preciso de ajuda", contact="csat"))["conversation_id"]
        await resolve(ctx.client, cid)
        [sent] = await run_survey_job(runtime, ctx.id)
        r = await ctx.client.post(f"/v1/csat/{sent.survey_id}/answer", json={"score": score})
        assert r.status_code == 200, r.text
    await policy(company, first_response="1h")
    start = datetime(2027, 5, 3, 10, tzinfo=UTC)  # ahead of the session's worker, on the real clock
    await handed_off(company, runtime, start)
    await settled(runtime, company, start)
    assert (await check_at(runtime, company, start + timedelta(hours=2))).breaches == 1
    cards = {c["key"]: c for c in export()["cards"]}
    with psycopg.connect(reader, autocommit=True, row_factory=dict_row) as conn:
        for card in cards.values():
            conn.execute(sql(card["query"], company=False)).fetchall()
            conn.execute(sql(card["query"], company=True), {"company": company.slug}).fetchall()
        ratings = conn.execute(
            sql(cards["ratings-per-day"]["query"], company=True), {"company": company.slug}
        )
        assert [(r["helpful"], r["not_helpful"]) for r in ratings.fetchall()] == [(1, 0)]
        theirs = conn.execute(
            sql(cards["ratings-per-day"]["query"], company=True), {"company": other_company.slug}
        ).fetchall()
        assert [(r["helpful"], r["not_helpful"]) for r in theirs] == [(0, 1)]
        everyone = conn.execute(sql(cards["conversations-per-day"]["query"], company=False)).fetchall()
        mine = conn.execute(
            sql(cards["conversations-per-day"]["query"], company=True), {"company": company.slug}
        ).fetchall()
        assert sum(r["conversations"] for r in mine) == 3  # the rated, the surveyed, the handed off
        assert sum(r["conversations"] for r in everyone) >= 5

        def card(key: str, slug: str) -> list[dict[str, Any]]:
            return conn.execute(sql(cards[key]["query"], company=True), {"company": slug}).fetchall()

        [(channel)] = card("csat-by-channel", company.slug)
        assert (channel["channel"], channel["sent"], channel["answered"]) == ("api", 1, 1)
        assert (float(channel["average_score"]), float(channel["satisfied_share"])) == (5.0, 1.0)
        [theirs_csat] = card("csat-per-week", other_company.slug)
        assert (float(theirs_csat["satisfied_share"]), float(theirs_csat["response_rate"])) == (0.0, 1.0)
        assert [(r["breaches"], r["warnings"]) for r in card("sla-breaches-per-day", company.slug)] == [
            (1, 0)
        ]
        assert card("sla-breaches-per-day", other_company.slug) == []
        [(policy_row)] = card("sla-compliance-by-policy", company.slug)
        assert (policy_row["target"], policy_row["breached"], float(policy_row["compliance"])) == (
            "first_response",
            1,
            0.0,
        )


def test_the_help_names_the_options_and_where_the_passwords_come_from() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    for word in (
        "--url",
        "--email",
        "--db-host",
        "--timeout",
        "MB_ADMIN_PASSWORD",
        "ANALYTICS_DB_PASSWORD",
        "MB_API_KEY",
    ):
        assert word in done.stdout, word
