"""A customer's e-mail as its sender formatted it: the conversation page offers it behind a
disclosure, in a sandboxed frame, from a route that serves the sanitised HTML (no script, no
event handler, no remote image; an inline image from its stored copy, written into the page)
with headers that keep it from running anything, loading anything remote or being framed by
another site; another company's member, and a message with no HTML, get the dashboard's 404."""

from __future__ import annotations

import base64
import html
import re
import uuid
from email.message import EmailMessage
from email.utils import make_msgid

from atende.channels import accounts
from atende.channels.email import receive
from atende.channels.email.channel import channel
from atende.conversations import service as conversations
from atende.runtime import Runtime
from tests.fixtures.dashboard import Team, signed_in

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6364f8cf50000003860180"
    "5a347d6b0000000049454e44ae426082"
)
HOSTILE = (
    "<html><head><title>x</title><script>document.title='ran'</script></head><body>"
    "<p>Olá, o pedido <b>123</b> chegou <i>quebrado</i>.</p>"
    '<img src="x" onerror="window.name=\'ran\'" alt="broken">'
    '<img src="https://tracker.example/pixel.gif" alt="tracking pixel">'
    '<p><img src="cid:foto1@cliente.test" alt="the photo"></p>'
    '<a href="https://loja.example/pedido/123" onclick="window.name=\'ran\'">o pedido</a>'
    "<script>window.name='ran'</script>"
    "</body></html>"
)


async def an_email(runtime: Runtime, team: Team, *, html_body: str | None) -> receive.Taken:
    """A customer's e-mail taken into ``team``'s mailbox: plain text, and HTML if given, with
    the photo its HTML shows by ``cid:``."""
    address = f"suporte-{uuid.uuid4().hex[:6]}@loja.example"
    async with runtime.db.transaction(team.company_id) as session:
        row = await accounts.create(
            session,
            runtime.secret_key,
            kind="email",
            external_id=address,
            config={
                "address": address,
                "imap_host": "127.0.0.1",
                "smtp_host": "127.0.0.1",
                "smtp_security": "none",
            },
        )
    account = accounts.open_account(channel, row, runtime.secret_key)
    message = EmailMessage()
    message["From"] = "Ana Souza <ana@example.org>"
    message["To"] = address
    message["Subject"] = "Pedido 123 chegou quebrado"
    message["Message-ID"] = make_msgid(domain="example.org")
    message.set_content("Olá, o pedido 123 chegou quebrado.")
    if html_body is not None:
        message.add_alternative(html_body, subtype="html")
        message.get_payload()[1].add_related(PNG, "image", "png", cid="<foto1@cliente.test>")
    taken = await receive.take(runtime, channel, account, message.as_bytes())
    assert taken.outcome == "stored"
    return taken


async def customer_message_id(client_page: str) -> str:
    found = re.search(r'<li class="message customer" id="message-([0-9a-f-]{36})"', client_page)
    assert found, client_page
    return found.group(1)


async def test_the_email_as_sent_is_served_sanitised_in_a_sandbox_to_its_company_only(
    runtime: Runtime, team: Team, rival: Team, live_server: str
) -> None:
    taken = await an_email(runtime, team, html_body=HOSTILE)
    async with signed_in(live_server, team.viewer) as client:
        page = html.unescape((await client.get(f"/app/conversations/{taken.conversation_id}")).text)
        assert "<summary>Show the e-mail as sent</summary>" in page
        message_id = await customer_message_id(page)
        src = f"/app/conversations/{taken.conversation_id}/messages/{message_id}/email"
        frame = re.search(r"<iframe [^>]*>", page)
        assert frame, page
        assert f'src="{src}"' in frame.group(0) and 'loading="lazy"' in frame.group(0)
        assert re.search(r"\ssandbox[\s>]", frame.group(0))  # a bare sandbox: no allow-anything
        assert "allow-" not in frame.group(0)
        assert 'title="The e-mail “Pedido 123 chegou quebrado” as its sender formatted it"' in frame.group(0)

        async with runtime.db.transaction(team.company_id) as session:
            message = await conversations.get_message(session, uuid.UUID(message_id))
        served = await client.get(src)
        assert served.status_code == 200, served.text
        assert served.headers["content-type"] == "text/html; charset=utf-8"
        policy = served.headers["content-security-policy"]
        assert policy.startswith(
            "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
        )
        assert "frame-ancestors 'self'" in policy and "script-src" not in policy
        assert served.headers["x-frame-options"] == "SAMEORIGIN"
        assert served.headers["x-content-type-options"] == "nosniff"
        body = served.text
        assert "Olá, o pedido <b>123</b> chegou <i>quebrado</i>." in body
        assert "<script" not in body and "ran" not in body
        assert "onerror" not in body and "onclick" not in body
        assert "tracker.example" not in body and "cid:" not in body
        assert 'alt="tracking pixel"' in body  # the picture's words stay, its source is gone
        # the inline photo: its stored copy, written into the page (a sandboxed frame's requests
        # carry no session cookie), and the very file kept in the media store
        photo = re.search(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="the photo"', body)
        assert photo, body
        assert base64.b64decode(photo.group(1)) == PNG
        [stored] = [a for a in message.meta["attachments"] if a.get("media_id")]
        picture = await client.get(f"/app/media/{stored['media_id']}")
        assert picture.status_code == 200 and picture.content == PNG
        assert f"/app/media/{stored['media_id']}" in message.meta["email"]["html"]  # where cid: pointed
        assert "<title>Pedido 123 chegou quebrado</title>" in body
        assert 'href="https://loja.example/pedido/123"' in body

    async with signed_in(live_server, rival.owner) as other:
        refused = await other.get(src)
        assert refused.status_code == 404
        assert "There is nothing here." in refused.text
        assert "quebrado" not in refused.text


async def test_a_message_without_html_has_no_frame_and_its_route_is_404(
    runtime: Runtime, team: Team, live_server: str
) -> None:
    taken = await an_email(runtime, team, html_body=None)
    async with signed_in(live_server, team.agent) as client:
        page = (await client.get(f"/app/conversations/{taken.conversation_id}")).text
        assert "Show the e-mail as sent" not in page and "<iframe" not in page
        message_id = await customer_message_id(page)
        for path in (
            f"/app/conversations/{taken.conversation_id}/messages/{message_id}/email",
            # a real conversation, someone else's message id: not found either
            f"/app/conversations/{uuid.uuid4()}/messages/{message_id}/email",
            f"/app/conversations/{taken.conversation_id}/messages/{uuid.uuid4()}/email",
        ):
            r = await client.get(path)
            assert r.status_code == 404, (path, r.text)
            assert "There is nothing here." in r.text
