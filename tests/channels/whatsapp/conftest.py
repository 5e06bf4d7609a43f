"""The WhatsApp channel's tests: a fake Graph API on 127.0.0.1 (``tests.fakes.graph_api``),
accounts pointed at it, and Meta's real webhook payloads (``tests/data/whatsapp``, from pywa,
MIT) given each test's own number, contact and message ids and signed with the account's
test app secret, posted to the session's live server."""

from __future__ import annotations

import copy
import hashlib
import hmac
import io
import json
import struct
import uuid
import wave
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atende.channels import accounts
from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.conftest import TEST_DATA, CompanyCtx, until
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.loopback import running

DATA = TEST_DATA / "whatsapp"
TOKEN = "test-access-token"


def sample(file: str, key: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((DATA / f"{file}.json").read_text())[key]
    return copy.deepcopy(payload)


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def new_number() -> str:
    return str(10**12 + uuid.uuid4().int % 9 * 10**11 + uuid.uuid4().int % 10**11)


def new_wamid() -> str:
    return f"wamid.{uuid.uuid4().hex}"


@dataclass
class WhatsApp:
    """One company's WhatsApp number (an account pointed at the fake Graph API)."""

    company: CompanyCtx
    graph: FakeGraphApi
    base_url: str
    account_id: str
    phone_number_id: str
    app_secret: str
    verify_token: str

    def payload(self, file: str, key: str, *, wa_id: str, wamid: str | None = None) -> dict[str, Any]:
        """A real payload for this number, from ``wa_id``, its message (if any) ``wamid``."""
        body = sample(file, key)
        for entry in body["entry"]:
            for change in entry["changes"]:
                value = change["value"]
                value["metadata"]["phone_number_id"] = self.phone_number_id
                for contact in value.get("contacts", []):
                    contact["wa_id"] = wa_id
                for message in value.get("messages", []):
                    message["from"] = wa_id
                    message["id"] = wamid or new_wamid()
                for status in value.get("statuses", []):
                    status["recipient_id"] = wa_id
        return body

    async def post(
        self, body: dict[str, Any] | bytes, *, secret: str | None = None, signature: str | None = None
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature is None:
            signature = sign(raw, secret or self.app_secret)
        if signature:
            headers["X-Hub-Signature-256"] = signature
        async with httpx.AsyncClient(base_url=self.base_url, timeout=15) as client:
            return await client.post("/webhooks/whatsapp", content=raw, headers=headers)

    async def status(self, wamid: str, status: str, *, wa_id: str) -> httpx.Response:
        body = self.payload("message_status", "failed" if status == "failed" else status, wa_id=wa_id)
        body["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid
        return await self.post(body)


def tiny_png(width: int = 6, height: int = 4) -> bytes:
    """A real PNG picture (red), small enough to read in a test."""
    rows = b"".join(b"\x00" + b"\xd0\x10\x10" * width for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def tiny_wav(seconds: float = 0.2) -> bytes:
    """A real WAV sound (silence)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * int(8000 * seconds))
    return out.getvalue()


def with_media(
    wa: WhatsApp, key: str, content: bytes, mime: str, *, wa_id: str
) -> tuple[dict[str, Any], str, str]:
    """Meta's real ``key`` media payload for ``wa``, naming a new media id the fake Graph API
    serves ``content`` under: the payload, the message's wamid and the media id."""
    media_id = str(uuid.uuid4().int)[:17]
    wa.graph.media[media_id] = (content, mime)
    wamid = new_wamid()
    body = wa.payload("message", key, wa_id=wa_id, wamid=wamid)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message[message["type"]]["id"] = media_id
    return body, wamid, media_id


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraphApi]:
    with running(FakeGraphApi({TOKEN})) as fake:
        yield fake


@pytest.fixture
async def wa(kb_company: CompanyCtx, graph: FakeGraphApi, live_server: str) -> WhatsApp:
    phone_number_id = new_number()
    app_secret = f"app-secret-{uuid.uuid4().hex}"
    verify_token = f"verify-{uuid.uuid4().hex}"
    r = await kb_company.client.post(
        "/v1/channel-accounts",
        json={
            "kind": "whatsapp",
            "external_id": phone_number_id,
            "display_name": "SAC WhatsApp",
            "config": {"waba_id": "102290129340398", "graph_api_url": graph.origin},
            "secrets": {"access_token": TOKEN, "app_secret": app_secret, "verify_token": verify_token},
        },
    )
    assert r.status_code == 201, r.text
    assert sorted(r.json()["secrets_set"]) == ["access_token", "app_secret", "verify_token"]
    assert app_secret not in r.text and TOKEN not in r.text
    return WhatsApp(kb_company, graph, live_server, r.json()["id"], phone_number_id, app_secret, verify_token)


async def connect_number(
    runtime: Runtime, company_id: uuid.UUID, graph: FakeGraphApi, base_url: str, *, token: str, **config: str
) -> WhatsApp:
    """A new number of ``company_id`` pointed at ``graph``, made through the accounts service
    (for tests signed in to the dashboard, which hold no API key of the company)."""
    phone_number_id, secret = new_number(), f"secret-{uuid.uuid4().hex}"
    async with runtime.db.transaction(company_id) as session:
        row = await accounts.create(
            session,
            runtime.secret_key,
            kind="whatsapp",
            external_id=phone_number_id,
            config={"graph_api_url": graph.origin, **config},
            secrets={"access_token": token, "app_secret": secret, "verify_token": "v"},
        )
        account_id = str(row.id)
    company = CompanyCtx(company_id, "", "", "", None)  # type: ignore[arg-type]
    return WhatsApp(company, graph, base_url, account_id, phone_number_id, secret, "v")


async def answered_customer(wa: WhatsApp, runtime: Runtime) -> tuple[str, uuid.UUID]:
    """A new customer writes to ``wa`` and the bot answers: the customer's WhatsApp number and
    the conversation (the company's first on WhatsApp)."""
    wa_id = new_number()
    assert (await wa.post(wa.payload("message", "text", wa_id=wa_id))).status_code == 200
    await until(lambda: wa.graph.sent_to(wa_id), what="the bot's answer")
    async with runtime.db.transaction(wa.company.id) as session:
        conversation_id = await session.scalar(
            select(Message.conversation_id).where(Message.channel == "whatsapp", Message.author == "customer")
        )
    assert conversation_id is not None
    return wa_id, conversation_id
