"""Standard Webhooks signatures, as a receiver sees them: real deliveries from the live server's
worker to a loopback receiver, verified with the ``standardwebhooks`` package itself; the
legacy ``X-Atende-Signature`` of endpoints registered before it; rotating a secret without
downtime."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from atende.runtime import Runtime
from atende.tenancy.crypto import decrypt_secret, encrypt_secret
from atende.webhooks.models import WebhookEndpoint
from atende.webhooks.service import new_secret, sign_standard
from tests.conftest import ROOT, Clock, CompanyCtx
from tests.fakes.webhook_receiver import ReceivedRequest, WebhookReceiver
from tests.webhooks.test_webhooks import register

ONE_SIGNATURE = re.compile(r"^v1,[A-Za-z0-9+/]{43}=$")
DAY = timedelta(days=1)


async def customer_says(
    company: CompanyCtx, receiver: WebhookReceiver, path: str, text: str
) -> ReceivedRequest:
    """Post a customer message; return the ``message.created`` delivery of it that ``path`` got."""
    r = await company.client.post(
        "/v1/messages", json={"contact": {"external_id": f"c-{uuid.uuid4().hex[:8]}"}, "text": text}
    )
    assert r.status_code in (201, 202), r.text

    def of_text(request: ReceivedRequest) -> bool:
        return bool(request.event["data"].get("text") == text)

    received = await receiver.wait_for(path, lambda rs: any(of_text(r) for r in rs))
    [request] = [r for r in received if of_text(r)]
    return request


async def logged_delivery(
    company: CompanyCtx, endpoint_id: str, delivery_id: str, *, attempts: int = 1, timeout: float = 15.0
) -> dict[str, Any]:
    """The delivery ``delivery_id`` from the endpoint's log, once it has ``attempts`` attempts."""
    deadline = time.monotonic() + timeout
    while True:
        r = await company.client.get(f"/v1/webhooks/{endpoint_id}/deliveries")
        assert r.status_code == 200, r.text
        found = [d for d in r.json() if d["id"] == delivery_id and len(d["attempt_log"]) >= attempts]
        if found:
            return dict(found[0])
        assert time.monotonic() < deadline, f"delivery {delivery_id} not logged: {r.json()}"
        await asyncio.sleep(0.1)


def documented_receiver(secret: str) -> Callable[[bytes, dict[str, str]], int]:
    """The Python receiver docs/API.md shows, given ``secret``: its ``receive(raw_body, headers)``."""
    doc = (ROOT / "docs" / "API.md").read_text()
    section = doc[doc.index("## Outbound webhooks") : doc.index("## Web chat")]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, Any] = {"secret": secret}
    exec(code, namespace)
    receive: Callable[[bytes, dict[str, str]], int] = namespace["receive"]
    return receive


def legacy_signature_ok(request: ReceivedRequest, secret: str) -> bool:
    """The check receivers wrote from the old docs: sha256=<hex HMAC(secret, "<ts>." + body)>."""
    timestamp = request.headers["x-atende-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    return hmac.compare_digest(request.headers["x-atende-signature"], "sha256=" + mac.hexdigest())


async def registered_before_the_standard(runtime: Runtime, company: CompanyCtx, endpoint_id: str) -> str:
    """Make the endpoint what migration 0014 leaves of one registered before it: the legacy
    scheme, and a secret of the form of then (not base64 of a key). Returns that secret."""
    legacy = "whsec_" + secrets.token_urlsafe(24)
    async with runtime.db.transaction(company.id) as session:
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(endpoint_id))
        assert endpoint is not None
        endpoint.signature_scheme = "atende"
        endpoint.secret_encrypted = encrypt_secret(runtime.secret_key, legacy)
    return legacy


