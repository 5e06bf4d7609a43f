"""Canned responses: admins keep the company's list, agents find them by code and fill them for
a conversation; a template that could not render is refused when saved, with the names it may
use, and a value is never read as a template."""

from __future__ import annotations

import uuid

import httpx
import pytest

from atende.errors import InvalidInput
from atende.runtime import Runtime
from atende.teams.canned import placeholders, render_template
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask
from tests.tenancy.test_support_api import add_member, new_key

GREETING = {
    "code": "ola",
    "title": "Saudação",
    "text": "Olá {{contact.name | cliente}}! Aqui é {{ agent.name }}, da {{company.name}}.",
}


# the template language


def test_variables_are_filled_in_one_pass_and_a_value_is_never_read_as_a_template() -> None:
    values = {"contact.name": "{{agent.name}}", "agent.name": "Carla", "company.name": "Loja"}
    rendered = render_template(GREETING["text"], values)
    assert rendered.text == "Olá {{agent.name}}! Aqui é Carla, da Loja."
    assert rendered.missing == []


def test_single_braces_are_plain_text() -> None:
    assert render_template("{ {{contact.name}} }", {"contact.name": "Ana"}).text == "{ Ana }"


def test_a_missing_value_takes_its_fallback_words_or_renders_empty_and_is_reported() -> None:
    rendered = render_template(GREETING["text"], {"contact.name": "  ", "company.name": "Loja"})
    assert rendered.text == "Olá cliente! Aqui é , da Loja."
    assert rendered.missing == ["agent.name"]


@pytest.mark.parametrize(
    ("template", "says"),
    [
        (
            "Olá {{contact.nome}}",
            "unknown variable {{contact.nome}}: a canned response may use {{contact.name}}",
        ),
        ("Olá {{ }}", "unknown variable {{}}"),
        ("Olá {{contact.name}", "'{{' or '}}' that is not part of a variable"),
        ("Olá contact.name}}", "'{{' or '}}' that is not part of a variable"),
        ("{{contact.name | {{agent.name}} }}", "'{{' or '}}' that is not part of a variable"),
    ],
)
def test_a_template_that_could_not_render_is_refused_naming_what_is_wrong(template: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        placeholders(template)
    assert says in caught.value.message
    assert caught.value.field == "text"


# the API


async def create(client: httpx.AsyncClient, body: dict[str, str]) -> httpx.Response:
    return await client.post("/v1/canned-responses", json=body)


async def test_admins_keep_the_list_and_agents_find_them_by_code_or_title(
    company: CompanyCtx, runtime: Runtime
) -> None:
    r = await create(company.client, GREETING)
    assert r.status_code == 201, r.text
    assert r.json()["variables"] == ["contact.name", "agent.name", "company.name"]
    for code, title in [
        ("prazo", "Prazo de entrega"),
        ("prazo-sul", "Prazo para o Sul"),
        ("troca", "Olá, troca"),
    ]:
        r = await create(company.client, {"code": code, "title": title, "text": f"Texto de {code}."})
        assert r.status_code == 201, r.text

    async with company.with_key(await new_key(runtime, company, Role.agent)) as agent:
        codes = [c["code"] for c in (await agent.get("/v1/canned-responses")).json()]
        assert codes == ["ola", "prazo", "prazo-sul", "troca"]
        found = (await agent.get("/v1/canned-responses", params={"q": "/PRA"})).json()
        assert [c["code"] for c in found] == ["prazo", "prazo-sul"]
        # codes that start with it first, then titles that contain it
        found = (await agent.get("/v1/canned-responses", params={"q": "ol"})).json()
        assert [c["code"] for c in found] == ["ola", "troca"]
        assert (await agent.get("/v1/canned-responses", params={"q": "%"})).json() == []
        r = await agent.get("/v1/canned-responses/PRAZO")
        assert (r.status_code, r.json()["title"]) == (200, "Prazo de entrega")
        r = await create(agent, {"code": "minha", "title": "t", "text": "x"})
        assert r.status_code == 403, r.text  # agents use them; admins keep them

    r = await company.client.put(
        "/v1/canned-responses/prazo", json={"code": "entrega", "title": "Prazo", "text": "De 2 a 5 dias."}
    )
    assert r.status_code == 200, r.text
    assert r.json()["code"] == "entrega"
    assert (await company.client.get("/v1/canned-responses/prazo")).status_code == 404
    r = await company.client.put("/v1/canned-responses/entrega", json={**GREETING, "code": "troca"})
    assert (r.status_code, r.json()["code"], r.json()["field"]) == (409, "conflict", "code")
    r = await create(company.client, {**GREETING, "code": "OLA"})
    assert (r.status_code, r.json()["detail"]) == (409, "a canned response 'ola' exists already")
    assert (await company.client.delete("/v1/canned-responses/troca")).status_code == 204
    assert (await company.client.delete("/v1/canned-responses/troca")).status_code == 404


async def test_rendering_fills_the_contact_the_agent_and_the_company_and_stores_nothing(
    company: CompanyCtx, runtime: Runtime
) -> None:
    assert (await create(company.client, GREETING)).status_code == 201
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": "ana-1", "name": "Ana Souza"}, "text": "oi"}
    )
    cid = r.json()["conversation_id"]
    _user, email = await add_member(runtime, company, Role.agent, name="Carla")
    async with company.with_key(await new_key(runtime, company, Role.agent, email)) as carla:
        r = await carla.post("/v1/canned-responses/ola/render", json={"conversation_id": cid})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "code": "ola",
        "text": f"Olá Ana Souza! Aqui é Carla, da {company.slug}.",
        "missing": [],
    }
    # the company's key is no person: the agent's name is missing, and said to be
    r = await company.client.post("/v1/canned-responses/ola/render", json={"conversation_id": cid})
    assert r.json()["missing"] == ["agent.name"]
    assert r.json()["text"] == f"Olá Ana Souza! Aqui é , da {company.slug}."
    messages = (await company.client.get(f"/v1/conversations/{cid}/messages?include_notes=true")).json()
    assert "Aqui é" not in str(messages)


