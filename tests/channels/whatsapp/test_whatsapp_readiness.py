"""``/health/ready`` checks every enabled WhatsApp account's token against the Graph API at most
once a minute, and a rejected one (Meta's ``190``) degrades readiness naming the account."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from atende.channels import accounts
from atende.config import Settings
from atende.observability import credentials
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.loopback import running
from tests.observability.test_credentials import Clock, own_runtime, report

TOKEN = "readiness-token"


@pytest.fixture
def graph() -> Iterator[FakeGraphApi]:
    with running(FakeGraphApi({TOKEN})) as fake:
        yield fake


@pytest.fixture
async def runtime(pg_url: str, settings: Settings) -> AsyncIterator[Runtime]:
    async with own_runtime(pg_url, settings) as rt:  # a database of its own: only this account
        yield rt


async def test_a_rejected_whatsapp_token_degrades_readiness_naming_the_account(
    runtime: Runtime, graph: FakeGraphApi
) -> None:
    clock = Clock()
    credentials.monitor_for(runtime).clock = clock
    async with runtime.db.transaction() as session:
        company = await tenancy.create_company(session, name="Loja", slug="loja-wa", default_language="pt")
    async with runtime.db.transaction(company.id) as session:
        await accounts.create(
            session,
            runtime.secret_key,
            kind="whatsapp",
            external_id="106540352242922",
            display_name="SAC WhatsApp",
            config={"graph_api_url": graph.origin},
            secrets={"access_token": TOKEN, "app_secret": "app-secret", "verify_token": "verify"},
        )

    body = await report(runtime)
    assert body["status"] == "ok", body
    assert graph.number_checks == 1
    for _ in range(3):  # probes within the minute read the last result
        await report(runtime)
    assert graph.requests == 1

    graph.tokens.clear()  # Meta now rejects the token (expired, revoked)
    clock.now += 60
    body = await report(runtime)
    assert graph.requests == 2
    assert (body["status"], body["degraded"]) == ("degraded", ["credentials"])
    [failure] = body["checks"]["credentials"]["failures"]
    assert (failure["kind"], failure["company_id"], failure["label"]) == (
        "whatsapp",
        str(company.id),
        "whatsapp SAC WhatsApp",
    )
    assert failure["reason"].startswith("access token rejected (error 190)")
    assert TOKEN not in json.dumps(body) and "app-secret" not in json.dumps(body)
