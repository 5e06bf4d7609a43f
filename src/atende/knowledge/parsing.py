"""Turn a document's bytes into a title and a list of blocks, each under its heading path.

Markdown is rendered to HTML by ``markdown-it-py`` and then read like any HTML page with
BeautifulSoup, so both formats share one structure walker. Plain text is split on blank
lines. PDF, DOCX and CSV FAQ files are read by ``atende.knowledge.formats``, which
``parse`` calls; ``formats`` never imports this module (the types both build live in
``knowledge.parsed``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString, PageElement
from markdown_it import MarkdownIt

from atende.errors import InvalidInput
from atende.knowledge import formats
from atende.knowledge.parsed import Block, ParsedDocument, decode

CONTENT_TYPES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".txt": "text",
    ".text": "text",
    ".pdf": "pdf",
    ".docx": "docx",
    ".csv": "csv",  # a FAQ: question and answer columns
}
BLOCK_TAGS = ["p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "tr"]
HEADINGS = {f"h{i}": i for i in range(1, 7)}
SKIP_TAGS = ["script", "style", "nav", "footer", "header", "noscript", "template", "svg"]
NESTED_TAGS = ("ul", "ol", "table")
# tags that end a run of loose text (text written straight into a ``div`` or ``body``)
BOUNDARY_TAGS = {"body", "main", "article", "section", "aside", "div", "ul", "ol", "dl", "table", "hr", "br"}
# tags whose text stands apart from what surrounds it
SPACED_TAGS = frozenset({*BLOCK_TAGS, *HEADINGS, *BOUNDARY_TAGS})
TEXT_HOLDERS = frozenset({*BLOCK_TAGS, *HEADINGS})


def content_type_for(filename: str, declared: str | None = None) -> str:
    """The parser for a file: from a declared type or the file's extension."""
    if declared:
        if declared not in set(CONTENT_TYPES.values()):
            kinds = ", ".join(sorted(set(CONTENT_TYPES.values())))
            raise InvalidInput(f"content_type must be one of {kinds}; got '{declared}'")
        return declared
    suffix = PurePath(filename).suffix.lower()
    if suffix not in CONTENT_TYPES:
        raise InvalidInput(
            f"cannot read '{filename}': supported extensions are {', '.join(sorted(CONTENT_TYPES))}"
        )
    return CONTENT_TYPES[suffix]


def _clean(text: str) -> str:
    return " ".join(text.split())


def _text(tag: Tag, skip: frozenset[str] = frozenset()) -> str:
    """The text of ``tag``: words kept as written across inline tags ("<b>Pix</b>, boleto"),
    apart across block tags; comments dropped; children named in ``skip`` left out.

    An explicit stack, not recursion (any nesting depth) and not tree edits (bs4 finds a
    node's position by scanning its siblings, which made long pages quadratic)."""
    parts: list[str] = []
    stack: list[tuple[Iterator[PageElement], bool]] = [(iter(tag.children), False)]
    while stack:
        children, spaced = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if spaced:
                parts.append(" ")  # leaving a block (runs of spaces are folded by _clean)
            continue
        if isinstance(child, Tag):
            if child.name in skip:
                continue
            spaced = child.name in SPACED_TAGS
            if spaced:
                parts.append(" ")
            stack.append((iter(child.children), spaced))
        elif type(child) is NavigableString:  # not a comment or a doctype
            parts.append(str(child))
    return _clean("".join(parts))


def _own_text(tag: Tag) -> str:
    # a list item that holds a nested list: keep only its own line
    return _text(tag, skip=frozenset(NESTED_TAGS))


def _covered(tag: Tag) -> bool:
    """Whether an enclosing block already holds this tag's text.

    A list item keeps only its own line, so the items and rows of a list or table nested
    in it stand as blocks of their own.
    """
    nested = False
    for parent in tag.parents:
        if parent.name in NESTED_TAGS:
            nested = True
        elif parent.name in BLOCK_TAGS:
            return not (parent.name == "li" and nested)
    return False


def parse_html(html: str, fallback_title: str) -> ParsedDocument:
    """The blocks of a page under their headings; text written outside any block (straight
    into a ``div``) is a block of its own, page chrome (scripts, navigation) is dropped."""
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = _clean(title_tag.get_text()) if title_tag else ""
    for tag in soup([*SKIP_TAGS, "head", "title"]):
        tag.decompose()
    path: list[tuple[int, str]] = []
    blocks: list[Block] = []
    loose: list[str] = []  # text outside any block (``<div>Text <b>here</b></div>``)

    def add(text: str) -> None:
        if text.strip("-| "):
            blocks.append(Block(tuple(t for _, t in path), text))

    def flush_loose() -> None:
        add(_clean("".join(loose)))
        loose.clear()

    for node in list(soup.descendants):
        if not isinstance(node, Tag):
            if type(node) is NavigableString and not any(p.name in TEXT_HOLDERS for p in node.parents):
                loose.append(str(node))
            continue
        if node.name in HEADINGS:
            flush_loose()
            level, text = HEADINGS[node.name], _text(node)
            if not text:
                continue
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, text)]
            if not title and level == 1:
                title = text
        elif node.name in BLOCK_TAGS:
            if _covered(node):
                continue
            flush_loose()
            if node.name == "li":
                add("- " + _own_text(node))
            elif node.name == "tr":
                add(" | ".join(_text(c) for c in node.find_all(["td", "th"])))
            else:
                add(_text(node))
        elif node.name in BOUNDARY_TAGS:
            flush_loose()
    flush_loose()
    return ParsedDocument(title=title or fallback_title, blocks=blocks)


def parse(data: bytes, content_type: str, fallback_title: str) -> ParsedDocument:
    """Parse a document; raises ``InvalidInput`` with the reason when it cannot."""
    if content_type in ("pdf", "docx", "csv"):
        reader = {"pdf": formats.parse_pdf, "docx": formats.parse_docx, "csv": formats.parse_csv_faq}
        return reader[content_type](data, fallback_title)
    text = decode(data)
    if content_type == "markdown":
        html = MarkdownIt("commonmark").enable("table").render(text)
        parsed = parse_html(html, fallback_title)
    elif content_type == "html":
        parsed = parse_html(text, fallback_title)
    else:
        paragraphs = [_clean(p) for p in text.replace("\r\n", "\n").split("\n\n")]
        parsed = ParsedDocument(fallback_title, [Block((), p) for p in paragraphs if p])
    if not parsed.blocks:
        raise InvalidInput("the document has no readable text")
    return parsed
