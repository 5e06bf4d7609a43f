"""The migrations and the models describe one schema, and the migrations run both ways."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

import atende.schema  # noqa: F401  (registers every table on Base.metadata)
from atende.app import create_app
from atende.config import Settings
from atende.db import migrate
from atende.db.base import Base
from atende.db.url import libpq_url, sqlalchemy_url
from tests.conftest import free_port, make_database
from tests.fixtures.servers import serving


def _not_procrastinate(name: str | None, _type: str, _parent: Any) -> bool:
    return not (name or "").startswith("procrastinate")


def schema_drift(url: str) -> list[Any]:
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_name": _not_procrastinate}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_the_migrated_schema_is_the_models_schema(db_url: str) -> None:
    """A model change without its migration (or the reverse) fails here, index by index."""
    assert schema_drift(db_url) == []


def test_every_migration_downgrades_and_upgrades_again(pg_url: str) -> None:
    url = make_database(pg_url, f"atende_migrations_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        functions = {
            row[0] for row in conn.execute("SELECT proname FROM pg_proc WHERE proname LIKE 'atende_%'")
        }
    assert functions == {
        "atende_receive_message_v6",
        "atende_notify_v1",
        "atende_take_notices_v1",
        "atende_emit_webhook_v1",
        "atende_isoformat_v1",
        "atende_fair_job_priority_v1",
        "atende_company_webchat_account_v2",
        "atende_message_search_v1",
        "atende_message_query_v1",
        "atende_search_words_v1",
        "atende_sla_follow_state_v1",
        "atende_sla_follow_message_v1",
        "atende_sla_follow_labels_v1",
        "atende_sla_copy_warning_v1",
    }
    migrate.downgrade(url, "base")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchone()
    assert left == (0,)
    migrate.upgrade(url)
    assert schema_drift(url) == []


def test_a_migration_failing_on_a_statement_says_why_without_its_values(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data migration's values may be customers' messages: its error, logged by whoever
    runs the upgrade, names the statement and never quotes them."""
    words = "Oi, sou a Ana Souza e meu pedido veio quebrado"

    def failing_upgrade(config: Config, _revision: str) -> None:
        config.attributes["connection"].execute(
            text("SELECT 1 / 0 WHERE CAST(:text AS text) IS NOT NULL"), {"text": words}
        )

    monkeypatch.setattr(migrate.command, "upgrade", failing_upgrade)
    with pytest.raises(DBAPIError) as raised:
        migrate.upgrade(db_url)
    assert "division by zero" in str(raised.value)
    assert words not in str(raised.value)


def test_conversations_already_waiting_for_a_person_get_their_waiting_time(pg_url: str) -> None:
    """0007 gives conversations queued before it a ``waiting_since`` (their last update), so
    they keep their place in the queue."""
    url = make_database(pg_url, f"atende_backfill_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0006")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, widget_key, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'wk', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        contact = conn.execute(
            "INSERT INTO contacts (id, created_at, company_id, channel, external_id)"
            " VALUES (gen_random_uuid(), now(), %s, 'api', 'x') RETURNING id",
            (company,),
        ).fetchone()[0]
        for state in ("waiting_human", "bot"):
            conn.execute(
                "INSERT INTO conversations"
                " (id, created_at, company_id, contact_id, channel, state, updated_at)"
                " VALUES (gen_random_uuid(), now(), %s, %s, 'api', %s, '2026-11-30T10:00:00+00')",
                (company, contact, state),
            )
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = dict(conn.execute("SELECT state, waiting_since = updated_at FROM conversations").fetchall())
        assert rows == {"waiting_human": True, "bot": None}


