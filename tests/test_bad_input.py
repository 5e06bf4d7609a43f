"""Bad input is refused with a 4xx that says what was wrong, and changes nothing stored.

Every case goes through the live server; before and after it the company's contacts,
conversations, messages, documents and chunks are counted in the database.
"""

from __future__ import annotations

import json
import uuid
from base64 import urlsafe_b64encode
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atende.config import Settings
from atende.conversations.models import Contact, Conversation, Message
from atende.knowledge.models import Chunk, Document
from atende.runtime import Runtime
from atende.tenancy import service as tenancy
from atende.tenancy.models import Role
from tests.conftest import CompanyCtx, ask

COUNTED = (Contact, Conversation, Message, Document, Chunk)
TRACE_MARKERS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "Exception")


async def stored_rows(runtime: Runtime, company_id: uuid.UUID) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with runtime.db.transaction(company_id) as session:
        for model in COUNTED:
            stmt = select(func.count()).select_from(model).where(model.company_id == company_id)
            counts[model.__tablename__] = int(await session.scalar(stmt) or 0)
    return counts


def assert_clear_refusal(response: httpx.Response, status: int, mentions: str = "") -> None:
    """A ``status`` answer in atende's error shape, with a message (and the request's field at
    fault, when there is one) and no stack trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) - {"field"} == {"detail", "code"}, body  # and the field at fault, if one is
    assert body["detail"], body
    assert body["code"] and body["code"] != "internal_error", body
    assert not any(marker in response.text for marker in TRACE_MARKERS), response.text
    assert mentions.lower() in response.text.lower(), f"{mentions!r} not in {response.text}"
    assert response.headers["x-request-id"]
    assert response.headers["x-content-type-options"] == "nosniff"  # even the 413 sent early


@dataclass
class Arranged:
    """A company with one answered conversation, and the ids of things that exist."""

    company: CompanyCtx
    conversation_id: str
    ids: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def arranged(company: CompanyCtx) -> Arranged:
    body = await ask(company.client, "Olá, preciso de ajuda com um pedido", contact="ana")
    r = await company.client.post(
        "/v1/documents?wait=true", json={"source": "faq/a.md", "content": "# A\n\nTexto."}
    )
    assert r.status_code == 201, r.text
    return Arranged(company, body["conversation_id"])


def message(text: Any = "Oi", **extra: Any) -> dict[str, Any]:
    return {"contact": {"external_id": "ana"}, "text": text, **extra}


MAX_CHARS = Settings().max_message_chars
UNKNOWN = str(uuid.UUID(int=7))


def b64(value: object) -> str:
    return urlsafe_b64encode(json.dumps(value).encode()).decode()


def bad(name: str, method: str, url: str, kwargs: dict[str, Any], status: int, mentions: str) -> Any:
    """One case: the request (``url`` may hold ``{conversation_id}``), the expected status and a
    fragment the answer must mention."""
    return pytest.param(method, url, kwargs, status, mentions, id=name)


CASES = [
    # malformed or mistyped JSON
    bad(
        "truncated-json",
        "POST",
        "/v1/messages",
        {"content": b'{"contact": {"external_id": "a"}, "text": '},
        422,
        "json",
    ),
    bad("json-not-an-object", "POST", "/v1/messages", {"json": ["Oi"]}, 422, "dictionary"),
    bad("json-null", "POST", "/v1/messages", {"content": b"null"}, 422, "body"),
    bad("text-not-a-string", "POST", "/v1/messages", {"json": message(text=42)}, 422, "text"),
    bad("form-encoded-body", "POST", "/v1/messages", {"data": {"text": "Oi"}}, 422, "body"),
    # unknown fields (extra="forbid")
    bad("unknown-field", "POST", "/v1/messages", {"json": message(priority="high")}, 422, "priority"),
    bad(
        "unknown-nested-field",
        "POST",
        "/v1/messages",
        {"json": {"contact": {"external_id": "a", "vip": True}, "text": "Oi"}},
        422,
        "vip",
    ),
    bad(
        "unknown-document-field",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "b.md", "content": "x", "author": "me"}},
        422,
        "author",
    ),
    bad(
        "unknown-reply-field",
        "POST",
        "/v1/conversations/{conversation_id}/replies",
        {"json": {"text": "Olá", "urgent": True}},
        422,
        "urgent",
    ),
    # empty, blank and over-long messages
    bad("empty-message", "POST", "/v1/messages", {"json": message(text="")}, 422, "text"),
    bad(
        "whitespace-message",
        "POST",
        "/v1/messages",
        {"json": message(text=" \n\t\u00a0 ")},
        422,
        "whitespace",
    ),
    bad("nul-only-message", "POST", "/v1/messages", {"json": message(text="\x00\x00")}, 422, "nul"),
    # a NUL inside a message is refused as docs/API.md says, not silently dropped
    bad("nul-in-message", "POST", "/v1/messages", {"json": message(text="Oi\x00, tudo bem?")}, 422, "nul"),
    bad(
        "nul-in-agent-reply",
        "POST",
        "/v1/conversations/{conversation_id}/replies",
        {"json": {"text": "Olá\x00"}},
        422,
        "nul",
    ),
    bad(
        "over-long-message",
        "POST",
        "/v1/messages",
        {"json": message(text="a" * (MAX_CHARS + 1))},
        422,
        f"limit is {MAX_CHARS}",
    ),
    bad(
        "whitespace-agent-reply",
        "POST",
        "/v1/conversations/{conversation_id}/replies",
        {"json": {"text": "   "}},
        422,
        "whitespace",
    ),
    bad(
        "over-long-agent-reply",
        "POST",
        "/v1/conversations/{conversation_id}/replies",
        {"json": {"text": "b" * (MAX_CHARS + 1)}},
        422,
        f"limit is {MAX_CHARS}",
    ),
    # bytes PostgreSQL cannot store, or that are not UTF-8 at all
    bad(
        "invalid-utf8",
        "POST",
        "/v1/messages",
        {"content": b'{"contact": {"external_id": "a"}, "text": "ol\xe1 \xff\xfe"}'},
        400,
        "utf-8",
    ),
    bad(
        "nul-in-contact-id",
        "POST",
        "/v1/messages",
        {"json": {"contact": {"external_id": "a\x00b"}, "text": "Oi"}},
        422,
        "nul",
    ),
    bad("nul-in-message-id", "POST", "/v1/messages", {"json": message(message_id="m\x00")}, 422, "nul"),
    bad(
        "nul-in-contact-name",
        "POST",
        "/v1/messages",
        {"json": {"contact": {"external_id": "a", "name": "A\x00"}, "text": "Oi"}},
        422,
        "nul",
    ),
    bad(
        "lone-surrogate",
        "POST",
        "/v1/messages",
        {"content": b'{"contact": {"external_id": "a"}, "text": "oi \\ud800"}'},
        422,
        "text",
    ),
    bad(
        "lone-surrogate-in-contact-id",
        "POST",
        "/v1/messages",
        {"content": b'{"contact": {"external_id": "\\udfff"}, "text": "oi"}'},
        422,
        "unicode",
    ),
    bad(
        "lone-surrogate-in-document",
        "POST",
        "/v1/documents?wait=true",
        {"content": b'{"source": "s.md", "content": "a \\ud83d b"}'},
        422,
        "unicode",
    ),
    bad(
        "nul-in-document",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "n.md", "content": "a\x00b"}},
        422,
        "binary",
    ),
    bad(
        "nul-in-document-source",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "n\x00.md", "content": "ab"}},
        422,
        "nul",
    ),
    bad(
        "nul-in-document-meta",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "m.md", "content": "ab", "meta": {"product": "\x00"}}},
        422,
        "cannot contain nul",
    ),
    bad(
        "nul-in-document-custom-meta",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "m.md", "content": "ab", "meta": {"custom": {"region": "\x00"}}}},
        422,
        "cannot be converted to text",
    ),
    bad(
        "nul-in-document-path", "POST", "/v1/documents?wait=true", {"json": {"path": "a\x00.md"}}, 422, "nul"
    ),
    bad(
        "nul-in-webhook-url",
        "POST",
        "/v1/webhooks",
        {"json": {"url": "https://x.example/\x00", "events": ["message.created"]}},
        422,
        "nul",
    ),
    # ids that do not exist, or are not ids
    bad("unknown-conversation", "GET", f"/v1/conversations/{UNKNOWN}", {}, 404, UNKNOWN),
    bad("unknown-conversation-messages", "GET", f"/v1/conversations/{UNKNOWN}/messages", {}, 404, UNKNOWN),
    bad(
        "reply-to-unknown-conversation",
        "POST",
        f"/v1/conversations/{UNKNOWN}/replies",
        {"json": {"text": "Olá"}},
        404,
        UNKNOWN,
    ),
    bad(
        "state-of-unknown-conversation",
        "POST",
        f"/v1/conversations/{UNKNOWN}/state",
        {"json": {"state": "resolved"}},
        404,
        UNKNOWN,
    ),
    bad(
        "message-to-unknown-conversation",
        "POST",
        "/v1/messages",
        {"json": message(conversation_id=UNKNOWN)},
        404,
        UNKNOWN,
    ),
    bad("unknown-document", "GET", f"/v1/documents/{UNKNOWN}", {}, 404, UNKNOWN),
    bad("delete-unknown-document", "DELETE", f"/v1/documents/{UNKNOWN}", {}, 404, UNKNOWN),
    bad("non-uuid-conversation", "GET", "/v1/conversations/not-a-uuid", {}, 422, "conversation_id"),
    bad(
        "non-uuid-reply",
        "POST",
        "/v1/conversations/123/replies",
        {"json": {"text": "Olá"}},
        422,
        "conversation_id",
    ),
    bad("non-uuid-document", "DELETE", "/v1/documents/not-a-uuid", {}, 422, "document_id"),
    bad(
        "non-uuid-in-body",
        "POST",
        "/v1/messages",
        {"json": message(conversation_id="abc")},
        422,
        "conversation_id",
    ),
    bad("unknown-route", "GET", "/v1/nowhere", {}, 404, "there is no /v1/nowhere"),
    bad("wrong-method", "PUT", "/v1/messages", {"json": message()}, 405, "method"),
    # state changes the state machine refuses, unknown states
    bad(
        "unknown-state",
        "POST",
        "/v1/conversations/{conversation_id}/state",
        {"json": {"state": "closed"}},
        422,
        "state",
    ),
    # cursors and paging
    bad("garbage-cursor", "GET", "/v1/conversations?cursor=!!!not-a-cursor", {}, 422, "cursor"),
    bad(
        "cursor-not-json",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": urlsafe_b64encode(b"\xff\x00").decode()}},
        422,
        "cursor",
    ),
    bad("cursor-a-number", "GET", "/v1/conversations", {"params": {"cursor": b64(5)}}, 422, "cursor"),
    bad(
        "cursor-bad-date",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64(["yesterday", UNKNOWN])}},
        422,
        "cursor",
    ),
    bad(
        "cursor-bad-id",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64(["2024-01-01T00:00:00+00:00", "x"])}},
        422,
        "cursor",
    ),
    # base64 of ["2020-01-01T00:00:00+00:00",123], as reported: a number where the id goes
    bad(
        "cursor-number-id",
        "GET",
        "/v1/conversations?cursor=WyIyMDIwLTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwxMjNd",
        {},
        422,
        "cursor",
    ),
    bad(
        "cursor-null-parts",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64([None, None])}},
        422,
        "cursor",
    ),
    bad(
        "cursor-an-object",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64({"2024-01-01T00:00:00+00:00": UNKNOWN, "b": 1})}},
        422,
        "cursor",
    ),
    bad(
        "cursor-nested-lists",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64([["2024-01-01T00:00:00+00:00"], [UNKNOWN]])}},
        422,
        "cursor",
    ),
    bad(
        "cursor-naive-date",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64(["2024-01-01T00:00:00", UNKNOWN])}},
        422,
        "cursor",
    ),
    bad("cursor-not-ascii", "GET", "/v1/conversations", {"params": {"cursor": "Wy\u00e9Il0"}}, 422, "cursor"),
    bad(
        "cursor-three-parts",
        "GET",
        "/v1/conversations",
        {"params": {"cursor": b64([1, 2, 3])}},
        422,
        "cursor",
    ),
    bad("cursor-too-long", "GET", "/v1/conversations", {"params": {"cursor": "a" * 501}}, 422, "cursor"),
    bad("limit-zero", "GET", "/v1/conversations?limit=0", {}, 422, "limit"),
    # the inbox's views and filters, and labels
    bad("inbox-unknown-view", "GET", "/v1/conversations?view=everything", {}, 422, "view"),
    bad("inbox-unknown-state", "GET", "/v1/conversations/counts?state=closed", {}, 422, "state"),
    bad("inbox-team-nul", "GET", "/v1/conversations", {"params": {"team": "a\x00"}}, 422, "team"),
    bad("inbox-label-unknown", "GET", "/v1/conversations?label=nenhuma", {}, 422, "there is no label"),
    bad("inbox-search-no-word", "GET", "/v1/conversations?search=%3F%21", {}, 422, "at least one word"),
    bad("label-bad-color", "POST", "/v1/labels", {"json": {"name": "x", "color": "red"}}, 422, "color"),
    bad("label-nul-name", "POST", "/v1/labels", {"json": {"name": "a\u0000"}}, 422, "control characters"),
    bad("label-unknown-delete", "DELETE", "/v1/labels/nenhuma", {}, 404, "no label 'nenhuma'"),
    bad(
        "label-unknown-on-conversation",
        "POST",
        "/v1/conversations/{conversation_id}/labels",
        {"json": {"label": "nenhuma"}},
        404,
        "no label 'nenhuma'",
    ),
    bad("after-negative", "GET", "/v1/conversations/{conversation_id}/messages?after=-1", {}, 422, "after"),
    bad(
        "after-not-a-number", "GET", "/v1/conversations/{conversation_id}/messages?after=x", {}, 422, "after"
    ),
    bad(
        "after-huge",
        "GET",
        "/v1/conversations/{conversation_id}/messages?after=" + "9" * 30,
        {},
        422,
        "after",
    ),
    bad("bad-updated-since", "GET", "/v1/conversations?updated_since=yesterday", {}, 422, "updated_since"),
    bad("bad-state-filter", "GET", "/v1/conversations?state=closed", {}, 422, "state"),
    # wait out of range: the message must not be stored either
    bad("wait-negative", "POST", "/v1/messages?wait=-1", {"json": message()}, 422, "wait"),
    bad("wait-too-long", "POST", "/v1/messages?wait=31", {"json": message()}, 422, "wait"),
    bad("wait-not-a-number", "POST", "/v1/messages?wait=soon", {"json": message()}, 422, "wait"),
    bad("wait-nan", "POST", "/v1/messages?wait=nan", {"json": message()}, 422, "wait"),
    bad("wait-infinite", "POST", "/v1/messages?wait=inf", {"json": message()}, 422, "wait"),
    # documents: traversal, both or neither of content/path, unknown types and languages
    bad(
        "path-traversal",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"path": "../../../../etc/passwd"}},
        422,
        "outside the ingest root",
    ),
    bad(
        "absolute-path",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"path": "/etc/passwd"}},
        422,
        "outside the ingest root",
    ),
    bad(
        "missing-file",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"path": "nope/missing.md"}},
        422,
        "not a file",
    ),
    bad(
        "content-and-path",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "x.md", "content": "x", "path": "x.md"}},
        422,
        "exactly one",
    ),
    bad(
        "neither-content-nor-path",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "x.md"}},
        422,
        "exactly one",
    ),
    bad(
        "content-without-source", "POST", "/v1/documents?wait=true", {"json": {"content": "x"}}, 422, "source"
    ),
    bad(
        "bad-content-type",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "x", "content": "x", "content_type": "pdf"}},
        422,
        "content_type",
    ),
    bad(
        "bad-language",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "x", "content": "x", "language": "fr"}},
        422,
        "language",
    ),
    bad(
        "empty-source",
        "POST",
        "/v1/documents?wait=true",
        {"json": {"source": "", "content": "x"}},
        422,
        "source",
    ),
    # webhooks
    bad(
        "webhook-not-http",
        "POST",
        "/v1/webhooks",
        {"json": {"url": "ftp://example.com/x", "events": ["message.created"]}},
        422,
        "http",
    ),
    bad(
        "webhook-unknown-event",
        "POST",
        "/v1/webhooks",
        {"json": {"url": "https://example.com/x", "events": ["everything"]}},
        422,
        "everything",
    ),
    # retrieval filters on a customer message, and the knowledge rules
    bad(
        "message-filter-unknown",
        "POST",
        "/v1/messages",
        {"json": message(filters={"colour": "red"})},
        422,
        "colour",
    ),
    bad(
        "message-filter-attribute-empty",
        "POST",
        "/v1/messages",
        {"json": message(filters={"attributes": {"region": []}})},
        422,
        "region",
    ),
    bad(
        "message-filter-nul",
        "POST",
        "/v1/messages",
        {"json": message(filters={"attributes": {"region": "s\x00"}})},
        422,
        "stored",
    ),
    bad(
        "rules-not-a-list",
        "PUT",
        "/v1/company/knowledge-rules",
        {"json": {"rules": {"when": "channel"}}},
        422,
        "rules",
    ),
    bad(
        "rules-nul",
        "PUT",
        "/v1/company/knowledge-rules",
        {"json": {"windowed_tags": ["pro\x00mo"]}},
        422,
        "stored",
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "mentions"),
    CASES,
)
async def test_bad_input_is_refused_clearly_and_stores_nothing(
    arranged: Arranged,
    runtime: Runtime,
    method: str,
    url: str,
    kwargs: dict[str, Any],
    status: int,
    mentions: str,
) -> None:
    company = arranged.company
    before = await stored_rows(runtime, company.id)
    kwargs = dict(kwargs)
    headers = {"content-type": "application/json"} if "content" in kwargs else {}
    r = await company.client.request(
        method, url.format(conversation_id=arranged.conversation_id), headers=headers, **kwargs
    )
    assert_clear_refusal(r, status, mentions)
    assert await stored_rows(runtime, company.id) == before


# --- request bodies over the limit ------------------------------------------------------------


def oversized_message(settings: Settings) -> bytes:
    body = json.dumps(message(text="x" * (settings.max_body_bytes + 10))).encode()
    assert len(body) > settings.max_body_bytes
    return body


async def test_a_body_declared_over_the_limit_is_refused_with_413(
    arranged: Arranged, runtime: Runtime, settings: Settings
) -> None:
    before = await stored_rows(runtime, arranged.company.id)
    r = await arranged.company.client.post(
        "/v1/messages", content=oversized_message(settings), headers={"content-type": "application/json"}
    )
    assert_clear_refusal(r, 413, f"larger than {settings.max_body_bytes} bytes")
    assert await stored_rows(runtime, arranged.company.id) == before


async def test_a_streamed_body_over_the_limit_is_refused_with_413(
    arranged: Arranged, runtime: Runtime, settings: Settings
) -> None:
    """Chunked transfer encoding: no Content-Length, the limit applies while reading."""
    body = oversized_message(settings)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    before = await stored_rows(runtime, arranged.company.id)
    r = await arranged.company.client.post(
        "/v1/messages", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in r.request.headers
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_clear_refusal(r, 413, f"larger than {settings.max_body_bytes} bytes")
    assert await stored_rows(runtime, arranged.company.id) == before


async def test_an_oversized_document_is_refused_with_413(
    arranged: Arranged, runtime: Runtime, settings: Settings
) -> None:
    before = await stored_rows(runtime, arranged.company.id)
    content = "# Big\n\n" + "palavra " * (settings.max_body_bytes // 8 + 1)
    r = await arranged.company.client.post(
        "/v1/documents?wait=true", json={"source": "big.md", "content": content}
    )
    assert_clear_refusal(r, 413, "larger than")
    assert await stored_rows(runtime, arranged.company.id) == before


async def test_a_body_just_under_the_limit_is_accepted(arranged: Arranged, settings: Settings) -> None:
    content = "# Grande\n\n" + "palavra " * ((settings.max_body_bytes - 200) // 8)
    body = json.dumps({"source": "grande.md", "content": content}).encode()
    assert settings.max_body_bytes - 200 < len(body) <= settings.max_body_bytes
    r = await arranged.company.client.post(
        "/v1/documents?wait=true", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 201, r.text


# --- documents read from the server's ingest root ---------------------------------------------


@pytest.fixture
def outside_link(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A symlink inside the ingest root that points at a file outside it."""
    assert settings.ingest_root is not None
    secret = tmp_path_factory.mktemp("outside") / "secret.md"
    secret.write_text("# Segredo\n\nnão deveria ser lido")
    link = settings.ingest_root / f"link-{uuid.uuid4().hex[:8]}.md"
    link.symlink_to(secret)
    yield link.name
    link.unlink()


