"""The outbound-address guard through the public API of an atende that allows no private
addresses (the session's server allows them, for its loopback fakes): the IPv6 forms that
lead to internal IPv4 addresses are refused wherever a company types a URL, naming what they
carry; and a name whose DNS answer changes between the check and the connection (DNS
rebinding) never reaches the internal address."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atende import netguard
from atende.app import create_app
from atende.config import Settings
from atende.runtime import Runtime
from tests.conftest import Clock, CompanyCtx, free_port, new_company
from tests.fakes.loopback import LoopbackServer, QuietHandler, running
from tests.fixtures.servers import serving
from tests.tenancy.test_support_api import HOURS, WEDNESDAY_10H, put_hours

# an IPv6 address that leads to an internal IPv4 one, and what the refusal says about it
FORMS = [
    ("::7f00:1", "an IPv4-compatible address (deprecated)"),
    ("64:ff9b::7f00:1", "which is NAT64 for 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "which is NAT64 for 169.254.169.254"),  # cloud metadata
    ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
    ("2002:7f00:1::1", "which is 6to4 for 127.0.0.1"),
    ("2002:a00:1::1", "which is 6to4 for 10.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address"),
    ("fec0::1", "a site-local address (deprecated)"),
    ("::ffff:127.0.0.1", "which maps 127.0.0.1"),
    ("::ffff:169.254.169.254", "which maps 169.254.169.254"),
]
PUBLIC = "8.8.8.8"  # what the rebinding name answers first (nothing answers there on the test's port)


def test_the_forms_are_judged_by_the_ipv4_address_they_carry() -> None:
    for text, reason in FORMS:
        assert netguard.why_not_public(ipaddress.ip_address(text)) == f"{reason}, not a public address", text
    for public in ("::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "2001:4860:4860::8888", PUBLIC):
        assert netguard.why_not_public(ipaddress.ip_address(public)) is None, public
    for multicast in ("ff0e::1", "224.0.0.1"):
        reason = netguard.why_not_public(ipaddress.ip_address(multicast))
        assert reason == "a multicast address, not a public address", multicast


@pytest.fixture(scope="module")
def guarded_server(settings: Settings) -> Iterator[str]:
    """An atende (no worker of its own: it must not take the session's jobs) that refuses
    private addresses everywhere, with a short fetch deadline."""
    port = free_port()
    own = settings.model_copy(
        update={
            "port": port,
            "public_url": f"http://127.0.0.1:{port}",
            "run_worker": False,
            "webhook_allow_private_networks": False,
            "ingest_allow_private_networks": False,
            "llm_allow_private_networks": False,
            "ingest_fetch_timeout_seconds": 2.0,
        }
    )
    with serving(create_app(own), port, loop="asyncio") as base_url:  # see Rebinding
        yield base_url


@pytest.fixture
async def guarded(runtime: Runtime, guarded_server: str) -> AsyncIterator[CompanyCtx]:
    ctx = await new_company(runtime, guarded_server)
    yield ctx
    await ctx.client.aclose()


async def company_url(client: httpx.AsyncClient, where: str, url: str) -> httpx.Response:
    """``url`` given where a company types one."""
    if where == "webhook":
        return await client.post("/v1/webhooks", json={"url": url, "events": ["message.created"]})
    if where == "document":
        return await client.post("/v1/documents", json={"url": url})
    if where == "calendar":
        return await client.post("/v1/company/hours/ics", params={"url": url})
    endpoint = {"base_url": url, "model": "m", "api_key": "sk-test"}
    return await client.put("/v1/company/assistant", json={"instructions": "", where: endpoint})


@pytest.mark.parametrize(("address", "reason"), FORMS, ids=[a for a, _ in FORMS])
@pytest.mark.parametrize("where", ["webhook", "document", "calendar", "llm", "embeddings"])
async def test_ipv6_forms_of_internal_addresses_are_refused_wherever_a_company_gives_a_url(
    guarded: CompanyCtx, clock: Clock, where: str, address: str, reason: str
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(guarded.client, HOURS)
    r = await company_url(guarded.client, where, f"http://[{address}]:8080/x")
    assert r.status_code == 422, r.text
    what = "LLM" if where == "llm" else where
    shown = ipaddress.ip_address(address)  # as Python writes it: ::ffff:127.0.0.1 is ::ffff:7f00:1
    assert f"host '{address}' resolves to {shown}, {reason}, not a public address" in r.json()["detail"]
    assert f"the {what} host" in r.json()["detail"]
    assert "_ALLOW_PRIVATE_NETWORKS=true to allow it" in r.json()["detail"]


class Rebinding:
    """``socket.getaddrinfo`` for one name whose DNS answers a public address once, then
    127.0.0.1 (a rebinding attacker's server with a zero TTL); other names resolve as usual.
    The asyncio event loop resolves names through ``socket.getaddrinfo`` (both atende's check
    and the HTTP client's own resolution did); uvloop resolves in C, hence the guarded
    server's ``loop="asyncio"``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.asked = 0
        self._lock = threading.Lock()
        self._real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in (self.name, self.name.encode()):
            return self._real(host, port, *args, **kwargs)
        with self._lock:
            self.asked += 1
            address = PUBLIC if self.asked == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 80)))]


