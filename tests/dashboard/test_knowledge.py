"""The knowledge base's pages over HTTP: documents a page at a time, with the expired and
soon-expiring ones counted and filtered; the upload list's status answer keeps to the
company; a document being embedded shows how far it got; an agent's and a viewer's
refusals of the editor's actions."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

from atende.knowledge import service as knowledge
from atende.knowledge.embedding import embedder_for
from atende.knowledge.models import Document
from atende.runtime import Runtime
from tests.fixtures.dashboard import Team, csrf_of, signed_in
from tests.knowledge.test_indexing import MANUAL, HeldEmbedder, submit_without_job


async def add_documents(
    runtime: Runtime, company_id: uuid.UUID, count: int, **columns: object
) -> list[uuid.UUID]:
    """``count`` ready documents (no chunks), titled ``Doc 0000``… ."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with runtime.db.transaction(company_id) as session:
        session.add_all(
            Document(
                id=document_id,
                title=f"Doc {i:04d}",
                source=f"doc-{uuid.uuid4().hex}.md",
                content_type="markdown",
                language="pt",
                content_hash="x",
                status="ready",
                chunk_count=0,
                meta={},
                **columns,
            )
            for i, document_id in enumerate(ids)
        )
    return ids


def rows(html: str) -> list[str]:
    body = html.split('id="document-rows"')[1].split("</tbody>", maxsplit=1)[0]
    return re.findall(r'<a href="/app/knowledge/[0-9a-f-]+">([^<]+)</a>', body)


async def test_documents_are_listed_a_page_at_a_time_and_expiring_ones_counted_and_filtered(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    now = datetime.now(UTC)
    await add_documents(runtime, team.company_id, 103)
    await add_documents(runtime, team.company_id, 2, valid_until=now - timedelta(days=1))
    await add_documents(runtime, team.company_id, 1, valid_until=now + timedelta(days=5))
    await add_documents(runtime, team.company_id, 1, valid_until=now + timedelta(days=90))
    async with signed_in(live_server, team.agent) as client:
        first = await client.get("/app/knowledge")
        assert first.status_code == 200
        assert len(rows(first.text)) == 100 and rows(first.text)[0] == "Doc 0000"
        assert 'href="/app/knowledge?page=2"' in first.text
        assert "2 expired documents" in first.text
        assert "1 document expires within 30 days" in first.text
        second = await client.get("/app/knowledge", params={"page": 2})
        assert len(rows(second.text)) == 7 and "Next page" not in second.text
        expired = await client.get("/app/knowledge", params={"expiry": "expired"})
        assert len(rows(expired.text)) == 2 and expired.text.count('class="tag-expired">Expired<') == 2
        expiring = await client.get("/app/knowledge", params={"expiry": "expiring"})
        assert len(rows(expiring.text)) == 1 and "Expires soon" in expiring.text
        assert (await client.get("/app/knowledge", params={"page": "0"})).status_code == 422
        started = time.perf_counter()
        for _ in range(10):
            assert (await client.get("/app/knowledge")).status_code == 200
        assert (time.perf_counter() - started) / 10 < 1.0  # a page of 100 rows, not thousands


async def test_the_upload_lists_status_answer_keeps_to_the_company(
    live_server: str, team: Team, rival: Team, runtime: Runtime
) -> None:
    [mine] = await add_documents(runtime, team.company_id, 1)
    [theirs] = await add_documents(runtime, rival.company_id, 1)
    async with signed_in(live_server, team.agent) as client:
        r = await client.get("/app/knowledge/status", params=[("id", str(mine)), ("id", str(theirs))])
        assert r.status_code == 200
        assert [(s["id"], s["status"], s["label"]) for s in r.json()] == [(str(mine), "ready", "Ready")]


async def test_a_document_being_embedded_says_it_answers_by_words_and_how_far_its_meaning_got(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    e5 = embedder_for(runtime, None)
    assert e5 is not None
    held = HeldEmbedder(e5)
    document_id = await submit_without_job(runtime, team.company_id, "garantia.md", MANUAL)
    await knowledge.index_pending(
        runtime.db,
        team.company_id,
        document_id,
        chunking=knowledge.Chunking(),
        embedder=held,
        vectors_later=True,
    )
    job = asyncio.create_task(
        knowledge.embed_document(runtime.db, team.company_id, document_id, held, batch=2)
    )
    held.permits.release()
    progress = "Searchable by words; meaning being indexed: 2 of 4 chunks"
    async with signed_in(live_server, team.agent) as client:
        deadline = time.monotonic() + 60
        while progress not in (listed := await client.get("/app/knowledge")).text:
            assert time.monotonic() < deadline and not job.done(), listed.text
            await asyncio.sleep(0.05)
        assert 'hx-trigger="every 2s"' in listed.text  # the rows refresh themselves
        page = await client.get(f"/app/knowledge/{document_id}")
        assert progress in page.text and f"/app/knowledge/{document_id}?part=status" in page.text
        part = await client.get(f"/app/knowledge/{document_id}", params={"part": "status"})
        assert progress in part.text
        states = (await client.get("/app/knowledge/status", params={"id": str(document_id)})).json()
        assert [(s["status"], s["label"], s["final"]) for s in states] == [("embedding", progress, False)]
        held.permits.release()
        await asyncio.wait_for(job, 60)
        done = await client.get(f"/app/knowledge/{document_id}", params={"part": "status"})
        assert done.headers.get("HX-Refresh") == "true"  # ready: the page reloads itself
        listed = await client.get("/app/knowledge")
        assert ">Ready<" in listed.text and "every 2s" not in listed.text


async def test_an_agent_and_a_viewer_cannot_change_the_knowledge_base(
    live_server: str, team: Team, runtime: Runtime
) -> None:
    [document] = await add_documents(runtime, team.company_id, 1)
    for person in (team.agent, team.viewer):
        async with signed_in(live_server, person) as client:
            token = csrf_of((await client.get("/app")).text)
            for path, data in (
                (f"/app/knowledge/{document}/metadata", {"tags": "x"}),
                (f"/app/knowledge/{document}/reindex", {}),
                (f"/app/knowledge/{document}/delete", {}),
                ("/app/knowledge/articles/new", {"title": "T", "body": "B"}),
                ("/app/knowledge/articles/preview", {"body": "B"}),
            ):
                r = await client.post(path, data={**data, "csrf_token": token})
                assert r.status_code == 403, (person.role, path)
            r = await client.post(
                "/app/knowledge/upload",
                data={"csrf_token": token},
                files=[("files", ("a.md", b"# A", "text/markdown"))],
            )
            assert r.status_code == 403
    async with signed_in(live_server, team.admin) as client:  # nothing changed
        page = await client.get(f"/app/knowledge/{document}")
        assert page.status_code == 200 and "Doc 0000" in page.text
        assert (await client.get("/app/knowledge")).text.count("/app/knowledge/upload") == 1
