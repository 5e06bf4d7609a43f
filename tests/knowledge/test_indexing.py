"""Asynchronous indexing: ``POST /v1/documents`` answers at once, the worker indexes, the
status goes ``queued → indexing → ready | failed``, and a new version replaces the old one
atomically (every question in between finds one of them)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from atende.knowledge import service
from atende.knowledge.chunking import chunk_blocks
from atende.knowledge.parsed import Block
from atende.knowledge.retrieval import FullTextRetriever
from atende.runtime import Runtime
from tests.conftest import CompanyCtx

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
    assert seen[-1] == "ready" and set(seen) <= {"queued", "indexing", "ready"}
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
