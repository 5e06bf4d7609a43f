"""Asynchronous indexing: ``POST /v1/documents`` answers at once, the worker indexes, the
status goes ``queued → indexing → embedding → ready | failed``, a new version replaces the
old one atomically (every question in between finds one of them), and a document answers
by full text as soon as it is parsed, before its vectors are stored (``embedding``)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.engine.tasks import retriever_for
from atende.knowledge import service
from atende.knowledge.chunking import chunk_blocks
from atende.knowledge.embedding import Embedder, OpenAIEmbedder, Vector, embedder_for
from atende.knowledge.parsed import Block
from atende.knowledge.retrieval import FullTextRetriever, Passage
from atende.openai_compat import cached_client
from atende.runtime import Runtime
from tests.conftest import CompanyCtx
from tests.fakes.openai_server import running_openai, status

V1 = "# Entregas\n\n## Prazo\nEntregamos o pedido em até 7 dias úteis em todo o Brasil.\n"
V2 = "# Entregas\n\n## Prazo\nEntregamos o pedido em até 3 dias úteis em todo o Brasil.\n"


async def until_settled(client: httpx.AsyncClient, document_id: str, seen: list[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = await client.get(f"/v1/documents/{document_id}")
        assert r.status_code == 200, r.text
        document = dict(r.json())
        if not seen or seen[-1] != document["status"]:
            seen.append(document["status"])
        if document["status"] in ("ready", "failed"):
            return document
        assert time.monotonic() < deadline, f"still {document['status']}"
        await asyncio.sleep(0.05)


async def test_a_document_is_queued_then_indexed_by_the_worker(company: CompanyCtx) -> None:
    r = await company.client.post("/v1/documents", json={"source": "entregas.md", "content": V1})
    assert r.status_code == 202, r.text
    queued = r.json()["document"]
    assert (queued["status"], queued["chunk_count"], r.json()["changed"]) == ("queued", 0, True)
    seen: list[str] = []
    ready = await until_settled(company.client, queued["id"], seen)
    assert seen[-1] == "ready" and set(seen) <= {"queued", "indexing", "embedding", "ready"}
    assert (ready["title"], ready["language"], ready["chunk_count"], ready["error"]) == (
        "Entregas",
        "pt",
        1,
        None,
    )
    # the same content again: nothing to do
    again = await company.client.post("/v1/documents", json={"source": "entregas.md", "content": V1})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["document"]["status"] == "ready"


async def test_a_file_that_cannot_be_read_fails_with_the_reason(company: CompanyCtx) -> None:
    r = await company.client.post(
        "/v1/documents", json={"source": "menu.html", "content": "<nav>Início</nav>"}
    )
    assert r.status_code == 202, r.text
    failed = await until_settled(company.client, r.json()["document"]["id"], [])
    assert failed["status"] == "failed" and "no readable text" in failed["error"]
    assert failed["chunk_count"] == 0


async def test_metadata_alone_changes_without_re_indexing(company: CompanyCtx) -> None:
    r = await company.client.post("/v1/documents?wait=true", json={"source": "entregas.md", "content": V1})
    first = r.json()["document"]
    before = (await company.client.get(f"/v1/documents/{first['id']}/chunks")).json()
    r = await company.client.post(
        "/v1/documents", json={"source": "entregas.md", "content": V1, "meta": {"tags": ["frete"]}}
    )
    assert r.status_code == 200 and r.json()["changed"] is True
    document = r.json()["document"]
    assert (document["status"], document["meta"]["tags"]) == ("ready", ["frete"])
    assert (await company.client.get(f"/v1/documents/{first['id']}/chunks")).json() == before


async def test_a_new_version_replaces_the_old_one_without_a_moment_of_neither(
    runtime: Runtime, company: CompanyCtx
) -> None:
    r = await company.client.post("/v1/documents?wait=true", json={"source": "entregas.md", "content": V1})
    document_id = r.json()["document"]["id"]
    found: list[set[str]] = []
    stop = asyncio.Event()

    async def ask_all_along() -> None:
        while not stop.is_set():
            async with runtime.db.transaction(company.id) as session:
                passages = await FullTextRetriever().retrieve(session, "prazo de entrega do pedido", 5)
            found.append({"7 dias" if "7 dias" in p.text else "3 dias" for p in passages})

    asker = asyncio.create_task(ask_all_along())
    try:
        r = await company.client.post("/v1/documents", json={"source": "entregas.md", "content": V2})
        assert r.status_code == 202
        # while the new version waits, the old one answers
        assert (
            (await company.client.get(f"/v1/documents/{document_id}/chunks"))
            .json()[0]["text"]
            .count("7 dias")
        )
        seen: list[str] = []
        ready = await until_settled(company.client, document_id, seen)
        assert ready["status"] == "ready"
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asker
    assert found and all(len(f) == 1 for f in found), "a question found neither version, or both"
    assert found[0] == {"7 dias"} and found[-1] == {"3 dias"}
    # once replaced, never back
    switched = [f == {"3 dias"} for f in found]
    assert switched == sorted(switched)


async def test_a_failed_new_version_leaves_the_previous_one_answering(
    runtime: Runtime, company: CompanyCtx
) -> None:
    r = await company.client.post("/v1/documents?wait=true", json={"source": "entregas.md", "content": V1})
    document = r.json()["document"]
    r = await company.client.post("/v1/documents", json={"source": "entregas.md", "content": "   "})
    failed = await until_settled(company.client, r.json()["document"]["id"], [])
    assert (failed["status"], failed["content_hash"]) == ("failed", document["content_hash"])
    async with runtime.db.transaction(company.id) as session:
        passages = await FullTextRetriever().retrieve(session, "prazo de entrega", 5)
    assert passages and "7 dias" in passages[0].text


# the longest source there may be (1000 characters) whose last part is empty: the title
# fell back to the whole source, too long for its column, and the document stayed `indexing`
LONG_SOURCE = "manuais/" + "capitulo-" * 110 + "x/"


@pytest.mark.parametrize("wait", [False, True], ids=["worker", "wait"])
async def test_a_document_titled_after_a_long_source_is_indexed_with_a_title_that_fits(
    company: CompanyCtx, wait: bool
) -> None:
    assert len(LONG_SOURCE) == 1000
    r = await company.client.post(
        "/v1/documents",
        params={"wait": str(wait).lower()},
        json={"source": LONG_SOURCE, "content": "Entregamos o pedido em até 7 dias úteis."},
    )
    assert r.status_code == (201 if wait else 202), r.text
    document = await until_settled(company.client, r.json()["document"]["id"], [])
    assert (document["status"], document["error"], document["chunk_count"]) == ("ready", None, 1)
    title = document["title"]
    assert len(title) <= 500 and title.endswith("…")
    assert title.startswith("capitulo-capitulo-")  # the source's last named part, cut to fit


@pytest.fixture
def storing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing the chunks meets a database error whose statement and parameters hold text of
    the document (as a real one would), like a value a column cannot hold."""
    write_postings = service._write_postings

    async def failing(session: AsyncSession, document_id: Any) -> None:
        await write_postings(session, document_id)
        await session.execute(
            text("SELECT CAST(:secret AS varchar(3))::int"), {"secret": "texto-secreto-do-cliente"}
        )

    monkeypatch.setattr(service, "_write_postings", failing)


