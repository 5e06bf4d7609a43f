"""E-mails read into what the channel stores: real messages of a dozen mail clients (talon's
samples, ``tests/data/email``), broken and mislabelled charsets, HTML, attachments and
inline images, the loop-protection headers, and the size guard."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atende.channels.email.parse import MessageTooLarge, html_to_text, parse, safe_html, served_html
from tests.conftest import TEST_DATA

REPLIES = TEST_DATA / "email" / "talon" / "standard_replies"
HTML_REPLIES = TEST_DATA / "email" / "talon" / "html_replies"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize("path", sorted(REPLIES.glob("*.eml")), ids=lambda p: p.name)
def test_every_sampled_client_mail_is_read_with_its_sender_and_the_words_hello(path) -> None:
    parsed = parse(path.read_bytes())
    assert parsed.from_ is not None and "@" in parsed.from_.address
    assert parsed.subject.endswith("Test") or parsed.subject == "Re: Hello there"
    assert "Hello" in parsed.text  # every sample's reply says it, above or below the quote
    assert parsed.automatic() is None  # people wrote these


def test_the_threading_headers_of_a_reply_are_read_as_bracketed_ids() -> None:
    parsed = parse((REPLIES / "apple_mail_2.eml").read_bytes())
    assert parsed.message_id == "<68001B29-8EA4-444C-A894-0537D2CA5208@tictail.com>"
    assert parsed.in_reply_to == ("<CABzQGhkMXDxUt_tSVQcg=43aniUhtsVfCZVzu-PG0kwS_uzqMw@mail.gmail.com>",)
    assert parsed.references == parsed.in_reply_to
    assert parsed.date is not None and parsed.date.year == 2015
    assert str(parsed.from_) == "Adam Renberg <adam@tictail.com>"
    assert [a.address for a in parsed.to] == ["tgwizard@gmail.com"]


def test_a_base64_utf8_body_in_cyrillic_is_decoded() -> None:
    parsed = parse((REPLIES / "android.eml").read_bytes())
    assert "пользователь" in parsed.text  # base64, UTF-8
    assert parsed.html is not None and "gmail_quote" in parsed.html


def mail(body: bytes, *, charset: str = "utf-8", headers: str = "") -> bytes:
    head = (
        "From: =?utf-8?q?Jo=C3=A3o_da_Silva?= <Joao@Example.COM.BR>\r\n"
        "To: suporte@loja.test\r\n"
        "Subject: =?iso-8859-1?q?Pedido_n=E3o_chegou?=\r\n"
        "Message-ID: <m1@example.com.br>\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        f"{headers}\r\n"
    )
    return head.encode() + body


def test_rfc2047_headers_are_decoded_and_the_domain_lower_cased() -> None:
    parsed = parse(mail(b"oi"))
    assert parsed.subject == "Pedido não chegou"
    assert parsed.from_ is not None
    assert (parsed.from_.name, parsed.from_.address) == ("João da Silva", "Joao@example.com.br")


def test_a_latin1_body_labelled_utf8_reads_as_portuguese_not_as_replacement_characters() -> None:
    text = "Olá, meu pedido não chegou. Não recebi a notificação de entrega."
    parsed = parse(mail(text.encode("latin-1")))
    assert parsed.text.strip() == text
    assert "bytes that are not utf-8" in parsed.defects


def test_an_unknown_charset_falls_back_on_what_the_bytes_are() -> None:
    parsed = parse(mail(b"Pagamento recusado, e agora?", charset="x-klingon-8"))
    assert parsed.text.strip() == "Pagamento recusado, e agora?"
    assert any("unknown charset" in d for d in parsed.defects)


def test_a_body_of_random_bytes_and_8bit_headers_never_raise() -> None:
    raw = (
        "From: Zé <ze@x.test>\r\nSubject: Olá sem codificação\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    ).encode("latin-1") + bytes(range(256))
    parsed = parse(raw)
    assert parsed.subject == "Olá sem codificação"  # raw Latin-1 in a header
    assert parsed.from_ is not None and parsed.from_.name == "Zé"
    assert "\x00" not in parsed.text


def test_a_message_with_no_headers_at_all_is_read_as_empty() -> None:
    parsed = parse(b"\r\n\r\n")
    assert parsed.from_ is None and parsed.message_id is None and parsed.subject == ""


def test_a_message_over_the_size_guard_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(MessageTooLarge, match="over the 1000"):
        parse(mail(b"x" * 2000), max_bytes=1000)


def rich_mail() -> bytes:
    message = EmailMessage()
    message["From"] = "Ana <ana@cliente.test>"
    message["To"] = "suporte@loja.test"
    message["Subject"] = "Foto do produto quebrado"
    message["Message-ID"] = make_msgid(domain="cliente.test")
    message.set_content("Segue a foto.\n")
    message.add_alternative(
        '<p onclick="steal()">Segue a <b>foto</b>:</p><img src="cid:foto1@cliente.test">'
        '<img src="https://tracker.test/pixel.gif" alt="pixel"><script>alert(1)</script>'
        '<a href="javascript:alert(1)">clique</a> <a href="https://loja.test/pedido">pedido</a>',
        subtype="html",
    )
    html = message.get_payload()[1]
    html.add_related(PNG, "image", "png", cid="<foto1@cliente.test>", filename="foto.png")
    message.add_attachment(
        b"%PDF-1.4 nota", maintype="application", subtype="pdf", filename="nota fiscal ção.pdf"
    )
    forwarded = EmailMessage()
    forwarded["Subject"] = "o original"
    forwarded.set_content("encaminhado")
    message.add_attachment(forwarded)
    return message.as_bytes()


def test_attachments_inline_images_and_attached_messages_are_extracted_with_their_bytes() -> None:
    parsed = parse(rich_mail())
    assert parsed.text.strip() == "Segue a foto."  # the plain part, not an attachment's text
    by_type = {a.content_type: a for a in parsed.attachments}
    image = by_type["image/png"]
    assert (image.filename, image.content_id, image.inline, image.data) == (
        "foto.png",
        "foto1@cliente.test",
        True,
        PNG,
    )
    pdf = by_type["application/pdf"]
    assert (pdf.filename, pdf.data, pdf.inline) == ("nota fiscal ção.pdf", b"%PDF-1.4 nota", False)
    attached = by_type["message/rfc822"]
    assert b"encaminhado" in attached.data  # kept whole as a file, not read as our text


def test_safe_html_keeps_the_text_and_links_and_loads_nothing_remote() -> None:
    parsed = parse(rich_mail())
    assert parsed.html is not None
    shown = safe_html(parsed.html, {"foto1@cliente.test": "/v1/media/123"})
    assert "<script" not in shown and "alert" not in shown and "onclick" not in shown
    assert "javascript:" not in shown
    assert "tracker.test" not in shown and 'alt="pixel"' in shown  # a remote image loses its source
    assert '<img src="/v1/media/123">' in shown  # the inline image points at our stored copy
    assert 'href="https://loja.test/pedido"' in shown and "noopener" in shown
    assert "<b>foto</b>" in shown
    # an inline image we did not store shows nothing remote either
    assert "cid:" not in safe_html(parsed.html) and "<img" in safe_html(parsed.html)


def test_what_is_served_to_agents_is_cleaned_again_and_shows_only_stored_pictures() -> None:
    stored = safe_html(
        '<p>Olá <b>Ana</b></p><img src="cid:f1@c.test" alt="foto"><img src="https://t.test/p.gif" alt="p">'
        + "x" * 50,
        {"f1@c.test": "/app/media/0b5e7a4e-6f1e-4d55-9a3e-2f1d8c1b2a3c"},
    )
    cut = stored[: stored.index("alt=")] + '<img src="x" onerror="alert(1)"'  # stored at its length limit
    served = served_html(cut + "<script>alert(2)</script>")
    assert "onerror" not in served and "<script" not in served and "alert(1)" not in served
    assert '<img src="/app/media/0b5e7a4e-6f1e-4d55-9a3e-2f1d8c1b2a3c">' in served
    assert "<p>Olá <b>Ana</b></p>" in served
    # a picture from anywhere but the stored copies loses its source, however it is written
    for source in ("https://t.test/p", "//t.test/p", "/app/media//t.test/p", "data:image/png;base64,AA"):
        assert "src=" not in served_html(f'<img src="{source}" alt="p">'), source


def test_style_forms_and_frames_are_removed() -> None:
    shown = safe_html(
        '<div style="background:url(https://t.test/x)">a</div><form action="https://x.test"><input></form>'
        '<iframe src="https://x.test"></iframe><style>p{}</style><svg onload="x()"></svg>b'
    )
    assert "https://" not in shown and "style" not in shown and "<form" not in shown
    assert "<iframe" not in shown and "onload" not in shown
    assert "a" in shown and "b" in shown


def test_an_html_only_mail_gives_the_bot_clean_text() -> None:
    raw = (
        b"From: a@b.test\r\nSubject: s\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p{color:red}</style></head><body><p>Ol\xc3\xa1,</p><p>quero trocar:</p>"
        b"<ul><li>camiseta</li><li>bon\xc3\xa9</li></ul><table><tr><td>Pedido</td><td>123</td></tr></table>"
        b"<script>var x = 1;</script></body></html>"
    )
    parsed = parse(raw)
    assert parsed.text_from_html
    lines = [line.strip() for line in parsed.text.splitlines() if line.strip()]
    assert lines[:2] == ["Olá,", "quero trocar:"]
    assert any(line.endswith("camiseta") for line in lines) and any(line.endswith("boné") for line in lines)
    assert "Pedido" in parsed.text and "123" in parsed.text
    assert "color" not in parsed.text and "var x" not in parsed.text


@pytest.mark.parametrize("path", sorted(HTML_REPLIES.glob("*.html")), ids=lambda p: p.name)
def test_every_sampled_html_reply_becomes_text_that_keeps_the_reply(path) -> None:
    text = html_to_text(path.read_text())
    assert "Hi. I am fine." in text and "<" not in text.split("Hi. I am fine.")[0]


AUTOMATIC = [
    ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
    ("Precedence: bulk\r\n", "Precedence"),
    ("List-Id: <clientes.loja.test>\r\n", "mailing list"),
    ("List-Unsubscribe: <mailto:sair@loja.test>\r\n", "mailing list"),
    ("X-Autoreply: yes\r\n", "auto-reply"),
    ("Return-Path: <>\r\n", "null sender"),
]


@pytest.mark.parametrize(("header", "reason"), AUTOMATIC)
def test_automatic_mail_says_why_no_robot_may_answer_it(header: str, reason: str) -> None:
    assert reason in (parse(mail(b"fora do escritorio", headers=header)).automatic() or "")


def test_auto_submitted_no_is_a_person() -> None:
    assert parse(mail(b"oi", headers="Auto-Submitted: no\r\n")).automatic() is None


def test_a_bounce_is_a_delivery_report_with_the_returned_message_attached() -> None:
    raw = (
        b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.loja.test>\r\n"
        b"To: suporte@loja.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nThe mail system could not deliver your message.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.loja.test\r\n\r\n"
        b"Final-Recipient: rfc822; ninguem@x.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: suporte@loja.test\r\nSubject: Re: pedido\r\n\r\noi\r\n"
        b"--b--\r\n"
    )
    parsed = parse(raw)
    assert parsed.delivery_report
    assert "bounce" in (parsed.automatic() or "")
    assert parsed.text.startswith("The mail system could not deliver")
    assert {a.content_type for a in parsed.attachments} >= {"message/delivery-status", "message/rfc822"}


@given(st.binary(max_size=3000))
def test_no_bytes_make_the_parser_raise(data: bytes) -> None:
    parse(data)


@given(st.integers(min_value=0, max_value=4000), st.binary(min_size=1, max_size=40))
def test_a_real_mail_damaged_anywhere_still_parses(at: int, junk: bytes) -> None:
    raw = rich_mail()
    at %= len(raw)
    parse(raw[:at] + junk + raw[at + len(junk) :])


def test_text_an_apple_mail_split_around_a_picture_is_read_whole() -> None:
    message = EmailMessage()
    message["From"] = "ana@cliente.test"
    message["Subject"] = "Foto"
    message.set_content("Veja a foto:\n")
    message.add_attachment(PNG, maintype="image", subtype="png", disposition="inline", filename="a.png")
    tail = EmailMessage()
    tail.set_content("O produto chegou assim.\n")
    message.attach(tail)
    parsed = parse(message.as_bytes())
    assert parsed.text.split() == "Veja a foto: O produto chegou assim.".split()
    assert [a.filename for a in parsed.attachments] == ["a.png"]


def test_a_long_references_chain_keeps_its_newest_ids() -> None:
    chain = " ".join(f"<{i:04d}.{'x' * 60}@cliente.test>" for i in range(150))
    parsed = parse(mail(b"oi", headers=f"References: {chain}\r\n"))
    assert len(parsed.references) == 100
    assert parsed.references[-1] == f"<0149.{'x' * 60}@cliente.test>"
    assert parsed.references[0] == f"<0050.{'x' * 60}@cliente.test>"