def test_webhook_endpoints_registered_before_0014_keep_the_legacy_signature(pg_url: str) -> None:
    """0014 leaves the endpoints that exist on the ``atende`` scheme (their receivers check
    ``X-Atende-Signature``); endpoints registered afterwards sign the standard way."""
    url = make_database(pg_url, f"atende_webhook_schemes_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0013")
    insert_endpoint = (
        "INSERT INTO webhook_endpoints (id, created_at, company_id, url, secret_encrypted, events, enabled,"
        " consecutive_failures) VALUES (gen_random_uuid(), now(), %s, %s, 'x', '{message.created}', true, 0)"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, widget_key, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'wk', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        conn.execute(insert_endpoint, (company, "https://example.com/before"))
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(insert_endpoint, (company, "https://example.com/after"))
        rows = conn.execute(
            "SELECT url, signature_scheme, previous_secret_encrypted FROM webhook_endpoints ORDER BY url"
        ).fetchall()
    assert rows == [
        ("https://example.com/after", "standard", None),
        ("https://example.com/before", "atende", None),
    ]


def test_widget_keys_of_companies_created_before_0015_keep_working(pg_url: str) -> None:
    """0015 gives every company its web chat account, keyed by its widget key; a company
    created afterwards gets one too (a trigger, which draws its key since 0018), whoever
    creates it."""
    url = make_database(pg_url, f"atende_channel_accounts_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0014")
    insert_company = (
        "INSERT INTO companies (id, created_at, name, slug, widget_key, default_language, settings)"
        " VALUES (gen_random_uuid(), now(), %s, %s, %s, 'pt', '{}') RETURNING id"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        before = conn.execute(insert_company, ("a", "a", "wk_before")).fetchone()[0]
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        after = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'b', 'b', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        rows = conn.execute(
            "SELECT company_id, kind, external_id LIKE 'wk\\_%%', enabled FROM channel_accounts"
            " ORDER BY external_id = 'wk_before' DESC"
        ).fetchall()
    assert rows == [(before, "webchat", True, True), (after, "webchat", True, True)]


def test_deliveries_recorded_in_meta_before_0016_move_to_their_columns(pg_url: str) -> None:
    """0016 moves what 0015's direct delivery kept in ``meta.delivery`` into the message's
    delivery columns, and its downgrade puts it back."""
    url = make_database(pg_url, f"atende_message_delivery_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0015")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, widget_key, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'd', 'd', 'wk_d', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        contact = conn.execute(
            "INSERT INTO contacts (id, created_at, company_id, channel, external_id)"
            " VALUES (gen_random_uuid(), now(), %s, 'parrot', 'ze') RETURNING id",
            (company,),
        ).fetchone()[0]
        conversation = conn.execute(
            "INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state, ticket)"
            " VALUES (gen_random_uuid(), now(), %s, %s, 'parrot', 'bot', false) RETURNING id",
            (company, contact),
        ).fetchone()[0]
        insert_message = (
            "INSERT INTO messages (id, created_at, company_id, conversation_id, channel, author, text, meta)"
            " VALUES (gen_random_uuid(), now(), %s, %s, 'parrot', %s, 'oi', %s::jsonb) RETURNING id"
        )
        customer = conn.execute(insert_message, (company, conversation, "customer", '{"k": 1}')).fetchone()[0]
        meta = (
            '{"decision": "answer", "delivery": {"provider_message_id": "p-1", "status": "read", "at": "x"}}'
        )
        reply = conn.execute(insert_message, (company, conversation, "bot", meta)).fetchone()[0]
    migrate.upgrade(url)
    select_delivery = (
        "SELECT delivery_status, provider_message_id, delivery_error, meta FROM messages WHERE id = %s"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        assert conn.execute(select_delivery, (reply,)).fetchone() == (
            "read",
            "p-1",
            None,
            {"decision": "answer"},
        )
        assert conn.execute(select_delivery, (customer,)).fetchone() == (None, None, None, {"k": 1})
    migrate.downgrade(url, "0015")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute("SELECT meta FROM messages WHERE id = %s", (reply,)).fetchone()
    assert row == ({"decision": "answer", "delivery": {"provider_message_id": "p-1", "status": "read"}},)


def test_widget_keys_move_to_the_web_chat_accounts_alone_and_keep_routing(
    pg_url: str, settings: Settings
) -> None:
    """0018 drops ``companies.widget_key``: the web chat account is the key's one home. The keys
    pages embed keep opening chats; a company whose account was deleted gets it back under
    its old key; a company created afterwards gets a key drawn by the trigger. The downgrade
    puts the column back from the accounts."""
    url = make_database(pg_url, f"atende_widget_keys_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0016")
    insert_company = (
        "INSERT INTO companies (id, created_at, name, slug, widget_key, default_language, settings)"
        " VALUES (gen_random_uuid(), now(), %s, %s, %s, 'pt', '{}') RETURNING id"
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        kept = conn.execute(insert_company, ("a", "a", "wk_kept")).fetchone()[0]
        lost = conn.execute(insert_company, ("b", "b", "wk_lost")).fetchone()[0]
        conn.execute("DELETE FROM channel_accounts WHERE company_id = %s", (lost,))
    migrate.upgrade(url)
    webchat_keys = "SELECT company_id, external_id FROM channel_accounts WHERE kind = 'webchat'"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'companies'"
        ).fetchall()
        assert ("widget_key",) not in columns
        new = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        keys = dict(conn.execute(webchat_keys).fetchall())
    assert (keys[kept], keys[lost]) == ("wk_kept", "wk_lost")
    assert keys[new].startswith("wk_") and len(keys[new]) == 35

    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    own = settings.model_copy(
        update={"database_url": url, "port": port, "public_url": public_url, "run_worker": False}
    )
    with serving(create_app(own), port) as base_url, httpx.Client(base_url=base_url, timeout=15) as web:
        for key in keys.values():
            assert web.post(f"/widget/v1/{key}/conversations").status_code == 201, key
        assert web.post("/widget/v1/wk_nobody/conversations").status_code == 404

    migrate.downgrade(url, "0016")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        restored = dict(conn.execute("SELECT id, widget_key FROM companies").fetchall())
        assert restored == keys
        later = conn.execute(insert_company, ("d", "d", "wk_later")).fetchone()[0]
        assert dict(conn.execute(webchat_keys).fetchall())[later] == "wk_later"


def test_0020s_trigger_wakes_a_snooze_on_any_customer_message_and_its_downgrade_drops_notes(
    pg_url: str,
) -> None:
    """From 0020 to 0022 a customer message stored by any path (here plain SQL, not the intake
    function) ends a snooze; another author's does not (0023 moved it into the intake function,
    and its downgrade brings the trigger back). Code before 0020 would show notes to
    customers, so the downgrade deletes them and keeps every other message."""
    url = make_database(pg_url, f"atende_actions_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0022")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'n', 'n', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        contact = conn.execute(
            "INSERT INTO contacts (id, created_at, company_id, channel, external_id)"
            " VALUES (gen_random_uuid(), now(), %s, 'api', 'ze') RETURNING id",
            (company,),
        ).fetchone()[0]
        conversation = conn.execute(
            "INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state, ticket,"
            " snoozed_until) VALUES (gen_random_uuid(), now(), %s, %s, 'api', 'human', false,"
            " now() + interval '1 day') RETURNING id",
            (company, contact),
        ).fetchone()[0]
        insert = (
            "INSERT INTO messages (id, created_at, company_id, conversation_id, channel, author, text, meta)"
            " VALUES (gen_random_uuid(), now(), %s, %s, 'api', %s, %s, '{}')"
        )
        snoozed = "SELECT snoozed_until IS NOT NULL FROM conversations WHERE id = %s"
        for author in ("agent", "note", "bot"):
            conn.execute(insert, (company, conversation, author, f"by {author}"))
            assert conn.execute(snoozed, (conversation,)).fetchone() == (True,), author
        conn.execute(insert, (company, conversation, "customer", "oi"))
        assert conn.execute(snoozed, (conversation,)).fetchone() == (False,)
    migrate.downgrade(url, "0019")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        authors = conn.execute("SELECT author FROM messages ORDER BY seq").fetchall()
    assert authors == [("agent",), ("bot",), ("customer",)]
    migrate.upgrade(url)


def test_document_metadata_moves_into_columns_and_back(pg_url: str) -> None:
    """0028 moves ``meta``'s tags, product, audience and validity into columns (a date's
    validity holding all of that day), keeps any other key in ``meta`` and records the indexed
    version; the downgrade puts them back as they were."""
    url = make_database(pg_url, f"atende_document_meta_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0027")
    meta = (
        '{"tags": ["frete", "natal"], "product": "Turbo", "audience": "customers",'
        ' "valid_from": "2026-12-01", "valid_until": "2026-12-31", "legacy": 1}'
    )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        for source, value, digest in (("promo.md", meta, "abc"), ("plain.md", "{}", "")):
            conn.execute(
                "INSERT INTO documents (id, created_at, company_id, title, source, content_type, language,"
                " content_hash, status, chunk_count, meta, updated_at) VALUES (gen_random_uuid(), now(), %s,"
                " 't', %s, 'markdown', 'pt', %s, 'ready', 0, %s, now())",
                (company, source, digest, value),
            )
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT tags, product, audience, valid_from AT TIME ZONE 'UTC',"
            " valid_until AT TIME ZONE 'UTC', meta FROM documents WHERE source = 'promo.md'"
        ).fetchone()
        assert row[:3] == (["frete", "natal"], "Turbo", "customers")
        assert (str(row[3]), str(row[4])) == ("2026-12-01 00:00:00", "2026-12-31 23:59:59.999999")
        assert row[5] == {"legacy": 1}
        assert conn.execute("SELECT tags, meta FROM documents WHERE source = 'plain.md'").fetchone() == (
            [],
            {},
        )
        versions = conn.execute("SELECT version, content_hash, data FROM document_versions").fetchall()
        assert versions == [(1, "abc", None)]  # the indexed one; its bytes were never kept
    migrate.downgrade(url, "0027")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        back = conn.execute("SELECT meta FROM documents WHERE source = 'promo.md'").fetchone()[0]
        assert back == {
            "tags": ["frete", "natal"],
            "product": "Turbo",
            "audience": "customers",
            "valid_from": "2026-12-01",
            "valid_until": "2026-12-31",
            "legacy": 1,
        }
        assert conn.execute("SELECT meta FROM documents WHERE source = 'plain.md'").fetchone()[0] == {}


def test_0034_gives_conversations_an_empty_context_and_its_downgrade_drops_it(pg_url: str) -> None:
    """Conversations from before 0034 read an empty context (no knowledge rule of a page or
    product applies to them); the downgrade keeps the conversations."""
    url = make_database(pg_url, f"atende_context_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0033")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        contact = conn.execute(
            "INSERT INTO contacts (id, created_at, company_id, channel, external_id)"
            " VALUES (gen_random_uuid(), now(), %s, 'webchat', 'x') RETURNING id",
            (company,),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state, updated_at)"
            " VALUES (gen_random_uuid(), now(), %s, %s, 'webchat', 'bot', now())",
            (company, contact),
        )
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        assert conn.execute("SELECT context FROM conversations").fetchall() == [({},)]
        conn.execute('UPDATE conversations SET context = \'{"page": "/pro/"}\'')
    migrate.downgrade(url, "0033")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'conversations'"
        ).fetchall()
        assert ("context",) not in columns
        assert conn.execute("SELECT count(*) FROM conversations").fetchone() == (1,)


