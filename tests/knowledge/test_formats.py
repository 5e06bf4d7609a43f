"""PDF, DOCX and CSV FAQ documents: read into blocks, indexed, found by the bot; bad files
fail with a reason and leave the knowledge base as it was. Test files are made here with
``fpdf2``, ``pypdf`` and ``python-docx``."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

from atende.errors import InvalidInput
from atende.knowledge.formats import MAX_EXPANDED_BYTES, parse_csv_faq, parse_docx, parse_pdf
from atende.knowledge.parsing import content_type_for, parse
from tests.conftest import CompanyCtx, ask

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def make_pdf(pages: list[str], title: str = "Política de trocas") -> bytes:
    pdf = FPDF()
    pdf.set_title(title)
    try:
        pdf.add_font("DejaVu", fname=FONT)
        pdf.set_font("DejaVu", size=12)
    except (FileNotFoundError, RuntimeError):
        pdf.set_font("Helvetica", size=12)  # Latin-1 covers Portuguese accents
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Manual do cliente"
    document.add_heading("Garantia", level=1)
    document.add_paragraph("Todos os liquidificadores têm garantia de um ano contra defeitos de fabricação.")
    document.add_heading("Assistência técnica", level=2)
    document.add_paragraph("Os reparos são feitos em oficinas autorizadas, sem custo durante a garantia.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Produto", "Garantia"
    table.cell(1, 0).text, table.cell(1, 1).text = "Batedeira", "6 meses"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


FAQ_CSV = "pergunta,resposta\nVocês entregam no sábado?,Sim: entregas aos sábados até as 14h.\n"
RETURNS = (
    "Você pode devolver um produto em até 30 dias após o recebimento, sem custo.\n\n"
    "O reembolso é feito em até 5 dias úteis depois que o produto chega ao nosso depósito."
)


def test_a_pdf_gives_its_text_page_by_page_and_its_title() -> None:
    parsed = parse_pdf(make_pdf([RETURNS, "Produtos personalizados não podem ser trocados."]), "x.pdf")
    assert parsed.title == "Política de trocas"
    # a PDF keeps no paragraph marks: each page is a block (the chunker splits long ones)
    assert [b.headings for b in parsed.blocks] == [("p. 1",), ("p. 2",)]
    assert "reembolso é feito em até 5 dias úteis" in parsed.blocks[0].text
    assert parsed.blocks[1].text == "Produtos personalizados não podem ser trocados."


def test_a_docx_gives_paragraphs_under_headings_and_table_rows() -> None:
    parsed = parse_docx(make_docx(), "x.docx")
    assert parsed.title == "Manual do cliente"
    assert (
        ("Garantia",),
        "Todos os liquidificadores têm garantia de um ano contra defeitos de fabricação.",
    ) in [(b.headings, b.text) for b in parsed.blocks]
    assert any(b.headings == ("Garantia", "Assistência técnica") for b in parsed.blocks)
    assert "Batedeira | 6 meses" in [b.text for b in parsed.blocks]


def test_a_docx_table_stays_under_the_heading_it_follows() -> None:
    document = docx.Document()
    document.add_heading("Frete", level=1)
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Sul", "R$ 20"
    document.add_heading("Trocas", level=1)
    document.add_paragraph("Trocas em até 30 dias.")
    out = io.BytesIO()
    document.save(out)
    blocks = parse_docx(out.getvalue(), "x.docx").blocks
    assert [(b.headings, b.text) for b in blocks] == [
        (("Frete",), "Sul | R$ 20"),
        (("Trocas",), "Trocas em até 30 dias."),
    ]


def broken_docx_xml() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(make_docx()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            target.writestr(item, b"<w:document><unclosed>" if item.filename == "word/document.xml" else data)
    return out.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        "pergunta,resposta\nVocês entregam no sábado?,Sim — entregas aos sábados até as 14h.\n",
        "Question;Answer\r\nVocês entregam no sábado?;Sim — entregas aos sábados até as 14h.\r\n",
        "pregunta\trespuesta\nVocês entregam no sábado?\tSim — entregas aos sábados até as 14h.\n",
    ],
    ids=["pt-comma", "en-semicolon-crlf", "es-tab"],
)
def test_each_csv_faq_row_is_an_answer_under_its_question(content: str) -> None:
    parsed = parse_csv_faq(content.encode(), "faq.csv")
    assert [(b.headings, b.text) for b in parsed.blocks] == [
        (("Vocês entregam no sábado?",), "Sim — entregas aos sábados até as 14h.")
    ]


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([RETURNS]))))
    writer.encrypt("segredo")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_bomb() -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/document.xml", "w") as f,
    ):
        chunk = b"\0" * (1024 * 1024)
        for _ in range(MAX_EXPANDED_BYTES // len(chunk) + 2):
            f.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("corrupt.pdf", make_pdf([RETURNS])[:400], "the PDF cannot be read"),
        ("locked.pdf", encrypted_pdf(), "password-protected"),
        ("scan.pdf", make_pdf([""]), "no text layer"),
        ("fake.pdf", b"this is plain text, not a PDF", "the PDF cannot be read"),
        ("not-a-zip.docx", b"plain text with a .docx name", "not a ZIP archive"),
        ("bomb.docx", zip_bomb(), "a ZIP bomb?"),
        ("empty.pdf", b"", "the PDF cannot be read"),
        ("no-columns.csv", b"nome,email\nana,a@x.com\n", "needs a header row with a question column"),
        ("empty.csv", b"\n", "empty"),
        ("broken-xml.docx", broken_docx_xml(), "the DOCX cannot be read"),
        ("runaway-quote.csv", b'pergunta,resposta\n"' + b"x" * 200_000 + b"\n", "the CSV cannot be read"),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v else "",
)
def test_a_bad_file_fails_with_its_reason(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason.replace("?", r"\?")):
        parse(data, content_type_for(name), name)


async def test_pdf_docx_and_csv_are_ingested_and_the_bot_answers_from_them(
    company: CompanyCtx, ingest_dir: Path
) -> None:
    files = {
        "trocas.pdf": make_pdf([RETURNS]),
        "manual.docx": make_docx(),
        "faq.csv": FAQ_CSV.encode(),
    }
    for name, data in files.items():
        (ingest_dir / name).write_bytes(data)
        r = await company.client.post(
            "/v1/documents?wait=true", json={"path": f"{ingest_dir.name}/{name}", "language": "pt"}
        )
        assert r.status_code == 201, r.text
    kinds = {
        d["source"].rsplit("/", 1)[-1]: d["content_type"]
        for d in (await company.client.get("/v1/documents")).json()
    }
    assert kinds == {"trocas.pdf": "pdf", "manual.docx": "docx", "faq.csv": "csv"}
    checks = [
        ("Em quantos dias úteis sai o reembolso?", "5 dias úteis", "Política de trocas"),
        ("Qual a garantia dos liquidificadores?", "garantia de um ano", "Manual do cliente"),
        ("Vocês entregam no sábado?", "aos sábados até as 14h", "faq"),
    ]
    for question, expected, title in checks:
        body = await ask(company.client, question)
        assert expected in body["reply"]["text"], (question, body["reply"])
        assert body["reply"]["meta"]["citations"][0]["title"].startswith(title), body["reply"]["meta"]


async def test_a_bad_file_changes_nothing_already_stored(company: CompanyCtx, ingest_dir: Path) -> None:
    (ingest_dir / "bom.pdf").write_bytes(make_pdf([RETURNS]))
    r = await company.client.post("/v1/documents?wait=true", json={"path": f"{ingest_dir.name}/bom.pdf"})
    assert r.status_code == 201, r.text
    before = (await company.client.get("/v1/documents")).json()
    (ingest_dir / "bom.pdf").write_bytes(encrypted_pdf())  # replaced by a locked copy
    r = await company.client.post("/v1/documents?wait=true", json={"path": f"{ingest_dir.name}/bom.pdf"})
    assert r.status_code == 422 and "password-protected" in r.json()["detail"]
    assert (await company.client.get("/v1/documents")).json() == before