@pytest.mark.parametrize("wait", [False, True], ids=["worker", "wait"])
@pytest.mark.usefixtures("storing_fails")
async def test_a_document_that_cannot_be_stored_fails_at_once_with_one_readable_line(
    company: CompanyCtx, wait: bool
) -> None:
    r = await company.client.post(
        "/v1/documents", params={"wait": str(wait).lower()}, json={"source": "entregas.md", "content": V1}
    )
    started = time.monotonic()
    if wait:
        assert r.status_code == 422, r.text
        error = r.json()["detail"]
        assert (await company.client.get("/v1/documents")).text == "[]"  # as if never sent
    else:
        assert r.status_code == 202, r.text
        failed = await until_settled(company.client, r.json()["document"]["id"], [])
        assert failed["status"] == "failed"
        assert time.monotonic() - started < 5  # not after the job's retries (a minute)
        error = failed["error"]
        listed = (await company.client.get("/v1/documents")).json()
        assert [d["error"] for d in listed] == [error]
    assert "the document could not be stored" in error and "SQLSTATE 22" in error
    for raw in ("SELECT", "[SQL", "parameters", "texto-secreto", "psycopg", "\n"):
        assert raw not in error, error


async def test_an_error_stored_whole_by_an_earlier_version_shows_as_its_first_line(
    company: CompanyCtx, runtime: Runtime
) -> None:
    r = await company.client.post("/v1/documents?wait=true", json={"source": "entregas.md", "content": V1})
    document = r.json()["document"]
    raw = (
        "indexing failed: DataError: (psycopg.errors.StringDataRightTruncation) value too long for"
        " type character varying(500)\n[SQL: UPDATE documents SET title=%(title)s::VARCHAR]\n"
        "[parameters: {'title': 'texto do cliente'}]\n(Background on this error at: https://sqlalche.me/e/20/9h9h)"
    )
    async with runtime.db.transaction(company.id) as session:
        await session.execute(
            text("UPDATE documents SET status = 'failed', error = :raw WHERE id = :id"),
            {"raw": raw, "id": document["id"]},
        )
    shown = (await company.client.get(f"/v1/documents/{document['id']}")).json()["error"]
    assert shown == ("indexing failed: DataError: value too long for type character varying(500)")


