"""The WhatsApp Cloud API (Meta's Graph API) as the channel calls it: send a message, mark a
customer's message read, check a token, fetch a media file. Every call has explicit timeouts;
Meta's errors become ``GraphError`` with its code, so the channel can tell a rate limit
(try again later) from a refusal (the message will never go).

Wire facts: docs/CHANNELS.md ("WhatsApp") and Meta's Cloud API reference.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import weakref
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

# Graph API version the channel speaks (pinned: a new version is a reviewed change). An
# account's ``graph_api_version`` may pin another.
GRAPH_VERSION = "v23.0"
DEFAULT_GRAPH_URL = "https://graph.facebook.com"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # one Graph call, connection to last byte
MARK_READ_TIMEOUT = httpx.Timeout(5.0, connect=3.0)  # best effort: never holds anything up
MEDIA_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
MEDIA_MAX_BYTES = 100 * 1024 * 1024  # WhatsApp's largest file (a document) is 100 MB
# the whole of one call, however slowly an answer drips in (httpx's timeouts are per read)
CALL_DEADLINE = 20.0
MEDIA_DEADLINE = 120.0
# the pooled client's connections kept open to the Graph API (sends and mark-reads of one
# worker at full concurrency); more wait for one rather than open a connection each
POOL = httpx.Limits(max_connections=50, max_keepalive_connections=20, keepalive_expiry=30.0)

# Meta's codes worth trying again later: throughput and rate limits, temporary errors
RETRYABLE_CODES = frozenset(
    {
        1,  # API unknown (temporary)
        2,  # API service (temporary)
        4,  # application request limit
        17,  # user request limit
        80007,  # WABA rate limit
        130429,  # Cloud API throughput reached
        131000,  # something went wrong (Meta's own advice: retry)
        131016,  # service unavailable
        131056,  # pair rate limit (too many messages to one number)
        133004,  # server temporarily unavailable
    }
)
TOKEN_REJECTED = 190  # access token expired or revoked
OUTSIDE_WINDOW = 131047  # more than 24 hours since the customer's last message: a template only


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every client of the process (the pooled one, media downloads).
    httpx builds one per client, which loads the CA bundle: ~10 ms of CPU, which a client per
    mark-read made 70% of the server's CPU under benchmarks/whatsapp_webhook.py."""
    return httpx.create_ssl_context()


# one client per event loop (a process has one; a test session may run several): its
# connections are the loop's, and a client must not be used from another
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
_clients = weakref.WeakKeyDictionary()


def client() -> httpx.AsyncClient:
    """The pooled client every Graph call of this process (its event loop) goes through: a
    connection opened once and kept alive, where a client per call paid a TCP (and TLS)
    handshake per message. It keeps no cookies: one client serves every company's accounts,
    each call carrying its own token, and nothing one answer sets may ride along another's
    call. Closed by ``close_client`` when the process stops (``atende.bootstrap``)."""
    loop = asyncio.get_running_loop()
    found = _clients.get(loop)
    if found is None or found.is_closed:
        found = _clients[loop] = httpx.AsyncClient(
            timeout=TIMEOUT,
            follow_redirects=False,
            verify=tls(),
            limits=POOL,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        )
    return found


async def close_client() -> None:
    """Close this event loop's pooled client (its kept-alive connections), if it has one."""
    found = _clients.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.aclose()


