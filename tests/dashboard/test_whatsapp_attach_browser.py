"""An agent sends a picture on WhatsApp from the conversation page (Chromium): "Attach a file"
is a labelled file field of the reply composer; a picture over WhatsApp's 5 MB is refused
with a notice and nothing goes out; a small one is sent with the reply, reaches the fake
Graph API as an upload of the same bytes and an ``image`` message captioned with the text,
and shows in the thread as a link to the file. A web chat conversation offers no file."""

from __future__ import annotations

import struct
import zlib

from playwright.async_api import expect

from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import TOKEN, answered_customer, connect_number
from tests.conftest import until
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fakes.graph_api import FakeGraphApi
from tests.fixtures.dashboard import PASSWORD, Team
from tests.fixtures.inbox import make_shop


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny, grey) PNG picture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def test_the_agent_attaches_a_picture_and_the_customer_receives_it(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, graph: FakeGraphApi
) -> None:
    wa = await connect_number(runtime, team.company_id, graph, live_server, token=TOKEN)
    wa_id, conversation_id = await answered_customer(wa, runtime)

    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.goto(f"/app/conversations/{conversation_id}")
    attach = page.get_by_label("Attach a file")
    await expect(attach).to_be_visible()
    await assert_accessible(page)

    # over WhatsApp's 5 MB for a picture: said, nothing sent
    huge = png() + b"\x00" * (5 * 1024 * 1024)
    await page.get_by_label("Reply to the customer").fill("Olha só.")
    await attach.set_input_files({"name": "enorme.png", "mimeType": "image/png", "buffer": huge})
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#notice")).to_contain_text("larger than this channel sends")
    assert len(graph.sent_to(wa_id)) == 1 and graph.uploads == []

    # a small picture goes out with the text as its caption (chosen with the keyboard's focus)
    picture = png()
    await page.get_by_label("Reply to the customer").fill("Segue a foto do produto.")
    await attach.focus()
    await attach.set_input_files({"name": "produto.png", "mimeType": "image/png", "buffer": picture})
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#notice")).to_contain_text("Reply sent.")
    sent = await until(lambda: graph.sent_to(wa_id)[1:], what="the picture")
    assert [s.body["type"] for s in sent] == ["image"]
    assert sent[0].body["image"]["caption"] == "Segue a foto do produto."
    (upload,) = graph.uploads
    assert (upload.content, upload.mime_type, upload.filename) == (picture, "image/png", "produto.png")
    assert sent[0].body["image"]["id"] == upload.media_id

    # the thread shows it, a link to the file; the composer is empty again
    link = page.locator("#thread li.message.agent").get_by_role("link", name="produto.png")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    assert href is not None and href.startswith("/app/media/")
    served = await page.request.get(href)
    assert served.ok and await served.body() == picture
    await expect(attach).to_have_value("")
    await assert_accessible(page)


async def test_a_web_chat_conversation_offers_no_file(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime
) -> None:
    shop = await make_shop(runtime, team)
    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    await page.goto(shop.url("mine"))
    await expect(page.get_by_role("heading", name="Reply")).to_be_visible()
    await expect(page.get_by_label("Attach a file")).to_have_count(0)
