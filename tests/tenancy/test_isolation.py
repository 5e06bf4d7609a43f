"""Tenant isolation through the live server: company A's credentials reach nothing of B.

Every route that takes an id is attacked with B's ids using A's credentials (an API key, or
for the dashboard's pages the session of A's owner, with a valid CSRF token); each must
answer 404 (never 403, which would confirm the id exists), and B's rows, read through B's
own company session, must be exactly as before. The route tables below are checked against
the application's routes, hidden ones included, so a new route with an id cannot skip this
test.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import undefer

from atende.app import create_app
from atende.config import Settings
from atende.conversations import attachments
from atende.conversations.models import Contact, Conversation, Message
from atende.db.base import Base, CompanyOwned
from atende.errors import InvalidInput
from atende.feedback import service as csat
from atende.runtime import Runtime
from atende.tenancy import accounts
from atende.tenancy.models import Role
from atende.tenancy.service import Principal
from tests.conftest import CompanyCtx, ask
from tests.fixtures.dashboard import add_person, csrf_of, signed_in
from tests.fixtures.media import keep_file
from tests.sla.test_job import settled

BIKES_DOC = (
    "# Bicicletas\n\n## Modelos\n\nVendemos bicicletas urbanas e mountain bikes, aro 26 e aro 29, "
    "com garantia de um ano e montagem grátis."
)


@dataclass(frozen=True)
class Attack:
    """One request of A at one of B's ids (``{...}`` filled from ``Victim.ids``)."""

    method: str
    route: str
    body: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    params: dict[str, str] | None = None


