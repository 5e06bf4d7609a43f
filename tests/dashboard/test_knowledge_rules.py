"""Settings → Knowledge rules (windowed tags, rules from the conversation, saved as the API
saves them, bad rows refused in words), and "Try a question" as a customer or an agent, on a
channel or a page, saying which rules applied."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from atende.knowledge import service as knowledge
from atende.knowledge.service import Chunking, Metadata
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.dashboard.test_settings_company import company_row, notice, send
from tests.fixtures.dashboard import Team, signed_in

RULES = "/app/settings/knowledge-rules"


def rules_form(**values: str) -> dict[str, str]:
    return {
        "windowed_tags": "promo",
        "rule-0-when": "",
        "rule-0-equals": "",
        "rule-0-field": "",
        "rule-0-value": "",
        **values,
    }


async def stored_rules(runtime: Runtime, company_id: uuid.UUID) -> dict[str, Any] | None:
    return (await company_row(runtime, company_id)).settings.get("knowledge_rules")


async def test_rules_are_saved_as_the_api_saves_them_and_bad_rows_are_refused_in_words(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    async with signed_in(live_server, team.admin) as client:
        page = (await client.get(RULES)).text
        assert (
            "never answer a customer" in page and 'id="windowed_tags" name="windowed_tags" value=""' in page
        )
        form = rules_form(
            windowed_tags="promo, black friday",
            **{
                "rule-0-when": "page",
                "rule-0-equals": "/pro/",
                "rule-0-field": "product",
                "rule-0-value": "pro",
                "rule-0-or_unset": "on",
            },
        )
        notice(await send(client, RULES, form, page=RULES), "knowledge_rules_saved", RULES)
        assert await stored_rules(runtime, team.company_id) == {
            "windowed_tags": ["promo", "black friday"],
            "rules": [
                {"when": "page", "equals": "/pro/", "field": "product", "value": "pro", "or_unset": True}
            ],
        }
        shown = (await client.get(RULES)).text
        assert 'name="rule-1-when"' in shown  # an empty rule to add another
        # a page that is no path: refused, said in the reader's words, nothing stored
        bad = rules_form(**{"rule-0-when": "page", "rule-0-equals": "pro", "rule-0-field": "product"})
        response = await send(client, RULES, bad, page=RULES)
        assert response.status_code == 422
        assert "give the start of its path" in response.text
        assert 'id="rule-0-error"' in response.text
        bad = rules_form(**{"rule-0-when": "Canal!", "rule-0-field": "product", "rule-0-value": "x"})
        response = await send(client, RULES, bad, page=RULES)
        assert response.status_code == 422
        assert "lower-case letters" in response.text
        # removed
        gone = rules_form(**{"rule-0-when": "page", "rule-0-field": "product", "rule-0-remove": "on"})
        notice(await send(client, RULES, gone, page=RULES), "knowledge_rules_saved", RULES)
    assert await stored_rules(runtime, team.company_id) == {"windowed_tags": ["promo"], "rules": []}
    async with signed_in(live_server, team.agent) as client:
        assert (await client.get(RULES)).status_code == 403


async def test_try_a_question_as_a_customer_or_an_agent_says_which_rules_applied(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    await knowledge.ingest(
        runtime.db,
        team.company_id,
        source="estorno.md",
        data="# Estorno\n\n## Estorno no cartão\nO estorno no cartão é pelo painel financeiro.".encode(),
        max_bytes=100_000,
        chunking=Chunking(),
        embedder=None,
        lang="pt",
        meta=Metadata(audience="internal"),
    )
    question = {"question": "Como é o estorno no cartão?", "language": "pt", "page": "/pro/x"}
    async with signed_in(live_server, team.agent) as client:
        page = (await client.get("/app/knowledge/try")).text
        assert 'id="reader"' in page and '<label for="page">' in page
        as_customer = (await client.get("/app/knowledge/try", params=question)).text
        assert "Internal documents left out" in as_customer
        assert "Only documents valid now" in as_customer
        assert "painel financeiro" not in as_customer
        as_agent = (await client.get("/app/knowledge/try", params={**question, "reader": "agent"})).text
        assert "Internal documents left out" not in as_agent
        assert "painel financeiro" in as_agent
        refused = await client.get("/app/knowledge/try", params={**question, "attributes": "region"})
        assert refused.status_code == 422
        assert "key = value" in refused.text

    # a customer's turn: its reasoning page says which rules applied
    async with runtime.db.transaction() as session:
        _key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=team.company_id, name="t", role=Role.agent
        )
    async with httpx.AsyncClient(base_url=live_server, headers={"Authorization": f"Bearer {full}"}) as api:
        r = await api.post(
            "/v1/messages?wait=10", json={"contact": {"external_id": "c-1"}, "text": question["question"]}
        )
        assert r.status_code == 201 and r.json()["reply"], r.text
    async with signed_in(live_server, team.agent) as client:
        reasoning = (await client.get(f"/app/conversations/{r.json()['conversation_id']}/traces")).text
        assert "Knowledge rules" in reasoning
        assert "Internal documents left out: a customer never gets them." in reasoning