def test_0041_makes_sla_policy_names_unique_in_any_case_keeping_the_oldest(pg_url: str) -> None:
    """Policies whose names differ only in case (possible before 0041) get distinct names: the
    oldest keeps its own; afterwards such a name is refused by the database itself."""
    url = make_database(pg_url, f"atende_sla_names_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0040")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        for age, name in ((3, "Suporte"), (2, "SUPORTE"), (1, "suporte"), (1, "Vendas")):
            conn.execute(
                "INSERT INTO sla_policies (id, created_at, updated_at, company_id, name, position,"
                " resolution_seconds) VALUES (gen_random_uuid(), now() - make_interval(hours => %s),"
                " now(), %s, %s, 0, 3600)",
                (age, company, name),
            )
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT name FROM sla_policies ORDER BY created_at, name")]
        assert names[0] == "Suporte" and names[-1] == "Vendas"
        assert len({name.lower() for name in names}) == 4
        assert all(name.startswith(("SUPORTE (", "suporte (")) for name in names[1:3])
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO sla_policies (id, created_at, updated_at, company_id, name, position,"
                " resolution_seconds) VALUES (gen_random_uuid(), now(), now(), %s, 'VENDAS', 0, 60)",
                (company,),
            )


def test_0042_copies_the_warnings_clocks_already_hold_into_the_analytics_table(pg_url: str) -> None:
    """A warning the SLA job raised before 0042 (its clock still holds it) is in
    ``analytics.sla_warnings`` after the upgrade; one whose breach came with it is not."""
    url = make_database(pg_url, f"atende_sla_warned_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0041")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'pt', '{}') RETURNING id"
        ).fetchone()[0]
        contact = conn.execute(
            "INSERT INTO contacts (id, created_at, company_id, channel, external_id)"
            " VALUES (gen_random_uuid(), now(), %s, 'api', 'ze') RETURNING id",
            (company,),
        ).fetchone()[0]
        conversation = conn.execute(
            "INSERT INTO conversations (id, created_at, company_id, contact_id, channel, state, ticket)"
            " VALUES (gen_random_uuid(), now(), %s, %s, 'api', 'waiting_human', false) RETURNING id",
            (company, contact),
        ).fetchone()[0]
        for target, breached in (("first_response", None), ("resolution", "2027-06-01T11:00:00+00")):
            conn.execute(
                "INSERT INTO sla_clocks (id, created_at, company_id, conversation_id, target, started_at,"
                " due_at, warned_at, breached_at, stale) VALUES (gen_random_uuid(), now(), %s, %s, %s,"
                " '2027-06-01T10:00:00+00', '2027-06-01T11:00:00+00', '2027-06-01T10:48:00+00', %s,"
                " false)",
                (company, conversation, target, breached),
            )
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        copied = conn.execute("SELECT target, warned_at FROM analytics.sla_warnings").fetchall()
        assert copied == [("first_response", datetime(2027, 6, 1, 10, 48, tzinfo=UTC))]