ATTACKS = [
    Attack("POST", "/v1/jobs/{job_id}/retry"),
    Attack("GET", "/v1/conversations/{conversation_id}"),
    Attack("GET", "/v1/conversations/{conversation_id}/messages"),
    Attack("GET", "/v1/conversations/{conversation_id}/traces"),
    Attack("POST", "/v1/conversations/{conversation_id}/replies", body={"text": "A's agent writes to B"}),
    Attack("GET", "/v1/conversations/{conversation_id}/whatsapp/templates"),
    Attack(
        "POST",
        "/v1/conversations/{conversation_id}/whatsapp/templates",
        body={"name": "hello_world", "language": "en_US", "parameters": ["B"]},
    ),
    Attack("POST", "/v1/conversations/{conversation_id}/state", body={"state": "resolved"}),
    Attack("POST", "/v1/conversations/{conversation_id}/assign", body={"agent": "me"}),
    Attack("POST", "/v1/conversations/{conversation_id}/handback"),
    Attack("POST", "/v1/conversations/{conversation_id}/resolve"),
    Attack("GET", "/v1/conversations/{conversation_id}/sla"),
    Attack("PUT", "/v1/conversations/{conversation_id}/priority", body={"priority": "urgent"}),
    Attack("GET", "/v1/sla/policies/{policy_id}"),
    Attack("PUT", "/v1/sla/policies/{policy_id}", body={"name": "A's", "first_response": "1m"}),
    Attack("DELETE", "/v1/sla/policies/{policy_id}"),
    Attack("POST", "/v1/conversations/{conversation_id}/reopen"),
    Attack("POST", "/v1/conversations/{conversation_id}/notes", body={"text": "A's note on B"}),
    Attack(
        "PUT", "/v1/conversations/{conversation_id}/messages/{message_id}/rating", body={"helpful": False}
    ),
    Attack("POST", "/v1/conversations/{conversation_id}/snooze", body={"until": "next_business_day"}),
    Attack("POST", "/v1/conversations/{conversation_id}/snooze", body={"until": "2099-01-01T00:00:00Z"}),
    Attack("POST", "/v1/conversations/{conversation_id}/unsnooze"),
    Attack("POST", "/v1/conversations/{conversation_id}/team", body={"team": "suporte"}),
    Attack("POST", "/v1/conversations/{conversation_id}/suggested-reply"),
    Attack("GET", "/v1/conversations/{conversation_id}/labels"),
    Attack("POST", "/v1/conversations/{conversation_id}/labels", body={"label": "vip"}),
    Attack("DELETE", "/v1/conversations/{conversation_id}/labels/{label}"),
    Attack("GET", "/v1/documents/{document_id}"),
    Attack("GET", "/v1/documents/{document_id}/chunks"),
    Attack("DELETE", "/v1/documents/{document_id}"),
    Attack("PATCH", "/v1/documents/{document_id}", body={"tags": ["a-s-tag"], "language": "en"}),
    Attack("POST", "/v1/documents/{document_id}/reindex"),
    Attack("GET", "/v1/documents/{document_id}/versions"),
    Attack(
        "POST",
        "/v1/search",
        body={"question": "bicicletas aro 29", "filters": {"documents": ["{document_id}"]}},
    ),
    Attack("PATCH", "/v1/webhooks/{endpoint_id}", body={"enabled": False}),
    Attack("DELETE", "/v1/webhooks/{endpoint_id}"),
    Attack("GET", "/v1/webhooks/{endpoint_id}/deliveries"),
    Attack("POST", "/v1/webhooks/{endpoint_id}/rotate-secret", body={"grace_seconds": 60}),
    Attack("GET", "/v1/channel-accounts/{account_id}"),
    Attack("PATCH", "/v1/channel-accounts/{account_id}", body={"enabled": False}),
    Attack("DELETE", "/v1/channel-accounts/{account_id}"),
    Attack("DELETE", "/v1/api-keys/{key_id}"),
    Attack("GET", "/v1/conversations/{conversation_id}/csat"),
    Attack("POST", "/v1/csat/{survey_id}/answer", body={"score": 1}),
    Attack("GET", "/v1/media/{media_id}"),
    # web chat: A's widget key with B's conversation and B's own visitor token
    Attack(
        "GET",
        "/widget/v1/{widget_key}/conversations/{conversation_id}/messages",
        headers={"X-Visitor-Token": "{visitor_token}"},
    ),
    Attack(
        "POST",
        "/widget/v1/{widget_key}/conversations/{conversation_id}/messages",
        body={"text": "A's visitor writes to B"},
        headers={"X-Visitor-Token": "{visitor_token}"},
    ),
    Attack(
        "PUT",
        "/widget/v1/{widget_key}/conversations/{conversation_id}/messages/{message_id}/rating",
        body={"helpful": False},
        headers={"X-Visitor-Token": "{visitor_token}"},
    ),
    Attack(
        "GET",
        "/widget/v1/{widget_key}/conversations/{conversation_id}/events",
        params={"token": "{visitor_token}"},
    ),
    Attack(
        "POST",
        "/widget/v1/{widget_key}/conversations/{conversation_id}/csat",
        body={"survey_id": "{survey_id}", "score": 1},
        headers={"X-Visitor-Token": "{visitor_token}"},
    ),
    # an e-mail provider's webhook names its mailbox: B's account id is no mailbox of A's (nor
    # an e-mail one); what opens a mailbox is its provider's signature or secret
    # (tests/channels/email/test_email_channel.py forges them)
    Attack("POST", "/webhooks/email/{provider}/{account_id}"),
    Attack("POST", "/webhooks/email/{provider}/{account_id}/{secret}"),
]
# the dashboard's routes with an id, attacked by A's owner signed in (forms, CSRF token sent)
DASHBOARD_ATTACKS = [
    Attack(
        "GET", "/app/knowledge/try", params={"question": "bicicletas aro 29", "document": "{document_id}"}
    ),
    Attack("POST", "/app/logs/jobs/{job_id}/retry"),
    Attack("POST", "/app/users/{user_id}/role", body={"role": "viewer"}),
    Attack("POST", "/app/users/{user_id}/deactivate"),
    Attack("POST", "/app/users/{user_id}/reactivate"),
    Attack("POST", "/app/invitations/{invitation_id}/cancel"),
    Attack("GET", "/app/conversations/{conversation_id}"),
    Attack("GET", "/app/conversations/{conversation_id}/traces"),
    Attack("GET", "/app/conversations/{conversation_id}/messages/{message_id}/email"),
    Attack("POST", "/app/conversations/{conversation_id}/reply", body={"text": "A's agent writes to B"}),
    Attack("POST", "/app/conversations/{conversation_id}/note", body={"text": "A's note on B"}),
    Attack(
        "POST",
        "/app/conversations/{conversation_id}/template",
        body={"name": "hello_world", "language": "en_US", "p": "B"},
    ),
    Attack("POST", "/app/conversations/{conversation_id}/assign", body={"agent": "me"}),
    Attack("POST", "/app/conversations/{conversation_id}/team", body={"team": "suporte"}),
    Attack("POST", "/app/conversations/{conversation_id}/handback"),
    Attack("POST", "/app/conversations/{conversation_id}/resolve"),
    Attack("POST", "/app/conversations/{conversation_id}/reopen"),
    Attack("POST", "/app/conversations/{conversation_id}/snooze", body={"next_business_day": "yes"}),
    Attack("POST", "/app/conversations/{conversation_id}/snooze", body={"until": "2099-01-01T10:00"}),
    Attack("POST", "/app/conversations/{conversation_id}/unsnooze"),
    Attack("POST", "/app/conversations/{conversation_id}/labels", body={"label": "vip"}),
    Attack("POST", "/app/conversations/{conversation_id}/priority", body={"priority": "urgent"}),
    Attack("POST", "/app/conversations/{conversation_id}/labels/remove", body={"label": "{label}"}),
    Attack("GET", "/app/conversations/{conversation_id}/canned"),
    Attack("GET", "/app/conversations/{conversation_id}/canned/render", params={"code": "prazo"}),
    Attack("POST", "/app/conversations/{conversation_id}/suggestion"),
    Attack("POST", "/app/conversations/{conversation_id}/typing"),
    Attack("GET", "/app/media/{media_id}"),
    Attack("GET", "/app/settings/widget", params={"account": "{account_id}"}),
    Attack("GET", "/app/settings/widget/preview", params={"account": "{account_id}", "title": "A's"}),
    Attack("POST", "/app/settings/widget/preview", body={"account": "{account_id}", "title": "A's"}),
    Attack(
        "POST",
        "/app/settings/widget",
        body={"title": "A's title", "primary_color": "#000000"},
        params={"account": "{account_id}"},
    ),
    Attack("GET", "/app/settings/sla/{policy_id}"),
    Attack("POST", "/app/settings/sla/{policy_id}", body={"name": "A's now", "first_response": "1m"}),
    Attack("POST", "/app/settings/sla/{policy_id}/delete"),
    Attack("GET", "/app/settings/teams/{team_id}"),
    Attack("POST", "/app/settings/teams/{team_id}", body={"name": "A's now"}),
    Attack("POST", "/app/settings/teams/{team_id}/delete"),
    Attack("POST", "/app/settings/teams/{team_id}/members", body={"user_id": "{user_id}"}),
    Attack("POST", "/app/settings/teams/{team_id}/members/{user_id}/remove"),
    Attack("POST", "/app/settings/api-keys/{key_id}/revoke"),
    Attack("GET", "/app/settings/webhooks/{endpoint_id}"),
    Attack(
        "POST",
        "/app/settings/webhooks/{endpoint_id}",
        body={"url": "http://127.0.0.1:9/a-hook", "events": "queue.opened"},
    ),
    Attack("POST", "/app/settings/webhooks/{endpoint_id}/enable"),
    Attack("POST", "/app/settings/webhooks/{endpoint_id}/disable"),
    Attack("POST", "/app/settings/webhooks/{endpoint_id}/rotate", body={"grace_seconds": "0"}),
    Attack("POST", "/app/settings/webhooks/{endpoint_id}/delete"),
    Attack("POST", "/app/settings/channels/{account_id}/rename", body={"display_name": "A's"}),
    Attack("POST", "/app/settings/channels/{account_id}/enable"),
    Attack("POST", "/app/settings/channels/{account_id}/disable"),
    Attack("POST", "/app/settings/channels/{account_id}/secrets"),
    Attack("POST", "/app/settings/channels/{account_id}/delete"),
    Attack("GET", "/app/knowledge/{document_id}"),
    Attack("GET", "/app/knowledge/{document_id}", params={"part": "status"}),
    Attack("POST", "/app/knowledge/{document_id}/metadata", body={"tags": "A's", "language": "en"}),
    Attack("POST", "/app/knowledge/{document_id}/reindex"),
    Attack("GET", "/app/knowledge/{document_id}/delete"),
    Attack("POST", "/app/knowledge/{document_id}/delete"),
    Attack("GET", "/app/knowledge/articles/{document_id}"),
    Attack("POST", "/app/knowledge/articles/{document_id}", body={"title": "A's", "body": "A's text"}),
]
ID_PARAMETER = re.compile(r"\{\w*id\}")