async def rotate(company: CompanyCtx, endpoint_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await company.client.post(f"/v1/webhooks/{endpoint_id}/rotate-secret", json=body)
    assert r.status_code == 200, r.text
    rotated: dict[str, Any] = r.json()
    return rotated


async def listed(company: CompanyCtx, endpoint_id: str) -> dict[str, Any]:
    [endpoint] = [e for e in (await company.client.get("/v1/webhooks")).json() if e["id"] == endpoint_id]
    assert "secret" not in endpoint
    return dict(endpoint)


def test_our_signature_is_the_specifications() -> None:
    """The example of the Standard Webhooks libraries' own tests, and the package's signer on
    one of our secrets."""
    assert (
        sign_standard(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            b'{"test": 2432232314}',
        )
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )
    secret, body = new_secret(), '{"texto":"Olá, já chegou?"}'
    ours = sign_standard(secret, "d3b07384-d9a0-4c1b-8f3e-2b6f1e1c1f00", "1767225600", body.encode())
    theirs = Webhook(secret).sign(
        "d3b07384-d9a0-4c1b-8f3e-2b6f1e1c1f00", datetime.fromtimestamp(1767225600, UTC), body
    )
    assert ours == theirs


async def test_a_receiver_verifying_with_the_standardwebhooks_package_accepts_a_delivery(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    endpoint, path = await register(company.client, receiver, ["message.created"])
    receiver.verify_with(path, endpoint["secret"])

    request = await customer_says(company, receiver, path, "Oi, meu pedido já saiu?")
    assert (request.answered, request.rejected) == (200, None)
    event = request.event
    assert request.headers["webhook-id"] == event["id"] == request.headers["x-atende-delivery"]
    assert abs(time.time() - int(request.headers["webhook-timestamp"])) < 60
    assert ONE_SIGNATURE.match(request.headers["webhook-signature"])
    assert "x-atende-signature" not in request.headers
    assert "x-atende-timestamp" not in request.headers
    assert request.headers["x-atende-event"] == event["type"] == "message.created"
    assert Webhook(endpoint["secret"]).verify(request.body, request.headers) == event
    receive = documented_receiver(endpoint["secret"])  # the few lines docs/API.md gives receivers
    assert receive(request.body, request.headers) == 204
    assert receive(request.body.replace(b"Oi", b"Ei"), request.headers) == 401
    assert documented_receiver(new_secret())(request.body, request.headers) == 401

    delivery = await logged_delivery(company, endpoint["id"], event["id"])
    assert (delivery["status"], delivery["attempt_log"][0]["status_code"]) == ("delivered", 200)


async def test_a_receiver_rejects_a_wrong_secret_a_tampered_body_an_altered_id_or_an_old_timestamp(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    endpoint, path = await register(company.client, receiver, ["message.created"])
    other, _other_path = await register(company.client, receiver, ["queue.opened"])
    receiver.verify_with(path, other["secret"])  # a receiver holding another endpoint's secret

    request = await customer_says(company, receiver, path, "Vocês abrem no domingo?")
    assert (request.answered, request.rejected) == (401, "No matching signature found")
    logged = await logged_delivery(company, endpoint["id"], request.event["id"])
    assert logged["attempt_log"][0]["status_code"] == 401
    assert logged["attempt_log"][0]["error"] == "HTTP 401"

    # the same request, verified with the right secret, and then altered on the way
    verify = Webhook(endpoint["secret"]).verify
    assert verify(request.body, request.headers) == request.event
    tampered = request.body.replace(b"domingo", "sábado".encode())
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        verify(tampered, request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature found"):
        verify(request.body, {**request.headers, "webhook-id": str(uuid.uuid4())})  # the id is signed
    old = str(int(time.time()) - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(request.body, {**request.headers, "webhook-timestamp": old})  # a replay
    with pytest.raises(WebhookVerificationError, match="Missing required headers"):
        verify(request.body, {k: v for k, v in request.headers.items() if k != "webhook-signature"})


async def test_an_endpoint_registered_before_the_standard_keeps_its_x_atende_signature(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime
) -> None:
    endpoint, path = await register(company.client, receiver, ["message.created"])
    legacy = await registered_before_the_standard(runtime, company, endpoint["id"])
    assert (await listed(company, endpoint["id"]))["signature_scheme"] == "atende"

    request = await customer_says(company, receiver, path, "Qual o prazo de troca?")
    assert legacy_signature_ok(request, legacy)
    assert abs(time.time() - int(request.headers["x-atende-timestamp"])) < 60
    assert request.headers["x-atende-delivery"] == request.event["id"]
    assert not {"webhook-id", "webhook-timestamp", "webhook-signature"} & set(request.headers)


async def test_rotating_signs_with_both_secrets_for_the_grace_period_then_only_the_new(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime, clock: Clock
) -> None:
    assert runtime.settings.webhook_secret_grace_seconds == 86400
    endpoint, path = await register(company.client, receiver, ["message.created"])
    receiver.verify_with(path, endpoint["secret"])  # the receiver still has the old secret

    before = datetime.now(UTC)
    rotated = await rotate(company, endpoint["id"])
    new = rotated["secret"]
    assert new.startswith("whsec_") and new != endpoint["secret"]
    assert rotated["signature_scheme"] == "standard"
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert before + DAY <= until <= datetime.now(UTC) + DAY
    assert (await listed(company, endpoint["id"]))["previous_secret_expires_at"] == rotated[
        "previous_secret_expires_at"
    ]

    # during the grace period: two signatures; the receiver's old secret still verifies, and
    # so does the new one, whenever the receiver switches
    request = await customer_says(company, receiver, path, "Rotação: durante a carência")
    assert (request.answered, request.rejected) == (200, None)
    new_signature, old_signature = request.headers["webhook-signature"].split(" ")
    assert ONE_SIGNATURE.match(new_signature) and ONE_SIGNATURE.match(old_signature)
    assert Webhook(new).verify(request.body, request.headers) == request.event
    assert Webhook(endpoint["secret"]).verify(request.body, request.headers) == request.event
    assert Webhook(new).verify(request.body, {**request.headers, "webhook-signature": new_signature})
    with pytest.raises(WebhookVerificationError):
        Webhook(new).verify(request.body, {**request.headers, "webhook-signature": old_signature})

    # after it: only the new secret signs; a receiver still on the old one rejects
    clock.at(until + timedelta(seconds=1))
    assert (await listed(company, endpoint["id"]))["previous_secret_expires_at"] is None
    request = await customer_says(company, receiver, path, "Rotação: depois da carência")
    assert (request.answered, request.rejected) == (401, "No matching signature found")
    assert ONE_SIGNATURE.match(request.headers["webhook-signature"])
    assert Webhook(new).verify(request.body, request.headers) == request.event


async def test_rotating_with_no_grace_stops_the_old_secret_at_once(
    company: CompanyCtx, receiver: WebhookReceiver
) -> None:
    endpoint, path = await register(company.client, receiver, ["message.created"])
    rotated = await rotate(company, endpoint["id"], {"grace_seconds": 0})
    assert rotated["previous_secret_expires_at"] is None
    receiver.verify_with(path, rotated["secret"])

    request = await customer_says(company, receiver, path, "Sem carência")
    assert (request.answered, request.rejected) == (200, None)
    assert ONE_SIGNATURE.match(request.headers["webhook-signature"])
    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(request.body, request.headers)


async def test_rotating_a_legacy_endpoint_moves_it_to_the_standard_without_breaking_its_receiver(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime, clock: Clock
) -> None:
    endpoint, path = await register(company.client, receiver, ["message.created"])
    legacy = await registered_before_the_standard(runtime, company, endpoint["id"])

    rotated = await rotate(company, endpoint["id"], {"grace_seconds": 3600})
    assert rotated["signature_scheme"] == "standard"
    new = rotated["secret"]

    # for the grace period the receiver's legacy check still passes, and the new one too
    request = await customer_says(company, receiver, path, "Migração: os dois cabeçalhos")
    assert legacy_signature_ok(request, legacy)
    assert request.headers["x-atende-timestamp"] == request.headers["webhook-timestamp"]
    assert ONE_SIGNATURE.match(request.headers["webhook-signature"])  # a legacy secret is no v1 key
    assert Webhook(new).verify(request.body, request.headers) == request.event

    clock.at(datetime.now(UTC) + timedelta(hours=2))
    request = await customer_says(company, receiver, path, "Migração: só o padrão")
    assert "x-atende-signature" not in request.headers
    assert "x-atende-timestamp" not in request.headers
    assert Webhook(new).verify(request.body, request.headers) == request.event


async def test_rotated_secrets_are_stored_encrypted_and_shown_only_once(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime
) -> None:
    endpoint, _path = await register(company.client, receiver, ["message.created"])
    rotated = await rotate(company, endpoint["id"], {"grace_seconds": 60})
    async with runtime.db.transaction(company.id) as session:
        stored = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
        assert stored is not None
        values = [str(getattr(stored, c.key)) for c in WebhookEndpoint.__table__.columns]
        assert decrypt_secret(runtime.secret_key, stored.secret_encrypted) == rotated["secret"]
        assert stored.previous_secret_encrypted is not None
        assert decrypt_secret(runtime.secret_key, stored.previous_secret_encrypted) == endpoint["secret"]
    for secret in (endpoint["secret"], rotated["secret"]):
        key = secret.removeprefix("whsec_")
        assert not any(key in value for value in values)
    assert "secret" not in await listed(company, endpoint["id"])
    r = await company.client.patch(f"/v1/webhooks/{endpoint['id']}", json={"enabled": True})
    assert "secret" not in r.json()


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"grace_seconds": 30 * 86400 + 1}, "less than or equal to 2592000"),
        ({"grace_seconds": -1}, "greater than or equal to 0"),
        ({"grace_seconds": "a day"}, "grace_seconds"),
        ({"secret": "whsec_chosen"}, "secret"),  # the secret is made by atende, never chosen
    ],
)
async def test_a_rotation_with_a_bad_grace_is_refused_with_422_and_changes_nothing(
    company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime, body: dict[str, Any], complaint: str
) -> None:
    endpoint, _path = await register(company.client, receiver, ["message.created"])
    async with runtime.db.transaction(company.id) as session:
        before = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
        assert before is not None
        secret_before = before.secret_encrypted
    r = await company.client.post(f"/v1/webhooks/{endpoint['id']}/rotate-secret", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_input"
    assert complaint in str(r.json()["detail"])
    async with runtime.db.transaction(company.id) as session:
        after = await session.get(WebhookEndpoint, uuid.UUID(endpoint["id"]))
        assert after is not None
        assert (after.secret_encrypted, after.previous_secret_encrypted) == (secret_before, None)


async def test_the_longest_grace_is_accepted(company: CompanyCtx, receiver: WebhookReceiver) -> None:
    endpoint, _path = await register(company.client, receiver, ["message.created"])
    rotated = await rotate(company, endpoint["id"], {"grace_seconds": 30 * 86400})
    until = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert timedelta(days=29, hours=23) < until - datetime.now(UTC) <= timedelta(days=30)


async def test_rotating_an_unknown_or_another_companys_endpoint_answers_404(
    company: CompanyCtx, other_company: CompanyCtx, receiver: WebhookReceiver, runtime: Runtime
) -> None:
    theirs, _path = await register(other_company.client, receiver, ["message.created"])
    for endpoint_id in (theirs["id"], str(uuid.uuid4())):
        r = await company.client.post(f"/v1/webhooks/{endpoint_id}/rotate-secret", json={"grace_seconds": 60})
        assert r.status_code == 404, r.text
        assert r.json() == {"detail": f"no webhook endpoint {endpoint_id}", "code": "not_found"}
    async with runtime.db.transaction(other_company.id) as session:
        stored = await session.get(WebhookEndpoint, uuid.UUID(theirs["id"]))
        assert stored is not None
        assert decrypt_secret(runtime.secret_key, stored.secret_encrypted) == theirs["secret"]
        assert stored.previous_secret_encrypted is None
    r = await company.client.post("/v1/webhooks/not-a-uuid/rotate-secret")
    assert r.status_code == 422, r.text
