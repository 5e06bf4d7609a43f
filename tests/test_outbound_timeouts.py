"""Every outbound network client in the code has an explicit timeout (and the LLM one bounded
retries). The source is read for the constructors of network clients: a new one fails this
test until it is listed here, with its timeout checked."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx2

from atende.openai_compat import client_for
from tests.conftest import ROOT

CLIENTS = {
    "AsyncClient",
    "Client",
    "AsyncOpenAI",
    "OpenAI",
    "urlopen",
    "create_connection",
    "open_connection",
    "SMTP",
    "SMTP_SSL",
    "IMAPClient",
    "POP3",
    "POP3_SSL",
    "client",  # boto3's (a method): its timeouts and retries come in config= (botocore's Config)
}
# where each client is built: file -> constructors found there
KNOWN = {
    # the LLM and a company's embeddings endpoint (knowledge.embedding builds it with client_for)
    "src/atende/openai_compat.py": ["AsyncOpenAI"],  # deadline + retries: below
    "src/atende/netguard.py": ["AsyncClient"],  # documents and holiday calendars from URLs (fetch_limited)
    "src/atende/webhooks/tasks.py": ["AsyncClient"],  # webhook deliveries
    "src/atende/mail/sender.py": ["SMTP_SSL", "SMTP"],  # reset and invitation e-mails (tests/mail)
    # WhatsApp's Graph API: the pooled client of sends, read receipts, token checks; the one of
    # media uploads and downloads (streamed, capped)
    "src/atende/channels/whatsapp/graph.py": ["AsyncClient", "AsyncClient"],
    # e-mail: a mailbox's IMAP and POP3 servers, its SMTP server (tests/channels/email/test_timeouts.py
    # has each give up on a server that never answers)
    "src/atende/channels/email/imap.py": ["IMAPClient"],
    "src/atende/channels/email/pop3.py": ["POP3_SSL", "POP3"],
    "src/atende/channels/email/smtp.py": ["SMTP"],
    # the S3 media store: config=client_config(settings), its timeouts and retries checked by
    # tests/media/test_store.py on the client it builds
    "src/atende/media/s3.py": ["client"],
}
# the keyword that carries a client's timeout
TIMEOUT_KEYWORD = {"client": "config"}


def client_calls() -> dict[str, list[tuple[str, set[str]]]]:
    found: dict[str, list[tuple[str, set[str]]]] = {}
    for path in sorted((ROOT / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "client" and not isinstance(node.func, ast.Attribute):
                continue  # a function of ours named client() (graph.client(): the pooled one), not boto3's
            if name in CLIENTS:
                keywords = {k.arg for k in node.keywords if k.arg}
                found.setdefault(str(path.relative_to(ROOT)), []).append((name, keywords))
    return found


def test_every_network_client_is_known_and_has_a_timeout() -> None:
    found = client_calls()
    assert {path: [name for name, _ in calls] for path, calls in found.items()} == KNOWN
    for path, calls in found.items():
        for name, keywords in calls:
            keyword = TIMEOUT_KEYWORD.get(name, "timeout")
            assert keyword in keywords, f"{path}: {name}(...) without {keyword}="


def test_the_llm_client_has_a_deadline_a_connect_limit_and_bounded_retries() -> None:
    client = client_for("http://127.0.0.1:9/v1", "k", timeout=7.0, max_retries=2)
    assert isinstance(client.timeout, httpx2.Timeout)
    assert (client.timeout.read, client.timeout.connect) == (7.0, 3.0)
    assert client.max_retries == 2


def test_the_webhook_client_has_a_deadline() -> None:
    source = Path(ROOT / "src/atende/webhooks/tasks.py").read_text()
    assert "httpx.Timeout(limit, connect=5.0)" in source
    assert "asyncio.timeout" in source  # the whole delivery, headers included, has a deadline


def test_the_graph_api_calls_have_deadlines() -> None:
    from atende.channels.whatsapp import graph

    for timeout in (graph.TIMEOUT, graph.MARK_READ_TIMEOUT, graph.MEDIA_TIMEOUT):
        assert timeout.connect is not None and timeout.read is not None and timeout.read <= 30
    source = Path(ROOT / "src/atende/channels/whatsapp/graph.py").read_text()
    # each call, each upload and each download has a deadline
    assert source.count("asyncio.timeout(") == 3
