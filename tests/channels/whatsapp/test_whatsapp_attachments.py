"""Agents send files on WhatsApp: a reply carrying media uploaded with ``POST /v1/media`` goes
out through the outbox as the file uploaded to the Graph API (the same bytes and type) and an
``image``/``document`` message by that media id, the reply's text as its caption; a channel
that cannot send files (the web chat), another company's file or a type WhatsApp does not
take are refused with a 422 and nothing is sent; an upload Meta refuses for now is retried."""

from __future__ import annotations

import os
import uuid

from atende.runtime import Runtime
from tests.channels.whatsapp.conftest import WhatsApp
from tests.channels.whatsapp.test_whatsapp_window import started, thread
from tests.conftest import CompanyCtx, until

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(3000) + b"\xff\xd9"
PDF = b"%PDF-1.4\n" + os.urandom(5000) + b"\n%%EOF\n"


async def upload(company: CompanyCtx, content: bytes, content_type: str, filename: str) -> str:
    r = await company.client.post(
        "/v1/media", content=content, headers={"Content-Type": content_type}, params={"filename": filename}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_an_image_goes_out_uploaded_with_the_text_as_its_caption(
    wa: WhatsApp, runtime: Runtime
) -> None:
    wa_id, conversation_id = await started(wa, runtime)
    media_id = await upload(wa.company, JPEG, "image/jpeg", "foto-do-produto.jpg")
    uploads = len(wa.graph.uploads)

    r = await wa.company.client.post(
        f"/v1/conversations/{conversation_id}/replies",
        json={"text": "Segue a foto do produto.", "attachments": [media_id]},
    )
    assert r.status_code == 201, r.text
    reply = r.json()
    assert reply["meta"]["attachments"] == [
        {
            "media_id": media_id,
            "content_type": "image/jpeg",
            "filename": "foto-do-produto.jpg",
            "size_bytes": len(JPEG),
        }
    ]
    sent = await until(lambda: wa.graph.sent_to(wa_id)[1:], what="the image message")
    assert len(sent) == 1  # one message: the text rides as the caption
    upload_seen = wa.graph.uploads[uploads]
    assert upload_seen.phone_number_id == wa.phone_number_id
    assert (upload_seen.content, upload_seen.mime_type) == (JPEG, "image/jpeg")
    assert upload_seen.filename == "foto-do-produto.jpg"
    assert sent[0].body["type"] == "image"
    assert sent[0].body["image"] == {"id": upload_seen.media_id, "caption": "Segue a foto do produto."}

    # its statuses apply to the reply, by the image message's wamid
    assert (await wa.status(sent[0].wamid, "delivered", wa_id=wa_id)).status_code == 200

    async def delivered() -> bool:
        mine = [m for m in await thread(wa, conversation_id) if m["id"] == reply["id"]]
        return mine[0]["delivery_status"] == "delivered"

    await until(delivered, what="the image's delivered status")


async def test_a_pdf_goes_out_as_a_document_with_its_name_and_a_long_text_on_its_own(
    wa: WhatsApp, runtime: Runtime
) -> None:
    wa_id, conversation_id = await started(wa, runtime)
    media_id = await upload(wa.company, PDF, "application/pdf", "nota-fiscal-1234.pdf")
    text = "Segue a nota fiscal. " * 60  # past the 1,024 characters of a caption
    r = await wa.company.client.post(
        f"/v1/conversations/{conversation_id}/replies", json={"text": text, "attachments": [media_id]}
    )
    assert r.status_code == 201, r.text
    await until(lambda: len(wa.graph.sent_to(wa_id)) == 3, what="the text and the document")
    sent = wa.graph.sent_to(wa_id)[1:]
    assert [s.body["type"] for s in sent] == ["text", "document"]
    assert sent[0].text == text.strip()
    document = sent[1].body["document"]
    assert document["filename"] == "nota-fiscal-1234.pdf" and "caption" not in document
    uploaded = next(u for u in wa.graph.uploads if u.media_id == document["id"])
    assert (uploaded.content, uploaded.mime_type) == (PDF, "application/pdf")


async def test_another_companys_file_a_type_whatsapp_refuses_or_a_web_chat_are_refused(
    wa: WhatsApp, runtime: Runtime, other_company: CompanyCtx
) -> None:
    wa_id, conversation_id = await started(wa, runtime)
    replies = f"/v1/conversations/{conversation_id}/replies"
    theirs = await upload(other_company, JPEG, "image/jpeg", "deles.jpg")
    zip_file = await upload(wa.company, b"PK\x03\x04" + os.urandom(100), "application/zip", "a.zip")
    before = await thread(wa, conversation_id)
    uploads = len(wa.graph.uploads)

    for attachments, words in [
        ([theirs], f"no file {theirs} in this company"),
        ([str(uuid.uuid4())], "upload it with POST /v1/media first"),
        ([zip_file], "cannot send files of type application/zip"),
    ]:
        r = await wa.company.client.post(replies, json={"text": "Segue.", "attachments": attachments})
        assert r.status_code == 422, r.text
        assert words in r.json()["detail"], r.text
    r = await wa.company.client.post(replies, json={"text": "Segue.", "attachments": [theirs] * 11})
    assert r.status_code == 422, r.text
    assert await thread(wa, conversation_id) == before
    assert len(wa.graph.sent_to(wa_id)) == 1 and len(wa.graph.uploads) == uploads

    # the web chat cannot carry files (yet): said plainly, nothing stored
    mine = await upload(wa.company, JPEG, "image/jpeg", "foto.jpg")
    r = await wa.company.client.post(f"/widget/v1/{wa.company.widget_key}/conversations")
    assert r.status_code == 201, r.text
    webchat = r.json()["conversation_id"]
    r = await wa.company.client.post(
        f"/v1/conversations/{webchat}/replies", json={"text": "Segue a foto.", "attachments": [mine]}
    )
    assert r.status_code == 422, r.text
    assert "this channel cannot send files" in r.json()["detail"]
    assert (await wa.company.client.get(f"/v1/conversations/{webchat}/messages")).json()["items"] == []


async def test_an_upload_refused_for_now_is_retried_and_one_image_goes_out(
    wa: WhatsApp, runtime: Runtime
) -> None:
    wa_id, conversation_id = await started(wa, runtime)
    media_id = await upload(wa.company, JPEG, "image/jpeg", "foto.jpg")
    attempts = wa.graph.upload_attempts
    wa.graph.fail_next_upload(131000)  # "something went wrong": Meta says try again
    r = await wa.company.client.post(
        f"/v1/conversations/{conversation_id}/replies", json={"attachments": [media_id]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["text"] == ""
    sent = await until(lambda: wa.graph.sent_to(wa_id)[1:], seconds=60, what="the image after a retry")
    assert wa.graph.upload_attempts - attempts == 2
    assert [s.body["type"] for s in sent] == ["image"] and "caption" not in sent[0].body["image"]

    async def sent_status() -> bool:
        mine = [m for m in await thread(wa, conversation_id) if m["id"] == r.json()["id"]]
        return mine[0]["delivery_status"] == "sent"

    await until(sent_status, what="the reply marked sent")
    assert len(wa.graph.sent_to(wa_id)) == 2
