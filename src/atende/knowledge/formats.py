"""Binary and tabular documents: PDF (``pypdf``), DOCX (``python-docx``) and CSV FAQ files.

Each parser returns the same ``ParsedDocument`` as Markdown and HTML (blocks under their
heading paths), or raises ``InvalidInput`` with a reason a person can act on: a corrupt or
password-protected PDF, a PDF without a text layer, a DOCX that is not a ZIP or expands
to more than ``MAX_EXPANDED_BYTES`` (a ZIP bomb), a CSV without question and answer
columns. Nothing is written before parsing succeeds, so a bad file affects nothing else.

``knowledge.parsing.parse`` calls these readers; this module imports only the types they
build (``knowledge.parsed``), never ``parsing``.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

from lxml import etree

from atende.errors import InvalidInput
from atende.knowledge.parsed import Block, ParsedDocument, decode

MAX_EXPANDED_BYTES = 50 * 1024 * 1024  # what a DOCX may expand to
MAX_RATIO = 200  # expanded / compressed, over the whole archive
MAX_PAGES = 2000

QUESTION_COLUMNS = ("question", "pergunta", "pregunta", "q")
ANSWER_COLUMNS = ("answer", "resposta", "respuesta", "a")
_SPACES = re.compile(r"[ \t\u00a0]+")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def parse_pdf(data: bytes, fallback_title: str) -> ParsedDocument:
    """Each page's paragraphs, under the heading ``p. N``."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise InvalidInput("the PDF is password-protected: upload a copy without a password")
        pages = reader.pages
        if len(pages) > MAX_PAGES:
            raise InvalidInput(f"the PDF has {len(pages)} pages; the limit is {MAX_PAGES}")
        blocks: list[Block] = []
        for number, page in enumerate(pages, 1):
            text = page.extract_text() or ""
            for paragraph in re.split(r"\n\s*\n", text):
                cleaned = _clean(paragraph.replace("\n", " "))
                if cleaned:
                    blocks.append(Block((f"p. {number}",), cleaned))
        metadata = reader.metadata
        title = _clean(str(metadata.title)) if metadata is not None and metadata.title else ""
    except InvalidInput:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        raise InvalidInput(f"the PDF cannot be read ({type(exc).__name__}): is it a PDF, and whole?") from exc
    if not blocks:
        raise InvalidInput("the PDF has no text layer (a scan?): nothing to index")
    return ParsedDocument(title or fallback_title, blocks)


def _check_archive(data: bytes, kind: str) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"the file is not a {kind} (not a ZIP archive)") from exc
    with archive:
        expanded = sum(info.file_size for info in archive.infolist())
    if expanded > MAX_EXPANDED_BYTES or expanded > MAX_RATIO * max(len(data), 1):
        raise InvalidInput(
            f"the {kind} expands to {expanded:,} bytes from {len(data):,}: refused (a ZIP bomb?)"
        )


def parse_docx(data: bytes, fallback_title: str) -> ParsedDocument:
    """Paragraphs under their headings (``Heading N`` styles), tables row by row."""
    _check_archive(data, "DOCX")
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
        title = _clean(document.core_properties.title or "")
        first_title, blocks = _docx_blocks(document)
    except (
        PackageNotFoundError,
        KeyError,
        ValueError,
        TypeError,
        zipfile.BadZipFile,
        etree.LxmlError,
    ) as exc:
        raise InvalidInput(f"the DOCX cannot be read ({type(exc).__name__}): is it a Word document?") from exc
    title = title or first_title
    if not blocks:
        raise InvalidInput("the DOCX has no readable text")
    return ParsedDocument(title or fallback_title, blocks)


def _docx_blocks(document: Any) -> tuple[str, list[Block]]:
    """The first ``Title`` paragraph, and the body in document order: paragraphs under their
    headings, tables row by row where they stand (a table belongs to the heading above it)."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    title = ""
    path: list[tuple[int, str]] = []
    blocks: list[Block] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            for row in item.rows:
                cells = [_clean(cell.text) for cell in row.cells]
                if any(cells):
                    blocks.append(Block(tuple(t for _, t in path), " | ".join(cells)))
            continue
        if not isinstance(item, Paragraph):
            continue
        text = _clean(item.text)
        if not text:
            continue
        style = item.style.name if item.style is not None else ""
        if style == "Title":
            title = title or text
            continue
        if style.startswith("Heading"):
            level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, text)]
            continue
        blocks.append(Block(tuple(t for _, t in path), text))
    return title, blocks


def parse_csv_faq(data: bytes, fallback_title: str) -> ParsedDocument:
    """One block a row: the answer under its question (a chunk that keeps its question)."""
    text = decode(data)
    dialect: type[csv.Dialect] | csv.Dialect
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise InvalidInput(f"the CSV cannot be read: {exc}") from exc
    if not rows:
        raise InvalidInput("the CSV is empty")
    header = [h.strip().lower() for h in rows[0]]
    try:
        q = next(i for i, h in enumerate(header) if h in QUESTION_COLUMNS)
        a = next(i for i, h in enumerate(header) if h in ANSWER_COLUMNS)
    except StopIteration:
        raise InvalidInput(
            "a CSV FAQ needs a header row with a question column (question, pergunta, pregunta) and an "
            f"answer column (answer, resposta, respuesta); found: {', '.join(rows[0]) or 'nothing'}"
        ) from None
    blocks = []
    for row in rows[1:]:
        if len(row) > max(q, a):
            question, answer = _clean(row[q]), _clean(row[a])
            if question and answer:
                blocks.append(Block((question,), answer))
    if not blocks:
        raise InvalidInput("the CSV has no row with both a question and an answer")
    return ParsedDocument(fallback_title, blocks)
