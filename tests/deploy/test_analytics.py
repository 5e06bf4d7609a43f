"""The analytics views (migration 0008) that Metabase reads: their figures for conversations
made through the API (and none of the free text recorded with them), what a login role
granted ``atende_analytics`` may and may not do, the migration both ways, and
docs/ANALYTICS.md describing every view and column."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from sqlalchemy.engine import make_url

from atende.db import migrate
from atende.db.url import libpq_url
from tests.conftest import ROOT, CompanyCtx, ask, make_database

ROLE = "atende_analytics"
VIEWS = {
    "companies",
    "conversations",
    "handoffs",
    "messages_daily",
    "bot_decisions",
    "documents",
    "conversation_times",
}
DOC = ROOT / "docs" / "ANALYTICS.md"


def rows(db_url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(libpq_url(db_url), autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


async def get(company: CompanyCtx, path: str) -> Any:
    response = await company.client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


async def post(company: CompanyCtx, path: str, body: dict[str, Any] | None = None) -> Any:
    response = await company.client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def seconds(later: str, earlier: str) -> float:
    return (at(later) - at(earlier)).total_seconds()


async def test_the_views_add_up_what_happened_in_each_conversation(
    kb_company: CompanyCtx, db_url: str
) -> None:
    company = kb_company
    rules = {"rules": [{"name": "legal", "keywords": ["procon"], "team": None}]}
    r = await company.client.put("/v1/company/handoff", json=rules)
    assert r.status_code == 200, r.text
    answered = (await ask(company.client, "Qual o prazo de entrega?"))["conversation_id"]
    await post(company, f"/v1/conversations/{answered}/resolve")
    handed = await ask(company.client, "quero falar com um atendente")
    assert handed["reply"]["meta"]["decision"] == "handoff"
    handed_off = handed["conversation_id"]
    await post(company, f"/v1/conversations/{handed_off}/replies", {"text": "Olá, sou a Ana."})
    moved = (await ask(company.client, "Oi"))["conversation_id"]
    agents_words = "Ana Souza ligou irritada pedindo reembolso"  # free text: never in a view
    await post(
        company, f"/v1/conversations/{moved}/state", {"state": "waiting_human", "reason": agents_words}
    )
    ruled = (await ask(company.client, "Vou reclamar no Procon"))["conversation_id"]

    # what the API says happened
    detail = {
        cid: await get(company, f"/v1/conversations/{cid}") for cid in (answered, handed_off, moved, ruled)
    }
    messages = {cid: (await get(company, f"/v1/conversations/{cid}/messages"))["items"] for cid in detail}

    conversations = {
        str(r["conversation_id"]): r
        for r in rows(db_url, "SELECT * FROM analytics.conversations WHERE company_id = %s", company.id)
    }
    assert set(conversations) == set(detail)
    for cid, row in conversations.items():
        authors = Counter(m["author"] for m in messages[cid])
        assert (row["customer_messages"], row["bot_messages"], row["agent_messages"]) == (
            authors["customer"],
            authors["bot"],
            authors["agent"],
        )
        assert (row["state"], row["channel"], row["language"]) == (
            detail[cid]["state"],
            detail[cid]["channel"],
            detail[cid]["language"],
        )
        first = next(m for m in messages[cid] if m["author"] == "customer")
        response = next(m for m in messages[cid] if m["author"] in ("bot", "agent"))
        assert float(row["first_response_seconds"]) == pytest.approx(
            seconds(response["created_at"], first["created_at"]), abs=1e-3
        )
        assert float(row["first_response_seconds"]) >= 0

    resolved = conversations[answered]
    [closing] = [t for t in detail[answered]["transitions"] if t["to_state"] == "resolved"]
    assert resolved["handoffs"] == 0 and resolved["handoff_reason"] is None
    assert float(resolved["resolution_seconds"]) == pytest.approx(
        seconds(closing["created_at"], detail[answered]["created_at"]), abs=1e-3
    )
    assert conversations[handed_off]["resolution_seconds"] is None

    requested = conversations[handed_off]
    [queued] = [t for t in detail[handed_off]["transitions"] if t["to_state"] == "waiting_human"]
    agent_reply = next(m for m in messages[handed_off] if m["author"] == "agent")
    assert requested["handoffs"] == 1
    assert (requested["handoff_reason"], requested["state"]) == ("requested", "human")
    assert float(requested["first_agent_response_seconds"]) == pytest.approx(
        seconds(agent_reply["created_at"], queued["created_at"]), abs=1e-3
    )
    assert (conversations[moved]["handoffs"], conversations[moved]["handoff_reason"]) == (1, "manual")
    assert (conversations[ruled]["handoffs"], conversations[ruled]["handoff_reason"]) == (1, "rule")

    handoffs = {
        str(r["conversation_id"]): r
        for r in rows(db_url, "SELECT * FROM analytics.handoffs WHERE company_id = %s", company.id)
    }
    assert set(handoffs) == {handed_off, moved, ruled}
    taken = next(t for t in detail[handed_off]["transitions"] if t["to_state"] == "human")
    bot_handoff = handoffs[handed_off]
    assert (bot_handoff["reason"], bot_handoff["actor_type"]) == ("requested", "bot")
    assert bot_handoff["outcome"] == "human"
    assert bot_handoff["rule"] is None
    assert bot_handoff["nobody_online"] == queued["reason"].endswith("(nobody online)")
    assert bot_handoff["outside_hours"] == queued["reason"].endswith("(closed)")
    assert float(bot_handoff["wait_seconds"]) == pytest.approx(
        seconds(taken["created_at"], queued["created_at"]), abs=1e-3
    )
    manual = handoffs[moved]
    assert (manual["reason"], manual["rule"], manual["outcome"], manual["wait_seconds"]) == (
        "manual",
        None,
        None,
        None,
    )
    assert (handoffs[ruled]["reason"], handoffs[ruled]["rule"]) == ("rule", "legal")
    recorded = [t["reason"] for t in detail[moved]["transitions"] if t["to_state"] == "waiting_human"]
    assert recorded == [agents_words]  # the state change keeps it; the views do not show it
    for view in VIEWS:
        for row in rows(db_url, f"SELECT * FROM analytics.{view} WHERE company_id = %s", company.id):
            assert not [v for v in row.values() if isinstance(v, str) and agents_words in v], view

    decisions = {
        str(r["conversation_id"]): r
        for r in rows(db_url, "SELECT * FROM analytics.bot_decisions WHERE company_id = %s", company.id)
    }
    assert {cid: d["decision"] for cid, d in decisions.items()} == {
        answered: "answer",
        handed_off: "handoff",
        moved: "answer",
        ruled: "handoff",
    }
    assert decisions[answered]["passages"] > 0 and decisions[answered]["top_document_title"]
    assert decisions[answered]["total_ms"] > 0
    assert decisions[handed_off]["reason"] == "the customer asked for a person"

    per_author: Counter[str] = Counter()
    for row in rows(db_url, "SELECT * FROM analytics.messages_daily WHERE company_id = %s", company.id):
        per_author[row["author"]] += row["messages"]
    assert per_author == Counter(m["author"] for ms in messages.values() for m in ms)

    documents = rows(db_url, "SELECT * FROM analytics.documents WHERE company_id = %s", company.id)
    listed = await get(company, "/v1/documents")
    assert sorted(d["title"] for d in documents) == sorted(d["title"] for d in listed)
    assert all(d["status"] == "ready" and d["chunk_count"] > 0 for d in documents)

    [me] = rows(db_url, "SELECT * FROM analytics.companies WHERE company_id = %s", company.id)
    assert me["slug"] == company.slug


@pytest.fixture
def reader(db_url: str) -> Iterator[str]:
    """A login role that is a member of atende_analytics, as Metabase's would be."""
    name = f"metabase_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{name}" LOGIN IN ROLE {ROLE}')
    yield make_url(libpq_url(db_url)).set(username=name, password=None).render_as_string(hide_password=False)
    with psycopg.connect(libpq_url(db_url), autocommit=True) as admin:
        admin.execute(f'DROP ROLE "{name}"')


