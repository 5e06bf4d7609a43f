"""What the WhatsApp channel sends and fetches, against the fake Graph API on 127.0.0.1: long
answers cut at WhatsApp's 4,096 characters without cutting a citation, a retry sending only
the parts that did not go out, Meta's errors told apart (retry or give up), and a media
file fetched within its size limit and handed to a store."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from atende.channels.base import Account, Attachment, DeliveryError, Outbound
from atende.channels.whatsapp import graph
from atende.channels.whatsapp.channel import WhatsAppChannel, WhatsAppConfig
from atende.channels.whatsapp.media import fetch_media
from atende.channels.whatsapp.split import TEXT_MAX, split_text
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.loopback import running

TOKEN = "send-test-token"
CITATION = re.compile(r"\[\d+(?:, \d+)*\]")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGraphApi]:
    with running(FakeGraphApi({TOKEN})) as server:
        yield server


def account(fake: FakeGraphApi, token: str = TOKEN) -> Account:
    return Account(
        id=uuid.uuid4(),
        company_id=uuid.uuid4(),
        kind="whatsapp",
        external_id=str(uuid.uuid4().int % 10**15),
        display_name="",
        enabled=True,
        config=WhatsAppConfig(graph_api_url=fake.origin),
        secrets={"access_token": token, "app_secret": "s", "verify_token": "v"},
    )


def outbound(text: str, to: str | None = None) -> Outbound:
    return Outbound(
        message_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        contact_external_id=to or str(uuid.uuid4().int % 10**12),
        author="bot",
        text=text,
    )


def long_answer() -> str:
    """Sentences with citations, some links, two paragraphs: about 9,000 characters."""
    sentences = []
    for n in range(1, 120):
        cite = f" [{n % 7 + 1}]" if n % 3 else f" [{n % 5 + 1}, {n % 4 + 2}]"
        link = " Veja https://loja.example.com/ajuda/prazos-e-entregas." if n % 17 == 0 else ""
        sentences.append(
            f"A entrega para a região {n} leva de dois a cinco dias úteis após a postagem{cite}.{link}"
        )
    half = len(sentences) // 2
    return " ".join(sentences[:half]) + "\n\n" + " ".join(sentences[half:])


def test_a_long_answer_is_cut_at_a_sentence_never_in_a_citation_or_link() -> None:
    text = long_answer()
    parts = split_text(text)
    assert len(parts) >= 3 and all(0 < len(p) <= TEXT_MAX for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())  # nothing lost or added
    for part in parts:
        assert not re.match(r"\s*\[\d", part), "a part starts with a citation cut from its sentence"
        assert part.count("[") == part.count("]")
        assert part.rstrip().endswith((".", "]")) or part is parts[-1]
    assert CITATION.findall(text) == [c for p in parts for c in CITATION.findall(p)]


def test_short_text_stays_whole_and_an_unbroken_run_is_cut_hard() -> None:
    assert split_text("  Olá!  ") == ["Olá!"]
    run = "x" * (TEXT_MAX * 2 + 10)
    assert [len(p) for p in split_text(run)] == [TEXT_MAX, TEXT_MAX, 10]
    # a citation never opens a part, even after a word longer than a part
    text = "a" * (TEXT_MAX - 5) + ". [12] Depois."
    parts = split_text(text)
    assert "".join(parts) == text and not any(p.startswith("[") for p in parts)
    assert "[12]" in parts[-1]


async def test_a_long_answer_goes_out_in_parts_and_a_retry_sends_only_the_rest(fake: FakeGraphApi) -> None:
    channel, acc = WhatsAppChannel(), account(fake)
    message = outbound(long_answer())
    parts = split_text(message.text)
    fake.script(None, 130429)  # the first part goes, the second meets a rate limit
    with pytest.raises(DeliveryError) as caught:
        await channel.send(acc, message)
    assert caught.value.retryable and "130429" in caught.value.reason
    sent = await channel.send(acc, message)  # the outbox's retry
    texts = [s.text for s in fake.sent_to(message.contact_external_id)]
    assert texts == parts  # each part once, in order
    assert sent.provider_message_id == fake.sent_to(message.contact_external_id)[-1].wamid
    body = fake.sent_to(message.contact_external_id)[0].body
    assert body["messaging_product"] == "whatsapp" and body["recipient_type"] == "individual"
    assert body["text"]["preview_url"] is False


@pytest.mark.parametrize(
    ("code", "retryable", "words"),
    [
        (130429, True, "Rate limit hit"),
        (80007, True, "Rate limit issues"),
        (131000, True, "Something went wrong"),
        (131047, False, "Re-engagement message"),
        (131026, False, "Message undeliverable"),
    ],
)
async def test_metas_errors_are_retried_or_given_up(
    fake: FakeGraphApi, code: int, retryable: bool, words: str
) -> None:
    fake.fail_next(code)
    with pytest.raises(DeliveryError) as caught:
        await WhatsAppChannel().send(account(fake), outbound("Olá"))
    assert caught.value.retryable is retryable
    assert caught.value.reason.startswith(f"WhatsApp error {code}: {words}")


async def test_a_rejected_token_fails_the_message_and_the_readiness_check(fake: FakeGraphApi) -> None:
    channel, acc = WhatsAppChannel(), account(fake, token="expired")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(acc, outbound("Olá"))
    assert not caught.value.retryable and "190" in caught.value.reason and "renew" in caught.value.reason
    verdict = await channel.check_credentials(acc)
    assert not verdict.ok and verdict.reason.startswith("access token rejected (error 190)")
    assert "expired" not in repr(acc) and TOKEN not in repr(graph.Graph(fake.origin, "v23.0", TOKEN))


async def test_an_unreachable_graph_api_is_retried() -> None:
    dead = Account(
        id=uuid.uuid4(),
        company_id=uuid.uuid4(),
        kind="whatsapp",
        external_id="1",
        display_name="",
        enabled=True,
        config=WhatsAppConfig(graph_api_url="http://127.0.0.1:9"),
        secrets={"access_token": TOKEN},
    )
    with pytest.raises(DeliveryError) as caught:
        await WhatsAppChannel().send(dead, outbound("Olá"))
    assert caught.value.retryable and "could not be reached" in caught.value.reason


async def test_a_media_file_is_fetched_within_its_limit_and_handed_to_the_store(fake: FakeGraphApi) -> None:
    acc = account(fake)
    fake.media["7001"] = (b"\xff\xd8\xff" + b"j" * 5000, "image/jpeg")
    stored: list[tuple[uuid.UUID, bytes, str, str | None]] = []

    async def sink(company_id: uuid.UUID, content: bytes, *, mime_type: str, filename: str | None) -> str:
        stored.append((company_id, content, mime_type, filename))
        return "media-1"

    assert await fetch_media(acc, "7001", sink, filename="foto.jpg") == "media-1"
    assert stored == [(acc.company_id, fake.media["7001"][0], "image/jpeg", "foto.jpg")]
    with pytest.raises(graph.GraphError) as caught:
        await fetch_media(acc, "7001", sink, max_bytes=1000)
    assert not caught.value.retryable and "over the limit" in caught.value.message
    with pytest.raises(graph.GraphError) as caught:
        await fetch_media(account(fake, token="expired"), "7001", sink)
    assert caught.value.code == 190
    assert len(stored) == 1


def attachment(content: bytes, content_type: str, filename: str | None) -> Attachment:
    async def read() -> bytes:
        return content

    return Attachment(uuid.uuid4(), content_type, filename, len(content), read)


async def test_files_go_out_in_order_audio_without_caption_and_a_retry_sends_only_the_rest(
    fake: FakeGraphApi,
) -> None:
    channel = WhatsAppChannel()
    voice, sheet = b"OggS" + b"\x01" * 200, b"PK\x03\x04" + b"\x02" * 300
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    message = replace(
        outbound("Ouça o áudio e veja a planilha."),
        attachments=(attachment(voice, "audio/ogg", "recado.ogg"), attachment(sheet, xlsx, None)),
    )
    uploads = len(fake.uploads)
    fake.fail_next_upload(130429)  # the first file's upload: throughput reached
    with pytest.raises(DeliveryError) as refused:
        await channel.send(account(fake), message)
    assert refused.value.retryable
    # audio takes no caption: the text went first, on its own
    assert [s.body["type"] for s in fake.sent_to(message.contact_external_id)] == ["text"]

    sent = await channel.send(account(fake), message)
    parts = fake.sent_to(message.contact_external_id)
    assert [s.body["type"] for s in parts] == ["text", "audio", "document"]  # the text not again
    assert parts[1].body["audio"] == {"id": fake.uploads[uploads].media_id}
    document = parts[2].body["document"]
    assert document["filename"].endswith(".xlsx") and "caption" not in document
    assert [(u.content, u.mime_type) for u in fake.uploads[uploads:]] == [(voice, "audio/ogg"), (sheet, xlsx)]
    assert sent.provider_message_id == parts[2].wamid  # the last part's: its statuses apply
