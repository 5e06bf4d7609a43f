"""Recognise messages that are only a greeting or a thank-you (no question to look up), and
the greeting a question opens with."""

from __future__ import annotations

import re

from atende.knowledge.text import fold

_HELLO = (
    r"(oi+|ola|ol[aá]|opa|bom dia|boa tarde|boa noite|hello|hi|hey|good (morning|afternoon|evening)"
    r"|hola|buenos dias|buenas tardes|buenas noches|buenas|e ai|tudo bem|tudo bom)"
    r"( (tudo bem|tudo bom|como vai|como estas|there|pessoal|equipe|team))?"
)
_LEADING_GREETING = re.compile(f"^{_HELLO}( |$)")
_THANKS = re.compile(
    r"^((muito )?obrigad[oa]( (mesmo|pela ajuda))?|valeu|thanks?( you)?( very much| a lot)?|thank you"
    r"|(muchas )?gracias|ok obrigad[oa]|perfeito obrigad[oa])$"
)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", fold(text)).split())


def _after_greetings(plain: str) -> str:
    # "ola boa tarde tudo bem ..." opens with several greetings in a row
    while match := _LEADING_GREETING.match(plain):
        plain = plain[match.end() :]
    return plain


def classify(text: str) -> str | None:
    """``"greeting"``, ``"thanks"`` or ``None`` when the message asks something."""
    plain = _plain(text)
    rest = _after_greetings(plain)
    if plain and not rest:
        return "greeting"
    if _THANKS.match(rest):
        return "thanks"
    return None


def without_greeting(text: str) -> str:
    """The question of a message that opens with a greeting ("Bom dia, tudo bem? Aceitam
    Pix?" → "aceitam pix"), folded: a greeting names no topic, so it must not count as a
    term the knowledge base fails to cover. Other messages come back unchanged."""
    plain = _plain(text)
    rest = _after_greetings(plain)
    return rest if rest != plain else text
