"""The dashboard's languages: its message catalogs and which one a person reads.

Every string a person reads goes through gettext (``_()`` in Python, ``{{ _() }}`` and
``{% trans %}`` in templates) with English as the source language. The catalogs are Babel's
``.po`` files under ``locale/``, read as they are when the process starts (compiled in
memory), so a bare clone works with no build step and a translator edits one file.
``scripts/i18n`` extracts the strings and updates the catalogs (docs/DASHBOARD.md).

The language of a page: the one the person chose (stored with their account, or in a cookie
before they sign in), else the first their browser asks for that the dashboard has, else the
company's default language, else Brazilian Portuguese.
"""

from __future__ import annotations

import gettext
import io
import re
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages import mofile, pofile

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
# the languages people can choose, by their tag (<html lang>, Accept-Language), with their
# catalog's folder and the name shown in the language switch (in that language)
LANGUAGES: dict[str, tuple[str, str]] = {
    "pt-BR": ("pt_BR", "Português (Brasil)"),
    "en": ("en", "English"),
}
DEFAULT = "pt-BR"
# a company's default language (``Company.default_language``) as a dashboard language; the
# dashboard has no Spanish catalog yet
COMPANY_DEFAULTS = {"pt": "pt-BR", "en": "en", "es": "en"}
_QUALITY = re.compile(r"^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$")


def N_(message: str) -> str:  # noqa: N802 (gettext's name for a marker)
    """Marks a message for extraction where it is defined; it is translated where shown."""
    return message


@cache
def translations(language: str) -> gettext.GNUTranslations:
    """The catalog of a language, read from its ``.po`` file once per process."""
    folder, _name = LANGUAGES[language]
    with (LOCALE_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        catalog = pofile.read_po(po, locale=folder, domain=DOMAIN)
    compiled = io.BytesIO()
    mofile.write_mo(compiled, catalog)  # fuzzy entries are left out: English shows instead
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


@cache
def locale(language: str) -> Locale:
    """Babel's locale of a language (dates, numbers)."""
    return Locale.parse(LANGUAGES[language][0])


def supported(tag: str | None) -> str | None:
    """The dashboard language a tag asks for (``pt``, ``pt-PT``, ``en-US`` …), if any."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    for language in LANGUAGES:
        if tag == language.lower():
            return language
    primary = tag.split("-", 1)[0]
    return next((lang for lang in LANGUAGES if lang.split("-", 1)[0].lower() == primary), None)


def from_accept_language(header: str | None) -> str | None:
    """The first language of an ``Accept-Language`` header, by quality, that the dashboard
    has (``None``: none of them)."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:1000].split(",")):
        tag, *params = part.split(";")
        quality = 1.0
        for param in params:
            match = _QUALITY.match(param)
            if match:
                quality = float(match.group(1))
        if tag.strip() and quality > 0:
            wanted.append((-quality, position, tag.strip()))
    for _q, _position, tag in sorted(wanted):
        language = supported(tag)
        if language:
            return language
    return None


def choose(chosen: str | None, accept_language: str | None, company_default: str | None) -> str:
    """The language of a page: the person's choice, their browser's, the company's, ours."""
    return (
        supported(chosen)
        or from_accept_language(accept_language)
        or COMPANY_DEFAULTS.get(company_default or "")
        or DEFAULT
    )
