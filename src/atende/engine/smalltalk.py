"""Recognise messages that are only a greeting or a thank-you (no question to look up)."""

from __future__ import annotations

import re

from atende.knowledge.text import fold

_GREETING = re.compile(
    r"^(oi+|ola|ol[aá]|opa|bom dia|boa tarde|boa noite|hello|hi|hey|good (morning|afternoon|evening)"
    r"|hola|buenos dias|buenas tardes|buenas noches|buenas|e ai|tudo bem|tudo bom)"
    r"( (tudo bem|tudo bom|como vai|como estas|there|pessoal|equipe|team))?$"
)
_THANKS = re.compile(
    r"^((muito )?obrigad[oa]( (mesmo|pela ajuda))?|valeu|thanks?( you)?( very much| a lot)?|thank you"
    r"|(muchas )?gracias|ok obrigad[oa]|perfeito obrigad[oa])$"
)


def classify(text: str) -> str | None:
    """``"greeting"``, ``"thanks"`` or ``None`` when the message asks something."""
    plain = re.sub(r"[^\w\s]", " ", fold(text))
    plain = " ".join(plain.split())
    if _GREETING.match(plain):
        return "greeting"
    if _THANKS.match(plain):
        return "thanks"
    return None
