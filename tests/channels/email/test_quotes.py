"""Quoted replies and signatures stripped before the bot reads an e-mail, in pt-BR, en and es:
real replies of a dozen mail clients with talon's expected results, crisp's separators and
its Portuguese sample (``tests/data/email``), and the headers each language's clients write."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from atende.channels.email.parse import parse
from atende.channels.email.quotes import html_reply, strip, strip_email
from tests.conftest import TEST_DATA

TALON = TEST_DATA / "email" / "talon"
CRISP = TEST_DATA / "email" / "crisp"
# crisp's samples start with this paragraph; what follows it is quote
CRISP_REPLY = (CRISP / "email_portuguese.txt").read_text().split("\n\n")[0]


def expected_reply(eml: Path) -> str:
    """talon's expected result: the ``_reply_text`` beside a sample, else "Hello" (its suite's rule)."""
    expected = eml.with_name(eml.stem + "_reply_text")
    return expected.read_text().strip() if expected.exists() else "Hello"


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip().splitlines()]


@pytest.mark.parametrize("eml", sorted((TALON / "standard_replies").glob("*.eml")), ids=lambda p: p.name)
def test_each_client_reply_is_stripped_of_its_quote_exactly(eml: Path) -> None:
    parsed = parse(eml.read_bytes())
    stripped = strip(parsed.text)
    assert lines(stripped.reply) == lines(expected_reply(eml))
    assert stripped.text == "Hello"  # the bot reads no signature either (iPhone, Sparrow)
    assert stripped.original == parsed.text  # agents still see everything
    assert stripped.quoted == (lines(stripped.reply) != lines(parsed.text))


@pytest.mark.parametrize("page", sorted((TALON / "html_replies").glob("*.html")), ids=lambda p: p.name)
def test_each_html_only_reply_is_stripped_by_its_markup(page: Path) -> None:
    stripped = strip(html_reply(page.read_text()))
    assert re.sub(r"\s+", "", stripped.reply) == "Hi.Iamfine.Thanks,Alex"
    assert stripped.text == "Hi. I am fine."  # "Thanks, Alex" is a sign-off


@pytest.mark.parametrize(
    "sample",
    [
        "email_portuguese.txt",  # Em 10 de julho de 2017 às 16:32:35, John Doe (\ncontact@...) escreveu:
        "email_gmail_split_line_from.txt",  # On ... The Hiring Engine <\naddress> wrote:
        "email_outlook_split_line_from.txt",  # From: Name\n<address>\nSent: ...
        "email_original_message.txt",  # -----original message-----
    ],
)
def test_crisp_samples_keep_only_their_first_paragraph(sample: str) -> None:
    stripped = strip((CRISP / sample).read_text())
    assert stripped.text == CRISP_REPLY and stripped.quoted


@pytest.mark.parametrize(
    "sample",
    ["email_tricky_2_url_with_wrote.txt", "email_tricky_6_regards_in_sentence.txt"],
)
def test_wrote_in_a_url_or_regards_in_a_sentence_is_not_a_quote(sample: str) -> None:
    original = (CRISP / sample).read_text()
    stripped = strip(original)
    assert not stripped.quoted
    assert "This is the actual content" in stripped.text or "in them." in stripped.text


def test_an_iphone_footer_is_a_signature_for_the_bot_only() -> None:
    stripped = strip((CRISP / "email_iphone.txt").read_text())
    assert stripped.text == "Here is another email"
    assert stripped.reply == "Here is another email\n\nSent from my iPhone"


CASES = [
    # pt-BR: Gmail's header wrapped over two lines, a sign-off
    (
        "Olá, o pedido ainda não chegou.\n\nAtenciosamente,\nMaria Souza\n\n"
        "Em qua., 5 de jun. de 2024 às 10:00, Loja Exemplo <suporte@loja.com>\nescreveu:\n\n"
        "> Seu pedido foi enviado.\n> Obrigado!",
        "Olá, o pedido ainda não chegou.",
    ),
    # pt-BR: iPhone, the header quoted too
    (
        "Olá, segue o comprovante.\n\nEnviado do meu iPhone\n\n"
        "> Em 5 de jun. de 2024, às 10:00, Loja <suporte@loja.com> escreveu:\n>\n> Seu pedido",
        "Olá, segue o comprovante.",
    ),
    # pt-BR: Outlook's header block
    (
        "Bom dia, ainda aguardo.\n\n________________________________\nDe: Loja Exemplo <suporte@loja.com>\n"
        "Enviado: quarta-feira, 5 de junho de 2024 10:00\nPara: Maria <maria@x.com>\n"
        "Assunto: Re: Pedido 123\n\n"
        "Seu pedido foi enviado.",
        "Bom dia, ainda aguardo.",
    ),
    # pt-BR: Outlook desktop's separator and "Enviada em"
    (
        "Preciso da segunda via do boleto.\n\n-----Mensagem original-----\nDe: suporte@loja.com\n"
        "Enviada em: quarta-feira, 5 de junho de 2024 10:00\nPara: maria@x.com\n"
        "Assunto: Pedido\n\ntexto antigo",
        "Preciso da segunda via do boleto.",
    ),
    # pt-BR: Outlook for Android's footer
    (
        "Pode cancelar, por favor.\n\nObter o Outlook para Android\n\n"
        "From: Loja <suporte@loja.com>\nSent: Wednesday, June 5, 2024 10:00 AM\nTo: Maria\nSubject: Pedido",
        "Pode cancelar, por favor.",
    ),
    # es: Gmail
    (
        "Hola, todavía no llegó.\n\nSaludos,\nJuan\n\n"
        "El lun, 3 jun 2024 a las 10:00, Tienda (<soporte@tienda.com>) escribió:\n\n> Su pedido fue enviado.",
        "Hola, todavía no llegó.",
    ),
    # es: iPhone and Outlook's separator
    (
        "Gracias por la ayuda, ya funciona.\n\nEnviado desde mi iPhone\n\n-----Mensaje original-----\n"
        "De: Tienda\nEnviado el: lunes, 3 de junio de 2024\nPara: Juan\nAsunto: Pedido\n\nviejo",
        "Gracias por la ayuda, ya funciona.",
    ),
    # en: header wrapped over two lines, Outlook's mobile footer
    (
        "It works now, thank you.\n\nGet Outlook for Android\n\n"
        "On Mon, Jun 3, 2024 at 10:00 AM Shop <support@shop.com>\nwrote:\n\n> Your order shipped.",
        "It works now, thank you.",
    ),
    # a "--" signature; a customer's dash list is not one
    (
        "Meus itens:\n- camiseta azul\n- calça preta\n\n--\nAna Lima\nGerente de compras",
        "Meus itens:\n- camiseta azul\n- calça preta",
    ),
    # bottom-posting: the quote first, the answer below it
    (
        "Em 5 de jun. de 2024, Loja <suporte@loja.com> escreveu:\n> Qual o número do pedido?\n\nÉ o 4521.",
        "É o 4521.",
    ),
]


@pytest.mark.parametrize(("original", "expected"), CASES)
def test_pt_en_and_es_quotes_and_signatures_are_stripped_for_the_bot(original: str, expected: str) -> None:
    stripped = strip(original)
    assert stripped.text == expected
    assert stripped.quoted or "--" in original
    assert stripped.original == original


def test_a_mail_that_is_all_quote_is_kept_whole() -> None:
    original = "> Seu pedido foi enviado.\n> Obrigado!"
    stripped = strip(original)
    assert stripped.text == original and not stripped.quoted


def test_a_plain_message_is_left_as_it_is() -> None:
    original = "Vocês entregam em Curitiba?\nObrigado pela atenção"
    stripped = strip(original)
    assert (stripped.text, stripped.reply, stripped.quoted) == (original, original, False)


def test_a_long_paragraph_is_kept_whole_and_a_huge_mail_is_stripped_in_well_under_a_second() -> None:
    paragraph = "Olá, " + "segue o detalhamento do problema com o pedido 4521. " * 80  # one 4,000-char line
    stripped = strip(f"{paragraph}\n\nEm 5 de jun. de 2024, Loja <s@loja.test> escreveu:\n> Qual o problema?")
    assert stripped.text == paragraph.strip() and stripped.quoted
    # one line of 360,000 characters full of what quote headers are made of (dates, addresses)
    started = time.perf_counter()
    strip("On 2024 10:30 wrote x@y.test: " * 12000)
    strip(("Em 2024 10:30 <x@y.test> escreveu " * 14 + "\n") * 3000)
    assert time.perf_counter() - started < 3


def test_an_html_only_mail_is_stripped_by_its_markup_and_a_plain_one_by_its_text() -> None:
    page = (TALON / "html_replies" / "gmail.html").read_text()
    head = b"From: alex@x.test\r\nSubject: Re: Test\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    raw = head + page.encode()
    parsed = parse(raw)
    stripped = strip_email(parsed)
    assert stripped.text == "Hi. I am fine." and stripped.quoted
    assert "How are you?" in stripped.original  # the quote stays for agents
    plain = parse((TALON / "standard_replies" / "gmail.eml").read_bytes())
    assert strip_email(plain) == strip(plain.text)
