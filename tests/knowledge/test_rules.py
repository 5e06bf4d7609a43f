"""Knowledge rules: internal documents never answer a customer (agent assist may use them),
documents outside their dates are never cited, a promotion only within its window, the
company's own rules from the conversation's context (the widget's page, the channel), and
the filters an API client sends with a customer message; bad rules and filters refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from atende.runtime import Runtime
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask, until
from tests.knowledge.test_hybrid import post
from tests.tenancy.test_support_api import new_key

REFUND = (
    "# Estorno\n\n## Estorno no cartão\n"
    "O estorno no cartão de crédito é feito pelo painel financeiro em até dois dias úteis."
)
PLANS = "# Planos {name}\n\n## Cancelamento do plano\nO cancelamento do plano {name} é na área do cliente."


def day(offset: int) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


async def traces(company: CompanyCtx, cid: str) -> list[dict[str, Any]]:
    r = await company.client.get(f"/v1/conversations/{cid}/traces")
    assert r.status_code == 200, r.text
    return list(r.json())


def retrieved_documents(trace: dict[str, Any]) -> set[str]:
    return {p["document_id"] for p in trace["retrieved"]}


def rules_of(trace: dict[str, Any]) -> list[dict[str, Any]]:
    [retrieve] = [s for s in trace["steps"] if s["step"] == "retrieve"]
    return list(retrieve["rules"])


async def search(company: CompanyCtx, question: str, **extra: Any) -> dict[str, Any]:
    r = await company.client.post("/v1/search", json={"question": question, **extra})
    assert r.status_code == 200, r.text
    return dict(r.json())


def stage_documents(result: dict[str, Any], name: str = "fulltext") -> set[str]:
    [stage] = [s for s in result["stages"] if s["name"] == name]
    return {c["document_id"] for c in stage["candidates"]}


async def test_internal_documents_never_answer_a_customer_but_draft_for_an_agent(company: CompanyCtx) -> None:
    internal = await post(company, "estorno.md", REFUND, language="pt", meta={"audience": "Internal"})
    question = "Como é feito o estorno no cartão de crédito?"

    body = await ask(company.client, question)
    assert body["reply"]["meta"]["decision"] == "handoff"  # the only passage is the team's
    [trace] = await traces(company, body["conversation_id"])
    assert trace["retrieved"] == []
    assert {r["kind"] for r in rules_of(trace)} == {"valid_now", "internal"}

    r = await company.client.post(f"/v1/conversations/{body['conversation_id']}/suggested-reply")
    assert r.status_code == 200, r.text
    draft = r.json()
    assert "painel financeiro" in draft["text"]
    assert [c["document_id"] for c in draft["citations"]] == [internal["id"]]

    # "try a question" says the same: not for a customer, yes for an agent
    assert stage_documents(await search(company, question, answer=False)) == set()
    as_agent = await search(company, question, reader="agent")
    assert stage_documents(as_agent) == {internal["id"]}
    assert as_agent["answer"]["decision"] == "answer"
    assert "internal" not in {r["kind"] for r in as_agent["rules"]}


async def test_expired_and_future_documents_are_never_cited_and_a_promotion_only_in_its_window(
    company: CompanyCtx,
) -> None:
    promo = "# Frete {n}\n\n## Frete grátis\nFrete grátis para compras acima de {n}0 reais."
    docs = {
        name: (await post(company, f"{name}.md", promo.format(n=n), language="pt", meta=meta))["id"]
        for n, (name, meta) in enumerate(
            {
                "expired": {"valid_until": day(-1)},
                "future": {"valid_from": day(2)},
                "promo_open_ended": {"tags": ["promo"]},
                "promo_in_window": {"tags": ["promo"], "valid_from": day(-1), "valid_until": day(3)},
                "always": {},
            }.items(),
            start=1,
        )
    }
    r = await company.client.put("/v1/company/knowledge-rules", json={"windowed_tags": ["promo"]})
    assert r.status_code == 200, r.text
    question = "Tem frete grátis?"
    body = await ask(company.client, question)
    [trace] = await traces(company, body["conversation_id"])
    assert retrieved_documents(trace) == {docs["promo_in_window"], docs["always"]}
    cited = {c["document_id"] for c in body["reply"]["meta"].get("citations", [])}
    assert cited <= {docs["promo_in_window"], docs["always"]}

    # the window holds for agents too; a search at another instant sees that instant's documents
    assert stage_documents(await search(company, question, reader="agent", answer=False)) == {
        docs["promo_in_window"],
        docs["always"],
    }
    # without "promo" among the windowed tags (as before a company names it), an open-ended
    # promotion is just a document
    r = await company.client.put("/v1/company/knowledge-rules", json={"windowed_tags": []})
    assert r.status_code == 200, r.text
    assert stage_documents(await search(company, question, answer=False)) == {
        docs["promo_in_window"],
        docs["always"],
        docs["promo_open_ended"],
    }


async def widget_asks(company: CompanyCtx, question: str, context: dict[str, str]) -> str:
    """A visitor on a page asks through the web chat; the conversation's id once answered."""
    async with httpx.AsyncClient(base_url=str(company.client.base_url), timeout=15) as visitor:
        base = f"/widget/v1/{company.widget_key}"
        started = await visitor.post(f"{base}/conversations", json={"context": context})
        assert started.status_code == 201, started.text
        cid, token = started.json()["conversation_id"], started.json()["token"]
        sent = await visitor.post(
            f"{base}/conversations/{cid}/messages",
            json={"text": question},
            headers={"X-Visitor-Token": token},
        )
        assert sent.status_code == 201, sent.text
    await until(lambda: traces(company, cid), what="the bot's turn")
    return str(cid)