@dataclass(frozen=True)
class Victim:
    """Company B with a bit of everything: a KB, an answered API conversation (labelled), a
    web chat conversation, a webhook endpoint, a stored file."""

    company: CompanyCtx
    conversation_id: str
    contact_external_id: str
    webchat_conversation_id: str
    visitor_token: str
    document_id: str
    endpoint_id: str
    account_id: str
    label_id: str
    user_id: str
    invitation_id: str
    team_id: str
    key_id: str
    media_id: str
    message_id: str  # the customer's message of its API conversation, carrying an e-mail's HTML
    job_id: str  # a job of B's that failed for good (a dead letter)
    survey_id: str  # a CSAT survey of a resolved conversation of B's
    policy_id: str  # an SLA policy

    def ids(self, attacker: CompanyCtx, webchat: bool) -> dict[str, str]:
        return {
            "conversation_id": self.webchat_conversation_id if webchat else self.conversation_id,
            "document_id": self.document_id,
            "endpoint_id": self.endpoint_id,
            "account_id": self.account_id,
            "label": self.label_id,
            "widget_key": attacker.widget_key,
            "visitor_token": self.visitor_token,
            "user_id": self.user_id,
            "invitation_id": self.invitation_id,
            "team_id": self.team_id,
            "key_id": self.key_id,
            "media_id": self.media_id,
            "provider": "mailgun",
            "secret": "mime",
            "message_id": self.message_id,
            "job_id": self.job_id,
            "survey_id": self.survey_id,
            "policy_id": self.policy_id,
        }


