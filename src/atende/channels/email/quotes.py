"""What the customer wrote in an e-mail, without the conversation it quotes and without their
signature: what the bot reads. The full original stays with the message for agents.

``mail-parser-reply`` (MIT, maintained) splits a body at the quote headers of many mail
clients and languages (``On … wrote:``, Outlook's ``From:/Sent:/To:/Subject:`` block,
``-----Original Message-----``) and finds signatures and mobile footers. It has no
Portuguese, and its Spanish ``El … escribió:`` only matches with two spaces before
``escribió``: ``_LANGUAGES`` adds Brazilian Portuguese (``Em … escreveu:``, ``De:/Enviado:/
Para:/Assunto:``, ``-----Mensagem original-----``, ``Enviado do meu iPhone``, ``Atenciosamente``)
and completes Spanish and English; the library reads them through ``_Message``.

What it leaves that mail needs, done here:

- quote headers found by their shape in any language, before the library reads the body
  (``_cut_generic``): a date or time and an address ending in ``:``, even wrapped over two
  lines (``02.04.2012 14:20 пользователь "bob" <bob@x> написал:``); ``On … wrote`` without its
  colon; a separator of dashes around words (``-------- Message d'origine --------``);
- ``>`` quoted lines: removed from the reply, with a line a client wrapped out of the block
  and with the header (up to three wrapped lines) that introduced them;
- the ``From:`` line of an Outlook block and the rule above a quote, left dangling at the end;
- HTML-only mail: the quote is found in the markup (``blockquote``, Gmail's ``gmail_quote``,
  Outlook's ``divRplyFwdMsg`` and bordered header, Thunderbird's ``moz-cite-prefix``, Yahoo's
  ``yahoo_quoted``, a Hotmail ``stopSpelling`` rule) before the HTML becomes text (``html_reply``);
- bounded time: the library's patterns take quadratic time on long lines, so lines over
  ``LINE_MAX`` are masked from them, and only the first ``STRIP_MAX`` characters are searched.

Pure functions; tuned on ``../shared/data/email/`` by ``benchmarks/email_quotes.py`` (no rule
names a file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, Tag
from mailparser_reply.constants import MAIL_LANGUAGES, QUOTED_MATCH_INCLUDE
from mailparser_reply.parser import EmailMessage

from atende.channels.email.parse import ParsedEmail, html_to_text

# Portuguese, and what Spanish and English lack, in the library's shape: the quote headers of
# a language (``wrote_header``: one line, or two when a client wraps it; ``from_header``: two
# or more of Outlook's header lines), its disclaimers, the sign-offs that start a signature,
# and the footers mobile clients append (``sent_from``)
_SEPARATOR = r"^(?:> ?)*(-{2,} ?(?:Original Message|Mensagem original|Mensaje original|Mensagem encaminhada|Mensaje reenviado|Forwarded message) ?-{2,})$"  # noqa: E501
_LANGUAGES: dict[str, dict[str, str | list[str]]] = {
    "pt": {
        "wrote_header": r"^(?!Em[.\s]*Em\s(?:.+?\s?.+?)\sescreveu:)("
        + QUOTED_MATCH_INCLUDE
        + r"Em\s(?:.+?\s?.+?)\s?escreveu:)$|"
        + _SEPARATOR,
        "from_header": r"((?:(?:^|\n|\n"
        + QUOTED_MATCH_INCLUDE
        + r")[* ]*(?:De|Enviad[oa](?: em)?|Para|Assunto|Data|Cc|Cco):[ *]*(?:\s{,2}).*){2,}(?:\n.*){,1})",
        "disclaimers": [
            "Aviso:",
            "Aviso legal:",
            "Confidencialidade:",
            r"AVISO DE CONFIDENCIALIDADE",
        ],
        "signatures": [
            "Atenciosamente",
            r"Att[.,]?$",
            r"Atte[.,]?$",
            "Abraços",
            r"Abs[.,]?$",
            "Cordialmente",
            "Saudações",
            r"Um abraço",
            r"Grato[.,!]?$",
            r"Grata[.,!]?$",
            r"Obrigad[oa][.,!]?$",
            r"Muito obrigad[oa][.,!]?$",
        ],
        "sent_from": r"Enviado do meu|Enviado de meu|Enviado do|Enviado pelo|Obter o Outlook para|Baixe o Outlook para",  # noqa: E501
    },
    "es": {
        "wrote_header": r"^(?!El[.\s]*El\s(?:.+?\s?.+?)\sescribió:)("
        + QUOTED_MATCH_INCLUDE
        + r"El\s(?:.+?\s?.+?)\s?escribió:)$|"
        + _SEPARATOR,
        "from_header": r"((?:(?:^|\n|\n"
        + QUOTED_MATCH_INCLUDE
        + r")[* ]*(?:De|Enviado(?: el)?|Para|Asunto|Fecha|CC|CCO|Organización):[ *]*(?:\s{,2}).*){2,}(?:\n.*){,1})",  # noqa: E501
        "disclaimers": list(MAIL_LANGUAGES["es"]["disclaimers"]),
        "signatures": [
            "Saludos",
            "Atentamente",
            r"Gracias[.,!]?$",
            "Un saludo",
            "Cordialmente",
            r"Muchas gracias[.,!]?$",
        ],
        "sent_from": r"Enviado desde mi|Enviado desde|Obtener Outlook para|Descargar Outlook para",
    },
    "en": {
        **MAIL_LANGUAGES["en"],
        "sent_from": r"Sent from my|Sent from \w+<https?://[^\s>]*|Sent from|Sent with|Get Outlook for|Sent via",  # noqa: E501
    },
    "fr": {
        **MAIL_LANGUAGES["fr"],
        # French puts a space before the colon, and Outlook writes "Envoyé le :"
        "from_header": r"((?:(?:^|\n|\n"
        + QUOTED_MATCH_INCLUDE
        + r")[* ]*(?:De|Envoyé(?: le)?|À|A|Objet|Date|Cc|Copie à)[ \xa0]?:[ *]*(?:\s{,2}).*){2,}(?:\n.*){,1})",  # noqa: E501
        "sent_from": r"Envoyé depuis|Envoyé de mon|Envoyé à partir de|Obtenir Outlook pour",
    },
}
STRIP_MAX = 64_000  # characters of a body searched for its quote
HTML_MAX = 200_000  # characters of HTML searched for a quote by its markup
LINE_MAX = 500  # a longer line is text, never a quote header
# the customers' languages first; the library's others too, for the mail clients of
# customers' customers (a thread forwarded from a German supplier)
LANGUAGES = ("pt", "es", "en", *(code for code in MAIL_LANGUAGES if code not in ("pt", "es", "en", "david")))

# quote headers in any language, found by their shape rather than their words, each at the
# start of a line: a line (or two, when a client wraps it) with a date or a time and an
# address that ends in ``:`` (``30.09.2017, 18.30, "John" <j@x.com>:``, ``ср, 30 апр. 2025 г.
# в 15:19, John <j@x.com>:``); ``On … wrote`` without its colon; and a separator of dashes
# around words (``-------- Message d'origine --------``, ``---- On … wrote ----``)
_WHEN = r"(?:\d{1,2}[:.h]\d{2}|(?:19|20)\d{2})"
_ADDRESS = r"<?[\w.+-]+@[\w-]+(?:\.[\w-]+)+>?"
_GENERIC_HEADERS = (
    re.compile(r"^-*[ \t]*On\s[^\n]*\d[^\n]*\swrote[ \t]*-*[ \t]*$", re.M),
    re.compile(r"^[ \t]*-{2,}[ \t]*[^\W\d_][^\n]{2,80}?[ \t]*-{2,}[ \t]*$(?=\s*\n[^\n:]{1,30}:)", re.M),
    re.compile(r"^[ \t]*-{2,}[ \t]*[^\W\d_][^\n]*\d[^\n]*?[ \t]*-{2,}[ \t]*$", re.M),
    re.compile(r"^[ \t]*={4,}[ \t]*$(?=\s*\n[^\n:]{1,30}:)", re.M),
)
_WHEN_RE = re.compile(_WHEN)
_ADDRESS_RE = re.compile(_ADDRESS)
_TRAILING_RULE = re.compile(r"(?:\n[ \t]*[_=\-*]{4,}[ \t]*)+\s*\Z")


class _Message(EmailMessage):  # type: ignore[misc]
    """The library's message, reading our patterns for a language before its own."""

    def _get_language_regex(self, language: str, regex_key: str) -> str:
        value = _LANGUAGES.get(language, {}).get(regex_key)
        if value is None:
            return str(super()._get_language_regex(language, regex_key))
        return "|".join(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Stripped:
    """``text``: what the bot reads (no quote, no signature, no disclaimer); ``reply``: the
    customer's words with their signature (no quote); ``original``: everything, for agents.
    ``quoted``: something was removed from ``reply``."""

    text: str
    reply: str
    original: str
    quoted: bool


_QUOTED_LINE = re.compile(r"^\s*>")
# the first lines of a wrapped header end in a comma or "<" (``On Nov 21, 2014,`` /
# ``at 10:18,`` / ``John Doe <``); a sentence of the customer's does not
_WRAPPED_HEADER = re.compile(r"[,<]\s*$")
_HEADERISH = re.compile(r"(\d|@|wrote|escreveu|escribió|schrieb|écrit)", re.IGNORECASE)


def strip(original: str, languages: tuple[str, ...] = LANGUAGES) -> Stripped:
    """Split a plain-text body into the customer's reply and what it quotes. A body that is
    nothing but quote (a forward with no word of its own) is kept whole: the bot then reads
    it all rather than nothing."""
    body = original.replace("\r\n", "\n").replace("\r", "\n")
    if len(body) > STRIP_MAX:
        # what a customer writes above a quote fits many times in this; the rest of a longer
        # mail is a long thread, not read for a reply (the regular expressions cost time)
        head = strip(body[:STRIP_MAX], languages)
        if head.quoted:
            return Stripped(head.text, head.reply, original, True)
        return Stripped(body.strip(), body.strip(), original, False)
    masked, long_lines = _mask(body)
    message = _Message(text=_cut_generic(masked), languages=list(languages), keep_hyphen_lists=True).read()
    first = message.replies[0] if message.replies else None
    if first is None:
        return Stripped(original.strip(), original.strip(), original, False)
    reply = _unmask(_drop_quoted(first.full_body), long_lines)
    text = _unmask(_drop_quoted(first.body), long_lines)
    if not reply:  # all quote: keep the whole
        whole = body.strip()
        return Stripped(whole, whole, original, False)
    quoted = _normal(reply) != _normal(body)
    return Stripped(text or reply, reply, original, quoted)


def strip_email(parsed: ParsedEmail) -> Stripped:
    """What the bot reads of a parsed e-mail: its plain body stripped, or, for HTML-only
    mail, its HTML with the quote cut by its markup first (``original`` is then the whole
    HTML made text)."""
    if parsed.text_from_html and parsed.html:
        stripped = strip(html_reply(parsed.html))
        quoted = stripped.quoted or _normal(stripped.reply) != _normal(parsed.text)
        return Stripped(stripped.text, stripped.reply, parsed.text, quoted)
    return strip(parsed.text)


def _mask(body: str) -> tuple[str, list[str]]:
    """``body`` with each line longer than ``LINE_MAX`` replaced by a short placeholder: no
    quote header is that long, and the library's patterns take quadratic time on such lines
    (a paragraph a client sent as one line, HTML made text)."""
    long_lines: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        long_lines.append(match.group(0).strip())
        return f"\ue000{len(long_lines) - 1}\ue001"

    return re.sub(rf"(?m)^[^\n]{{{LINE_MAX + 1},}}$", placeholder, body), long_lines


def _unmask(text: str, long_lines: list[str]) -> str:
    if not long_lines:
        return text
    return re.sub("\ue000(\\d+)\ue001", lambda m: long_lines[int(m.group(1))], text)


def _dated_header(lines: list[str], index: int) -> int | None:
    """Where a quote header ending at ``lines[index]`` starts (that line, or the one above it
    when the header wrapped): a date or time and an address, ending in ``:``. Line by line,
    so a long message costs linear time."""
    line = lines[index]
    if len(line) > 300 or not line.rstrip().endswith(":"):
        return None
    if line.lstrip().startswith(">") and line.strip() != ">:":  # ">:" ends a wrapped "<address"
        return None
    if _WHEN_RE.search(line) and _ADDRESS_RE.search(line):
        return index
    above = lines[index - 1] if index else ""
    if above.strip() and len(above) <= 300 and not above.lstrip().startswith(">"):
        joined = f"{above} {line}"
        if _WHEN_RE.search(joined) and _ADDRESS_RE.search(joined):
            return index - 1
    return None


def _cut_generic(body: str) -> str:
    """``body`` up to the first quote header found by its shape, when the customer wrote
    something above it (below it, it is a bottom-posted reply: the library's and the ``>``
    pass's job)."""
    cut = len(body)
    lines = body.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for index in range(len(lines)):
        start = _dated_header(lines, index)
        if start is not None and any(lines[i].strip() for i in range(start)):
            cut = offsets[start]
            break
    for pattern in _GENERIC_HEADERS:
        for match in pattern.finditer(body, 0, cut):
            if body[: match.start()].strip():
                cut = min(cut, match.start())
                break
    return body[:cut]


def _drop_quoted(text: str) -> str:
    """``text`` without its ``>`` lines and the header line(s) just before a quoted block."""
    lines = text.split("\n")
    quoted = [bool(_QUOTED_LINE.match(line)) for line in lines]
    for index in range(1, len(lines) - 1):
        # a line a client wrapped out of the quote: between two quoted lines, no blank beside
        if not quoted[index] and lines[index].strip() and quoted[index - 1]:
            after = next((i for i in range(index + 1, min(index + 3, len(lines))) if quoted[i]), None)
            if after is not None and all(lines[i].strip() for i in range(index, after)):
                for i in range(index, after):
                    quoted[i] = True
                    lines[i] = "> " + lines[i]
    keep = [True] * len(lines)
    for index, line in enumerate(lines):
        if not _QUOTED_LINE.match(line):
            continue
        keep[index] = False
        if index and _QUOTED_LINE.match(lines[index - 1]):
            continue
        # the start of a quoted block: the header that introduced it, if there is one
        above = index - 1
        while above >= 0 and not lines[above].strip():
            above -= 1
        if above >= 0 and lines[above].rstrip().endswith(":"):
            header = [above]
            while len(header) < 3 and header[0] >= 1:  # a header a client wrapped, up to three lines
                before = lines[header[0] - 1].rstrip()
                if not _WRAPPED_HEADER.search(before) or _QUOTED_LINE.match(before):
                    break
                header.insert(0, header[0] - 1)
            joined = " ".join(lines[i] for i in header)
            if _HEADERISH.search(joined) and len(joined) < 300:
                for i in header:
                    keep[i] = False
    kept = [line for line, k in zip(lines, keep, strict=True) if k]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    # an Outlook header block whose ``From:`` line wrapped: the library split the quote at
    # ``Sent:`` and left ``From: Name`` (and the address on its own line) at the end; and
    # the rule of underscores or dashes a client draws above the quote
    text = _DANGLING_FROM.sub("", "\n" + text).strip()
    text = _DANGLING_WRAP.sub("", "\n" + text).strip()
    return _TRAILING_RULE.sub("", "\n" + text).strip()


_DANGLING_FROM = re.compile(
    r"\n[* ]*(?:From|De|Von|Da|Van|Fra|Från|Od|От)[* ]*:[^\n]*(?:\n<?[^\s@<>]+@[^\s<>]+>?)?\s*\Z"
)


# the first line of a quote header the library cut after it wrapped (``On Nov 21, 2014,``)
_DANGLING_WRAP = re.compile(r"\n\n[^\n]{0,60}\d[^\n]{0,60}[,<][ \t]*\Z")


def _normal(text: str) -> str:
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())


