"""Every string of the dashboard's pages is translatable, and translated into pt-BR.

The strings are extracted from the templates and the Python code exactly as ``scripts/i18n``
extracts them (``babel.cfg``): a new string without its pt-BR translation, a catalog not
updated, a translation that lost a placeholder, or readable text written in a template
outside ``_()`` fails here.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from atende.dashboard import i18n
from tests.conftest import ROOT

DASHBOARD = ROOT / "src" / "atende" / "dashboard"
LOCALE = DASHBOARD / "locale"
TEMPLATES = DASHBOARD / "templates"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def extracted() -> set[str]:
    """The msgids of the dashboard, as scripts/i18n extracts them (babel.cfg's mapping)."""
    config = read_config(ROOT / "babel.cfg")
    ids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(DASHBOARD), method_map=config.method_map, options_map=config.options_map
    ):
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


class Config:
    def __init__(self, method_map: list[tuple[str, str]], options_map: dict[str, dict[str, str]]) -> None:
        self.method_map, self.options_map = method_map, options_map


def read_config(path: Path) -> Config:
    with path.open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return Config(method_map, options_map)


def catalog(language: str) -> dict[str, tuple[str, ...]]:
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        read = read_po(po)
    found = {}
    for message in read:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        found[key] = tuple(s for s in strings) if not message.fuzzy else ("",)
    return found


def test_every_string_of_the_pages_has_its_pt_br_translation() -> None:
    strings = extracted()
    assert len(strings) > 100
    pt = catalog("pt_BR")
    missing = sorted(s for s in strings if s not in pt or not all(pt[s]))
    assert missing == [], (
        f"translate these in {LOCALE}/pt_BR/LC_MESSAGES/messages.po (scripts/i18n adds them): {missing}"
    )


def test_the_catalogs_hold_exactly_the_strings_of_the_pages() -> None:
    strings = extracted()
    for language in ("pt_BR", "en"):
        assert set(catalog(language)) == strings, f"run scripts/i18n: {language}'s catalog is out of date"


def test_translations_keep_every_placeholder() -> None:
    for msgid, strings in catalog("pt_BR").items():
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) == set(PLACEHOLDER.findall(msgid)), (msgid, string)


class VisibleText(HTMLParser):
    """Text a person reads in a template once Jinja's tags and expressions are taken out."""

    READ_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label", "label")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_data(self, data: str) -> None:
        if re.search(r"[A-Za-zÀ-ÿ]", data):
            self.found.append(data.strip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in self.READ_ATTRIBUTES and value and re.search(r"[A-Za-zÀ-ÿ]", value):
                self.found.append(f"{name}={value}")


def untranslated(template: Path) -> list[str]:
    source = template.read_text()
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.DOTALL)
    source = re.sub(r"\{%.*?%\}", "", source, flags=re.DOTALL)
    source = re.sub(r"\{\{.*?\}\}", "", source, flags=re.DOTALL)
    parser = VisibleText()
    parser.feed(source)
    return parser.found


@pytest.mark.parametrize(
    "template", sorted([*TEMPLATES.rglob("*.html"), *TEMPLATES.rglob("*.txt")]), ids=lambda p: p.name
)
def test_no_template_writes_readable_text_outside_gettext(template: Path) -> None:
    assert untranslated(template) == []


def test_the_lint_finds_text_outside_gettext(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text('<h1>{{ _("Users") }}</h1><p>Hello</p><button aria-label="Close">{{ x }}</button>')
    assert untranslated(page) == ["Hello", "aria-label=Close"]


@pytest.mark.parametrize(
    ("chosen", "accept", "company", "expected"),
    [
        ("en", "pt-BR,pt;q=0.9", "pt", "en"),  # the person's choice first
        (None, "pt-PT,en;q=0.5", "en", "pt-BR"),  # then their browser's (any Portuguese)
        (None, "de-DE,en-GB;q=0.8,pt;q=0.9", "pt", "pt-BR"),  # by quality
        (None, "de, fr;q=0.5", "en", "en"),  # then the company's default
        (None, "", "es", "en"),  # (no Spanish catalog yet)
        (None, None, None, "pt-BR"),  # then Brazilian Portuguese
        ("xx", "en;q=0, pt;q=0", None, "pt-BR"),  # nothing usable
    ],
)
def test_the_language_of_a_page(
    chosen: str | None, accept: str | None, company: str | None, expected: str
) -> None:
    assert i18n.choose(chosen, accept, company) == expected


def test_the_catalogs_load_from_the_po_files_as_they_are() -> None:
    assert i18n.translations("pt-BR").gettext("Sign in") == "Entrar"
    assert i18n.translations("pt-BR").gettext("Password") == "Senha"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"