async def test_the_companys_rules_turn_the_widgets_page_and_the_channel_into_filters(
    company: CompanyCtx,
) -> None:
    docs = {
        name: (await post(company, f"{name}.md", PLANS.format(name=name), language="pt", meta=meta))["id"]
        for name, meta in {"pro": {"product": "pro"}, "basic": {"product": "basic"}, "general": {}}.items()
    }
    rules = {
        "windowed_tags": ["promo"],
        "rules": [
            {"when": "page", "equals": "/pro/", "field": "product", "value": "pro", "or_unset": True},
            {"when": "channel", "equals": "whatsapp", "field": "product", "value": "basic"},
        ],
    }
    r = await company.client.put("/v1/company/knowledge-rules", json=rules)
    assert r.status_code == 200, r.text
    assert (await company.client.get("/v1/company/knowledge-rules")).json() == {
        "windowed_tags": ["promo"],
        "rules": [
            {"when": "page", "equals": "/pro/", "field": "product", "value": "pro", "or_unset": True},
            {
                "when": "channel",
                "equals": "whatsapp",
                "field": "product",
                "value": "basic",
                "or_unset": False,
            },
        ],
    }
    question = "Como faço o cancelamento do plano?"

    cid = await widget_asks(company, question, {"page": "https://loja.example/pro/planos?email=a@b.c"})
    [trace] = await traces(company, cid)
    assert retrieved_documents(trace) == {docs["pro"], docs["general"]}
    [applied] = [r for r in rules_of(trace) if r["kind"] == "context"]
    assert (applied["rule"], applied["given"], applied["value"]) == (1, "/pro/planos", "pro")

    # another page: the rule does not apply, every document may answer
    cid = await widget_asks(company, question, {"page": "/blog/"})
    [trace] = await traces(company, cid)
    assert retrieved_documents(trace) == set(docs.values())
    assert "context" not in {r["kind"] for r in rules_of(trace)}

    # the channel rule, tried from the search with a context
    result = await search(company, question, context={"channel": "whatsapp"}, answer=False)
    assert stage_documents(result) == {docs["basic"]}
    assert [r["detail"]["value"] for r in result["rules"] if r["kind"] == "context"] == ["basic"]