# HTML: the elements mail clients wrap a quote in; each is replaced by a ``>`` line so the
# text pass above also drops the header that introduced it
_QUOTE_SELECTORS = (
    "blockquote",
    "div.gmail_quote",
    "div.yahoo_quoted",
    "div.moz-cite-prefix + blockquote",
)
# Outlook and Hotmail start the quoted message with a block, not a blockquote: from there on,
# everything is quote
_QUOTE_STARTS = ("div#divRplyFwdMsg", "div#appendonsend", "hr#stopSpelling", "div.OutlookMessageHeader")


def html_reply(html: str) -> str:
    """The text of an HTML body with the quote taken out by its markup, before ``strip``. A
    body over ``HTML_MAX`` (a newsletter, not a reply) is only made text: building its tree
    costs seconds."""
    if len(html) > HTML_MAX:
        return html_to_text(html)
    try:
        soup = BeautifulSoup(html, "html.parser")
        for selector in _QUOTE_STARTS:
            start = soup.select_one(selector)
            if start is not None:
                _cut_from(start)
        for element in soup.select(", ".join(_QUOTE_SELECTORS)):
            if isinstance(element, Tag) and element.parent is not None:
                marker = soup.new_tag("div")
                marker.string = "> …"
                element.replace_with(marker)
        for div in soup.find_all("div"):
            if isinstance(div, Tag) and _outlook_border(div):
                _cut_from(div)
                break
        return html_to_text(str(soup))
    except Exception:  # a stranger's markup bs4 cannot take: the text pass alone
        return html_to_text(html)


def _outlook_border(div: Tag) -> bool:
    """Outlook's reply header: a div with a thin top border that starts with two or more
    header lines (``From:``, ``De:``, ``От:``: any language's)."""
    style = str(div.get("style") or "").replace(" ", "").lower()
    if "border-top:solid" not in style and "border-top-style:solid" not in style:
        return False
    return len(re.findall(r"(?:^|\s)[^\W\d_]{1,15}:", div.get_text(" ")[:400])) >= 2


def _cut_from(start: Tag) -> None:
    """Replace ``start`` and everything after it in document order by one ``>`` line."""
    marker = BeautifulSoup("<div>&gt; …</div>", "html.parser").div
    assert marker is not None
    start.insert_before(marker)
    for sibling in list(start.next_siblings):
        sibling.extract()
    parent = start.parent
    start.extract()
    # everything after the quote's ancestors goes too (Outlook nests the rest)
    while parent is not None and parent.name not in ("body", "html", "[document]"):
        for sibling in list(parent.next_siblings):
            sibling.extract()
        parent = parent.parent