@dataclass(frozen=True)
class Graph:
    """Where one account's calls go, and with which token (never in its repr)."""

    base_url: str
    version: str
    token: str

    def __repr__(self) -> str:
        return f"Graph({self.base_url!r}, {self.version!r})"

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url.rstrip("/"), self.version, *parts])

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class GraphError(Exception):
    """A Graph call failed: ``code`` is Meta's (``0`` for a transport error or a body that
    is not Meta's error), ``status`` the HTTP status (``0``: no answer)."""

    def __init__(self, message: str, *, code: int = 0, status: int = 0, title: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.title = title

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status >= 500 or self.status == 429 or self.code in RETRYABLE_CODES

    @property
    def reason(self) -> str:
        """For an agent reading why a message failed: Meta's code and words."""
        if self.code:
            return f"WhatsApp error {self.code}: {self.message}"
        return self.message


def _error(response: httpx.Response) -> GraphError:
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or f"HTTP {response.status_code}")[:300]
        try:
            code = int(error.get("code") or 0)
        except (TypeError, ValueError):
            code = 0
        data = error.get("error_data")
        if isinstance(data, dict) and data.get("details"):
            message = f"{message} ({str(data['details'])[:200]})"
        return GraphError(
            message, code=code, status=response.status_code, title=str(error.get("title") or "")
        )
    return GraphError(f"the Graph API answered HTTP {response.status_code}", status=response.status_code)


def _json_of(response: httpx.Response) -> Any:
    """The JSON of a Graph answer: ``GraphError`` for an error status (Meta's code and words)
    or for a body that is not JSON."""
    if response.status_code >= 400:
        raise _error(response)
    try:
        return response.json()
    except ValueError:
        raise GraphError("the Graph API answered something that is not JSON", status=502) from None


def _media_client() -> httpx.AsyncClient:
    """A client of its own for one file up or down, with the media timeouts (a file takes
    longer than a JSON call) and no redirects followed."""
    return httpx.AsyncClient(timeout=MEDIA_TIMEOUT, follow_redirects=False, verify=tls())


async def call(
    graph: Graph,
    method: str,
    path: tuple[str, ...],
    *,
    json: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    timeout: httpx.Timeout = TIMEOUT,
) -> dict[str, Any]:
    """One Graph call (through the pooled ``client``), within ``timeout`` per step and
    ``CALL_DEADLINE`` in all; its JSON answer, or ``GraphError``."""
    try:
        async with asyncio.timeout(CALL_DEADLINE):
            response = await client().request(
                method, graph.url(*path), json=json, params=params, headers=graph.headers, timeout=timeout
            )
    except (httpx.HTTPError, TimeoutError) as exc:
        raise GraphError(f"the Graph API could not be reached ({type(exc).__name__})") from exc
    answer = _json_of(response)
    if not isinstance(answer, dict):
        raise GraphError("the Graph API answered something that is not an object", status=502)
    return answer


async def send_message(graph: Graph, phone_number_id: str, body: dict[str, Any]) -> str:
    """``POST /{phone_number_id}/messages``; the ``wamid`` of the message sent."""
    answer = await call(
        graph, "POST", (phone_number_id, "messages"), json={"messaging_product": "whatsapp", **body}
    )
    messages = answer.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        raise GraphError("the Graph API accepted the message but named no id", status=502)
    return str(messages[0].get("id") or "")


async def upload_media(
    graph: Graph, phone_number_id: str, content: bytes, *, mime_type: str, filename: str
) -> str:
    """``POST /{phone_number_id}/media`` (multipart: ``messaging_product``, ``type``, ``file``);
    the media id a message then sends the file by (Meta keeps it 30 days). Same timeouts and
    errors as ``call``, with the media deadline (a file takes longer than a JSON call)."""
    try:
        async with (
            asyncio.timeout(MEDIA_DEADLINE),
            _media_client() as client,
        ):
            response = await client.post(
                graph.url(phone_number_id, "media"),
                data={"messaging_product": "whatsapp", "type": mime_type},
                files={"file": (filename, content, mime_type)},
                headers=graph.headers,
            )
    except (httpx.HTTPError, TimeoutError) as exc:
        raise GraphError(f"the file could not be uploaded to the Graph API ({type(exc).__name__})") from exc
    answer = _json_of(response)
    media_id = answer.get("id") if isinstance(answer, dict) else None
    if not media_id:
        raise GraphError("the Graph API took the file but named no media id", status=502)
    return str(media_id)


