"""A customer's WhatsApp files in real Chromium: a photo sent through Meta's real payload is
"being fetched" on the open conversation page, then, fetched by the job, drawn there by the
live refresh (the dashboard's policy lets its own media in); a voice note gets a player that
loads it, a video a player, a document its download link, and the page stays axe-clean."""

from __future__ import annotations

from playwright.async_api import expect
from sqlalchemy import select

from atende.conversations.models import Message
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import TOKEN, connect_number, new_number, tiny_png, tiny_wav, with_media
from tests.conftest import until
from tests.dashboard.browser import OpenContext, assert_accessible, new_page, sign_in
from tests.fakes.graph_api import FakeGraphApi
from tests.fixtures.dashboard import PASSWORD, Team


async def test_a_customers_photo_is_drawn_and_a_voice_note_video_and_document_are_offered(
    open_context: OpenContext, live_server: str, team: Team, runtime: Runtime, graph: FakeGraphApi
) -> None:
    wa = await connect_number(runtime, team.company_id, graph, live_server, token=TOKEN)
    wa_id = new_number()
    page = await new_page(open_context, live_server)
    await sign_in(page, team.agent.email, PASSWORD)
    graph.stall_media(times=1, seconds=4.0)  # the photo's download waits: the page opens first
    wamids = []
    files = (
        ("image", tiny_png(12, 8), "image/png"),
        ("voice", tiny_wav(), "audio/wav"),
        ("video", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4"),
        ("document", b"%PDF-1.4\n%%EOF\n", "application/pdf"),
    )
    for key, content, mime in files:
        body, wamid, _media_id = with_media(wa, key, content, mime, wa_id=wa_id)
        assert (await wa.post(body)).status_code == 200
        wamids.append(wamid)

    async def stored() -> list[Message] | None:
        async with runtime.db.transaction(team.company_id) as session:
            found = list(await session.scalars(select(Message).where(Message.channel_message_id.in_(wamids))))
        return sorted(found, key=lambda m: m.seq) if len(found) == len(files) else None

    photo, voice, video, document = await until(stored, what="the messages stored")
    await page.goto(f"/app/conversations/{photo.conversation_id}")
    await expect(page.locator(f"#message-{photo.id}")).to_contain_text("Fetching the file…")
    # once fetched, the page's live refresh shows it, without a reload
    image = page.locator(f"#message-{photo.id} img")
    await expect(image).to_have_attribute("alt", "Image sent by the customer")
    await expect(image).to_be_visible()
    await page.wait_for_function(
        "id => { const img = document.querySelector(`#message-${id} img`);"
        " return img.complete && img.naturalWidth > 0 }",
        arg=str(photo.id),
    )
    assert await image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [12, 8]
    player = page.locator(f"#message-{voice.id} audio[controls]")
    await expect(player).to_have_count(1)
    await expect(page.locator(f"#message-{voice.id} figcaption")).to_contain_text("Voice message")
    # the player reads the stored sound (its length known: the file loaded, same-origin)
    await page.wait_for_function(
        "id => document.querySelector(`#message-${id} audio`).readyState >= 1", arg=str(voice.id)
    )
    await expect(page.locator(f"#message-{video.id} video[controls]")).to_have_count(1)
    await expect(page.locator(f"#message-{document.id}").get_by_role("link")).to_have_text(
        "Download filename.pdf"
    )
    await assert_accessible(page)