@pytest.fixture
async def victim(other_company: CompanyCtx, runtime: Runtime) -> Victim:
    b = other_company
    member = await add_person(runtime, b.id, Role.agent, name="Bea")
    async with runtime.db.transaction(b.id) as session:
        invitation, _token = await accounts.invite(
            session,
            secret_key=runtime.secret_key,
            actor=Principal(company_id=b.id, role=Role.owner),
            email="invited-to-b@example.com",
            role=Role.agent,
            now=datetime.now(UTC),
            valid_for=timedelta(days=1),
        )
    r = await b.client.post(
        "/v1/documents?wait=true", json={"source": "bicicletas.md", "content": BIKES_DOC, "language": "pt"}
    )
    assert r.status_code == 201, r.text
    document_id = r.json()["document"]["id"]
    body = await ask(b.client, "Vocês vendem bicicletas aro 29?", contact="bruno")
    assert body["reply"]["meta"]["decision"] == "answer", body["reply"]
    r = await b.client.post(f"/widget/v1/{b.widget_key}/conversations")
    assert r.status_code == 201, r.text
    webchat = r.json()
    # a CSAT survey, before the webhook endpoint exists (its events would change B's rows)
    r = await b.client.put("/v1/company/csat", json={"enabled": True})
    assert r.status_code == 200, r.text
    resolved = await ask(b.client, "Obrigado, era só isso", contact="carla")
    r = await b.client.post(f"/v1/conversations/{resolved['conversation_id']}/resolve")
    assert r.status_code == 200, r.text
    async with runtime.db.transaction(b.id) as session:
        [survey] = await csat.send_due(session, runtime.jobs, datetime.now(UTC) + timedelta(hours=1))
    r = await b.client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/b-hook", "events": ["conversation.handoff"]}
    )
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["id"]
    [account] = (await b.client.get("/v1/channel-accounts")).json()  # its web chat's
    r = await b.client.post("/v1/teams", json={"name": "Suporte B", "members": [str(member.user_id)]})
    assert r.status_code == 201, r.text
    team_id = r.json()["id"]
    r = await b.client.post("/v1/api-keys", json={"name": "B's CRM", "role": "agent"})
    assert r.status_code == 201, r.text
    key_id = r.json()["id"]
    label = (await b.client.post("/v1/labels", json={"name": "vip"})).json()
    r = await b.client.post("/v1/sla/policies", json={"name": "B's", "first_response": "1h"})
    assert r.status_code == 201, r.text
    policy_id = r.json()["id"]
    r = await b.client.post(
        f"/v1/conversations/{body['conversation_id']}/labels", json={"label": label["id"]}
    )
    assert r.status_code == 200, r.text
    # B's SLA clocks computed now, so the session's worker's SLA job (every 15 s) has nothing of
    # B's left to change under the snapshots
    await settled(runtime, b, datetime.now(UTC))
    media = await keep_file(runtime, b.id, b"B's photo", "image/png", "b.png")
    async with runtime.db.transaction(b.id) as session:  # as if it had come by e-mail, with HTML
        asked = await session.scalar(
            select(Message).where(
                Message.conversation_id == uuid.UUID(body["conversation_id"]), Message.author == "customer"
            )
        )
        assert asked is not None
        asked.meta = {**(asked.meta or {}), "email": {"subject": "B's", "html": "<p>B's e-mail</p>"}}
    # a dead letter: a task called with an argument it does not take fails at once, for good
    async with runtime.db.transaction(b.id) as session:
        job_id = await runtime.jobs.enqueue(session, "events:prune", company_id=str(b.id))
    for _ in range(200):  # failed (its event recorded before): nothing changes under the snapshot
        async with runtime.db.transaction() as session:
            status = await session.scalar(
                text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            )
        if status == "failed":
            break
        await asyncio.sleep(0.05)
    assert status == "failed"
    return Victim(
        company=b,
        conversation_id=body["conversation_id"],
        contact_external_id="bruno",
        webchat_conversation_id=webchat["conversation_id"],
        visitor_token=webchat["token"],
        document_id=document_id,
        endpoint_id=endpoint_id,
        account_id=account["id"],
        label_id=label["id"],
        user_id=str(member.user_id),
        invitation_id=str(invitation.id),
        team_id=team_id,
        key_id=key_id,
        media_id=str(media.id),
        message_id=str(asked.id),
        job_id=str(job_id),
        survey_id=str(survey.survey_id),
        policy_id=policy_id,
    )