async def test_filters_sent_with_a_customer_message_narrow_its_answer(
    company: CompanyCtx, other_company: CompanyCtx
) -> None:
    docs = {
        name: (await post(company, f"{name}.md", PLANS.format(name=name), language="pt", meta=meta))["id"]
        for name, meta in {
            "pro": {"product": "pro", "custom": {"region": "south"}},
            "basic": {"product": "basic", "custom": {"region": "north"}},
        }.items()
    }
    question = "Como faço o cancelamento do plano?"
    for filters, expected in (
        ({"product": "basic"}, {docs["basic"]}),
        ({"attributes": {"region": ["south", "west"]}}, {docs["pro"]}),
        ({"exclude": {"products": ["pro"]}}, {docs["basic"]}),
    ):
        r = await company.client.post(
            "/v1/messages?wait=10",
            json={
                "contact": {"external_id": f"c-{uuid.uuid4().hex[:6]}"},
                "text": question,
                "filters": filters,
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["message"]["meta"]["filters"] == filters
        [trace] = await traces(company, r.json()["conversation_id"])
        assert retrieved_documents(trace) == expected, filters
        assert rules_of(trace)[-1] == {"kind": "requested"}

    # another company's document is as unknown as a made-up one; a bad filter says what is wrong
    foreign = await post(other_company, "x.md", PLANS.format(name="x"), language="pt")
    message = {"contact": {"external_id": "c-1"}, "text": question}
    r = await company.client.post("/v1/messages", json={**message, "filters": {"documents": [foreign["id"]]}})
    assert r.status_code == 404, r.text
    assert foreign["id"] in r.text
    r = await company.client.post(
        "/v1/messages", json={**message, "filters": {"attributes": {"product": "x"}}}
    )
    assert r.status_code == 422
    assert "filter on `product`" in r.text


async def test_the_context_sent_with_a_customer_message_is_kept_and_narrows_by_the_rules(
    company: CompanyCtx,
) -> None:
    docs = {
        name: (await post(company, f"{name}.md", PLANS.format(name=name), language="pt", meta=meta))["id"]
        for name, meta in {
            "pro": {"product": "pro"},
            "pro_south": {"product": "pro", "custom": {"region": "south"}},
            "basic": {"product": "basic"},
        }.items()
    }
    rules = [
        {"when": "page", "equals": "/pro/", "field": "product", "value": "pro"},
        {"when": "region", "field": "region", "or_unset": True},
    ]
    r = await company.client.put("/v1/company/knowledge-rules", json={"rules": rules})
    assert r.status_code == 200, r.text
    question = "Como faço o cancelamento do plano?"

    async def send(context: dict[str, str], contact: str, text: str = question, cid: str = "") -> str:
        r = await company.client.post(
            "/v1/messages?wait=10",
            json={
                "contact": {"external_id": contact},
                "text": text,
                "context": context,
                **({"conversation_id": cid} if cid else {}),
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["conversation_id"])

    async def kept(cid: str) -> dict[str, str]:
        r = await company.client.get(f"/v1/conversations/{cid}")
        assert r.status_code == 200, r.text
        return dict(r.json()["context"])

    cid = await send({"page": "https://loja.example/pro/planos?email=a@b.c#top", "region": "north"}, "c-1")
    assert await kept(cid) == {"page": "/pro/planos", "region": "north"}  # no query string kept
    [trace] = await traces(company, cid)
    # product pro (the page), region north or none: the south one and the basic one left out
    assert retrieved_documents(trace) == {docs["pro"]}
    assert [(a["rule"], a["given"], a["value"]) for a in rules_of(trace) if a["kind"] == "context"] == [
        (1, "/pro/planos", "pro"),
        (2, "north", "north"),
    ]
    cid = await send({"page": "/pro/", "region": "south"}, "c-2")
    assert retrieved_documents((await traces(company, cid))[-1]) == {docs["pro"], docs["pro_south"]}

    # the conversation's next messages: a key given replaces its value, an empty one forgets
    # it, the others stay; a message without a context leaves it as it was
    await send({"region": "west"}, "c-2", "Obrigado!", cid)
    assert await kept(cid) == {"page": "/pro/", "region": "west"}
    await send({"page": " "}, "c-2", "Valeu!", cid)
    assert await kept(cid) == {"region": "west"}
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": "c-2"}, "text": "Tchau", "conversation_id": cid}
    )
    assert r.status_code == 201, r.text
    assert await kept(cid) == {"region": "west"}
    # a message posted again (its message_id seen before) changes nothing, its context neither
    again = {"contact": {"external_id": "c-2"}, "text": "Tchau", "message_id": "m-1", "conversation_id": cid}
    r = await company.client.post("/v1/messages", json={**again, "context": {"region": "east"}})
    assert r.status_code == 201, r.text
    r = await company.client.post("/v1/messages", json={**again, "context": {"region": "north"}})
    assert (r.status_code, r.json()["duplicate"]) == (200, True)
    assert await kept(cid) == {"region": "east"}

    # bad contexts are refused, saying what was wrong, and nothing is stored
    message = {"contact": {"external_id": "c-bad"}, "text": question}
    for context, said in (
        ({"channel": "whatsapp"}, "the one it came through"),
        ({"Region": "south"}, "lower-case letters"),
        ({f"k{i}": "v" for i in range(21)}, "20"),
        ({"region": "x" * 501}, "at most 500"),
        ({"page": "/" + "x" * 2000}, "2000"),
        ({"region": 3}, "valid string"),
        ("/pro/", "dictionary"),
    ):
        r = await company.client.post("/v1/messages", json={**message, "context": context})
        assert r.status_code == 422, context
        assert said in r.text, r.text
    r = await company.client.get("/v1/conversations", params={"limit": 100})
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 2  # c-1's and c-2's


async def test_bad_rules_filters_and_contexts_are_refused_with_what_was_wrong(
    company: CompanyCtx, runtime: Runtime
) -> None:
    assert (await company.client.get("/v1/company/knowledge-rules")).json() == {
        "windowed_tags": [],
        "rules": [],
    }
    for rule, said in (
        ({"when": "Page!", "field": "product", "value": "x"}, "lower-case letters"),
        ({"when": "page", "equals": "pro", "field": "product", "value": "x"}, "start of a path"),
        ({"when": "page", "equals": "/pro/", "field": "product"}, "needs a `value`"),
        ({"when": "channel", "field": "language", "value": "de"}, "one of pt, en, es"),
        ({"when": "channel", "field": "product", "value": "x", "then": "y"}, "then"),
    ):
        r = await company.client.put("/v1/company/knowledge-rules", json={"rules": [rule]})
        assert r.status_code == 422, rule
        assert said in r.text, r.text
    r = await company.client.put("/v1/company/knowledge-rules", json={"rules": [{}] * 31})
    assert r.status_code == 422
    for body, said in (
        ({"filters": {"attributes": {"region": []}}}, "region"),
        ({"filters": {"exclude": {"colour": ["red"]}}}, "colour"),
        ({"filters": {"valid_at": "tomorrow"}}, "valid_at"),
        ({"context": {"Page": "/x"}}, "lower-case letters"),
        ({"reader": "robot"}, "reader"),
    ):
        r = await company.client.post("/v1/search", json={"question": "frete", **body})
        assert r.status_code == 422, body
        assert said in r.text, r.text
    document = await post(company, "p.md", PLANS.format(name="p"), language="pt")
    for custom, said in (({"product": "x"}, "field of its own"), ({"note": "x" * 501}, "500 characters")):
        r = await company.client.patch(f"/v1/documents/{document['id']}", json={"custom": custom})
        assert r.status_code == 422, custom
        assert said in r.text, r.text
    r = await company.client.patch(f"/v1/documents/{document['id']}", json={"custom": {"region": "south"}})
    assert r.status_code == 200 and r.json()["meta"]["custom"] == {"region": "south"}
    r = await company.client.post(
        f"/widget/v1/{company.widget_key}/conversations", json={"context": {"page": "/", "colour": "red"}}
    )
    assert r.status_code == 422
    assert "colour" in r.text
    async with company.with_key(await new_key(runtime, company, Role.viewer)) as viewer:
        assert (await viewer.get("/v1/company/knowledge-rules")).status_code == 200
        assert (await viewer.put("/v1/company/knowledge-rules", json={})).status_code == 403