def media_kind(mime_type: str) -> str:
    """The message type a file goes out as: ``image``, ``audio``, ``video`` or ``document``."""
    major = mime_type.split("/", 1)[0]
    return major if major in ("image", "audio", "video") else "document"


CAPTION_MAX = 1024  # an image's, video's or document's caption (audio takes none)


def media_body(
    to: str, media_id: str, mime_type: str, *, caption: str = "", filename: str | None = None
) -> dict[str, Any]:
    """An ``image``/``audio``/``video``/``document`` message of an uploaded file (a document
    with its file name, which the customer sees; ``caption`` where the type takes one)."""
    kind = media_kind(mime_type)
    media: dict[str, Any] = {"id": media_id}
    if caption and kind != "audio":
        media["caption"] = caption
    if kind == "document" and filename:
        media["filename"] = filename
    return {"recipient_type": "individual", "to": to, "type": kind, kind: media}


def text_body(to: str, text: str, *, reply_to: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"body": text, "preview_url": False},
    }
    if reply_to:
        body["context"] = {"message_id": reply_to}
    return body


def template_body(to: str, sent: dict[str, Any]) -> dict[str, Any]:
    """A ``template`` message: ``sent`` is what ``templates.stored`` kept (name, language,
    the body's parameters; a named one goes with its ``parameter_name``)."""
    parameters: list[dict[str, str]] = []
    for parameter in sent.get("parameters") or []:
        item = {"type": "text", "text": str(parameter.get("value", ""))}
        name = str(parameter.get("name", ""))
        if name and not name.isdigit():
            item["parameter_name"] = name
        parameters.append(item)
    template: dict[str, Any] = {
        "name": str(sent.get("name")),
        "language": {"code": str(sent.get("language"))},
    }
    if parameters:
        template["components"] = [{"type": "body", "parameters": parameters}]
    return {"recipient_type": "individual", "to": to, "type": "template", "template": template}


async def mark_read(graph: Graph, phone_number_id: str, wamid: str) -> None:
    """Tell the customer their message was read (the blue ticks)."""
    await call(
        graph,
        "POST",
        (phone_number_id, "messages"),
        json={"messaging_product": "whatsapp", "status": "read", "message_id": wamid},
        timeout=MARK_READ_TIMEOUT,
    )


async def phone_number(graph: Graph, phone_number_id: str) -> dict[str, Any]:
    """The number's public details: the cheapest authenticated call (``/health/ready``)."""
    return await call(graph, "GET", (phone_number_id,), params={"fields": "id,display_phone_number"})


@dataclass(frozen=True)
class Media:
    content: bytes
    mime_type: str
    sha256: str


async def download_media(graph: Graph, media_id: str, *, max_bytes: int = MEDIA_MAX_BYTES) -> Media:
    """A customer's media file: ``GET /{media_id}`` names a short-lived URL, fetched with the
    same token, streamed and refused past ``max_bytes`` (``GraphError``)."""
    meta = await call(graph, "GET", (media_id,), timeout=MEDIA_TIMEOUT)
    url = str(meta.get("url") or "")
    if not url.startswith(("https://", "http://")):
        raise GraphError(f"the Graph API named no URL for media {media_id}", status=502)
    declared = meta.get("file_size")
    if isinstance(declared, int) and declared > max_bytes:
        raise GraphError(f"media {media_id} is {declared} bytes, over the limit of {max_bytes}", status=413)
    chunks: list[bytes] = []
    size = 0
    try:
        async with (
            asyncio.timeout(MEDIA_DEADLINE),
            _media_client() as client,
            client.stream("GET", url, headers=graph.headers) as response,
        ):
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise GraphError(f"media {media_id} is over the limit of {max_bytes} bytes", status=413)
                chunks.append(chunk)
    except (httpx.HTTPError, TimeoutError) as exc:
        raise GraphError(f"media {media_id} could not be downloaded ({type(exc).__name__})") from exc
    return Media(b"".join(chunks), str(meta.get("mime_type") or ""), str(meta.get("sha256") or ""))
