"""Pure text functions shared by indexing and querying: accent folding, sentences, the
PostgreSQL text-search configuration of each language."""

from __future__ import annotations

import re
import unicodedata

TS_CONFIG = {"pt": "portuguese", "en": "english", "es": "spanish"}
# letters and digits: PostgreSQL's parser splits words on ``_`` as on any other punctuation
_WORD = re.compile(r"[^\W_]+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[^\s])|\n+")


class _Combining(dict[int, int | None]):
    """``str.translate``'s table that drops combining characters (accents once decomposed),
    filled as characters are met: the per-character Python loop it replaces was most of the
    re-ranker's time folding a few hundred candidate sentences."""

    LIMIT = 4096  # characters remembered: a text's scripts' few hundred, never the whole of Unicode

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        if len(self) < self.LIMIT:
            self[code] = kept
        return kept


_STRIP_COMBINING = _Combining()
_LATIN_ACCENTS = re.compile("[\u0300-\u034e\u0350-\u036f]+")  # combining diacritics (U+034F is not one)


def fold(text: str) -> str:
    """Lower-case and strip accents, so ``rapidas`` and ``rápidas`` index alike."""
    decomposed = unicodedata.normalize("NFKD", text)
    if not decomposed.isascii():
        decomposed = _LATIN_ACCENTS.sub("", decomposed)  # the accents of pt, es, en text
        if not decomposed.isascii():
            decomposed = decomposed.translate(_STRIP_COMBINING)  # any other combining mark
    return decomposed.lower()


def words(text: str) -> list[str]:
    """The words of ``text``, folded (safe to put in a ``to_tsquery`` expression)."""
    return [w for w in _WORD.findall(fold(text)) if not w.isdigit() or len(w) > 1]


def lexeme_query(lexemes: list[str]) -> str:
    """A ``to_tsquery('simple', ...)`` source matching any of these (already stemmed) lexemes."""
    quoted = ("'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes)
    return " | ".join(quoted)


def sentences(text: str) -> list[str]:
    """Split a passage into sentences (and list lines), keeping their original text."""
    parts = (p.strip() for p in _SENTENCE_END.split(text))
    return [p for p in parts if p]


# Words that shape a question but name no topic ("how long does it take", "posso", "gostaria
# de saber"). Evidence is measured on the remaining words: a passage need not contain them.
_QUESTION_WORDS_BY_LANGUAGE = {
    "pt": "qual quais quanto quanta quantos quantas quando onde como porque por que quem posso pode "
    "podem poderia gostaria queria quero preciso precisa saber sei tempo demora demoram leva levam "
    "faço faz fazer voces você vocês vcs tem têm existe existem algum alguma favor ola oi",
    "en": "what which when where how why who can could would should may might do does did is are "
    "there want need know long take takes please tell me you your hi hello any much many have has",
    "es": "cual cuales cuanto cuanta cuantos cuando donde como por porque que quien puedo puede "
    "pueden podria quiero quisiera necesito saber tiempo tarda tardan hago hace hacer ustedes "
    "tienen hay alguno alguna favor hola",
}
QUESTION_WORDS = frozenset(fold(w) for words_ in _QUESTION_WORDS_BY_LANGUAGE.values() for w in words_.split())


SUBJECT_MAX_CHARS = 100


def subject_line(text: str) -> str:
    """The subject of an e-mail-like message: a short first line with more text below it
    ("leite azedando\nBoa tarde, meu leite..."); ``""`` for anything else."""
    first, newline, rest = text.strip().partition("\n")
    first = first.strip()
    if not newline or not rest.strip() or len(first) > SUBJECT_MAX_CHARS:
        return ""
    return first


def topic_text(text: str) -> str:
    """``text`` without its question words (what the customer asks *about*)."""
    kept = [w for w in words(text) if w not in QUESTION_WORDS]
    return " ".join(kept) if kept else fold(text)