async def snapshot(runtime: Runtime, company_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    """Every company-owned row of one company, read through its own company session."""
    tables: dict[str, list[dict[str, Any]]] = {}
    async with runtime.db.transaction(company_id) as session:
        for mapper in Base.registry.mappers:
            if not issubclass(mapper.class_, CompanyOwned):
                continue
            rows = await session.scalars(select(mapper.class_).options(undefer("*")))  # deferred bytes too
            tables[mapper.local_table.name] = sorted(
                ({attr.key: getattr(row, attr.key) for attr in mapper.column_attrs} for row in rows),
                key=lambda row: str(sorted(row.items())),
            )
    return tables


def fill(template: str, ids: dict[str, str]) -> str:
    return template.format(**ids)


def fill_body(body: Any, ids: dict[str, str]) -> Any:
    """A JSON body with every string's ``{...}`` filled."""
    if isinstance(body, str):
        return fill(body, ids)
    if isinstance(body, list):
        return [fill_body(item, ids) for item in body]
    if isinstance(body, dict):
        return {key: fill_body(value, ids) for key, value in body.items()}
    return body


async def send(client: httpx.AsyncClient, attack: Attack, ids: dict[str, str]) -> httpx.Response:
    return await client.request(
        attack.method,
        fill(attack.route, ids),
        json=fill_body(attack.body, ids),
        headers={k: fill(v, ids) for k, v in (attack.headers or {}).items()},
        params={k: fill(v, ids) for k, v in (attack.params or {}).items()},
    )


async def test_every_route_of_b_answers_404_to_a_and_b_is_unchanged(
    company: CompanyCtx, victim: Victim, runtime: Runtime
) -> None:
    before = await snapshot(runtime, victim.company.id)
    assert all(before[t] for t in ("conversations", "messages", "traces", "documents", "chunks"))
    for attack in ATTACKS:
        ids = victim.ids(company, webchat=attack.route.startswith("/widget/"))
        r = await send(company.client, attack, ids)
        # a domain 404 carries a code; a route that did not match would not
        assert (r.status_code, r.json().get("code")) == (404, "not_found"), (attack, r.text)
    assert await snapshot(runtime, victim.company.id) == before


async def test_every_dashboard_route_of_b_answers_404_to_as_owner_and_b_is_unchanged(
    company: CompanyCtx, victim: Victim, runtime: Runtime, live_server: str
) -> None:
    a_owner = await add_person(runtime, company.id, Role.owner)
    before = await snapshot(runtime, victim.company.id)
    assert before["memberships"] and before["invitations"]
    async with signed_in(live_server, a_owner) as dashboard:
        token = csrf_of((await dashboard.get("/app/users")).text)
        for attack in DASHBOARD_ATTACKS:
            ids = victim.ids(company, webchat=False)
            r = await dashboard.request(
                attack.method,
                fill(attack.route, ids),
                data={**{k: fill(v, ids) for k, v in (attack.body or {}).items()}, "csrf_token": token},
                params={k: fill(v, ids) for k, v in (attack.params or {}).items()},
            )
            assert r.status_code == 404, (attack, r.text)
            assert "There is nothing here." in r.text  # the dashboard's 404 page, not an unmatched route
    assert await snapshot(runtime, victim.company.id) == before


async def test_b_still_reaches_its_own_rows_through_the_same_requests(victim: Victim) -> None:
    # the attack requests are well formed: B's own key gets through each read of them
    b = victim.company
    for attack in ATTACKS:
        if attack.method != "GET" or attack.route.endswith("/events"):
            continue
        ids = victim.ids(b, webchat=attack.route.startswith("/widget/"))
        r = await send(b.client, attack, ids)
        if "/whatsapp/" in attack.route:  # B's conversation is on the API channel: found, not WhatsApp's
            assert r.status_code == 422 and "templates are WhatsApp's" in r.text, (attack, r.text)
            continue
        assert r.status_code == 200, (attack, r.text)


async def test_a_customer_message_to_bs_conversation_id_answers_404_and_stores_nothing(
    company: CompanyCtx, victim: Victim, runtime: Runtime
) -> None:
    before = await snapshot(runtime, victim.company.id)
    for contact in (victim.contact_external_id, "a-customer"):
        r = await company.client.post(
            "/v1/messages?wait=1",
            json={
                "contact": {"external_id": contact},
                "text": "Mensagem para a conversa de outra empresa",
                "conversation_id": victim.conversation_id,
            },
        )
        assert r.status_code == 404, r.text
        assert r.json()["code"] == "not_found"
    assert await snapshot(runtime, victim.company.id) == before
    async with runtime.db.transaction(company.id) as session:
        for model in (Contact, Conversation, Message):
            assert await session.scalar(select(func.count()).select_from(model)) == 0, model


async def test_a_customer_message_filtered_by_bs_document_answers_404_and_stores_nothing(
    company: CompanyCtx, victim: Victim, runtime: Runtime
) -> None:
    before = await snapshot(runtime, victim.company.id)
    r = await company.client.post(
        "/v1/messages?wait=1",
        json={
            "contact": {"external_id": "a-customer"},
            "text": "Vocês vendem bicicletas aro 29?",
            "filters": {"documents": [victim.document_id]},
        },
    )
    assert r.status_code == 404, r.text
    assert r.json()["code"] == "not_found"
    assert await snapshot(runtime, victim.company.id) == before
    async with runtime.db.transaction(company.id) as session:
        assert await session.scalar(select(func.count()).select_from(Message)) == 0


async def test_list_endpoints_of_a_never_include_bs_rows(
    company: CompanyCtx, victim: Victim, live_server: str
) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "a.md", "content": "# Loja A\n\nSó vendemos patinetes."}
    )
    a_document = r.json()["document"]["id"]
    a_conversation = (await ask(company.client, "Vocês vendem patinetes?"))["conversation_id"]
    r = await company.client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/a-hook", "events": ["message.created"]}
    )
    a_endpoint = r.json()["id"]

    conversations = (await company.client.get("/v1/conversations", params={"limit": 200})).json()
    assert [c["id"] for c in conversations["items"]] == [a_conversation]
    assert conversations["next_cursor"] is None
    for state in ("bot", "waiting_human", "human", "resolved"):
        listed = (await company.client.get("/v1/conversations", params={"state": state})).json()["items"]
        assert {c["id"] for c in listed} <= {a_conversation}
    webchat = (await company.client.get("/v1/conversations", params={"channel": "webchat"})).json()
    assert webchat["items"] == []
    assert [d["id"] for d in (await company.client.get("/v1/documents")).json()] == [a_document]
    assert [e["id"] for e in (await company.client.get("/v1/webhooks")).json()] == [a_endpoint]
    assert (await company.client.get("/v1/labels")).json() == []  # B has its "vip"
    failed = (await company.client.get("/v1/jobs/failed")).json()
    assert all(job["args"].get("company_id") == str(company.id) for job in failed)
    r = await company.client.get("/v1/company")
    assert r.json()["id"] == str(company.id)
    keys = [a["external_id"] for a in (await company.client.get("/v1/channel-accounts")).json()]
    assert keys == [company.widget_key] and victim.company.widget_key not in keys
    logged = (await company.client.get("/v1/audit-events", params={"limit": 200})).json()["items"]
    assert {"webhook.created", "document.uploaded"} <= {e["action"] for e in logged}  # A's own
    b_ids = {victim.document_id, victim.endpoint_id, victim.account_id, victim.user_id, victim.team_id}
    b_ids |= {victim.key_id, victim.invitation_id, victim.conversation_id}
    assert not b_ids & {e["target_id"] for e in logged}
    b_logged = (await victim.company.client.get("/v1/audit-events", params={"limit": 200})).json()["items"]
    assert {victim.endpoint_id, victim.document_id} <= {e["target_id"] for e in b_logged}  # B's are there