async def test_a_symlink_out_of_the_ingest_root_is_refused(
    arranged: Arranged, runtime: Runtime, outside_link: str
) -> None:
    before = await stored_rows(runtime, arranged.company.id)
    r = await arranged.company.client.post("/v1/documents?wait=true", json={"path": outside_link})
    assert_clear_refusal(r, 422, "outside the ingest root")
    assert await stored_rows(runtime, arranged.company.id) == before


# --- API keys ---------------------------------------------------------------------------------


@pytest.fixture
async def revoked_key(runtime: Runtime, company: CompanyCtx) -> str:
    async with runtime.db.transaction() as session:
        key, full = await tenancy.create_api_key(
            session, secret_key=runtime.secret_key, company_id=company.id, name="old", role=Role.admin
        )
    async with runtime.db.transaction() as session:
        await tenancy.revoke_api_key(session, prefix=key.prefix)
    return full


WRONG_KEYS = {
    "unknown-prefix": "atd_zzzzzzzz_" + "a" * 32,
    "right-prefix-wrong-secret": None,  # filled in from the company's key
    "not-an-atende-key": "hunter2",
}


@pytest.mark.parametrize("kind", list(WRONG_KEYS))
@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/v1/conversations", {}),
        ("POST", "/v1/messages", {"json": message()}),
        ("POST", "/v1/documents?wait=true", {"json": {"source": "k.md", "content": "x"}}),
    ],
    ids=["list", "post-message", "post-document"],
)
async def test_a_wrong_api_key_gets_401_and_stores_nothing(
    company: CompanyCtx, runtime: Runtime, kind: str, method: str, url: str, kwargs: dict[str, Any]
) -> None:
    key = WRONG_KEYS[kind] or company.api_key[:13] + "x" * (len(company.api_key) - 13)
    before = await stored_rows(runtime, company.id)
    async with company.with_key(key) as client:
        r = await client.request(method, url, **kwargs)
    assert_clear_refusal(r, 401, "key")
    assert await stored_rows(runtime, company.id) == before


