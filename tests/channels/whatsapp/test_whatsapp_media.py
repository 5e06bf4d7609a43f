"""A customer's files on WhatsApp: Meta's real media payloads, signed, through the live
server; the file fetched from the fake Graph API by the job into the local media store, and
the conversation page showing, playing or offering it to the company's agents only."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from atende.channels.whatsapp import graph as graph_api
from atende.channels.whatsapp import media as wa_media
from atende.conversations.models import Message
from atende.media import service as media_service
from atende.media.models import Media
from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import (
    TOKEN,
    WhatsApp,
    connect_number,
    new_number,
    tiny_png,
    tiny_wav,
    with_media,
)
from tests.conftest import until
from tests.fakes.graph_api import FakeGraphApi
from tests.fixtures.dashboard import Team, make_team, signed_in


@pytest.fixture
async def shop(runtime: Runtime, live_server: str, graph: FakeGraphApi) -> tuple[Team, WhatsApp]:
    team = await make_team(runtime)
    return team, await connect_number(runtime, team.company_id, graph, live_server, token=TOKEN)


async def stored_message(runtime: Runtime, company_id: uuid.UUID, wamid: str) -> Message | None:
    async with runtime.db.transaction(company_id) as session:
        return await session.scalar(select(Message).where(Message.channel_message_id == wamid))


async def settled(runtime: Runtime, company_id: uuid.UUID, wamid: str) -> Message:
    """The message once its file was fetched, or its failure recorded."""

    async def done() -> Message | None:
        message = await stored_message(runtime, company_id, wamid)
        media = (message.meta or {}).get("media", {}) if message else {}
        return message if media.get("media_id") or media.get("error") else None

    found: Message = await until(done, what="the file fetched or given up on")
    return found


async def media_count(runtime: Runtime, company_id: uuid.UUID) -> int:
    async with runtime.db.transaction(company_id) as session:
        return int(await session.scalar(select(func.count()).select_from(Media)) or 0)


async def stored_bytes(runtime: Runtime, company_id: uuid.UUID, media_id: str) -> tuple[Media, bytes]:
    async with runtime.db.transaction(company_id) as session:
        media = await media_service.get(session, uuid.UUID(media_id))
    blob = await media_service.read(media_service.media_store(runtime), media)
    return media, b"".join([piece async for piece in blob.chunks])


async def test_an_image_is_fetched_into_the_store_and_shown_to_the_companys_agents_only(
    runtime: Runtime, shop: tuple[Team, WhatsApp], live_server: str
) -> None:
    team, wa = shop
    picture = tiny_png()
    body, wamid, _media_id = with_media(wa, "image", picture, "image/png", wa_id=new_number())
    r = await wa.post(body)
    assert r.status_code == 200 and r.json() == {"stored": 1}

    message = await settled(runtime, team.company_id, wamid)
    media = message.meta["media"]
    assert "error" not in media, media
    assert (media["content_type"], media["size"]) == ("image/png", len(picture))
    row, content = await stored_bytes(runtime, team.company_id, media["media_id"])
    assert content == picture and row.content_type == "image/png"
    assert await media_count(runtime, team.company_id) == 1

    async with signed_in(live_server, team.agent) as agent:
        page = (await agent.get(f"/app/conversations/{message.conversation_id}")).text
        src = f"/app/media/{media['media_id']}"
        assert f'<img src="{src}" alt="Image sent by the customer"' in page
        assert "[image]" not in page  # the placeholder the bot reads is not shown as text
        shown = await agent.get(src)
        assert shown.status_code == 200 and shown.content == picture
        assert shown.headers["content-type"] == "image/png"
        assert shown.headers["x-content-type-options"] == "nosniff"
        assert shown.headers["content-security-policy"].startswith("sandbox")
    rival = await make_team(runtime)
    async with signed_in(live_server, rival.agent) as other:
        assert (await other.get(src)).status_code == 404


async def test_audio_voice_video_sticker_and_document_are_played_shown_or_offered(
    runtime: Runtime, shop: tuple[Team, WhatsApp], live_server: str
) -> None:
    team, wa = shop
    wa_id = new_number()
    sent: dict[str, tuple[str, bytes]] = {}
    files = {
        "audio": (tiny_wav(), "audio/wav"),
        "voice": (tiny_wav(0.1), "audio/ogg"),
        "video": (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, "video/mp4"),
        "static_sticker": (b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 40, "image/webp"),
        "document": (b"%PDF-1.4\n" + b"x" * 2400, "application/pdf"),
    }
    for key, (content, mime) in files.items():
        body, wamid, _media_id = with_media(wa, key, content, mime, wa_id=wa_id)
        assert (await wa.post(body)).status_code == 200
        sent[key] = (wamid, content)
    found = {key: await settled(runtime, team.company_id, wamid) for key, (wamid, _c) in sent.items()}
    src = {key: f"/app/media/{m.meta['media']['media_id']}" for key, m in found.items()}
    conversation_id = found["audio"].conversation_id

    async with signed_in(live_server, team.viewer) as viewer:
        page = (await viewer.get(f"/app/conversations/{conversation_id}")).text
        assert f'<audio controls preload="metadata" src="{src["audio"]}" title="Audio">' in page
        assert f'<audio controls preload="metadata" src="{src["voice"]}" title="Voice message">' in page
        assert f'<video controls preload="metadata" src="{src["video"]}" title="Video">' in page
        assert f'<img src="{src["static_sticker"]}" alt="Sticker sent by the customer"' in page
        # the document: a download link named by its file, with its size; its caption as text
        link = re.search(rf'<a href="{src["document"]}" download>([^<]*)</a> \(([^)]*)\)', page)
        assert link is not None and link.groups() == ("Download filename.pdf", "2.4 KB"), page
        assert '<p class="text">caption</p>' in page
        for key, (_wamid, content) in sent.items():
            served = await viewer.get(src[key])
            assert served.status_code == 200 and served.content == content, key
        pdf = await viewer.get(src["document"])
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.headers["content-disposition"].startswith('attachment; filename="filename.pdf"')
        # played from the middle: one byte range
        part = await viewer.get(src["audio"], headers={"Range": "bytes=10-19"})
        assert part.status_code == 206 and part.content == files["audio"][0][10:20]


async def test_a_file_over_the_size_limit_is_refused_with_its_reason_and_nothing_stored(
    runtime: Runtime, shop: tuple[Team, WhatsApp], live_server: str
) -> None:
    team, wa = shop
    body, wamid, media_id = with_media(wa, "video", b"\x00" * 64, "video/mp4", wa_id=new_number())
    wa.graph.declare_size(media_id, runtime.settings.media_max_bytes + 1)  # Meta names its size
    assert (await wa.post(body)).status_code == 200

    message = await settled(runtime, team.company_id, wamid)
    assert message.meta["media"]["error"] == wa_media.TOO_LARGE
    assert "over the limit" in message.meta["media"]["error_detail"]
    assert "media_id" not in message.meta["media"]
    assert await media_count(runtime, team.company_id) == 0
    async with signed_in(live_server, team.agent, language="pt-BR") as agent:
        page = (await agent.get(f"/app/conversations/{message.conversation_id}")).text
    assert (
        "Não foi possível buscar este arquivo: ele é maior que o maior arquivo que este servidor guarda."
        in page
    )


async def test_a_token_rejected_or_a_file_meta_no_longer_has_is_given_up_at_once(
    runtime: Runtime, shop: tuple[Team, WhatsApp], live_server: str, graph: FakeGraphApi
) -> None:
    team, wa = shop
    body, gone_wamid, media_id = with_media(wa, "image", tiny_png(), "image/png", wa_id=new_number())
    del graph.media[media_id]  # Meta answers error 100: no such object
    assert (await wa.post(body)).status_code == 200
    gone = await settled(runtime, team.company_id, gone_wamid)
    assert gone.meta["media"]["error"] == wa_media.GONE

    expired = await connect_number(runtime, team.company_id, graph, live_server, token="expired-token")
    body, wamid, _media_id = with_media(expired, "image", tiny_png(), "image/png", wa_id=new_number())
    assert (await expired.post(body)).status_code == 200
    refused = await settled(runtime, team.company_id, wamid)
    assert refused.meta["media"]["error"] == wa_media.TOKEN_REJECTED
    assert "190" in refused.meta["media"]["error_detail"]
    assert await media_count(runtime, team.company_id) == 0
    async with signed_in(live_server, team.agent) as agent:
        page = (await agent.get(f"/app/conversations/{refused.conversation_id}")).text
    assert "This file could not be fetched: WhatsApp refused the number's access token" in page


async def test_a_timeout_is_retried_and_the_file_stored_once(
    runtime: Runtime,
    shop: tuple[Team, WhatsApp],
    live_server: str,
    graph: FakeGraphApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team, wa = shop
    monkeypatch.setattr(graph_api, "MEDIA_TIMEOUT", httpx.Timeout(1.0, connect=1.0))
    graph.stall_media(times=1, seconds=3.0)  # the first URL lookup answers too late
    before = graph.media_lookups
    picture = tiny_png(9, 9)
    body, wamid, _media_id = with_media(wa, "image", picture, "image/png", wa_id=new_number())
    assert (await wa.post(body)).status_code == 200

    message = await stored_message(runtime, team.company_id, wamid)
    assert message is not None
    async with signed_in(live_server, team.agent) as agent:  # while the first try waits
        page = (await agent.get(f"/app/conversations/{message.conversation_id}")).text
    assert "Fetching the file…" in page

    message = await settled(runtime, team.company_id, wamid)
    assert "error" not in message.meta["media"], message.meta["media"]
    assert graph.media_lookups - before == 2
    _row, content = await stored_bytes(runtime, team.company_id, message.meta["media"]["media_id"])
    assert content == picture
    assert await media_count(runtime, team.company_id) == 1


async def test_the_job_run_again_or_at_once_stores_one_file(
    runtime: Runtime, shop: tuple[Team, WhatsApp], graph: FakeGraphApi
) -> None:
    team, wa = shop
    graph.stall_media(times=1, seconds=0.5)  # the webhook's own job is still downloading
    body, wamid, _media_id = with_media(wa, "image", tiny_png(), "image/png", wa_id=new_number())
    assert (await wa.post(body)).status_code == 200
    message = await until(lambda: stored_message(runtime, team.company_id, wamid), what="stored")

    async def run() -> Any:
        return await wa_media.fetch_into_store(runtime, team.company_id, message.id, last_attempt=False)

    await asyncio.gather(run(), run())  # beside the worker's run
    fetched = await settled(runtime, team.company_id, wamid)
    assert await run() == "already settled"
    assert await media_count(runtime, team.company_id) == 1
    assert fetched.meta["media"]["media_id"]
