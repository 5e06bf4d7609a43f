"""Reading documents: Markdown, HTML and plain text become a title and blocks under headings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atende.errors import InvalidInput
from atende.knowledge.parsed import Block, decode
from atende.knowledge.parsing import content_type_for, parse
from atende.knowledge.text import words
from tests.conftest import DEMO_KB

SHOP_FAQ = """# Entregas

Enviamos para todo o país.

## Prazos de entrega
Capitais: 2 a 5 dias úteis.

### Interior
De 4 a 10 dias úteis.

## Frete
- Grátis acima de R$ 199,00
- Expresso para o Sudeste
  - 1 a 2 dias úteis

| Região | Prazo |
|---|---|
| Sul | 3 dias |

> Prazos contam a partir da confirmação do pagamento.

```
codigo   de   rastreio
```
"""


def sections(blocks: list[Block]) -> list[tuple[str, str]]:
    return [(" › ".join(b.headings), b.text) for b in blocks]


@pytest.mark.parametrize(
    ("filename", "declared", "kind"),
    [
        ("faq/entregas.md", None, "markdown"),
        ("FAQ.MARKDOWN", None, "markdown"),
        ("site/ajuda.html", None, "html"),
        ("site/ajuda.htm", None, "html"),
        ("notas.txt", None, "text"),
        ("notas.text", None, "text"),
        ("export.pdf", "text", "text"),  # a declared type wins over the extension
    ],
)
def test_the_parser_follows_the_declared_type_or_the_extension(
    filename: str, declared: str | None, kind: str
) -> None:
    assert content_type_for(filename, declared) == kind


@pytest.mark.parametrize("filename", ["slides.pptx", "planilha.xlsx", "foto.png", "sem-extensao"])
def test_an_unsupported_extension_is_rejected_naming_the_supported_ones(filename: str) -> None:
    with pytest.raises(InvalidInput) as error:
        content_type_for(filename)
    assert f"cannot read '{filename}'" in error.value.message
    assert ".md" in error.value.message
    assert ".html" in error.value.message
    assert ".txt" in error.value.message


def test_an_unknown_declared_type_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="must be one of csv, docx, html, markdown, pdf, text"):
        content_type_for("a.md", "xlsx")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the document is empty"),
        (b"  \n\t\n ", "the document is empty"),
        (b"%PDF-1.7\x00\x01\x02binary", "the document looks binary, not text"),
        ("Olá".encode("utf-16"), "the document looks binary, not text"),
        ("Promoção de verão".encode("latin-1"), "the document is not valid UTF-8 (byte 5)"),
    ],
)
def test_empty_binary_and_non_utf8_documents_are_rejected_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse(data, "text", "doc")
    assert error.value.message == message


def test_a_utf8_byte_order_mark_is_not_part_of_the_text() -> None:
    assert decode("\ufeffOlá".encode()) == "Olá"


def test_markdown_headings_become_the_section_path_of_each_block() -> None:
    parsed = parse(SHOP_FAQ.encode(), "markdown", "fallback")
    assert parsed.title == "Entregas"
    assert sections(parsed.blocks) == [
        ("Entregas", "Enviamos para todo o país."),
        ("Entregas › Prazos de entrega", "Capitais: 2 a 5 dias úteis."),
        ("Entregas › Prazos de entrega › Interior", "De 4 a 10 dias úteis."),
        ("Entregas › Frete", "- Grátis acima de R$ 199,00"),
        ("Entregas › Frete", "- Expresso para o Sudeste"),
        ("Entregas › Frete", "- 1 a 2 dias úteis"),
        ("Entregas › Frete", "Região | Prazo"),
        ("Entregas › Frete", "Sul | 3 dias"),
        ("Entregas › Frete", "Prazos contam a partir da confirmação do pagamento."),
        ("Entregas › Frete", "codigo de rastreio"),
    ]


def test_inline_formatting_leaves_the_words_and_punctuation_as_written() -> None:
    md = (
        "# Trocas\n\nClique em **Devolver**, depois em [Enviar](https://x.y/z).\n\n- Use o `CEP`; ou *não*.\n"
    )
    parsed = parse(md.encode(), "markdown", "f")
    assert [b.text for b in parsed.blocks] == [
        "Clique em Devolver, depois em Enviar.",
        "- Use o CEP; ou não.",
    ]


def test_a_later_heading_of_the_same_level_replaces_its_sibling_in_the_path() -> None:
    parsed = parse(b"## A\n\na\n\n### A1\n\na1\n\n## B\n\nb\n\n# C\n\nc", "markdown", "f")
    assert sections(parsed.blocks) == [("A", "a"), ("A › A1", "a1"), ("B", "b"), ("C", "c")]
    assert parsed.title == "C"  # the first top-level heading


def test_markdown_without_a_top_heading_is_titled_by_the_fallback() -> None:
    parsed = parse(b"## Frete\n\nGratis.", "markdown", "frete.md")
    assert parsed.title == "frete.md"
    assert sections(parsed.blocks) == [("Frete", "Gratis.")]


def test_every_item_of_a_nested_list_is_kept() -> None:
    md = "# Guia\n\n1. primeiro\n\n   detalhe\n\n   - aninhado\n     - mais fundo\n2. segundo\n"
    parsed = parse(md.encode(), "markdown", "f")
    assert [b.text for b in parsed.blocks] == [
        "- primeiro detalhe",
        "- aninhado",
        "- mais fundo",
        "- segundo",
    ]


def test_every_demo_knowledge_base_word_survives_parsing() -> None:
    for path in sorted(DEMO_KB.glob("*/*.md")):
        text = path.read_text()
        parsed = parse(text.encode(), "markdown", path.name)
        kept = words(
            " ".join([*(h for b in parsed.blocks for h in b.headings), *(b.text for b in parsed.blocks)])
        )
        assert set(words(text)) <= set(kept), path


HELP_PAGE = """<!DOCTYPE html>
<html lang="pt">
<head><title>Central de Ajuda — Pagamentos</title><style>p { color: red }</style></head>
<body>
  <header>Loja Exemplo</header>
  <nav><a href="/">Início</a> <a href="/ajuda">Ajuda</a></nav>
  <script>window.track("pageview")</script>
  <main>
    <h1>Pagamentos</h1>
    <p>Aceitamos <strong>Pix</strong>, boleto e cartão.</p>
    <h2>Parcelamento</h2>
    <div class="answer">Até 10 vezes <em>sem juros</em>.<!-- revisar --></div>
    <table><tr><th>Parcelas</th><th>Mínimo</th></tr><tr><td>10x</td><td>R$ 100</td></tr></table>
    <noscript>Ative o JavaScript</noscript>
  </main>
  <footer>© Loja Exemplo</footer>