def test_a_member_of_the_analytics_role_reads_the_views_and_nothing_else(reader: str) -> None:
    with psycopg.connect(reader, autocommit=True) as conn:
        for view in VIEWS:
            conn.execute(f"SELECT * FROM analytics.{view} LIMIT 1").fetchall()
        refused = [
            "SELECT * FROM public.api_keys",
            "SELECT * FROM public.messages",
            "SELECT * FROM public.contacts",
            "SELECT * FROM procrastinate_jobs",
            "INSERT INTO public.api_keys (id) VALUES (gen_random_uuid())",
            "UPDATE analytics.documents SET title = 'x'",
            "DELETE FROM analytics.companies",
            "CREATE TABLE analytics.mine (i int)",
            "CREATE TABLE public.mine (i int)",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_the_analytics_migration_downgrades_and_upgrades_again(pg_url: str) -> None:
    url = make_database(pg_url, f"atende_analytics_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0007")
    assert rows(url, "SELECT 1 FROM pg_namespace WHERE nspname = 'analytics'") == []
    migrate.upgrade(url)  # again: the role exists already (this database or another made it)
    [granted] = rows(
        url,
        "SELECT has_schema_privilege(%s, 'analytics', 'USAGE') AS usage,"
        " bool_and(has_table_privilege(%s, c.oid, 'SELECT')) AS reads,"
        " bool_or(has_table_privilege(%s, c.oid, 'INSERT, UPDATE, DELETE')) AS writes"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'analytics'",
        ROLE,
        ROLE,
        ROLE,
    )
    assert granted == {"usage": True, "reads": True, "writes": False}
    [role] = rows(url, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", ROLE)
    assert role["rolcanlogin"] is False


def test_every_view_and_column_is_documented(db_url: str) -> None:
    doc = DOC.read_text()
    columns: dict[str, list[str]] = {}
    for row in rows(
        db_url,
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'analytics' ORDER BY table_name, ordinal_position",
    ):
        columns.setdefault(row["table_name"], []).append(row["column_name"])
    assert set(columns) == VIEWS
    sections = dict(re.findall(r"^### `analytics\.(\w+)`\n(.*?)(?=^### |\Z)", doc, re.M | re.S))
    assert set(sections) == VIEWS, "docs/ANALYTICS.md needs a section per view"
    for view, names in columns.items():
        missing = [c for c in names if f"`{c}`" not in sections[view]]
        assert missing == [], f"document {missing} of analytics.{view} in docs/ANALYTICS.md"
