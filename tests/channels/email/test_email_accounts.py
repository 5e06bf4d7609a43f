"""E-mail accounts: the account is its mailbox's address, and ``/health/ready`` logs in to the
mailbox (IMAP or POP3) and to its SMTP server, degrading and naming the mailbox whose login
fails."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from atende.channels import accounts
from atende.config import Settings
from atende.errors import InvalidInput
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.conftest import CompanyCtx, free_port
from tests.fixtures.dovecot import Dovecot
from tests.fixtures.mail import PASSWORD as SMTP_PASSWORD
from tests.fixtures.mail import MailSink, mailbox_config
from tests.observability.test_credentials import Clock, own_runtime, report


@pytest.fixture
async def own(pg_url: str, settings: Settings) -> AsyncIterator[Runtime]:
    # a mail server answers a wrong password after a delay (Dovecot: 2 s)
    async with own_runtime(pg_url, settings, credential_check_timeout_seconds=10.0) as rt:
        yield rt


@pytest.fixture
def sink() -> Iterator[MailSink]:
    server = MailSink(free_port())
    server.start()
    yield server
    server.stop()


async def settled(runtime: Runtime) -> dict[str, Any]:
    """Readiness once the round it started has finished (a mail server answers a wrong
    password after a delay, longer than a probe waits for the round)."""
    await report(runtime)
    from atende.observability import credentials

    await credentials.monitor_for(runtime).snapshot(wait=30)
    return await report(runtime)


async def test_a_mailbox_whose_login_fails_degrades_readiness_naming_it(
    own: Runtime, dovecot: Dovecot, sink: MailSink
) -> None:
    from atende.observability import credentials

    credentials.monitor_for(own).clock = clock = Clock()
    address, password = f"box-{uuid.uuid4().hex[:8]}@example.test", f"pw-{uuid.uuid4().hex}"
    dovecot.add_user(address, password)
    async with own.db.transaction() as session:
        company = await tenancy.create_company(session, name="Loja", slug=f"loja-{uuid.uuid4().hex[:6]}")
    async with own.db.transaction(company.id) as session:
        row = await accounts.create(
            session,
            own.secret_key,
            kind="email",
            external_id=address,
            display_name="Suporte",
            config=mailbox_config(address, dovecot, sink),
            secrets={"imap_password": password, "smtp_password": SMTP_PASSWORD},
        )
    body = await report(own)
    assert body["status"] == "ok", body

    async with own.db.transaction(company.id) as session:  # a password changed at the provider
        await accounts.update(session, own.secret_key, row.id, secrets={"imap_password": "wrong-password"})
    clock.now += 60
    body = await settled(own)
    assert (body["status"], body["degraded"]) == ("degraded", ["credentials"]), body
    [failure] = body["checks"]["credentials"]["failures"]
    assert (failure["kind"], failure["label"]) == ("email", "email Suporte")
    assert failure["reason"].startswith(f"{address}: IMAP login failed"), failure
    assert "wrong-password" not in json.dumps(body) and password not in json.dumps(body)

    # POP3 mailbox, good login; its SMTP login refused
    async with own.db.transaction(company.id) as session:
        await accounts.update(
            session,
            own.secret_key,
            row.id,
            config=mailbox_config(address, dovecot, sink, inbound="pop3"),
            secrets={"pop3_password": password, "smtp_password": "not-it"},
        )
    clock.now += 60
    body = await settled(own)
    [failure] = body["checks"]["credentials"]["failures"]
    assert failure["reason"].startswith(f"{address}: SMTP login failed"), failure


async def test_the_account_is_its_mailbox_address(
    company: CompanyCtx, runtime: Runtime, dovecot: Dovecot, sink: MailSink
) -> None:
    address = f"Suporte-{uuid.uuid4().hex[:6]}@Example.test"
    r = await company.client.post(
        "/v1/channel-accounts",
        json={
            "kind": "email",
            "external_id": "someone-else@example.test",
            "config": mailbox_config(address, dovecot, sink),
        },
    )
    assert r.status_code == 422 and "external_id must be the account's email address" in r.text, r.text
    r = await company.client.post(
        "/v1/channel-accounts",
        json={"kind": "email", "external_id": address, "config": mailbox_config(address, dovecot, sink)},
    )
    assert r.status_code == 201, r.text
    assert r.json()["external_id"] == address.lower() == r.json()["config"]["address"]
    moved = await company.client.patch(
        f"/v1/channel-accounts/{r.json()['id']}",
        json={"config": mailbox_config("other@example.test", dovecot, sink)},
    )
    assert moved.status_code == 422 and "cannot change" in moved.text, moved.text
    plain = await company.client.post(
        "/v1/channel-accounts",
        json={
            "kind": "email",
            "external_id": "x@example.test",
            "config": {**mailbox_config("x@example.test", dovecot, sink), "imap_host": "imap.example.test"},
        },
    )
    assert plain.status_code == 422 and "imap_security" in plain.text, plain.text
    with pytest.raises(InvalidInput):
        async with runtime.db.transaction(company.id) as session:
            await accounts.create(
                session,
                runtime.secret_key,
                kind="email",
                external_id="y@example.test",
                config=mailbox_config("y@example.test", dovecot, sink),
                secrets={"imap_pasword": "typo"},
            )