class Internal(LoopbackServer):
    """A service on the loopback that must never be reached: it records every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        super().__init__()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n# internal secret"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


@pytest.fixture
def internal() -> Iterator[Internal]:
    with running(Internal()) as server:
        yield server


@pytest.mark.parametrize("where", ["document", "calendar"])
async def test_a_name_rebound_to_the_loopback_after_the_check_never_reaches_it(
    guarded: CompanyCtx, clock: Clock, internal: Internal, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    clock.at(WEDNESDAY_10H)
    await put_hours(guarded.client, HOURS)
    rebinding = Rebinding("rebind.test")
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    port = internal.origin.rsplit(":", 1)[1]

    r = await company_url(guarded.client, where, f"http://rebind.test:{port}/secret")

    assert internal.hits == []  # the internal service never saw a request
    assert rebinding.asked == 1  # resolved once: the address checked is the address connected to
    assert r.status_code == 422, r.text
    assert "the URL cannot be fetched" in r.json()["detail"]  # nothing answers at the public address


class TLSSite(LoopbackServer):
    """An HTTPS site on the loopback with a certificate for ``atende.test`` only; records the
    SNI and ``Host`` each request came with."""

    def __init__(self, folder: Path) -> None:
        self.seen: list[tuple[str | None, str]] = []
        self.ca = folder / "cert.pem"
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "atende.test")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("atende.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        super().__init__()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca, folder / "key.pem")
        context.sni_callback = lambda _socket, server_name, _context: self._sni.append(server_name)
        self._sni: list[str | None] = []
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                site.seen.append((site._sni[-1] if site._sni else None, self.headers["Host"]))
                self.send_json(200, b"{}")

        return Handler


async def test_https_to_the_checked_address_still_verifies_the_certificate_for_the_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the address checked, and TLS still speaks to the name: SNI and
    ``Host`` name it and the certificate must be for it. (Here the name "resolves" to the
    loopback site: the resolution is replaced, the rest is real.)"""
    with running(TLSSite(tmp_path)) as site:

        async def loopback(host: str, port: int, guard: netguard.Guard) -> list[str]:
            return ["127.0.0.1"]

        monkeypatch.setattr(netguard, "resolve_public", loopback)
        port = site.origin.rsplit(":", 1)[1]
        trusting = ssl.create_default_context(cafile=site.ca)
        guard = netguard.Guard(False, "webhook", "ATENDE_WEBHOOK_ALLOW_PRIVATE_NETWORKS")
        transport = netguard.GuardedTransport(guard, lambda: httpx.AsyncHTTPTransport(verify=trusting))
        async with httpx.AsyncClient(transport=transport) as client:
            r = await client.get(f"https://atende.test:{port}/hook")
            assert (r.status_code, str(r.url)) == (200, f"https://atende.test:{port}/hook")
            # another name at the same address: a connection of its own, and its certificate checked
            with pytest.raises(httpx.ConnectError, match="Hostname mismatch"):
                await client.get(f"https://elsewhere.test:{port}/hook")
        transport2 = netguard.GuardedTransport2(guard, lambda: httpx2.AsyncHTTPTransport(verify=trusting))
        async with httpx2.AsyncClient(transport=transport2) as client2:  # the OpenAI SDK's client
            assert (await client2.get(f"https://atende.test:{port}/v1/models")).status_code == 200
    assert site.seen == [("atende.test", f"atende.test:{port}")] * 2
