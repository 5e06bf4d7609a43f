"""A company plugs in its own OpenAI-compatible endpoint; customers get grounded LLM answers,
and the extractive answer when the provider fails (the live server, its worker, the real SDK)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from atende import netguard
from atende.errors import InvalidInput
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Company, Role
from tests.conftest import CompanyCtx, ask
from tests.fakes.openai_server import FakeOpenAI, answer, running_openai, status


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with running_openai() as server:
        yield server


async def use_llm(company: CompanyCtx, fake: FakeOpenAI) -> None:
    r = await company.client.put(
        "/v1/company/assistant",
        json={
            "instructions": "Você é a Bia, da loja.",
            "llm": {"base_url": fake.base_url, "model": "fake-model", "api_key": "sk-company-secret"},
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "instructions": "Você é a Bia, da loja.",
        "llm": {"base_url": fake.base_url, "model": "fake-model", "api_key_set": True},
        "embeddings": None,
        "rerank": {"enabled": True, "llm": False},
    }


async def last_trace(company: CompanyCtx, conversation_id: str) -> dict:
    traces = (await company.client.get(f"/v1/conversations/{conversation_id}/traces")).json()
    return dict(traces[-1])


async def test_the_companys_llm_answers_from_its_knowledge_base_citing_it(
    kb_company: CompanyCtx, fake: FakeOpenAI, runtime: Runtime
) -> None:
    await use_llm(kb_company, fake)
    fake.script(answer("Aceitamos Pix, cartão de crédito e boleto [1]."))
    body = await ask(kb_company.client, "Quais formas de pagamento vocês aceitam?")
    assert body["reply"]["text"] == "Aceitamos Pix, cartão de crédito e boleto."
    assert body["reply"]["meta"]["citations"], body["reply"]
    trace = await last_trace(kb_company, body["conversation_id"])
    assert trace["answerer"] == "llm" and trace["decision"] == "answer"
    [answered] = [s for s in trace["steps"] if s["step"] == "answer"]
    assert (answered["answerer"], answered["model"], answered["error"]) == ("llm", "fake-model", None)
    prompt = fake.requests[-1]["messages"]
    assert "Você é a Bia, da loja." in prompt[0]["content"]
    assert prompt[-1] == {"role": "user", "content": "Quais formas de pagamento vocês aceitam?"}
    assert fake.headers[-1]["authorization"] == "Bearer sk-company-secret"
    async with runtime.db.transaction() as session:
        stored = await session.scalar(select(Company.settings).where(Company.id == kb_company.id))
    assert stored is not None and "sk-company-secret" not in str(stored)  # encrypted at rest
    listed = await kb_company.client.get("/v1/company/assistant")
    assert "sk-company-secret" not in listed.text and listed.json()["llm"]["api_key_set"] is True


async def test_the_conversation_so_far_goes_into_the_prompt(kb_company: CompanyCtx, fake: FakeOpenAI) -> None:
    await use_llm(kb_company, fake)
    fake.script(answer("Aceitamos Pix [1]."))
    await ask(kb_company.client, "Vocês aceitam Pix?", contact="historia")
    fake.script(answer("Sim, em até 10 vezes sem juros [1]."))
    await ask(kb_company.client, "E posso parcelar no cartão?", contact="historia")
    roles = [(m["role"], m["content"]) for m in fake.requests[-1]["messages"][1:]]
    assert roles == [
        ("user", "Vocês aceitam Pix?"),
        ("assistant", "Aceitamos Pix."),
        ("user", "E posso parcelar no cartão?"),
    ]


async def test_when_the_provider_fails_customers_still_get_answers_and_the_circuit_opens(
    kb_company: CompanyCtx, fake: FakeOpenAI
) -> None:
    await use_llm(kb_company, fake)
    fake.script(status(500))
    for _ in range(2):  # llm_breaker_failures=2 in the test settings
        body = await ask(kb_company.client, "Quais formas de pagamento vocês aceitam?")
        assert "Pix" in body["reply"]["text"]  # the extractive answer, from the knowledge base
        trace = await last_trace(kb_company, body["conversation_id"])
        assert trace["reason"].startswith("the LLM failed (InternalServerError); extractive:")
        [answered] = [s for s in trace["steps"] if s["step"] == "answer"]
        assert answered["model"] == "fake-model" and answered["error"].startswith("InternalServerError: ")
    asked = len(fake.requests)
    started = time.monotonic()
    body = await ask(kb_company.client, "Quais formas de pagamento vocês aceitam?")
    assert time.monotonic() - started < 2.0
    assert len(fake.requests) == asked  # open: the provider is left alone
    trace = await last_trace(kb_company, body["conversation_id"])
    assert trace["reason"].startswith("the LLM circuit is open; extractive:")
    assert [s["error"] for s in trace["steps"] if s["step"] == "answer"] == ["the LLM circuit is open"]
    # the company's events say so too (/app/logs)
    for _ in range(50):
        changed = (await kb_company.client.get("/v1/events", params={"kind": "llm_circuit_changed"})).json()
        if changed["events"]:
            break
        time.sleep(0.1)
    assert changed["events"][0]["details"] == {"circuit": f"company:{kb_company.id}", "state": "opened"}
    metrics = (await kb_company.client.get("/metrics")).text
    circuit = f"company:{kb_company.id}"  # a company's own circuit: its failures open no one else's
    assert f'atende_llm_circuit_state{{circuit="{circuit}"}} 2.0' in metrics
    assert 'atende_llm_requests_total{outcome="circuit_open"}' in metrics
    ready = await kb_company.client.get("/health/ready")
    llm = ready.json()["checks"]["llm"]
    assert llm["ok"] is True and f"{circuit} opened" in llm["detail"], llm
    fake.script(answer("Aceitamos Pix [1]."))
    time.sleep(2.1)  # llm_breaker_reset_seconds=2: the next turn probes
    body = await ask(kb_company.client, "Vocês aceitam Pix?")
    assert body["reply"]["text"] == "Aceitamos Pix."
    metrics = (await kb_company.client.get("/metrics")).text
    assert f'atende_llm_circuit_state{{circuit="{circuit}"}} 0.0' in metrics


async def test_saving_the_endpoint_again_without_a_key_keeps_the_stored_key(
    kb_company: CompanyCtx, fake: FakeOpenAI
) -> None:
    await use_llm(kb_company, fake)
    r = await kb_company.client.put(
        "/v1/company/assistant",
        json={"instructions": "Seja breve.", "llm": {"base_url": fake.base_url, "model": "fake-model-2"}},
    )
    assert r.status_code == 200 and r.json()["llm"]["api_key_set"] is True, r.text
    fake.script(answer("Aceitamos Pix [1]."))
    await ask(kb_company.client, "Vocês aceitam Pix?")
    assert fake.headers[-1]["authorization"] == "Bearer sk-company-secret"
    assert fake.requests[-1]["model"] == "fake-model-2"


async def test_the_assistant_reads_in_the_shape_it_is_written_and_never_shows_the_key(
    company: CompanyCtx, fake: FakeOpenAI
) -> None:
    """GET answers what PUT takes (nested `llm`), so a GET body edited and sent back works and
    keeps the stored key, which only shows as `api_key_set`."""
    await use_llm(company, fake)
    read = await company.client.get("/v1/company/assistant")
    assert read.status_code == 200, read.text
    settings = read.json()
    assert settings == {
        "instructions": "Você é a Bia, da loja.",
        "llm": {"base_url": fake.base_url, "model": "fake-model", "api_key_set": True},
        "embeddings": None,
        "rerank": {"enabled": True, "llm": False},
    }
    assert "sk-company-secret" not in read.text

    settings["llm"]["model"] = "fake-model-2"
    settings["rerank"]["llm"] = True
    r = await company.client.put("/v1/company/assistant", json=settings)
    assert r.status_code == 200, r.text
    assert r.json() == {**settings, "llm": {**settings["llm"], "model": "fake-model-2"}}
    assert (await company.client.get("/v1/company/assistant")).json() == r.json()


async def test_removing_the_companys_llm_brings_back_the_extractive_answerer(
    kb_company: CompanyCtx, fake: FakeOpenAI
) -> None:
    await use_llm(kb_company, fake)
    r = await kb_company.client.put("/v1/company/assistant", json={"instructions": "", "llm": None})
    assert r.status_code == 200 and r.json()["llm"] is None
    asked = len(fake.requests)
    body = await ask(kb_company.client, "Vocês aceitam Pix?")
    assert (await last_trace(kb_company, body["conversation_id"]))["answerer"] == "extractive"
    assert len(fake.requests) == asked


async def test_only_admins_set_the_assistant_and_bad_endpoints_are_refused(
    company: CompanyCtx, runtime: Runtime
) -> None:
    async with runtime.db.transaction() as session:
        _key, viewer_key = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name="ro", role=Role.viewer
        )
    async with company.with_key(viewer_key) as viewer:
        assert (await viewer.get("/v1/company/assistant")).status_code == 200
        refused = await viewer.put("/v1/company/assistant", json={"instructions": "x"})
        assert refused.status_code == 403
    bad_endpoints = (
        {"base_url": "ftp://x.example/v1", "model": "m"},
        {"base_url": "https://x.example/v1"},
        {"base_url": "https://x\x15.example/v1", "model": "m"},  # a control character
        {"base_url": "https://x.example/ v1", "model": "m"},
        {"base_url": "https://[::1/v1", "model": "m"},
    )
    for key in ("llm", "embeddings"):
        for bad in bad_endpoints:
            r = await company.client.put("/v1/company/assistant", json={key: bad})
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "invalid_input"
    # nothing was stored: the documents API (which reads the endpoints) still works
    r = await company.client.post("/v1/documents", json={"source": "a.md", "content": "# A\n\nTexto."})
    assert r.status_code == 202, r.text
    assert (await company.client.get("/v1/company/assistant")).json()["embeddings"] is None


async def test_a_companys_llm_on_a_private_address_is_refused_unless_allowed() -> None:
    with pytest.raises(InvalidInput, match=r"LLM host '127\.0\.0\.1' resolves to 127\.0\.0\.1"):
        await netguard.check_public(
            "http://127.0.0.1:9/v1",
            allow_private=False,
            what="LLM",
            setting="ATENDE_LLM_ALLOW_PRIVATE_NETWORKS",
        )
