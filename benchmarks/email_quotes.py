"""Quoted-reply stripping measured on real e-mail: every file in ``--data-dir``/email that has
an expected result, and the share of them stripped exactly.

Where the expected results come from:

- ``talon/standard_replies``: the ``*_reply_text`` files beside two ``.eml`` (the data's own
  README), and talon's test-suite rule for the others: the reply is ``Hello``. Talon removes
  quotes and keeps signatures, so each is compared with ``Stripped.reply``.
- ``talon/html_replies``: talon's test expects ``Hi. I am fine. Thanks, Alex`` from each
  HTML-only reply, whitespace aside; compared with ``Stripped.reply`` of ``html_reply``.
- ``crisp`` and ``mail-parser-reply``: the samples carry no expected result; their projects'
  test suites assert the exact reply of some (``benchmarks/data/email_quotes_expected.json``
  names each assertion). That reply has no quote and no ``--`` or mobile signature, so it is
  compared with ``Stripped.text``, what the bot reads.

"Exactly": equal after trimming the ends of lines and of the whole text (mail clients and the
parsers differ in trailing spaces); the HTML rows compare without any whitespace, as talon does.
Both outputs are also reported for every row (``reply`` and ``text`` columns).

Run from the project root: ``.venv/bin/python -m benchmarks.email_quotes [--json OUT]``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from atende.channels.email.parse import parse
from atende.channels.email.quotes import Stripped, html_reply, strip
from benchmarks.common import add_data_dir_argument, console

EXPECTED = Path(__file__).parent / "data" / "email_quotes_expected.json"
TALON_HTML_REPLY = "Hi. I am fine.\n\nThanks,\nAlex"


@dataclass
class Row:
    corpus: str
    source: str  # where the expected results come from
    compared: str  # "reply" or "text"
    files: int = 0
    exact: int = 0
    reply_exact: int = 0
    text_exact: int = 0
    misses: list[dict[str, str]] = field(default_factory=list)

    def share(self, n: int) -> float:
        return n / self.files if self.files else 0.0


def lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines()).strip()


def no_space(text: str) -> str:
    return re.sub(r"\s+", "", text)


def score(row: Row, name: str, expected: str, stripped: Stripped, same: Any = lines) -> None:
    row.files += 1
    reply_ok = same(stripped.reply) == same(expected)
    text_ok = same(stripped.text) == same(expected)
    row.reply_exact += reply_ok
    row.text_exact += text_ok
    if reply_ok if row.compared == "reply" else text_ok:
        row.exact += 1
    else:
        got = stripped.reply if row.compared == "reply" else stripped.text
        row.misses.append({"file": name, "expected": expected[:300], "got": got[:300]})


def talon_plain(email: Path) -> Row:
    row = Row("talon/standard_replies", "*_reply_text, else talon's rule 'Hello'", "reply")
    for eml in sorted((email / "talon" / "standard_replies").glob("*.eml")):
        expected_file = eml.with_name(eml.stem + "_reply_text")
        expected = expected_file.read_text().strip() if expected_file.exists() else "Hello"
        score(row, eml.name, expected, strip(parse(eml.read_bytes()).text))
    return row


def talon_reply_text_only(email: Path) -> Row:
    row = Row("talon/standard_replies (*_reply_text)", "the data's *_reply_text files", "reply")
    for expected_file in sorted((email / "talon" / "standard_replies").glob("*_reply_text")):
        eml = expected_file.with_name(expected_file.name.removesuffix("_reply_text") + ".eml")
        score(row, eml.name, expected_file.read_text().strip(), strip(parse(eml.read_bytes()).text))
    return row


def talon_html(email: Path) -> Row:
    row = Row("talon/html_replies", "talon's test: 'Hi. I am fine. Thanks, Alex'", "reply")
    for page in sorted((email / "talon" / "html_replies").glob("*.html")):
        score(row, page.name, TALON_HTML_REPLY, strip(html_reply(page.read_text())), no_space)
    return row


def suites(email: Path) -> list[Row]:
    expectations = json.loads(EXPECTED.read_text())["expected"]
    rows: dict[str, Row] = {}
    for item in expectations:
        corpus, path = item["corpus"], email / item["corpus"] / item["file"]
        if not path.exists():  # a sample of the corpora (tests/data/email holds a few)
            continue
        row = rows.setdefault(corpus, Row(corpus, f"{corpus}'s test suite", "text"))
        score(row, item["file"], item["expected"], strip(path.read_text()))
    return list(rows.values())


def without_expectations(email: Path) -> dict[str, Any]:
    """The files no one gave an expected result: read and stripped without error, and how
    many had something removed (not a quality measure)."""
    known = {(i["corpus"], i["file"]) for i in json.loads(EXPECTED.read_text())["expected"]}
    counts: dict[str, Any] = {}
    for corpus in ("crisp", "mail-parser-reply"):
        files = [p for p in sorted((email / corpus).glob("*.txt")) if (corpus, p.name) not in known]
        if not files:
            continue
        stripped = [strip(p.read_text()) for p in files]
        counts[corpus] = {"files": len(files), "something_removed": sum(s.quoted for s in stripped)}
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_dir_argument(parser)
    parser.add_argument("--json", type=Path, help="write every number (and each miss) to this file")
    parser.add_argument("--misses", action="store_true", help="print each file not stripped exactly")
    args = parser.parse_args(argv)
    email = args.data_dir / "email"
    if not (email / "talon").is_dir():
        parser.error(f"no e-mail corpora under {email} (expected talon/, crisp/, mail-parser-reply/)")
    started = time.perf_counter()
    rows = [talon_reply_text_only(email), talon_plain(email), talon_html(email), *suites(email)]
    seconds = time.perf_counter() - started
    scored = [r for r in rows if r.corpus != "talon/standard_replies (*_reply_text)"]  # counted once

    table = Table(title="Quoted replies stripped exactly")
    for column in ("corpus", "expected results from", "files", "exact", "share", "reply exact", "text exact"):
        table.add_column(
            column, justify="right" if column not in ("corpus", "expected results from") else "left"
        )
    for r in rows:
        table.add_row(
            r.corpus,
            r.source,
            str(r.files),
            str(r.exact),
            f"{r.share(r.exact):.0%}",
            f"{r.share(r.reply_exact):.0%}",
            f"{r.share(r.text_exact):.0%}",
        )
    files = sum(r.files for r in scored)
    exact = sum(r.exact for r in scored)
    table.add_row(
        "all (each file once)", "", str(files), str(exact), f"{exact / files:.0%}", "", "", style="bold"
    )
    console.print(table)
    rest = without_expectations(email)
    console.print(
        "Without an expected result (read and stripped without error; not scored): "
        + ", ".join(
            f"{c}: {v['files']} files, {v['something_removed']} with something removed"
            for c, v in rest.items()
        )
    )
    console.print(f"{files} files in {seconds:.2f} s")
    if args.misses:
        for r in rows:
            for miss in r.misses:
                console.print(f"[bold]{r.corpus}/{miss['file']}[/bold]")
                console.print(f"  expected {miss['expected']!r}\n  got      {miss['got']!r}", markup=False)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rows": [
                        {
                            "corpus": r.corpus,
                            "expected_from": r.source,
                            "compared": r.compared,
                            "files": r.files,
                            "exact": r.exact,
                            "share": round(r.share(r.exact), 4),
                            "reply_exact": r.reply_exact,
                            "text_exact": r.text_exact,
                            "misses": r.misses,
                        }
                        for r in rows
                    ],
                    "all": {"files": files, "exact": exact, "share": round(exact / files, 4)},
                    "without_expected_results": rest,
                    "seconds": round(seconds, 3),
                },
                ensure_ascii=False,
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
