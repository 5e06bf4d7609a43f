"""Language detection restricted to the languages atende serves (pt, en, es).

``lingua-language-detector`` was the most accurate detector tried on short customer
messages. Its models load once per process, on first use.
"""

from __future__ import annotations

from functools import lru_cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

SUPPORTED = ("pt", "en", "es")


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    return (
        LanguageDetectorBuilder.from_languages(Language.PORTUGUESE, Language.SPANISH, Language.ENGLISH)
        .with_preloaded_language_models()
        .build()
    )


def warm_up() -> None:
    """Load the models now rather than during the first customer's turn."""
    _detector()


def detect(text: str, *, fallback: str, min_confidence: float = 0.55) -> tuple[str, float]:
    """The language of ``text`` and the confidence; ``fallback`` when unsure or too short."""
    letters = sum(ch.isalpha() for ch in text)
    if letters < 3:
        return fallback, 0.0
    values = _detector().compute_language_confidence_values(text)
    if not values:
        return fallback, 0.0
    best = values[0]
    code = best.language.iso_code_639_1.name.lower()
    if best.value < min_confidence:
        return fallback, best.value
    return code, best.value