def test_long_sections_overlap_by_whole_sentences() -> None:
    sentences = [f"Frase número {i} do texto." for i in range(30)]
    text = " ".join(sentences)
    plain = chunk_blocks([Block(("Guia",), text)], 200)
    overlapped = chunk_blocks([Block(("Guia",), text)], 200, 60)
    assert len(plain) > 1 and all(len(c.text) <= 200 for c in [*plain, *overlapped])
    # without overlap every sentence is in exactly one chunk
    assert sum(c.text.count("Frase") for c in plain) == len(sentences)
    # with it, each next chunk opens with the previous one's last whole sentences (≤ 60 chars)
    for previous, chunk in itertools.pairwise(overlapped):
        opening = chunk.text.split("\n", 1)[0]
        assert previous.text.endswith(opening) and 0 < len(opening) <= 60
    assert all(any(s in c.text for c in overlapped) for s in sentences)


MANUAL = """# Garantia

## Eletrônicos
Todo aparelho eletrônico tem garantia de 12 meses contra defeitos de fabricação.

## Móveis
Os móveis montados pela loja têm garantia de 5 anos na estrutura.

## Roupas
Roupas com defeito de costura podem ser trocadas em até 30 dias.

## Calçados
Calçados descolados ou com defeito no solado são trocados em até 90 dias.
"""