async def test_a_revoked_api_key_gets_401_saying_it_was_revoked(
    company: CompanyCtx, runtime: Runtime, revoked_key: str
) -> None:
    before = await stored_rows(runtime, company.id)
    async with company.with_key(revoked_key) as client:
        r = await client.post("/v1/messages", json=message())
    assert_clear_refusal(r, 401, "revoked")
    assert await stored_rows(runtime, company.id) == before


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic YTpi"}, {"Authorization": "Bearer"}, {"X-Api-Key": ""}],
    ids=["none", "basic-auth", "bearer-without-token", "empty-x-api-key"],
)
async def test_a_missing_api_key_gets_401_and_stores_nothing(
    company: CompanyCtx, runtime: Runtime, live_server: str, headers: dict[str, str]
) -> None:
    before = await stored_rows(runtime, company.id)
    async with httpx.AsyncClient(base_url=live_server, headers=headers, timeout=15) as client:
        r = await client.post("/v1/messages", json=message())
    assert_clear_refusal(r, 401, "API key")
    assert await stored_rows(runtime, company.id) == before


async def test_the_key_may_also_come_in_x_api_key(company: CompanyCtx, live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, headers={"X-Api-Key": company.api_key}) as client:
        r = await client.get("/v1/company")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(company.id)


async def test_one_companys_ids_are_unknown_to_another(
    arranged: Arranged, other_company: CompanyCtx, runtime: Runtime
) -> None:
    before = await stored_rows(runtime, arranged.company.id)
    conversation = arranged.conversation_id
    r = await other_company.client.get(f"/v1/conversations/{conversation}")
    assert_clear_refusal(r, 404, conversation)
    r = await other_company.client.post(f"/v1/conversations/{conversation}/replies", json={"text": "Oi"})
    assert_clear_refusal(r, 404, conversation)
    r = await other_company.client.post("/v1/messages", json=message(conversation_id=conversation))
    assert_clear_refusal(r, 404, conversation)
    assert await stored_rows(runtime, arranged.company.id) == before