</body>
</html>"""


def test_html_keeps_the_content_and_drops_scripts_navigation_and_chrome() -> None:
    parsed = parse(HELP_PAGE.encode(), "html", "ajuda.html")
    assert parsed.title == "Central de Ajuda — Pagamentos"
    assert sections(parsed.blocks) == [
        ("Pagamentos", "Aceitamos Pix, boleto e cartão."),
        ("Pagamentos › Parcelamento", "Até 10 vezes sem juros."),
        ("Pagamentos › Parcelamento", "Parcelas | Mínimo"),
        ("Pagamentos › Parcelamento", "10x | R$ 100"),
    ]
    everything = " ".join(b.text for b in parsed.blocks)
    for dropped in ("pageview", "color", "Início", "Loja Exemplo", "JavaScript", "revisar"):
        assert dropped not in everything


def test_html_without_a_title_tag_is_titled_by_its_first_top_heading() -> None:
    parsed = parse(b"<h2>Sub</h2><p>a</p><h1>Principal</h1><p>b</p>", "html", "f.html")
    assert parsed.title == "Principal"


def test_html_text_outside_paragraphs_is_kept_under_its_heading() -> None:
    html = "<body>Boas-vindas<h2>Trocas</h2>Em até 30 dias.<br>Sem custo.<div>Leve à loja.</div></body>"
    parsed = parse(html.encode(), "html", "f.html")
    assert sections(parsed.blocks) == [
        ("", "Boas-vindas"),
        ("Trocas", "Em até 30 dias."),
        ("Trocas", "Sem custo."),
        ("Trocas", "Leve à loja."),
    ]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"<html><head><title>Vazio</title></head><body><script>x()</script></body></html>", "html"),
        (b"<nav>menu</nav>", "html"),
        (b"---\n\n***\n", "markdown"),
    ],
)
def test_a_document_with_no_readable_text_is_rejected(data: bytes, kind: str) -> None:
    with pytest.raises(InvalidInput, match="the document has no readable text"):
        parse(data, kind, "f")


def test_plain_text_is_split_into_paragraphs_on_blank_lines() -> None:
    parsed = parse(
        b"Primeiro paragrafo\ncontinua aqui.\r\n\r\nSegundo.\n\n\n\nTerceiro.", "text", "notas.txt"
    )
    assert parsed.title == "notas.txt"
    assert sections(parsed.blocks) == [
        ("", "Primeiro paragrafo continua aqui."),
        ("", "Segundo."),
        ("", "Terceiro."),
    ]


@given(st.text(min_size=1).filter(lambda t: t.strip() and "\x00" not in t))
def test_plain_text_keeps_every_word(text: str) -> None:
    parsed = parse(text.encode(), "text", "f.txt")
    assert words(" ".join(b.text for b in parsed.blocks)) == words(text)


@given(st.lists(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1), min_size=1))
def test_html_paragraphs_keep_every_word(paragraphs: list[str]) -> None:
    html = "".join(f"<p>{p}</p>" for p in paragraphs)
    parsed = parse(html.encode(), "html", "f.html")
    assert [b.text for b in parsed.blocks] == paragraphs