class HeldEmbedder:
    """The offline model, held before each batch until the test lets one through: the
    indexing job's embedding phase, paused where the test wants to look."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model = inner.model
        self.permits = asyncio.Semaphore(0)

    async def passages(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[Vector]:
        await self.permits.acquire()
        return await self.inner.passages(texts, progress)

    async def query(self, text: str) -> Vector:
        return await self.inner.query(text)


async def submit_without_job(runtime: Runtime, company_id: uuid.UUID, source: str, content: str) -> uuid.UUID:
    """A new version, queued without an indexing job (no worker sees it: the test runs the job's steps)."""
    async with runtime.db.transaction(company_id) as session:
        submitted = await service.submit(
            session, source=source, data=content.encode(), max_bytes=100_000, lang="pt"
        )
    return submitted.document.id


async def ask(runtime: Runtime, company_id: uuid.UUID, question: str) -> list[Passage]:
    """What the bot's retriever (hybrid: BM25 and e5) finds."""
    async with runtime.db.transaction(company_id) as session:
        return list(await retriever_for(runtime, None).retrieve(session, question, 5, "pt"))


async def test_a_new_document_answers_by_full_text_before_its_vectors_are_stored(
    runtime: Runtime, company: CompanyCtx
) -> None:
    e5 = embedder_for(runtime, None)
    assert e5 is not None
    held = HeldEmbedder(e5)
    document_id = await submit_without_job(runtime, company.id, "garantia.md", MANUAL)
    # the job's first step: parsed, chunks and postings committed, no vector yet
    indexed = await service.index_pending(
        runtime.db, company.id, document_id, chunking=service.Chunking(), embedder=held, vectors_later=True
    )
    assert indexed is not None and (indexed.status, indexed.chunk_count) == ("embedding", 4)
    r = await company.client.get(f"/v1/documents/{document_id}")
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["embedded_chunks"], r.json()["chunk_count"]) == ("embedding", 0, 4)
    listed = (await company.client.get("/v1/documents")).json()
    assert [(d["status"], d["embedded_chunks"]) for d in listed] == [("embedding", 0)]

    found = await ask(runtime, company.id, "Qual é a garantia dos móveis?")
    assert found[0].section == "Garantia › Móveis"
    assert "bm25" in found[0].scores and "dense" not in found[0].scores  # found by its words

    # the job's second step, two chunks a transaction: the status counts them
    job = asyncio.create_task(service.embed_document(runtime.db, company.id, document_id, held, batch=2))
    held.permits.release()
    deadline = time.monotonic() + 60
    while (document := (await company.client.get(f"/v1/documents/{document_id}")).json())[
        "embedded_chunks"
    ] != 2:
        assert time.monotonic() < deadline and not job.done(), document
        await asyncio.sleep(0.05)
    assert document["status"] == "embedding"
    held.permits.release()
    done = await asyncio.wait_for(job, 60)
    assert done is not None and done.status == "ready"
    r = await company.client.get(f"/v1/documents/{document_id}")
    assert (r.json()["status"], r.json()["embedded_chunks"]) == ("ready", None)
    found = await ask(runtime, company.id, "Qual é a garantia dos móveis?")
    assert found[0].section == "Garantia › Móveis" and "dense" in found[0].scores


async def test_a_new_version_keeps_the_vectors_of_the_chunks_it_did_not_change(
    runtime: Runtime, company: CompanyCtx
) -> None:
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "garantia.md", "content": MANUAL, "language": "pt"}
    )
    assert r.status_code == 201 and r.json()["document"]["status"] == "ready"
    e5 = embedder_for(runtime, None)
    assert e5 is not None
    edited = MANUAL.replace("30 dias", "60 dias")
    document_id = await submit_without_job(runtime, company.id, "garantia.md", edited)
    indexed = await service.index_pending(
        runtime.db, company.id, document_id, chunking=service.Chunking(), embedder=e5, vectors_later=True
    )
    assert indexed is not None and indexed.status == "embedding"
    document = (await company.client.get(f"/v1/documents/{document_id}")).json()
    assert (document["embedded_chunks"], document["chunk_count"]) == (3, 4)  # only "Roupas" changed
    done = await service.embed_document(runtime.db, company.id, document_id, e5)
    assert done is not None and done.status == "ready"
    chunks = (await company.client.get(f"/v1/documents/{document_id}/chunks")).json()
    assert any("60 dias" in c["text"] for c in chunks)
    async with runtime.db.transaction(company.id) as session:
        vectors = await session.scalar(
            text("SELECT count(*) FROM chunk_vectors WHERE company_id = :c"), {"c": company.id}
        )
    assert vectors == 4


async def test_an_embeddings_endpoint_failing_midway_fails_the_document_which_still_answers_by_words(
    runtime: Runtime, company: CompanyCtx
) -> None:
    document_id = await submit_without_job(runtime, company.id, "garantia.md", MANUAL)
    with running_openai() as fake:
        fake.script(status(500))
        client = cached_client({}, fake.base_url, "sk-e", timeout=2, max_retries=0)
        endpoint = OpenAIEmbedder(client, "text-embedding-3-small")
        indexed = await service.index_pending(
            runtime.db,
            company.id,
            document_id,
            chunking=service.Chunking(),
            embedder=endpoint,
            vectors_later=True,
        )
        assert indexed is not None and indexed.status == "embedding"
        failed = await service.embed_document(runtime.db, company.id, document_id, endpoint)
    assert failed is not None and failed.status == "failed"
    assert failed.error is not None and "embeddings endpoint failed" in failed.error
    async with runtime.db.transaction(company.id) as session:
        passages = await FullTextRetriever().retrieve(session, "garantia dos móveis", 5)
    assert passages and passages[0].section == "Garantia › Móveis"