async def test_a_search_never_finds_bs_passages_and_b_finds_its_own(
    company: CompanyCtx, victim: Victim
) -> None:
    question = {"question": "Vocês vendem bicicletas aro 29?"}
    found = (await company.client.post("/v1/search", json=question)).json()
    assert all(s["found"] == 0 for s in found["stages"]), found["stages"]
    assert found["answer"]["decision"] == "handoff"
    mine = {**question, "filters": {"documents": [victim.document_id]}}
    found = (await victim.company.client.post("/v1/search", json=mine)).json()
    assert found["stages"][0]["candidates"][0]["document_id"] == victim.document_id
    assert "aro 29" in found["answer"]["text"]


async def test_as_bot_never_answers_from_bs_knowledge_base(company: CompanyCtx, victim: Victim) -> None:
    body = await ask(company.client, "Vocês vendem bicicletas aro 29?")
    assert body["reply"]["meta"]["decision"] == "handoff"
    assert "aro 29" not in body["reply"]["text"]
    [trace] = (await company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    assert victim.document_id not in {p["document_id"] for p in trace["retrieved"]}


def every_route(app_routes: list[Any]) -> list[Any]:
    """The application's routes, those of included routers too (FastAPI ≥ 0.165 keeps an
    included router as one entry of ``app.routes``)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return app_routes
    return list(iter_route_contexts(app_routes))


def id_routes_of(openapi: dict[str, Any], app_routes: list[Any]) -> set[tuple[str, str]]:
    routes = {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        for method in operations
        if ID_PARAMETER.search(path)
    }
    # routes hidden from the schema (the dashboard's pages among them) must not escape either
    for route in every_route(app_routes):
        path = re.sub(r":\w+}", "}", getattr(route, "path", ""))  # "{document_id:uuid}": its convertor
        if ID_PARAMETER.search(path):
            routes |= {(m, path) for m in getattr(route, "methods", None) or () if m != "HEAD"}
    return routes


async def test_every_route_with_an_id_is_covered_by_the_isolation_test(
    live_server: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=15) as client:
        openapi = (await client.get("/openapi.json")).json()
    routes = id_routes_of(openapi, create_app(settings).routes)
    # an attack whose id is a query parameter (``?account=``) is checked above, not counted here
    covered = {(a.method, a.route) for a in [*ATTACKS, *DASHBOARD_ATTACKS] if ID_PARAMETER.search(a.route)}
    assert routes - covered == set(), "routes with an id that test_isolation.py does not attack"
    assert covered - routes == set(), "test_isolation.py attacks routes that no longer exist"


async def test_a_reply_of_a_cannot_carry_bs_file(
    company: CompanyCtx, victim: Victim, runtime: Runtime
) -> None:
    """An agent's reply names its files by media id: one of B's is not found in A's session,
    however right its channel (WhatsApp sends images), and refused as not A's (422)."""
    async with runtime.db.transaction(company.id) as session:
        with pytest.raises(InvalidInput, match=f"no file {victim.media_id} in this company"):
            await attachments.describe(session, "whatsapp", [uuid.UUID(victim.media_id)])
