"""Property-based fuzzing of the whole HTTP API from its own OpenAPI document (schemathesis).

Every operation of the live server's ``/openapi.json`` gets requests that fit the schema
(positive) and requests that break it (negative), authenticated with a company's admin
key; then the operations with ids in their path get positive requests again, aimed at
things that exist. Whatever comes in, the server must never answer with a 5xx.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from atende.feedback import service as csat
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask, free_port

EXAMPLES_PER_PASS = 20
MAX_SECONDS = 540  # the whole run: about a minute alone, over 4 on a machine busy with other jobs
PATH_PARAMETER = re.compile(r"{(\w+)}")


@dataclass
class Findings:
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    statuses: dict[str, set[int]] = field(default_factory=dict)


def fuzz(base_url: str, api_key: str, existing: dict[str, str]) -> Findings:
    """Send every operation's generated cases to the server (blocking: run it in a thread)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    headers = {"Authorization": f"Bearer {api_key}"}
    findings = Findings()
    operations = [result.ok() for result in schema.get_all_operations() if isinstance(result, Ok)]
    assert len(operations) >= 15, [op.label for op in operations]
    with requests.Session() as http:
        for operation in operations:
            names = PATH_PARAMETER.findall(operation.path)
            passes: list[tuple[GenerationMode, dict[str, Any] | None]] = [
                (GenerationMode.POSITIVE, None),
                (GenerationMode.NEGATIVE, None),
            ]
            if names and all(name in existing for name in names):
                passes.append((GenerationMode.POSITIVE, {name: existing[name] for name in names}))
            for mode, path_parameters in passes:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

                @given(case=strategy)
                @settings(
                    max_examples=EXAMPLES_PER_PASS,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                def send(case: schemathesis.Case) -> None:
                    response = case.call(base_url=base_url, session=http, headers=headers, timeout=40)
                    findings.requests += 1
                    findings.statuses.setdefault(case.operation.label, set()).add(response.status_code)
                    if response.status_code >= 500:
                        findings.server_errors.append(
                            f"{case.operation.label} -> {response.status_code} {response.text[:200]}\n"
                            f"    {case.as_curl_command(headers=headers, base_url=base_url)}"
                        )

                try:
                    send()
                except Unsatisfiable:
                    # nothing to break in an operation without parameters or body
                    assert mode is GenerationMode.NEGATIVE, operation.label
    return findings


async def existing_ids(company: CompanyCtx, runtime: Runtime) -> dict[str, str]:
    """One conversation, document, webhook endpoint and CSAT survey of ``company``, and its
    widget key."""
    r = await company.client.put("/v1/company/csat", json={"enabled": True})
    assert r.status_code == 200, r.text
    resolved = (await ask(company.client, "Obrigado, era só isso"))["conversation_id"]
    r = await company.client.post(f"/v1/conversations/{resolved}/resolve")
    assert r.status_code == 200, r.text
    async with runtime.db.transaction(company.id) as session:
        [survey] = await csat.send_due(session, runtime.jobs, datetime.now(UTC) + timedelta(hours=1))
    conversation = (await ask(company.client, "Olá, vocês entregam no sábado?"))["conversation_id"]
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "faq.md", "content": "# FAQ\n\nSim."}
    )
    assert r.status_code == 201, r.text
    document = r.json()["document"]["id"]
    # a closed port: deliveries fail at once, and the endpoint is disabled after a few
    hook = {"url": f"http://127.0.0.1:{free_port()}/hook", "events": ["message.created"]}
    r = await company.client.post("/v1/webhooks", json=hook)
    assert r.status_code == 201, r.text
    return {
        "conversation_id": conversation,
        "document_id": document,
        "endpoint_id": r.json()["id"],
        "widget_key": company.widget_key,
        "survey_id": str(survey.survey_id),
    }


async def remove_webhooks(company: CompanyCtx) -> None:
    """The endpoints fuzzing registered point anywhere: stop deliveries to them."""
    for endpoint in (await company.client.get("/v1/webhooks")).json():
        await company.client.delete(f"/v1/webhooks/{endpoint['id']}")


@pytest.mark.timeout(MAX_SECONDS + 60)
async def test_no_generated_request_gets_a_server_error(
    company: CompanyCtx, live_server: str, runtime: Runtime
) -> None:
    existing = await existing_ids(company, runtime)
    try:
        async with asyncio.timeout(MAX_SECONDS):
            findings = await asyncio.to_thread(fuzz, live_server, company.api_key, existing)
    finally:
        await remove_webhooks(company)
    assert not findings.server_errors, "\n".join(findings.server_errors)
    # the run got past validation into the handlers, and reached things that exist
    answered = {status for statuses in findings.statuses.values() for status in statuses}
    assert {200, 201, 204, 404, 422} <= answered, findings.statuses
    assert 200 in findings.statuses["GET /v1/conversations/{conversation_id}"], findings.statuses