async def test_bad_canned_responses_are_clear_422s_naming_the_field(company: CompanyCtx) -> None:
    for body, field, says in [
        ({**GREETING, "text": "Olá {{cliente}}"}, "text", "unknown variable {{cliente}}"),
        ({**GREETING, "text": "   "}, "text", "must not be empty"),
        ({**GREETING, "code": "com espaço"}, "code", "code must be 1 to 40 lower-case letters"),
        ({**GREETING, "code": "-ola"}, "code", "starting with a letter or digit"),
        ({**GREETING, "title": "  "}, "title", "title must be 1 to 200 characters"),
        ({**GREETING, "code": "x" * 41}, "code", "at most 40 characters"),
    ]:
        r = await create(company.client, body)
        assert r.status_code == 422, (body, r.text)
        assert says in r.text, (body, r.text)
        got = r.json().get("field") or r.json()["detail"][0]["loc"][-1]
        assert got == field, (body, r.text)
    assert (await company.client.get("/v1/canned-responses")).json() == []
    r = await company.client.post(
        "/v1/canned-responses/nada/render", json={"conversation_id": str(uuid.uuid4())}
    )
    assert (r.status_code, r.json()["code"]) == (404, "not_found")


async def test_a_company_reaches_none_of_anothers_canned_responses_or_conversations(
    company: CompanyCtx, other_company: CompanyCtx
) -> None:
    assert (await create(other_company.client, {**GREETING, "code": "so-b"})).status_code == 201
    assert (await create(company.client, GREETING)).status_code == 201
    b_conversation = (await ask(other_company.client, "oi"))["conversation_id"]
    for method, path, body in [
        ("GET", "/v1/canned-responses/so-b", None),
        ("PUT", "/v1/canned-responses/so-b", GREETING),
        ("DELETE", "/v1/canned-responses/so-b", None),
        ("POST", "/v1/canned-responses/so-b/render", {"conversation_id": b_conversation}),
        (
            "POST",
            "/v1/canned-responses/ola/render",
            {"conversation_id": b_conversation},
        ),  # A's own, B's conversation
    ]:
        r = await company.client.request(method, path, json=body)
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), (method, path, r.text)
    assert [c["code"] for c in (await company.client.get("/v1/canned-responses")).json()] == ["ola"]
    assert [c["code"] for c in (await other_company.client.get("/v1/canned-responses")).json()] == ["so-b"]