def test_0043_gathers_each_indexed_documents_lexemes_from_its_chunks(pg_url: str) -> None:
    """0043 fills ``document_lexemes`` with every lexeme of each document's chunks (what the
    re-ranker's ``document_coverage`` reads); a document without chunks gets no row."""
    url = make_database(pg_url, f"atende_document_lexemes_{uuid.uuid4().hex[:8]}")
    migrate.upgrade(url)
    migrate.downgrade(url, "0042")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        company = conn.execute(
            "INSERT INTO companies (id, created_at, name, slug, default_language, settings)"
            " VALUES (gen_random_uuid(), now(), 'c', 'c', 'en', '{}') RETURNING id"
        ).fetchone()[0]
        documents = {}
        for source in ("returns.md", "empty.md"):
            documents[source] = conn.execute(
                "INSERT INTO documents (id, created_at, company_id, title, source, content_type, language,"
                " content_hash, status, chunk_count, meta, updated_at) VALUES (gen_random_uuid(), now(), %s,"
                " 't', %s, 'markdown', 'en', 'abc', 'ready', 0, '{}', now()) RETURNING id",
                (company, source),
            ).fetchone()[0]
        for ordinal, body in enumerate(("Parcels come back", "Refunds follow parcels")):
            conn.execute(
                "INSERT INTO chunks (id, created_at, company_id, document_id, ordinal, section, text,"
                " language, tsv) VALUES (gen_random_uuid(), now(), %s, %s, %s, '', %s, 'en',"
                " to_tsvector('english', %s))",
                (company, documents["returns.md"], ordinal, body, body),
            )
    migrate.upgrade(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = conn.execute("SELECT document_id, first_chunk, lexemes FROM document_lexemes").fetchall()
        first = conn.execute("SELECT id FROM chunks WHERE ordinal = 0").fetchone()[0]
    assert rows == [(documents["returns.md"], first, ["back", "come", "follow", "parcel", "refund"])]
