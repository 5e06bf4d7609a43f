"""``/v1/documents`` end to end: a live server, the real worker and bot, real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from atende.config import Settings
from atende.engine.messages import phrase
from atende.knowledge.passages import Passage
from atende.knowledge.retrieval import FullTextRetriever
from atende.runtime import Runtime
from tests.conftest import CompanyCtx, ask

SHIPPING_MD = """# Entregas

## Prazos de entrega
As entregas rápidas chegam em 24 horas nas capitais.
Para o interior, o prazo é de 4 a 10 dias úteis.

## Frete
- Frete grátis acima de R$ 199,00
- Retirada na loja sem custo
"""

PAYMENTS_HTML = """<!DOCTYPE html><html><head><title>Pagamentos</title>
<script>analytics("cartão")</script></head><body>
<nav>Início › Ajuda</nav>
<h1>Formas de pagamento</h1>
<h2>Cartão de crédito</h2>
<p>Aceitamos cartão de crédito Visa e Mastercard, em até 12 parcelas.</p>
</body></html>"""

RETURNS_TXT = """Devoluções em até 7 dias corridos após o recebimento.

A etiqueta de postagem reversa é enviada por e-mail."""


async def post_document(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post("/v1/documents?wait=true", json=body)


async def chunks_of(client: httpx.AsyncClient, document_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v1/documents/{document_id}/chunks")
    assert r.status_code == 200, r.text
    return list(r.json())


async def search(runtime: Runtime, company: CompanyCtx, question: str) -> list[Passage]:
    async with runtime.db.transaction(company.id) as session:
        return await FullTextRetriever().retrieve(session, question, 5)


async def state_of(client: httpx.AsyncClient, conversation_id: str) -> str:
    r = await client.get(f"/v1/conversations/{conversation_id}")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


async def test_a_markdown_document_is_stored_with_one_chunk_per_heading(company: CompanyCtx) -> None:
    r = await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["changed"] is True
    document = body["document"]
    assert document["title"] == "Entregas"
    assert document["source"] == "faq/entregas.md"
    assert document["content_type"] == "markdown"
    assert document["language"] == "pt"  # detected
    assert document["status"] == "ready"
    assert document["chunk_count"] == 2
    chunks = await chunks_of(company.client, document["id"])
    assert [(c["ordinal"], c["section"], c["text"]) for c in chunks] == [
        (
            0,
            "Entregas › Prazos de entrega",
            # one paragraph: its lines are joined
            "As entregas rápidas chegam em 24 horas nas capitais. "
            "Para o interior, o prazo é de 4 a 10 dias úteis.",
        ),
        (1, "Entregas › Frete", "- Frete grátis acima de R$ 199,00\n- Retirada na loja sem custo"),
    ]
    listed = (await company.client.get("/v1/documents")).json()
    assert [d["id"] for d in listed] == [document["id"]]
    assert (await company.client.get(f"/v1/documents/{document['id']}")).json() == document


async def test_an_html_document_keeps_its_content_and_drops_scripts_and_navigation(
    company: CompanyCtx,
) -> None:
    r = await post_document(company.client, source="site/pagamentos.html", content=PAYMENTS_HTML)
    assert r.status_code == 201, r.text
    document = r.json()["document"]
    assert (document["title"], document["content_type"]) == ("Pagamentos", "html")
    chunks = await chunks_of(company.client, document["id"])
    assert [(c["section"], c["text"]) for c in chunks] == [
        (
            "Formas de pagamento › Cartão de crédito",
            "Aceitamos cartão de crédito Visa e Mastercard, em até 12 parcelas.",
        )
    ]


async def test_a_plain_text_document_is_split_into_paragraphs(company: CompanyCtx) -> None:
    r = await post_document(
        company.client, source="politicas/devolucoes.txt", content=RETURNS_TXT, title="Devoluções"
    )
    assert r.status_code == 201, r.text
    document = r.json()["document"]
    assert (document["title"], document["content_type"], document["chunk_count"]) == ("Devoluções", "text", 1)
    [chunk] = await chunks_of(company.client, document["id"])
    assert chunk["section"] == ""
    assert chunk["text"] == (
        "Devoluções em até 7 dias corridos após o recebimento.\n"
        "A etiqueta de postagem reversa é enviada por e-mail."
    )


async def test_a_source_without_extension_is_read_as_markdown(company: CompanyCtx) -> None:
    r = await post_document(company.client, source="faq-entregas", content=SHIPPING_MD, language="pt")
    assert r.status_code == 201, r.text
    assert r.json()["document"]["content_type"] == "markdown"


async def test_a_question_without_accents_finds_the_accented_passage(
    company: CompanyCtx, runtime: Runtime
) -> None:
    await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)
    await post_document(company.client, source="site/pagamentos.html", content=PAYMENTS_HTML)

    body = await ask(company.client, "As entregas rapidas chegam em quantas horas?")
    assert "As entregas rápidas chegam em 24 horas nas capitais." in body["reply"]["text"]
    traces = (await company.client.get(f"/v1/conversations/{body['conversation_id']}/traces")).json()
    assert traces[0]["retrieved"][0]["section"] == "Entregas › Prazos de entrega"

    body = await ask(company.client, "Aceitam cartao Visa?")
    assert "Aceitamos cartão de crédito Visa e Mastercard" in body["reply"]["text"]
    [citation] = body["reply"]["meta"]["citations"]
    assert (citation["title"], citation["section"]) == (
        "Pagamentos",
        "Formas de pagamento › Cartão de crédito",
    )

    # and the other way round: accents in the question, none in the text
    await post_document(
        company.client, source="faq/pix.md", content="# Pix\n\nO pagamento por pix e imediato."
    )
    [best, *_] = await search(runtime, company, "pagamento imediato por Píx")
    assert best.title == "Pix"


async def test_reposting_the_same_content_changes_nothing(company: CompanyCtx) -> None:
    first = await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)
    chunks = await chunks_of(company.client, first.json()["document"]["id"])
    again = await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)
    assert again.status_code == 200, again.text
    assert again.json()["changed"] is False
    assert again.json()["document"] == first.json()["document"]
    assert await chunks_of(company.client, first.json()["document"]["id"]) == chunks


async def test_reposting_the_same_content_in_another_language_reindexes_it(company: CompanyCtx) -> None:
    content = "# Shipping\n\nWe ship everywhere."
    first = await post_document(company.client, source="faq/shipping.md", content=content, language="es")
    again = await post_document(company.client, source="faq/shipping.md", content=content, language="en")
    assert again.status_code == 201, again.text
    assert again.json()["changed"] is True
    assert again.json()["document"]["id"] == first.json()["document"]["id"]
    assert again.json()["document"]["language"] == "en"
    [chunk] = await chunks_of(company.client, first.json()["document"]["id"])
    assert chunk["language"] == "en"


async def test_new_content_replaces_the_old_chunks(company: CompanyCtx, runtime: Runtime) -> None:
    first = (await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)).json()
    old_chunks = await chunks_of(company.client, first["document"]["id"])
    updated = SHIPPING_MD.replace("24 horas", "48 horas").replace("Retirada na loja", "Retirada no armazém")
    r = await post_document(company.client, source="faq/entregas.md", content=updated)
    assert r.status_code == 201, r.text
    assert r.json()["changed"] is True
    assert r.json()["document"]["id"] == first["document"]["id"]
    assert r.json()["document"]["content_hash"] != first["document"]["content_hash"]
    new_chunks = await chunks_of(company.client, first["document"]["id"])
    assert {c["id"] for c in new_chunks}.isdisjoint(c["id"] for c in old_chunks)
    assert "48 horas" in new_chunks[0]["text"]

    assert await search(runtime, company, "loja") == []
    assert [p.text for p in await search(runtime, company, "armazem")] == [new_chunks[1]["text"]]
    body = await ask(company.client, "As entregas rapidas chegam em quantas horas?")
    assert "48 horas" in body["reply"]["text"]
    assert "24 horas" not in body["reply"]["text"]


async def test_a_deleted_document_is_gone_and_the_bot_no_longer_answers_from_it(
    company: CompanyCtx, runtime: Runtime
) -> None:
    document = (await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)).json()[
        "document"
    ]
    answered = await ask(company.client, "As entregas rapidas chegam em quantas horas?")
    assert "24 horas" in answered["reply"]["text"]

    r = await company.client.delete(f"/v1/documents/{document['id']}")
    assert r.status_code == 204
    for path in (f"/v1/documents/{document['id']}", f"/v1/documents/{document['id']}/chunks"):
        r = await company.client.get(path)
        assert r.status_code == 404
        assert r.json() == {"detail": f"no document {document['id']}", "code": "not_found"}
    assert (await company.client.delete(f"/v1/documents/{document['id']}")).status_code == 404
    assert (await company.client.get("/v1/documents")).json() == []
    assert await search(runtime, company, "entregas rapidas") == []

    body = await ask(company.client, "As entregas rapidas chegam em quantas horas?")
    assert body["reply"]["text"] == phrase("handoff", "pt")
    assert await state_of(company.client, body["conversation_id"]) == "waiting_human"


async def test_another_company_can_neither_see_nor_delete_a_document(
    company: CompanyCtx, other_company: CompanyCtx, runtime: Runtime
) -> None:
    document = (await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)).json()[
        "document"
    ]
    assert (await other_company.client.get("/v1/documents")).json() == []
    for r in (
        await other_company.client.get(f"/v1/documents/{document['id']}"),
        await other_company.client.get(f"/v1/documents/{document['id']}/chunks"),
        await other_company.client.delete(f"/v1/documents/{document['id']}"),
    ):
        assert r.status_code == 404
    assert await search(runtime, other_company, "entregas rapidas") == []
    assert (await company.client.get(f"/v1/documents/{document['id']}")).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "faq/vazio.md", "content": ""}, "the document is empty"),
        ({"source": "faq/vazio.md", "content": " \n\n "}, "the document is empty"),
        (
            {"source": "faq/binario.md", "content": "PK\u0003\u0004\u0000\u0000zip"},
            "the document looks binary",
        ),
        ({"source": "faq/menu.md", "content": "<nav>Início</nav>"}, "the document has no readable text"),
        ({"source": "deck.pptx", "content": "Slides"}, "cannot read 'deck.pptx': supported extensions"),
        ({"content": "# Entregas"}, "`source` is required with `content`"),
        ({"source": "a.md", "content": "# A", "path": "a.md"}, "exactly one of `content`, `path` or `url`"),
    ],
)
async def test_a_bad_document_is_refused_with_a_message_and_nothing_changes(
    company: CompanyCtx, body: dict[str, Any], message: str
) -> None:
    kept = (await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)).json()[
        "document"
    ]
    chunks = await chunks_of(company.client, kept["id"])

    r = await post_document(company.client, **body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert message in r.json()["detail"]
    if str(body.get("source", "")).startswith("faq/"):
        # the same bad content over an existing document leaves it as it was
        r = await post_document(company.client, **{**body, "source": "faq/entregas.md"})
        assert r.status_code == 422, r.text
        assert message in r.json()["detail"]
    assert (await company.client.get("/v1/documents")).json() == [kept]
    assert await chunks_of(company.client, kept["id"]) == chunks


async def test_a_document_over_the_size_limit_is_refused(
    company: CompanyCtx, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_document_bytes", 1000)
    r = await post_document(company.client, source="faq/grande.md", content="# Grande\n\n" + "a" * 1000)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "the document is 1010 bytes; the limit is 1000"
    r = await post_document(company.client, source="faq/pequeno.md", content="# Pequeno\n\n" + "a" * 900)
    assert r.status_code == 201, r.text
    assert [d["source"] for d in (await company.client.get("/v1/documents")).json()] == ["faq/pequeno.md"]


async def test_a_request_body_over_the_server_limit_is_refused_before_parsing(
    company: CompanyCtx, settings: Settings
) -> None:
    content = "# Grande\n\n" + "palavra " * (settings.max_body_bytes // 8 + 1)
    r = await post_document(company.client, source="faq/grande.md", content=content)
    assert r.status_code == 413
    assert r.json()["code"] == "too_large"
    assert (await company.client.get("/v1/documents")).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "a.md", "content": "# A", "language": "fr"}, "language"),
        ({"source": "a.md", "content": "# A", "content_type": "pdf"}, "content_type"),
        ({"source": "", "content": "# A"}, "source"),
        ({"source": "a.md", "content": "# A", "owner": "x"}, "owner"),
    ],
)
async def test_invalid_fields_are_refused_naming_the_field(
    company: CompanyCtx, body: dict[str, Any], field: str
) -> None:
    r = await post_document(company.client, **body)
    assert r.status_code == 422
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]


async def test_a_file_under_the_ingest_root_can_be_ingested_by_path(
    company: CompanyCtx, settings: Settings, ingest_dir: Path
) -> None:
    (ingest_dir / "entregas.md").write_text(SHIPPING_MD)
    relative = f"{ingest_dir.name}/entregas.md"
    r = await post_document(company.client, path=relative)
    assert r.status_code == 201, r.text
    document = r.json()["document"]
    assert (document["source"], document["title"], document["chunk_count"]) == (relative, "Entregas", 2)

    r = await post_document(company.client, path=relative, source="faq/entregas.md")
    assert r.status_code == 201, r.text
    assert r.json()["document"]["source"] == "faq/entregas.md"
    assert r.json()["document"]["id"] != document["id"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Promoção de verão".encode("latin-1"), "the document is not valid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the document looks binary"),
    ],
)
async def test_a_file_that_is_not_utf8_text_is_refused(
    company: CompanyCtx, ingest_dir: Path, data: bytes, message: str
) -> None:
    (ingest_dir / "arquivo.txt").write_bytes(data)
    r = await post_document(company.client, path=f"{ingest_dir.name}/arquivo.txt")
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]
    assert (await company.client.get("/v1/documents")).json() == []


async def test_a_file_over_the_size_limit_is_refused(
    company: CompanyCtx, settings: Settings, ingest_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "max_document_bytes", 100)
    (ingest_dir / "grande.md").write_text("# Grande\n\n" + "a" * 100)
    r = await post_document(company.client, path=f"{ingest_dir.name}/grande.md")
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "the file is larger than 100 bytes"


async def test_paths_outside_the_ingest_root_are_refused(
    company: CompanyCtx, settings: Settings, ingest_dir: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "segredo.md"
    outside.write_text("# Segredo\n\nA senha do cofre.")
    (ingest_dir / "atalho.md").symlink_to(outside)
    (ingest_dir / "pasta").symlink_to(tmp_path, target_is_directory=True)
    for path in (
        "../../etc/passwd",
        f"{ingest_dir.name}/../../../etc/passwd",
        "/etc/passwd",
        str(outside),
        f"{ingest_dir.name}/atalho.md",
        f"{ingest_dir.name}/pasta/segredo.md",
    ):
        r = await post_document(company.client, path=path, source="faq/x.md")
        assert r.status_code == 422, (path, r.text)
        assert r.json()["detail"] == f"path '{path}' is outside the ingest root"
    r = await post_document(company.client, path=f"{ingest_dir.name}/nao-existe.md")
    assert r.status_code == 422
    assert r.json()["detail"] == f"path '{ingest_dir.name}/nao-existe.md' is not a file under the ingest root"
    r = await post_document(company.client, path=ingest_dir.name, source="faq/x.md")
    assert r.status_code == 422
    assert "is not a file under the ingest root" in r.json()["detail"]
    assert (await company.client.get("/v1/documents")).json() == []


async def test_documents_carry_metadata_that_is_validated_stored_and_returned(
    company: CompanyCtx, runtime: Runtime
) -> None:
    meta = {
        "tags": ["frete", "promoção"],
        "product": "Liquidificador Turbo",
        "audience": "customers",
        "valid_from": "2026-12-01",
        "valid_until": "2026-12-31",
        "custom": {"region": "sul"},
    }
    stored = {
        **meta,
        "valid_from": "2026-12-01T00:00:00Z",  # a date holds all of its day (UTC)
        "valid_until": "2026-12-31T23:59:59.999999Z",
    }
    r = await post_document(
        company.client, source="promo.md", content="# Frete grátis\n\nEm dezembro.", meta=meta
    )
    assert r.status_code == 201, r.text
    document = r.json()["document"]
    assert document["meta"] == stored
    assert (await company.client.get(f"/v1/documents/{document['id']}")).json()["meta"] == stored
    for bad, where in (
        (
            {"valid_from": "2026-12-31", "valid_until": "2026-12-01"},
            "valid_until must not be before valid_from",
        ),
        ({"color": "blue"}, "color"),
        ({"valid_from": "amanhã"}, "valid_from"),
    ):
        r = await post_document(company.client, source="promo.md", content="# Outro\n\nTexto.", meta=bad)
        assert r.status_code == 422 and where in r.text, r.text
    assert (await company.client.get(f"/v1/documents/{document['id']}")).json()["meta"] == stored
    async with runtime.db.transaction(company.id) as session:  # the columns retrieval filters on
        row = (
            await session.execute(
                text("SELECT tags, product, audience, meta FROM documents WHERE id = :id"),
                {"id": document["id"]},
            )
        ).one()
    assert row == (["frete", "promoção"], "Liquidificador Turbo", "customers", {"region": "sul"})


async def test_a_patch_changes_only_the_metadata_sent_and_refuses_a_bad_period(company: CompanyCtx) -> None:
    meta = {"tags": ["frete"], "product": "Turbo", "valid_from": "2026-12-01"}
    r = await post_document(company.client, source="promo.md", content="# Frete\n\nGrátis.", meta=meta)
    document = r.json()["document"]
    url = f"/v1/documents/{document['id']}"
    r = await company.client.patch(url, json={"audience": "internal", "tags": [" frete ", "natal", "frete"]})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["meta"]["audience"] == "internal"
    assert changed["meta"]["tags"] == ["frete", "natal"]  # trimmed, each once
    assert changed["meta"]["product"] == "Turbo"  # not sent: kept
    assert changed["status"] == "ready" and changed["chunk_count"] == document["chunk_count"]
    r = await company.client.patch(url, json={"valid_until": "2026-11-30"})
    assert r.status_code == 422 and "valid_until must not be before valid_from" in r.text
    r = await company.client.patch(url, json={"valid_from": None, "product": None})
    assert r.status_code == 200
    assert r.json()["meta"]["valid_from"] is None and r.json()["meta"]["product"] is None
    r = await company.client.patch(url, json={"colour": "blue"})
    assert r.status_code == 422 and "colour" in r.text
    r = await company.client.patch(url, json={"language": "xx"})
    assert r.status_code == 422


async def test_each_version_is_listed_and_a_language_change_indexes_the_document_again(
    company: CompanyCtx,
) -> None:
    r = await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)
    document = r.json()["document"]
    await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD + "\nNovo.\n")
    versions = (await company.client.get(f"/v1/documents/{document['id']}/versions")).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["author_id"] is None  # an API key sent it
    r = await company.client.patch(f"/v1/documents/{document['id']}", json={"language": "es"})
    assert r.status_code == 200 and r.json()["status"] == "queued"
    ready = await wait_for_status(company.client, document["id"], "ready")
    assert ready["language"] == "es"
    assert all(c["language"] == "es" for c in await chunks_of(company.client, document["id"]))
    r = await company.client.post(f"/v1/documents/{document['id']}/reindex")
    assert r.status_code == 202 and r.json()["status"] == "queued"
    assert (await wait_for_status(company.client, document["id"], "ready"))["language"] == "es"


async def wait_for_status(client: httpx.AsyncClient, document_id: str, status: str) -> dict[str, Any]:
    for _ in range(200):
        body = (await client.get(f"/v1/documents/{document_id}")).json()
        if body["status"] == status:
            return dict(body)
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {body['status']}")


async def test_editing_metadata_does_not_wait_for_a_job_writing_the_documents_rows(
    company: CompanyCtx, runtime: Runtime
) -> None:
    """The indexing and embedding jobs insert rows that reference the document (a key-share
    lock on it) and then update it; an edit that waited for their key-share lock while they
    waited for the edit was a deadlock (a 503 in CI). An edit takes no lock that waits for one."""
    posted = (await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)).json()
    document_id = posted["document"]["id"]
    async with runtime.db.transaction(company.id) as job:  # a job, part-way through its transaction
        await job.execute(text("SELECT 1 FROM documents WHERE id = :id FOR KEY SHARE"), {"id": document_id})
        r = await asyncio.wait_for(
            company.client.patch(f"/v1/documents/{document_id}", json={"tags": ["frete"]}), timeout=5
        )
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["tags"] == ["frete"]


@pytest.mark.parametrize("change", ["reindex", "new version"])
async def test_reindexing_or_sending_a_new_version_does_not_wait_for_a_job_writing_the_documents_rows(
    company: CompanyCtx, runtime: Runtime, change: str
) -> None:
    """Re-indexing a document and sending a new version of it (an upload, an article saved in
    the dashboard) change the document's columns, never its key: they lock it FOR NO KEY
    UPDATE, and do not wait for a job's key-share lock (rows it inserts that reference the
    document) while that job may wait to update the document."""
    posted = (await post_document(company.client, source="faq/entregas.md", content=SHIPPING_MD)).json()
    document_id = posted["document"]["id"]
    async with runtime.db.transaction(company.id) as job:  # a job, part-way through its transaction
        await job.execute(text("SELECT 1 FROM documents WHERE id = :id FOR KEY SHARE"), {"id": document_id})
        if change == "reindex":
            request = company.client.post(f"/v1/documents/{document_id}/reindex")
        else:
            newer = SHIPPING_MD + "\nFrete grátis acima de R$ 200.\n"
            request = post_document(company.client, source="faq/entregas.md", content=newer)
        r = await asyncio.wait_for(request, timeout=5)
    assert r.status_code in (200, 201, 202), r.text
    body = r.json()
    assert body.get("document", body)["id"] == document_id
