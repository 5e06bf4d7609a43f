"""The analytics views (migration 0008, 0029, 0040) that Metabase reads: their figures for
conversations made through the API (and none of the free text recorded with them), the thumbs
on answers and the outbound messages' delivery per company, day and channel, what a login role
granted ``atende_analytics`` may and may not do, the migration both ways, and
docs/ANALYTICS.md describing every view and column."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

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
    "answer_ratings",
    "answer_ratings_daily",
    "deliveries",
    "deliveries_daily",
    "csat_surveys",
    "csat_daily",
    "sla_targets",
    "sla_daily",
    "sla_events_daily",
    "sla_warnings",
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


def test_a_member_of_the_analytics_role_reads_the_views_and_nothing_else(reader: str) -> None:
    with psycopg.connect(reader, autocommit=True) as conn:
        for view in VIEWS:
            conn.execute(f"SELECT * FROM analytics.{view} LIMIT 1").fetchall()
        refused = [
            "SELECT * FROM public.api_keys",
            "SELECT * FROM public.messages",
            "SELECT * FROM public.contacts",
            "SELECT * FROM procrastinate_jobs",
            "SELECT * FROM public.csat_surveys",  # the customers' comments
            "SELECT * FROM public.sla_records",
            "INSERT INTO analytics.sla_warnings (company_id) VALUES (gen_random_uuid())",
            "DELETE FROM analytics.sla_warnings",
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
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'v')",  # tables and views, not indexes
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


def outbound(
    db_url: str,
    company_id: uuid.UUID,
    conversation_id: str,
    channel: str,
    status: str,
    created: datetime,
    delivered: float | None = None,
    read: float | None = None,
) -> None:
    """An outbound message as the outbox leaves it: ``delivered``/``read`` seconds after it was stored."""
    rows(
        db_url,
        "INSERT INTO public.messages (id, company_id, conversation_id, channel, author, text, meta,"
        " created_at, delivery_status, delivered_at, read_at, delivery_error)"
        " VALUES (gen_random_uuid(), %s, %s, %s, 'agent', 'Seu pedido saiu.', '{}', %s, %s, %s, %s, %s)"
        " RETURNING id",
        company_id,
        conversation_id,
        channel,
        created,
        status,
        created + timedelta(seconds=delivered) if delivered is not None else None,
        created + timedelta(seconds=read) if read is not None else None,
        "131026: Receiver is incapable of receiving this message" if status == "failed" else None,
    )


async def rate(company: CompanyCtx, text: str, helpful: bool, comment: str | None = None) -> dict[str, Any]:
    body = await ask(company.client, text)
    cid, reply = body["conversation_id"], body["reply"]
    r = await company.client.put(
        f"/v1/conversations/{cid}/messages/{reply['id']}/rating",
        json={"helpful": helpful, "comment": comment},
    )
    assert r.status_code == 200, r.text
    return {"conversation_id": cid, "reply": reply, "rating": r.json()}


async def test_the_thumbs_and_the_deliveries_add_up_per_company_day_and_channel(
    company: CompanyCtx, other_company: CompanyCtx, db_url: str, reader: str
) -> None:
    up = await rate(company, "Oi", True)
    down = await rate(company, "Olá", False, "Não era isso que perguntei.")
    earlier = await rate(company, "Bom dia", True)
    await rate(other_company, "Oi", False)
    # the third answer was rated the day before
    yesterday = datetime.now(UTC) - timedelta(days=1)
    rows(
        db_url,
        "UPDATE public.answer_ratings SET rated_at = %s WHERE message_id = %s RETURNING id",
        yesterday,
        earlier["reply"]["id"],
    )

    ratings = {
        str(r["message_id"]): r
        for r in rows(db_url, "SELECT * FROM analytics.answer_ratings WHERE company_id = %s", company.id)
    }
    assert set(ratings) == {up["reply"]["id"], down["reply"]["id"], earlier["reply"]["id"]}
    for rated in (up, down, earlier):
        row = ratings[rated["reply"]["id"]]
        assert str(row["conversation_id"]) == rated["conversation_id"]
        assert (row["helpful"], row["channel"]) == (rated["rating"]["helpful"], "api")
        assert row["trace_id"] is not None and str(row["trace_id"]) == rated["rating"]["trace_id"]
        assert row["answered_at"] == at(rated["reply"]["created_at"])
    assert [ratings[r["reply"]["id"]]["commented"] for r in (up, down, earlier)] == [False, True, False]
    # the comment's words are in no view
    for view in ("answer_ratings", "answer_ratings_daily"):
        for row in rows(db_url, f"SELECT * FROM analytics.{view} WHERE company_id = %s", company.id):
            assert not [v for v in row.values() if isinstance(v, str) and "perguntei" in v]

    today = datetime.now(UTC).date()
    daily = {
        (r["day"], r["channel"]): (
            r["ratings"],
            r["helpful"],
            r["not_helpful"],
            float(r["helpful_share"]),
            r["commented"],
        )
        for r in rows(
            db_url, "SELECT * FROM analytics.answer_ratings_daily WHERE company_id = %s", company.id
        )
    }
    assert daily == {
        (today, "api"): (2, 1, 1, 0.5, 1),
        (yesterday.date(), "api"): (1, 1, 0, 1.0, 0),
    }
    [theirs] = rows(
        db_url, "SELECT * FROM analytics.answer_ratings_daily WHERE company_id = %s", other_company.id
    )
    assert (theirs["ratings"], theirs["not_helpful"], float(theirs["helpful_share"])) == (1, 1, 0.0)

    # deliveries: on a past day, a WhatsApp agent's replies in every state, and an e-mail
    day = date(2026, 11, 2)
    at_ten = datetime(2026, 11, 2, 10, tzinfo=UTC)
    cid = up["conversation_id"]
    outbound(db_url, company.id, cid, "whatsapp", "delivered", at_ten, delivered=4)
    outbound(db_url, company.id, cid, "whatsapp", "delivered", at_ten, delivered=10)
    outbound(db_url, company.id, cid, "whatsapp", "read", at_ten, delivered=2, read=60)
    outbound(db_url, company.id, cid, "whatsapp", "failed", at_ten)
    outbound(db_url, company.id, cid, "whatsapp", "queued", at_ten + timedelta(hours=13, minutes=59))
    outbound(db_url, company.id, cid, "email", "sent", at_ten)
    outbound(db_url, company.id, cid, "whatsapp", "sent", at_ten + timedelta(hours=14))  # the next UTC day
    theirs_cid = (await ask(other_company.client, "Oi"))["conversation_id"]
    outbound(db_url, other_company.id, theirs_cid, "whatsapp", "failed", at_ten)

    per_day = {
        (r["day"], r["channel"]): r
        for r in rows(
            db_url,
            "SELECT * FROM analytics.deliveries_daily WHERE company_id = %s AND day < %s",
            company.id,
            day + timedelta(days=2),
        )
    }
    assert set(per_day) == {(day, "whatsapp"), (day, "email"), (day + timedelta(days=1), "whatsapp")}
    whatsapp = per_day[(day, "whatsapp")]
    counts = ("messages", "queued", "sent", "delivered", "read", "failed")
    assert tuple(whatsapp[c] for c in counts) == (5, 1, 0, 2, 1, 1)
    assert float(whatsapp["failed_share"]) == 0.2
    assert whatsapp["delivery_median_seconds"] == pytest.approx(4)  # of 2, 4 and 10 seconds
    assert whatsapp["delivery_p90_seconds"] == pytest.approx(8.8)
    assert whatsapp["read_median_seconds"] == pytest.approx(60)
    email = per_day[(day, "email")]
    assert tuple(email[c] for c in counts) == (1, 0, 1, 0, 0, 0)
    assert email["delivery_median_seconds"] is None and float(email["failed_share"]) == 0
    [their_day] = rows(
        db_url,
        "SELECT * FROM analytics.deliveries_daily WHERE company_id = %s AND day = %s",
        other_company.id,
        day,
    )
    assert (their_day["messages"], their_day["failed"]) == (1, 1)

    # one row per outbound message: the bot's live answers are sent; the reason of a failure stays out
    messages = rows(db_url, "SELECT * FROM analytics.deliveries WHERE company_id = %s", company.id)
    live = [m for m in messages if m["channel"] == "api"]
    assert {(m["author"], m["delivery_status"]) for m in live} == {("bot", "sent")}
    assert len(live) == 3
    read = next(m for m in messages if m["delivery_status"] == "read")
    assert (read["delivery_seconds"], read["read_seconds"], read["failed"]) == (2, 60, False)
    [failed] = [m for m in messages if m["failed"]]
    assert (failed["channel"], failed["delivered_at"], failed["delivery_seconds"]) == ("whatsapp", None, None)
    assert not [v for m in messages for v in m.values() if isinstance(v, str) and "131026" in v]

    # what Metabase's login reads is the same
    with psycopg.connect(reader, autocommit=True, row_factory=dict_row) as conn:
        seen = conn.execute(
            "SELECT * FROM analytics.deliveries_daily WHERE company_id = %s AND day = %s", (company.id, day)
        ).fetchall()
        assert sorted(r["messages"] for r in seen) == [1, 5]
        [mine] = conn.execute(
            "SELECT sum(ratings) AS n FROM analytics.answer_ratings_daily WHERE company_id = %s",
            (company.id,),
        ).fetchall()
        assert mine["n"] == 3
